//! Delegated OCSP signers: per intermediate, a P-256 key generated in the HSM and a short-lived
//! certificate from the intermediate for OCSP signing only (id-kp-OCSPSigning, ocsp-nocheck).
//! The intermediate's key then signs certificates and CRLs only. A signer is replaced when half
//! its validity has passed, so responses (valid `ca.ocsp_validity_secs`, at most half the
//! signer's life) never outlive the certificate that vouches for them.

use std::sync::Arc;
use std::time::Duration;

use der::Decode;
use mandate_config::Config;
use mandate_hsm::{Hsm, KeyKind};
use mandate_ocsp::{OcspIssuer, OcspSigner};
use mandate_store::{AuditEvent, CaCertRow, CaRole, OcspSignerRow, Store, now_unix};
use serde_json::json;
use spki::SubjectPublicKeyInfoOwned;

use crate::CaError;
use crate::x509::{self, CaSigner, CertFields};

const SIGNER_KEY: KeyKind = KeyKind::EcP256;
/// How often signers are checked for renewal.
const CHECK_EVERY: Duration = Duration::from_secs(600);

/// Gives every issuer a current delegated signer, then keeps them renewed in the background.
pub async fn start(
    hsm: &Hsm,
    store: &Store,
    cfg: Arc<Config>,
    issuers: Arc<Vec<OcspIssuer>>,
) -> Result<(), CaError> {
    renew_all(hsm, store, &cfg, &issuers).await?;
    let (hsm, store) = (hsm.clone(), store.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            if let Err(e) = renew_all(&hsm, &store, &cfg, &issuers).await {
                tracing::error!(error = %e, "OCSP signer renewal failed; the current signer stays");
            }
        }
    });
    Ok(())
}

async fn renew_all(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    issuers: &[OcspIssuer],
) -> Result<(), CaError> {
    for issuer in issuers {
        let Some(row) = store.ca_certificate(issuer.id).await? else {
            continue;
        };
        let signer = current_or_new(hsm, store, cfg, &row).await?;
        let kind: KeyKind = signer
            .key_kind
            .parse()
            .map_err(|_| CaError::Internal(format!("stored key kind {:?}", signer.key_kind)))?;
        let key_id = signer
            .key_id
            .parse()
            .map_err(|_| CaError::Internal(format!("stored key id {:?}", signer.key_id)))?;
        issuer.set_signer(OcspSigner::delegated(
            &signer.der,
            key_id,
            kind.default_signature_algorithm(),
        )?);
    }
    Ok(())
}

async fn current_or_new(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    issuer: &CaCertRow,
) -> Result<OcspSignerRow, CaError> {
    let now = now_unix();
    if let Some(s) = store.current_ocsp_signer(issuer.id).await?
        && now < s.not_before + (s.not_after - s.not_before) / 2
    {
        return Ok(s);
    }
    if issuer.role != CaRole::Intermediate {
        return Err(CaError::Internal(
            "OCSP signers are for intermediates".into(),
        ));
    }
    let key = hsm
        .generate_key(SIGNER_KEY, &format!("mandate-ocsp-{}-{now}", issuer.id))
        .await?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.spki_der)?;
    let ski = x509::key_identifier(&spki);
    let issuer_cert = x509_cert::Certificate::from_der(&issuer.der)?;
    let (serial, serial_hex) = x509::random_serial()?;
    let not_before = now - 60;
    let not_after = x509::not_after(
        not_before,
        cfg.ca.ocsp_signer_validity_days,
        issuer.not_after,
    );
    let fields = CertFields {
        serial,
        issuer: issuer_cert.tbs_certificate.subject.clone(),
        subject: x509::name(
            &cfg.ca.organization,
            &format!("OCSP Responder {}", &hex::encode(&issuer.ski)[..16]),
        )?,
        spki,
        not_before,
        not_after,
        extensions: x509::ocsp_signer_extensions(&ski, &issuer.ski)?,
    };
    let kind: KeyKind = issuer
        .key_kind
        .parse()
        .map_err(|_| CaError::Internal(format!("stored key kind {:?}", issuer.key_kind)))?;
    let issuer_key = issuer
        .key_id
        .parse()
        .map_err(|_| CaError::Internal(format!("stored key id {:?}", issuer.key_id)))?;
    let signer = CaSigner::new(hsm, issuer_key, kind);
    let (tbs, tbs_der) = x509::tbs(fields, signer.algorithm_identifier()?)?;
    let der = signer.sign_tbs(tbs, &tbs_der).await?;
    let row = OcspSignerRow {
        issuer_id: issuer.id,
        key_id: key.id.to_string(),
        key_kind: SIGNER_KEY.to_string(),
        der,
        not_before,
        not_after,
    };
    store
        .insert_ocsp_signer(
            &row,
            &AuditEvent::new(
                "system",
                "ocsp_signer.issued",
                &serial_hex,
                json!({"issuer_id": issuer.id, "key_id": row.key_id, "not_after": not_after}),
            )
            .with_fingerprint(x509::sha256_hex(&row.der)),
        )
        .await?;
    tracing::info!(issuer = issuer.id, serial = %serial_hex, "delegated OCSP signer issued");
    Ok(row)
}

//! Delegated OCSP signers: per intermediate, a P-256 key generated in the HSM and a short-lived
//! certificate from the intermediate for OCSP signing only (id-kp-OCSPSigning, ocsp-nocheck).
//! The intermediate's key then signs certificates and CRLs only. A signer is replaced when half
//! its validity has passed, so responses (valid `ca.ocsp_validity_secs`, at most half the
//! signer's life) never outlive the certificate that vouches for them.

use std::sync::Arc;
use std::time::Duration;

use mandate_config::Config;
use mandate_hsm::{Hsm, KeyKind};
use mandate_ocsp::{IssuerSet, OcspSigner};
use mandate_store::{AuditEvent, CaCertRow, CaRole, OcspSignerRow, Store, now_unix};
use serde_json::json;

use crate::CaError;
use crate::x509;

const SIGNER_KEY: KeyKind = KeyKind::EcP256;
/// How often signers are checked for renewal.
const CHECK_EVERY: Duration = Duration::from_secs(600);

/// Gives every issuer a current delegated signer, then keeps them renewed in the background.
pub async fn start(
    hsm: &Hsm,
    store: &Store,
    cfg: Arc<Config>,
    issuers: Arc<IssuerSet>,
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

/// Gives every issuer a current delegated signer (making one where it is missing or past half
/// its life).
pub(crate) async fn renew_all(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    issuers: &IssuerSet,
) -> Result<(), CaError> {
    for issuer in issuers.current().iter() {
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
    let (key, cert) = crate::delegated::issue(
        hsm,
        cfg,
        issuer,
        SIGNER_KEY,
        &format!("mandate-ocsp-{}-{now}", issuer.id),
        &format!("OCSP Responder {}", &hex::encode(&issuer.ski)[..16]),
        cfg.ca.ocsp_signer_validity_days,
        x509::ocsp_signer_extensions,
    )
    .await?;
    let (der, serial_hex, not_before, not_after) =
        (cert.der, cert.serial_hex, cert.not_before, cert.not_after);
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
                json!({"issuer_id": issuer.id, "key_id": row.key_id, "not_after": crate::rfc3339(not_after)}),
            )
            .with_fingerprint(x509::sha256_hex(&row.der)),
        )
        .await?;
    tracing::info!(issuer = issuer.id, serial = %serial_hex, "delegated OCSP signer issued");
    Ok(row)
}

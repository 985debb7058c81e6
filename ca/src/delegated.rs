//! Certificates the intermediate issues to the CA's own single-purpose keys (delegated OCSP
//! signers, the audit checkpoint signer): a key generated in the HSM, a certificate for it.

use der::Decode;
use mandate_config::Config;
use mandate_hsm::{Hsm, KeyInfo, KeyKind};
use mandate_store::CaCertRow;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;

use crate::CaError;
use crate::x509::{self, CaSigner, CertFields};

/// A certificate issued to one of the CA's own keys.
pub(crate) struct Delegated {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its serial, hex.
    pub serial_hex: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

/// Generates a `kind` key labelled `label` in the HSM and has `issuer` certify it for
/// `validity_days` (never beyond the issuer), with subject CN `common_name` and the extensions
/// `extensions(ski, issuer_ski)` gives.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn issue(
    hsm: &Hsm,
    cfg: &Config,
    issuer: &CaCertRow,
    kind: KeyKind,
    label: &str,
    common_name: &str,
    validity_days: u32,
    extensions: impl FnOnce(&[u8], &[u8]) -> Result<Vec<Extension>, CaError>,
) -> Result<(KeyInfo, Delegated), CaError> {
    let key = hsm.generate_key(kind, label).await?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.spki_der)?;
    let ski = x509::key_identifier(&spki);
    let issuer_cert = x509_cert::Certificate::from_der(&issuer.der)?;
    let (serial, serial_hex) = x509::random_serial()?;
    let not_before = mandate_store::now_unix() - 60;
    let not_after = x509::not_after(not_before, validity_days, issuer.not_after);
    let fields = CertFields {
        serial,
        issuer: issuer_cert.tbs_certificate.subject.clone(),
        subject: x509::name(&cfg.ca.organization, common_name)?,
        spki,
        not_before,
        not_after,
        extensions: extensions(&ski, &issuer.ski)?,
    };
    let issuer_kind: KeyKind = issuer
        .key_kind
        .parse()
        .map_err(|_| CaError::Internal(format!("stored key kind {:?}", issuer.key_kind)))?;
    let issuer_key = issuer
        .key_id
        .parse()
        .map_err(|_| CaError::Internal(format!("stored key id {:?}", issuer.key_id)))?;
    let signer = CaSigner::new(hsm, issuer_key, issuer_kind);
    let (tbs, tbs_der) = x509::tbs(fields, signer.algorithm_identifier()?)?;
    let der = signer.sign_tbs(tbs, &tbs_der).await?;
    Ok((
        key,
        Delegated {
            der,
            serial_hex,
            not_before,
            not_after,
        },
    ))
}

//! Reading a CRL (RFC 5280) offline: who signed it, which certificates it revokes.

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::crl::CertificateList;

use crate::cert::{Cert, first_element};

/// Largest CRL read, in bytes.
pub const MAX_CRL_LEN: usize = 64 * 1024 * 1024;

const CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const REASON_CODE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");

/// The signer (index in `issuers`) and CRL number, and the revocations, of a CRL (DER) signed by
/// one of `issuers`.
pub(crate) fn revocations(
    der: &[u8],
    issuers: &[Cert<'_>],
) -> Result<crate::RevocationEvidence, String> {
    if der.len() > MAX_CRL_LEN {
        return Err(format!("the CRL is larger than {MAX_CRL_LEN} bytes"));
    }
    let crl = CertificateList::from_der(der).map_err(|e| format!("not a DER CRL ({e})"))?;
    let tbs = first_element(der).map_err(|e| format!("not a DER CRL ({e})"))?;
    let signature = crl
        .signature
        .as_bytes()
        .ok_or("the CRL signature is not a whole number of bytes")?;
    let issuer = issuers
        .iter()
        .position(|i| {
            i.cert.tbs_certificate.subject == crl.tbs_cert_list.issuer
                && i.public_key()
                    .and_then(|k| k.verify(&crl.signature_algorithm, tbs, signature))
                    .is_ok()
        })
        .ok_or("the CRL is not signed by any issuer of this CA")?;
    let number = crl
        .tbs_cert_list
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == CRL_NUMBER)
        .and_then(|e| der::asn1::Uint::from_der(e.extn_value.as_bytes()).ok())
        .and_then(|n| {
            let b = n.as_bytes();
            (b.len() <= 8).then(|| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
        });
    let mut out = Vec::new();
    for entry in crl.tbs_cert_list.revoked_certificates.iter().flatten() {
        let reason = entry
            .crl_entry_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == REASON_CODE)
            .and_then(|e| x509_cert::ext::pkix::CrlReason::from_der(e.extn_value.as_bytes()).ok())
            .map(|r| r as u8);
        out.push(crate::ProvenRevocation {
            serial_hex: hex::encode(entry.serial_number.as_bytes()),
            revoked_at: i64::try_from(entry.revocation_date.to_unix_duration().as_secs())
                .unwrap_or(i64::MAX),
            reason,
            issuer,
        });
    }
    Ok(crate::RevocationEvidence {
        crl_number: number.map(|n| (issuer, n)),
        revocations: out,
    })
}

use const_oid::AssociatedOid;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use mandate_hsm::{Hsm, KeyId, SignatureAlgorithm};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::x509_time;

/// Why a CRL could not be built or signed.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// DER encoding failed (a malformed serial or name).
    #[error("CRL encoding: {0}")]
    Der(#[from] der::Error),
    /// The HSM refused or failed to sign.
    #[error(transparent)]
    Hsm(#[from] mandate_hsm::HsmError),
    /// A stored reason code that RFC 5280 does not define.
    #[error("revocation reason code {0} is not an RFC 5280 CRLReason")]
    UnknownReason(i64),
}

/// The issuer a CRL speaks for.
#[derive(Debug, Clone)]
pub struct CrlIssuer {
    /// Its subject, byte for byte as in its certificate.
    pub name: Name,
    /// Its SubjectKeyIdentifier, which becomes the CRL's AuthorityKeyIdentifier.
    pub key_identifier: Vec<u8>,
    /// Its key in the HSM.
    pub key_id: KeyId,
    /// How that key signs.
    pub algorithm: SignatureAlgorithm,
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number bytes (positive, big-endian).
    pub serial: Vec<u8>,
    /// Revocation time, unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 CRLReason code.
    pub reason: i64,
}

/// The RFC 5280 CRLReason for a stored code; `None` for a code RFC 5280 does not define.
pub fn crl_reason(code: i64) -> Option<CrlReason> {
    Some(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

fn extension<T: Encode + AssociatedOid>(critical: bool, value: &T) -> Result<Extension, CrlError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// The TBSCertList (v2) and its DER: entries in the order given, a reasonCode extension on each
/// entry whose reason is not `unspecified` (RFC 5280 §5.3.1 says to leave that one out), and the
/// CRL extensions AuthorityKeyIdentifier and CRLNumber.
pub fn build_tbs(
    issuer: &CrlIssuer,
    number: u64,
    this_update: i64,
    next_update: i64,
    entries: &[RevokedEntry],
) -> Result<(TbsCertList, Vec<u8>), CrlError> {
    let revoked = entries
        .iter()
        .map(|e| {
            let reason = crl_reason(e.reason).ok_or(CrlError::UnknownReason(e.reason))?;
            let extensions = match reason {
                CrlReason::Unspecified => None,
                r => Some(vec![extension(false, &r)?]),
            };
            Ok(RevokedCert {
                serial_number: SerialNumber::new(&e.serial)?,
                revocation_date: x509_time(e.revoked_at)?,
                crl_entry_extensions: extensions,
            })
        })
        .collect::<Result<Vec<_>, CrlError>>()?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: AlgorithmIdentifierOwned::from_der(
            &issuer.algorithm.algorithm_identifier_der(),
        )?,
        issuer: issuer.name.clone(),
        this_update: x509_time(this_update)?,
        next_update: Some(x509_time(next_update)?),
        // An empty list is left out rather than encoded as an empty SEQUENCE (RFC 5280 §5.1.2.6).
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(vec![
            extension(
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(issuer.key_identifier.clone())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
            extension(
                false,
                &CrlNumber(der::asn1::Uint::new(&number.to_be_bytes())?),
            )?,
        ]),
    };
    let der = tbs.to_der()?;
    Ok((tbs, der))
}

/// Builds the CRL and signs it with the issuer's key in the HSM; returns the DER CRL.
pub async fn sign(
    hsm: &Hsm,
    issuer: &CrlIssuer,
    number: u64,
    this_update: i64,
    next_update: i64,
    entries: &[RevokedEntry],
) -> Result<Vec<u8>, CrlError> {
    let (tbs, tbs_der) = build_tbs(issuer, number, this_update, next_update, entries)?;
    let signature = hsm.sign(&issuer.key_id, issuer.algorithm, &tbs_der).await?;
    let crl = CertificateList {
        signature_algorithm: tbs.signature.clone(),
        tbs_cert_list: tbs,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(crl.to_der()?)
}

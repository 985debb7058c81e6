use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use mandate_hsm::Hsm;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, ResponderId,
    ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::{OcspIssuer, Refusal};

/// What went wrong in this crate: a response that could not be produced (the caller answers
/// `tryLater`), or a stand-alone responder that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    /// The store failed or cannot be opened.
    #[error(transparent)]
    Store(#[from] mandate_store::StoreError),
    /// The database holds no CA: nothing to answer for.
    #[error("no CA in the database {0}: start `mandate serve` (or run `mandate init`) on it first")]
    NoCa(String),
    /// A CA certificate in the store names a key or key type this build cannot read.
    #[error("stored CA certificate {id}: {what}")]
    BadCaRecord {
        /// Its row id.
        id: i64,
        /// What is wrong with it.
        what: String,
    },
    /// Listening or serving HTTP failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The listener could not be set up.
    #[error(transparent)]
    Listener(#[from] mandate_listener::ListenerError),
    /// DER encoding failed.
    #[error("OCSP encoding: {0}")]
    Der(#[from] der::Error),
    /// The HSM refused or failed to sign.
    #[error(transparent)]
    Hsm(#[from] mandate_hsm::HsmError),
    /// A stored revocation reason RFC 5280 does not define.
    #[error("revocation reason code {0} is not an RFC 5280 CRLReason")]
    UnknownReason(i64),
}

/// What the responder knows of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Issued by this issuer and not revoked.
    Good,
    /// Revoked at this unix time, with this RFC 5280 reason code.
    Revoked {
        /// Unix seconds.
        at: i64,
        /// CRLReason code; `unspecified` (0) is left out of the response.
        reason: i64,
    },
    /// Not a certificate this issuer issued.
    Unknown,
}

fn gtime(unix: i64) -> Result<OcspGeneralizedTime, der::Error> {
    let secs = u64::try_from(unix).map_err(|_| der::ErrorKind::DateTime)?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_unix_duration(
        std::time::Duration::from_secs(secs),
    )?))
}

/// The reason to put in RevokedInfo: none for `unspecified` (as in CRL entries).
fn revocation_reason(code: i64) -> Result<Option<CrlReason>, OcspError> {
    match mandate_crl::crl_reason(code) {
        Some(CrlReason::Unspecified) => Ok(None),
        Some(r) => Ok(Some(r)),
        None => Err(OcspError::UnknownReason(code)),
    }
}

/// A successful response about the certificate `cert_id` names, signed in the HSM by the
/// issuer's current signer (its own key, or a delegated signer whose certificate goes along):
/// responder id by key hash, producedAt = thisUpdate = `now`, nextUpdate = `next_update`, the
/// CertID echoed as given, the nonce echoed if there is one.
pub async fn sign_response(
    hsm: &Hsm,
    issuer: &OcspIssuer,
    cert_id: &CertId,
    nonce: Option<&[u8]>,
    status: Status,
    now: i64,
    next_update: i64,
) -> Result<Vec<u8>, OcspError> {
    let cert_status = match status {
        Status::Good => CertStatus::good(),
        Status::Unknown => CertStatus::unknown(),
        Status::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
            revocation_time: gtime(at)?,
            revocation_reason: revocation_reason(reason)?,
        }),
    };
    let response_extensions = match nonce {
        Some(n) => Some(vec![Extension {
            extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n)?.to_der()?)?,
        }]),
        None => None,
    };
    let signer = issuer.signer();
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(signer.key_hash_sha1.clone())?),
        produced_at: gtime(now)?,
        responses: vec![SingleResponse {
            cert_id: cert_id.clone(),
            cert_status,
            this_update: gtime(now)?,
            next_update: Some(gtime(next_update)?),
            single_extensions: None,
        }],
        response_extensions,
    };
    let tbs = data.to_der()?;
    let signature = hsm.sign(&signer.key_id, signer.algorithm, &tbs).await?;
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: AlgorithmIdentifierOwned::from_der(
            &signer.algorithm.algorithm_identifier_der(),
        )?,
        signature: BitString::from_bytes(&signature)?,
        certs: signer.certificate.clone().map(|c| vec![c]),
    };
    Ok(OcspResponse::successful(basic)?.to_der()?)
}

/// The unsigned response for a refusal (RFC 6960 §4.2.1: no responseBytes).
pub fn refusal(why: Refusal) -> Vec<u8> {
    let response = match why {
        Refusal::MalformedRequest => OcspResponse::malformed_request(),
        Refusal::Unauthorized => OcspResponse::unauthorized(),
        Refusal::TryLater => OcspResponse::try_later(),
    };
    // These fixed structures always encode; the fallback is the same malformedRequest bytes.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x01])
}

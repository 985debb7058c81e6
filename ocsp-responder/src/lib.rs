//! OCSP for mandate's issuers: strict request parsing (RFC 6960, RFC 5019 profile), responses
//! signed inside the HSM, the HTTP side both responders share, and the stand-alone responder
//! ([`standalone`]) that serves pre-signed responses from the store and holds no key.
//!
//! What a responder must get right and this crate pins down: CertIDs hashed with SHA-1 *and*
//! SHA-256 are both answered, the CertID is echoed exactly as asked, the responder is named by
//! the SHA-1 hash of its key, a nonce is echoed (RFC 8954), and anything malformed, oversized or
//! asking for several certificates gets `malformedRequest`, never an error page — a nonce that
//! is not one DER OCTET STRING of 1 to 32 octets, an extension sent twice and a critical
//! extension we do not act on included ([`parse_request`]).

pub mod http;
mod issuer;
mod presigned_cache;
mod request;
mod response;
pub mod standalone;

pub use issuer::{CertIdHash, IssuerSet, OcspIssuer, OcspSigner};
pub use request::{MAX_REQUEST_BYTES, Query, parse_request};
pub use response::{OcspError, Status, refusal, sign_response};

/// Why a request gets no status: the OCSP response statuses of RFC 6960 §4.2.1 we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a well-formed, single-certificate OCSP request we can read.
    MalformedRequest,
    /// Not about a certificate of an issuer we answer for.
    Unauthorized,
    /// We could not answer now (HSM or database down); the client may retry.
    TryLater,
}

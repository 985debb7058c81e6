//! X.509 v2 CRLs (RFC 5280 §5) for one issuer, signed with the issuer's key inside the HSM.
//!
//! What makes a CRL usable by relying parties, and is easy to get wrong: the
//! AuthorityKeyIdentifier must be the issuer's *SubjectKeyIdentifier* (openssl looks the CRL up
//! by it), the CRL number must only grow, and times must be UTCTime until 2049.

mod build;
mod time;

pub use build::{CrlError, CrlIssuer, RevokedEntry, build_tbs, crl_reason, sign};
pub use time::x509_time;

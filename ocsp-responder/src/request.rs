use der::Decode;
use x509_ocsp::{CertId, OcspRequest};

use crate::Refusal;

/// Largest request read; one CertID with a nonce is about 100 bytes.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// Longest nonce echoed: RFC 8954 allows 1 to 32 octets.
const MAX_NONCE: usize = 32;

/// What a request asks.
#[derive(Debug, Clone)]
pub struct Query {
    /// The one certificate asked about, exactly as the client named it.
    pub cert_id: CertId,
    /// The nonce to echo, if the client sent one.
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER OCSP request. One certificate per request (RFC 5019 §2.1.1): several are
/// refused as `malformedRequest`, like garbage, trailing bytes, oversized input and nonces
/// outside RFC 8954's 1 to 32 octets.
pub fn parse_request(der: &[u8]) -> Result<Query, Refusal> {
    if der.is_empty() || der.len() > MAX_REQUEST_BYTES {
        return Err(Refusal::MalformedRequest);
    }
    let req = OcspRequest::from_der(der).map_err(|_| Refusal::MalformedRequest)?;
    let [single] = req.tbs_request.request_list.as_slice() else {
        return Err(Refusal::MalformedRequest);
    };
    let nonce = match req.nonce() {
        Some(n) => {
            let bytes = n.0.as_bytes();
            if bytes.is_empty() || bytes.len() > MAX_NONCE {
                return Err(Refusal::MalformedRequest);
            }
            Some(bytes.to_vec())
        }
        None => None,
    };
    Ok(Query {
        cert_id: single.req_cert.clone(),
        nonce,
    })
}

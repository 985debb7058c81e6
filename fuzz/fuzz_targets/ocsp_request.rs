//! OCSP request decoder: `mandate_ocsp::parse_request` on arbitrary bytes.
//!
//! Besides "never panics", checks what an accepted request promises: input within the size
//! limit, a nonce of 1 to 32 octets, and a CertID that re-encodes and decodes to itself (it is
//! echoed in the response exactly as asked).

#![no_main]

use der::{Decode, Encode};
use libfuzzer_sys::fuzz_target;
use mandate_ocsp::{MAX_REQUEST_BYTES, Refusal, parse_request};
use x509_ocsp::CertId;

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(query) => {
            assert!(!data.is_empty() && data.len() <= MAX_REQUEST_BYTES);
            if let Some(nonce) = &query.nonce {
                assert!(
                    (1..=32).contains(&nonce.len()),
                    "nonce of {} octets",
                    nonce.len()
                );
            }
            let der = match query.cert_id.to_der() {
                Ok(der) => der,
                Err(e) => panic!("accepted CertID does not re-encode: {e}"),
            };
            match CertId::from_der(&der) {
                Ok(again) => assert_eq!(again, query.cert_id, "CertID changed on a round trip"),
                Err(e) => panic!("re-encoded CertID does not decode: {e}"),
            }
        }
        // The only refusal a parser may give: the other two are the responder's.
        Err(refusal) => assert_eq!(refusal, Refusal::MalformedRequest),
    }
});

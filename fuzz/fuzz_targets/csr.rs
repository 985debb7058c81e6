//! CSR parsing and validation: `csr::validate` (PEM text) in mandate-ca.
//!
//! Each input is tried twice: as PEM text (lossy UTF-8, so any bytes reach the PEM reader), and
//! as DER wrapped in a `CERTIFICATE REQUEST` PEM block, so the fuzzer can mutate the PKCS#10
//! structure directly without having to keep base64 valid. An accepted CSR must report one of
//! the key types of the profile.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mandate_ca::fuzzing::{MAX_CSR_BYTES, validate_csr};

const AGENT_ID: &str = "bot-1";
const DNS_NAME: &str = "bot-1.acme.agents.example";

fn check(pem: &str) {
    if let Ok(valid) = validate_csr(pem, AGENT_ID, DNS_NAME) {
        assert!(pem.len() <= MAX_CSR_BYTES);
        let kt = valid.key_type.as_str();
        assert!(
            kt == "ec-p256" || kt == "ec-p384" || kt.starts_with("rsa-"),
            "unexpected key type {kt}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as PEM text.
    check(&String::from_utf8_lossy(data));

    // 2. The bytes as DER inside a PEM block (skipped when it could not fit the size limit).
    if data.len() <= MAX_CSR_BYTES / 2
        && let Ok(pem) =
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, data)
    {
        check(&pem);
    }
});

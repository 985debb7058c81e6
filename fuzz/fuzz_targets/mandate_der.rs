//! Mandate DER extension decoder: `Mandate::from_der` on arbitrary bytes.
//!
//! Round trip: a decoded mandate is valid, re-encodes to exactly the input (the decoder accepts
//! only canonical DER), and that encoding decodes to an equal value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mandate_policy::{MAX_DER_LEN, Mandate};

fuzz_target!(|data: &[u8]| {
    let Ok(mandate) = Mandate::from_der(data) else {
        return;
    };
    assert!(data.len() <= MAX_DER_LEN);
    if let Err(e) = mandate.validate() {
        panic!("decoded mandate does not validate: {e}");
    }
    let der = match mandate.to_der() {
        Ok(der) => der,
        Err(e) => panic!("decoded mandate does not re-encode: {e}"),
    };
    assert_eq!(
        der.as_slice(),
        data,
        "accepted DER is not the canonical encoding"
    );
    match Mandate::from_der(&der) {
        Ok(again) => assert_eq!(again, mandate, "mandate changed on a round trip"),
        Err(e) => panic!("re-encoded mandate does not decode: {e}"),
    }
    // The JSON form must round-trip too (it is what the API shows for the same value).
    let json = match serde_json::to_vec(&mandate) {
        Ok(json) => json,
        Err(e) => panic!("mandate does not serialize to JSON: {e}"),
    };
    match serde_json::from_slice::<Mandate>(&json) {
        Ok(again) => assert_eq!(again, mandate, "mandate changed on a JSON round trip"),
        Err(e) => panic!("mandate JSON does not deserialize: {e}"),
    }
});

//! ACME JWS parsing: `acme::jws::parse` in mandate-ca, and what the server then does with the
//! attacker's data: JWK parsing, RFC 7638 thumbprint, signature verification, the payload as
//! JSON, external account binding, and key comparison with a certificate's SPKI.

#![no_main]

use der::Decode;
use libfuzzer_sys::fuzz_target;
use mandate_ca::fuzzing::{Jwk, KeyRef, parse_jws, verify_eab};

/// HMAC key the seeds' external account bindings are made with (`fuzz/seeds/acme_jws`), so a
/// seed's binding verifies all the way through.
const EAB_HMAC_KEY: &[u8] = b"mandate-fuzz-eab-hmac-key-32byte";

fuzz_target!(|data: &[u8]| {
    let Ok(jws) = parse_jws(data) else {
        return;
    };
    let payload = jws.json_payload().ok();
    match &jws.header.key {
        KeyRef::Jwk(jwk) => {
            // The thumbprint is well-formed base64url of a SHA-256 and stable through the
            // JWK's own JSON form.
            let thumbprint = jwk.thumbprint();
            assert_eq!(thumbprint.len(), 43);
            match Jwk::from_json(&jwk.to_json()) {
                Ok(again) => {
                    assert_eq!(&again, jwk, "JWK changed on a round trip");
                    assert_eq!(again.thumbprint(), thumbprint);
                }
                Err(e) => panic!("a JWK's own JSON form is refused: {e:?}"),
            }
            let _ = jws.verify(jwk);
            if let Some(eab) = payload
                .as_ref()
                .and_then(|p| p.get("externalAccountBinding"))
            {
                let _ = verify_eab(eab, jwk, &jws.header.url, |_| Some(EAB_HMAC_KEY.to_vec()));
            }
            // Revocation by the certificate's key compares the JWK with an SPKI.
            if let Ok(spki) = spki::SubjectPublicKeyInfoOwned::from_der(&jws.payload) {
                let _ = jwk.is_key_of(&spki);
            }
        }
        KeyRef::Kid(_) => {}
    }
    // A payload that is itself a JWK (the EAB payload, key change's inner JWS).
    if let Some(jwk) = payload.as_ref().and_then(|p| p.get("jwk").or(Some(p))) {
        let _ = Jwk::from_json(jwk).map(|k| k.thumbprint());
    }
});

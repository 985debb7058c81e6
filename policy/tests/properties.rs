//! Property tests: JSON and DER round trips, and robustness of the DER decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::arb_mandate;
use mandate_policy::Mandate;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Xor(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match *mutation {
        Mutation::Set(i, b) => bytes[i % len] = b,
        Mutation::Xor(i, b) => bytes[i % len] ^= b,
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
        Mutation::Remove(i) => {
            bytes.remove(i % len);
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

/// The decoder's contract on arbitrary input: no panic, and anything accepted
/// is a valid mandate whose encoding is exactly the input.
fn check_decoder(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = Mandate::from_der(bytes) {
        prop_assert!(m.validate().is_ok());
        prop_assert_eq!(m.to_der().unwrap(), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_der_round_trip(m in arb_mandate()) {
        let json = serde_json::to_string(&m).unwrap();
        let from_json: Mandate = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&from_json, &m);

        let der = from_json.to_der().unwrap();
        let from_der = Mandate::from_der(&der).unwrap();
        prop_assert_eq!(&from_der, &m);
        prop_assert_eq!(from_der.to_der().unwrap(), der);
    }

    #[test]
    fn json_value_round_trip(m in arb_mandate()) {
        let value = serde_json::to_value(&m).unwrap();
        prop_assert_eq!(serde_json::from_value::<Mandate>(value).unwrap(), m);
    }

    #[test]
    fn mutated_encodings_never_panic(
        m in arb_mandate(),
        mutations in prop::collection::vec(arb_mutation(), 1..4),
    ) {
        let mut der = m.to_der().unwrap();
        for mutation in &mutations {
            apply(&mut der, mutation);
        }
        check_decoder(&der)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_decoder(&bytes)?;
    }

    #[test]
    fn random_sequence_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..120)) {
        // Start like a real mandate so the decoder gets past the outer header.
        let mut bytes = vec![0x30, body.len() as u8 + 3, 0x02, 0x01, 0x01];
        bytes.extend_from_slice(&body);
        check_decoder(&bytes)?;
    }
}

//! DER form of the mandate: test vectors, round trips and rejections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{full_mandate, hex};
use mandate_policy::{
    Action, MANDATE_EXTENSION_OID, MAX_DER_LEN, Mandate, Money, PolicyError, TimeOfDay,
    TradingHours, Weekday,
};

/// Default risk controls: SEQUENCE { 7500, 8500, 3, 15 }.
const RISK: &str = "30 0E  02 02 1D 4C  02 02 21 34  02 01 03  02 01 0F";

fn minimal() -> Mandate {
    Mandate::new("a", "B")
}

#[test]
fn oid_is_the_documented_one() {
    assert_eq!(MANDATE_EXTENSION_OID.to_string(), "1.3.6.1.4.1.99999.1.1");
}

#[test]
fn vector_minimal() {
    // SEQUENCE { version 1, agentId "a", operator "B", riskControls }
    let expected = hex(&format!("30 19  02 01 01  0C 01 61  0C 01 42  {RISK}"));
    assert_eq!(minimal().to_der().unwrap(), expected);
    assert_eq!(Mandate::from_der(&expected).unwrap(), minimal());
}

#[test]
fn vector_money_and_actions() {
    let mut m = minimal();
    m.max_transaction_size = Some(Money {
        amount: "50000".parse().unwrap(),
        currency: "EUR".parse().unwrap(),
    });
    m.permitted_actions = Some(vec![Action::TradeExecution]);
    // [1] IMPLICIT Money { UTF8String "50000", PrintableString "EUR" },
    // [7] IMPLICIT SEQUENCE OF { ENUMERATED tradeExecution(1) }
    let expected = hex(&format!(
        "30 2C  02 01 01  0C 01 61  0C 01 42
         A1 0C  0C 05 35 30 30 30 30  13 03 45 55 52
         A7 03  0A 01 01
         {RISK}"
    ));
    assert_eq!(m.to_der().unwrap(), expected);
    assert_eq!(Mandate::from_der(&expected).unwrap(), m);
}

#[test]
fn vector_trading_hours() {
    let mut m = minimal();
    m.trading_hours = Some(TradingHours {
        start: "08:00".parse().unwrap(),
        end: "17:00".parse().unwrap(),
        time_zone: "UTC".into(),
        weekdays: vec![Weekday::Mon, Weekday::Fri],
    });
    // [6] IMPLICIT TradingHours { 480, 1020, "UTC", { monday(1), friday(5) } }
    let expected = hex(&format!(
        "30 30  02 01 01  0C 01 61  0C 01 42
         A6 15  02 02 01 E0  02 02 03 FC  0C 03 55 54 43  30 06 0A 01 01 0A 01 05
         {RISK}"
    ));
    assert_eq!(m.to_der().unwrap(), expected);
    assert_eq!(Mandate::from_der(&expected).unwrap(), m);
}

#[test]
fn full_mandate_round_trips() {
    let m = full_mandate();
    let der = m.to_der().unwrap();
    assert_eq!(Mandate::from_der(&der).unwrap(), m);
    // Deterministic: encoding twice gives the same bytes.
    assert_eq!(m.to_der().unwrap(), der);
}

#[test]
fn to_der_validates_first() {
    let mut m = minimal();
    m.revocation_timeout_secs = 0;
    assert!(matches!(
        m.to_der(),
        Err(PolicyError::Invalid {
            field: "revocationTimeout",
            ..
        })
    ));
}

#[test]
fn largest_valid_mandate_fits_the_size_limit() {
    let list =
        |prefix: char| -> Vec<String> { (0..256).map(|i| format!("{prefix}{i:063}")).collect() };
    let mut m = full_mandate();
    m.operator = "\u{10FFFF}".repeat(256);
    m.operator_regulator_id = Some("R".repeat(64));
    m.allowed_markets = Some(list('m'));
    m.allowed_counterparties = Some(list('c'));
    m.allowed_regions = Some(list('r'));
    m.permitted_actions = Some(Action::ALL.to_vec());
    m.trading_hours.as_mut().unwrap().weekdays = Weekday::ALL.to_vec();
    m.trading_hours.as_mut().unwrap().time_zone = "Z".repeat(64);
    let der = m.to_der().unwrap();
    assert!(der.len() <= MAX_DER_LEN, "{} bytes", der.len());
    assert_eq!(Mandate::from_der(&der).unwrap(), m);
}

#[test]
fn every_truncation_fails() {
    let der = full_mandate().to_der().unwrap();
    for len in 0..der.len() {
        assert!(
            Mandate::from_der(&der[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
}

#[test]
fn trailing_data_fails() {
    let mut der = minimal().to_der().unwrap();
    der.push(0);
    assert!(matches!(Mandate::from_der(&der), Err(PolicyError::Der(_))));
    let mut der = minimal().to_der().unwrap();
    der.extend_from_slice(&minimal().to_der().unwrap());
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn wrong_outer_tag_fails() {
    for tag in [0x31, 0x10, 0xA0, 0x04] {
        let mut der = minimal().to_der().unwrap();
        der[0] = tag;
        assert!(Mandate::from_der(&der).is_err(), "tag {tag:#04x}");
    }
}

#[test]
fn wrong_version_fails() {
    let mut der = minimal().to_der().unwrap();
    assert_eq!(der[2..5], [0x02, 0x01, 0x01]);
    // Version 2 without any version-2 field is not the canonical encoding of this mandate.
    der[4] = 0x02;
    assert_eq!(Mandate::from_der(&der), Err(PolicyError::NonCanonicalDer));
    der[4] = 0x03;
    assert_eq!(
        Mandate::from_der(&der),
        Err(PolicyError::UnsupportedVersion(3))
    );
    der[4] = 0x00;
    assert_eq!(
        Mandate::from_der(&der),
        Err(PolicyError::UnsupportedVersion(0))
    );
}

#[test]
fn non_canonical_amount_fails() {
    let mut m = minimal();
    m.max_transaction_size = Some(Money {
        amount: "12.34".parse().unwrap(),
        currency: "EUR".parse().unwrap(),
    });
    let mut der = m.to_der().unwrap();
    let at = der.windows(5).position(|w| w == b"12.34").unwrap();
    // Same value, same length, but with a trailing fractional zero.
    der[at..at + 5].copy_from_slice(b"1.230");
    assert_eq!(Mandate::from_der(&der), Err(PolicyError::NonCanonicalDer));
}

#[test]
fn non_minimal_length_fails() {
    // Outer length 0x19 written in long form (81 19).
    let der = hex(&format!("30 81 19  02 01 01  0C 01 61  0C 01 42  {RISK}"));
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn indefinite_length_fails() {
    let der = hex(&format!(
        "30 80  02 01 01  0C 01 61  0C 01 42  {RISK}  00 00"
    ));
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn non_minimal_integer_fails() {
    // maxConsecutiveFailures 3 written as 02 02 00 03.
    let der = hex(
        "30 1A  02 01 01  0C 01 61  0C 01 42  30 0F  02 02 1D 4C  02 02 21 34  02 02 00 03  02 01 0F",
    );
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn unknown_field_fails() {
    // An unknown [9] before riskControls.
    let der = hex(&format!(
        "30 1B  02 01 01  0C 01 61  0C 01 42  A9 00  {RISK}"
    ));
    assert!(Mandate::from_der(&der).is_err());
    // An unknown [8] between known optional fields.
    let der = hex(&format!(
        "30 1D  02 01 01  0C 01 61  0C 01 42  A3 00  A8 00  {RISK}"
    ));
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn out_of_order_fields_fail() {
    // allowedMarkets [3] {} followed by operatorRegulatorId [0] "X": a lenient
    // decoder would skip the [0] silently.
    let der = hex(&format!(
        "30 1E  02 01 01  0C 01 61  0C 01 42  A3 00  80 01 58  {RISK}"
    ));
    assert_eq!(Mandate::from_der(&der), Err(PolicyError::NonCanonicalDer));
    // The same fields in order are fine.
    let der = hex(&format!(
        "30 1E  02 01 01  0C 01 61  0C 01 42  80 01 58  A3 00  {RISK}"
    ));
    let m = Mandate::from_der(&der).unwrap();
    assert_eq!(m.operator_regulator_id.as_deref(), Some("X"));
    assert_eq!(m.allowed_markets, Some(vec![]));
}

#[test]
fn explicit_tagging_of_an_implicit_field_fails() {
    // operatorRegulatorId as [0] EXPLICIT UTF8String instead of IMPLICIT.
    let der = hex(&format!(
        "30 20  02 01 01  0C 01 61  0C 01 42  A0 03 0C 01 58  {RISK}"
    ));
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn oversized_list_fails() {
    let mut m = minimal();
    m.allowed_markets = Some((0..256).map(|i| format!("m{i}")).collect());
    let mut der = m.to_der().unwrap();
    // Append a 257th entry "zz" inside [3] and fix up the two enclosing lengths.
    let extra = [0x0C, 0x02, b'z', b'z'];
    let markets_at = der.iter().position(|&b| b == 0xA3).unwrap();
    assert_eq!(der[markets_at + 1], 0x82);
    let inner_len = u16::from_be_bytes([der[markets_at + 2], der[markets_at + 3]]);
    let insert_at = markets_at + 4 + usize::from(inner_len);
    der.splice(insert_at..insert_at, extra);
    der[markets_at + 2..markets_at + 4].copy_from_slice(&(inner_len + 4).to_be_bytes());
    assert_eq!(der[1], 0x82);
    let outer_len = u16::from_be_bytes([der[2], der[3]]);
    der[2..4].copy_from_slice(&(outer_len + 4).to_be_bytes());
    assert!(matches!(
        Mandate::from_der(&der),
        Err(PolicyError::Invalid {
            field: "allowedMarkets",
            ..
        })
    ));
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let der = vec![0x30; MAX_DER_LEN + 1];
    assert!(matches!(
        Mandate::from_der(&der),
        Err(PolicyError::DerTooLarge { .. })
    ));
}

#[test]
fn unknown_enumerated_values_fail() {
    let mut m = minimal();
    m.permitted_actions = Some(vec![Action::DataMutation]);
    let mut der = m.to_der().unwrap();
    let at = der
        .windows(3)
        .position(|w| w == [0x0A, 0x01, 0x06])
        .unwrap();
    der[at + 2] = 0x07;
    assert!(Mandate::from_der(&der).is_err());
    der[at + 2] = 0x00;
    assert!(Mandate::from_der(&der).is_err());
}

#[test]
fn time_of_day_bounds_in_der() {
    let mut m = minimal();
    m.trading_hours = Some(TradingHours {
        start: TimeOfDay::from_minutes(1439).unwrap(),
        end: TimeOfDay::from_minutes(0).unwrap(),
        time_zone: "UTC".into(),
        weekdays: vec![Weekday::Sun],
    });
    let der = m.to_der().unwrap();
    assert_eq!(Mandate::from_der(&der).unwrap(), m);
    // 1439 = 05 9F; bump it to 1440 = 05 A0.
    let mut bad = der.clone();
    let at = bad
        .windows(4)
        .position(|w| w == [0x02, 0x02, 0x05, 0x9F])
        .unwrap();
    bad[at + 3] = 0xA0;
    assert!(Mandate::from_der(&bad).is_err());
}

//! Amount, signed amount and threshold rules (`mandate_policy::{Amount, SignedAmount,
//! Threshold}`) and the JSON number rule (`mandate_policy::plain_json_numbers`) on arbitrary
//! bytes.
//!
//! Each input is tried as text (lossy UTF-8) with `FromStr`, and as a JSON document with
//! `serde_json::from_slice` for each type and `plain_json_numbers`. Besides "never panics":
//!
//! - text: an accepted value prints canonically (no leading zeros, no trailing fractional zeros,
//!   no exponent, no `-` except for a negative `SignedAmount`, never `-0`), its `Display` is the
//!   input with trailing fractional zeros dropped, and it parses back to an equal value;
//! - JSON string: the JSON answer is exactly the `FromStr` answer for the string's content (a
//!   threshold is a number only, so a string is refused);
//! - JSON number, when `plain_json_numbers` accepts the same bytes (as the daemon checks a body
//!   before its typed fields): the literal has no exponent and an accepted amount or signed
//!   amount is exactly the literal's decimal value (no rounding through `f64`); a threshold is
//!   canonical and JSON round-trips;
//! - every accepted value survives its own JSON serialization;
//! - `plain_json_numbers` on a document `serde_json` parses refuses every number literal in
//!   exponent form or a negative zero (found by a separate scanner here), and refuses nothing
//!   else but literals with more significant digits than an `f64` keeps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mandate_policy::{Amount, SignedAmount, Threshold, plain_json_numbers};

/// `text` with trailing fractional zeros (and then a bare point) dropped: the canonical form of
/// an accepted decimal whose integer part has no leading zeros.
fn drop_trailing_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A canonical unsigned decimal: 1 to 18 integer digits without leading zeros, then optionally
/// 1 to `max_fraction` fractional digits not ending in 0.
fn assert_canonical_magnitude(text: &str, max_fraction: usize) {
    assert!(
        !text.contains(['e', 'E', '-', '+']),
        "not plain decimal: {text:?}"
    );
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    assert!(
        !whole.is_empty() && whole.len() <= 18 && whole.bytes().all(|b| b.is_ascii_digit()),
        "integer part of {text:?}"
    );
    assert!(
        whole == "0" || !whole.starts_with('0'),
        "leading zero in {text:?}"
    );
    if let Some(fraction) = fraction {
        assert!(
            !fraction.is_empty()
                && fraction.len() <= max_fraction
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && !fraction.ends_with('0'),
            "fraction of {text:?}"
        );
    }
}

fn check_amount(a: Amount) {
    let shown = a.to_string();
    assert_canonical_magnitude(&shown, 8);
    assert_eq!(
        shown.parse::<Amount>().ok(),
        Some(a),
        "{shown:?} does not parse back"
    );
    let json = serde_json::to_string(&a).expect("amount serializes");
    assert_eq!(json, format!("\"{shown}\""));
    assert_eq!(
        serde_json::from_str::<Amount>(&json).ok(),
        Some(a),
        "JSON {json}"
    );
}

fn check_signed(s: SignedAmount) {
    let shown = s.to_string();
    let magnitude = match shown.strip_prefix('-') {
        Some(rest) => {
            assert!(
                s.negative && s.amount != Amount::ZERO,
                "{shown:?} from {s:?}"
            );
            rest
        }
        None => {
            assert!(!s.negative, "{shown:?} from {s:?}");
            &shown
        }
    };
    assert_canonical_magnitude(magnitude, 8);
    assert_eq!(magnitude, s.amount.to_string());
    assert_eq!(
        shown.parse::<SignedAmount>().ok(),
        Some(s),
        "{shown:?} does not parse back"
    );
    let json = serde_json::to_string(&s).expect("signed amount serializes");
    assert_eq!(
        serde_json::from_str::<SignedAmount>(&json).ok(),
        Some(s),
        "JSON {json}"
    );
}

fn check_threshold(t: Threshold) {
    assert!(t.basis_points() <= 10_000);
    let shown = t.to_string();
    assert!(
        shown == "0"
            || shown == "1"
            || shown.strip_prefix("0.").is_some_and(|f| {
                (1..=4).contains(&f.len())
                    && f.bytes().all(|b| b.is_ascii_digit())
                    && !f.ends_with('0')
            }),
        "threshold shown as {shown:?}"
    );
    assert_eq!(
        shown.parse::<Threshold>().ok(),
        Some(t),
        "{shown:?} does not parse back"
    );
    let json = serde_json::to_string(&t).expect("threshold serializes");
    assert!(!json.contains(['e', 'E', '-']), "threshold JSON {json}");
    assert_eq!(
        serde_json::from_str::<Threshold>(&json).ok(),
        Some(t),
        "JSON {json}"
    );
}

fn check_text(text: &str) {
    if let Ok(a) = text.parse::<Amount>() {
        check_amount(a);
        assert_eq!(a.to_string(), drop_trailing_zeros(text), "from {text:?}");
    }
    if let Ok(s) = text.parse::<SignedAmount>() {
        check_signed(s);
        assert_eq!(s.to_string(), drop_trailing_zeros(text), "from {text:?}");
    }
    if let Ok(t) = text.parse::<Threshold>() {
        check_threshold(t);
        assert_eq!(t.to_string(), drop_trailing_zeros(text), "from {text:?}");
    }
}

/// Every number literal outside strings in a JSON text that `serde_json` has parsed.
fn number_literals(json: &[u8]) -> Vec<&[u8]> {
    let mut literals = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
        } else if b == b'"' {
            in_string = true;
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < json.len()
                && matches!(json[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            literals.push(&json[start..i]);
        } else {
            i += 1;
        }
    }
    literals
}

fn is_exponent_or_negative_zero(literal: &[u8]) -> bool {
    literal.iter().any(|b| matches!(b, b'e' | b'E'))
        || (literal.first() == Some(&b'-') && literal[1..].iter().all(|b| matches!(b, b'0' | b'.')))
}

fn check_json(data: &[u8]) {
    let plain = plain_json_numbers(data);
    let Ok(_value) = serde_json::from_slice::<serde_json::Value>(data) else {
        // Not JSON: nothing else to compare; the typed parses below must refuse it too.
        assert!(serde_json::from_slice::<Amount>(data).is_err());
        assert!(serde_json::from_slice::<SignedAmount>(data).is_err());
        assert!(serde_json::from_slice::<Threshold>(data).is_err());
        return;
    };
    let literals = number_literals(data);
    let expect_refusal = literals.iter().any(|l| is_exponent_or_negative_zero(l));
    let shown = || {
        literals
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
    };
    match &plain {
        Ok(()) => assert!(!expect_refusal, "plain_json_numbers let {:?} through", shown()),
        // The only other refusal: digits an f64 does not keep (it would round silently).
        Err(e) if !expect_refusal => assert!(
            e.to_string().contains("significant digits"),
            "plain_json_numbers: {e} for literals {:?}",
            shown()
        ),
        Err(_) => {}
    }

    let amount = serde_json::from_slice::<Amount>(data);
    let signed = serde_json::from_slice::<SignedAmount>(data);
    let threshold = serde_json::from_slice::<Threshold>(data);
    if let Ok(a) = amount {
        check_amount(a);
    }
    if let Ok(s) = signed {
        check_signed(s);
    }
    if let Ok(t) = threshold {
        check_threshold(t);
    }

    if let Ok(string) = serde_json::from_slice::<String>(data) {
        assert_eq!(
            amount.ok(),
            string.parse::<Amount>().ok(),
            "JSON string {string:?}"
        );
        assert_eq!(
            signed.ok(),
            string.parse::<SignedAmount>().ok(),
            "JSON string {string:?}"
        );
        assert!(threshold.is_err(), "threshold from JSON string {string:?}");
        return;
    }
    // A JSON number literal (alone, apart from whitespace) that the daemon lets through.
    let [literal] = literals.as_slice() else {
        return;
    };
    if plain.is_err() {
        return;
    }
    let literal = std::str::from_utf8(literal).expect("ASCII literal");
    assert!(!literal.contains(['e', 'E']));
    // Its exact decimal value, by the text rule (a JSON literal has no leading zeros, so only
    // trailing fractional zeros need dropping).
    let exact = drop_trailing_zeros(literal);
    if let Ok(a) = amount {
        assert_eq!(
            exact.parse::<Amount>().ok(),
            Some(a),
            "JSON number {literal} taken as amount {a}, not its exact value"
        );
    }
    if let Ok(s) = signed {
        assert_eq!(
            exact.parse::<SignedAmount>().ok(),
            Some(s),
            "JSON number {literal} taken as signed amount {s}, not its exact value"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check_text(&String::from_utf8_lossy(data));
    check_json(data);
});

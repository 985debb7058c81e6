//! The one timestamp rule, `mandate_policy::unix_or_rfc3339` (unix seconds or RFC 3339 text,
//! `TIME_MIN..=TIME_MAX`), as the `deserialize_with` of an optional field, on arbitrary bytes.
//!
//! Each input is tried (a) as the raw JSON value of the field, `{"at": <bytes>}`, (b) as the
//! content of a JSON string (lossy UTF-8, escaped by `serde_json`), and (c) when the text is an
//! `i64`, as that JSON number. Besides "never panics": an accepted time is within
//! `TIME_MIN..=TIME_MAX`; a string never gives `None`; the accepted seconds, sent back as a JSON
//! number, are accepted as themselves; and an `i64` number is accepted exactly when it is in
//! range.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mandate_policy::{TIME_MAX, TIME_MIN};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct At {
    #[serde(default, deserialize_with = "mandate_policy::unix_or_rfc3339")]
    at: Option<i64>,
}

fn at(json: &[u8]) -> Option<Option<i64>> {
    serde_json::from_slice::<At>(json).ok().map(|a| a.at)
}

fn check_seconds(secs: i64, from: &dyn std::fmt::Debug) {
    assert!(
        (TIME_MIN..=TIME_MAX).contains(&secs),
        "{secs} accepted from {from:?}, outside {TIME_MIN}..={TIME_MAX}"
    );
    assert_eq!(
        at(format!("{{\"at\": {secs}}}").as_bytes()),
        Some(Some(secs)),
        "{secs} (from {from:?}) as a number"
    );
}

fuzz_target!(|data: &[u8]| {
    // (a) The bytes as the field's JSON value.
    let mut doc = b"{\"at\": ".to_vec();
    doc.extend_from_slice(data);
    doc.push(b'}');
    if let Some(Some(secs)) = at(&doc) {
        check_seconds(secs, &String::from_utf8_lossy(&doc));
    }

    // (b) The text as a JSON string.
    let text = String::from_utf8_lossy(data);
    let quoted = serde_json::to_string(&text).expect("a string serializes");
    match at(format!("{{\"at\": {quoted}}}").as_bytes()) {
        Some(Some(secs)) => check_seconds(secs, &quoted),
        Some(None) => panic!("string {quoted} gave no time"),
        None => {}
    }

    // (c) The text as unix seconds.
    if let Ok(n) = text.parse::<i64>() {
        let accepted = at(format!("{{\"at\": {n}}}").as_bytes());
        if (TIME_MIN..=TIME_MAX).contains(&n) {
            assert_eq!(accepted, Some(Some(n)), "{n} in range");
        } else {
            assert_eq!(accepted, None, "{n} out of range");
        }
    }
});

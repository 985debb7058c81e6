//! The one rule for numbers in JSON that people and programs send: plain decimals. A number
//! reaches the typed fields as an `f64`, where `1e-400` and `-0` are already `0`; so the text
//! is read first, and exponent forms and negative zero are refused wherever they stand, with
//! the path of the field that holds them.

use crate::PolicyError;

enum Frame {
    Object { key: String, expect_key: bool },
    Array { index: usize },
}

/// Significant digits an `f64` keeps for any decimal (`DBL_DIG`).
const EXACT_DIGITS: usize = 15;
/// Zeros after the point past which a number is below the normal `f64` range (1e-307).
const MAX_LEADING_ZEROS: usize = 306;

/// Whether the typed fields will read this number literal exactly: an integer in `i64` or
/// `u64` is read as one; anything else goes through an `f64`, which keeps 15 significant
/// digits (`91999.999999999999` would silently become `92000`).
fn exact_as_read(literal: &str) -> bool {
    if literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok() {
        return true;
    }
    let digits: String = literal.chars().filter(char::is_ascii_digit).collect();
    let (whole, fraction) = literal
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or((literal.trim_start_matches('-'), ""));
    let significant = if whole.trim_start_matches('0').is_empty() {
        // 0.000123: the leading zeros of the fraction do not count, unless there are so many
        // that the number is below what an f64 holds and would read as 0.
        let leading = fraction.len() - fraction.trim_start_matches('0').len();
        if leading >= MAX_LEADING_ZEROS && fraction.bytes().any(|b| b != b'0') {
            return false;
        }
        fraction.trim_start_matches('0').trim_end_matches('0').len()
    } else {
        // Saturating: a malformed literal (`0+0.0`, not JSON) must not underflow.
        digits
            .trim_start_matches('0')
            .len()
            .saturating_sub(fraction.len() - fraction.trim_end_matches('0').len())
    };
    significant <= EXACT_DIGITS
}

/// Longest key quoted back in a path.
const MAX_KEY: usize = 64;

fn path(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Object { key, .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Frame::Array { index } => out.push_str(&format!("[{index}]")),
        }
    }
    if out.is_empty() {
        "the body".to_owned()
    } else {
        out
    }
}

/// Refuses a JSON text (already known to parse) holding a number in exponent form (`1e3`,
/// `1e-400`) or a negative zero (`-0`, `-0.0`), naming the field.
pub fn plain_json_numbers(json: &[u8]) -> Result<(), PolicyError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => {
                let start = i + 1;
                i = start;
                while let Some(&c) = json.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    let raw = json.get(start..i.min(json.len())).unwrap_or_default();
                    *key = String::from_utf8_lossy(raw).chars().take(MAX_KEY).collect();
                    *expect_key = false;
                }
                i += 1;
            }
            b'{' => {
                stack.push(Frame::Object {
                    key: String::new(),
                    expect_key: true,
                });
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                    Some(Frame::Array { index }) => *index += 1,
                    None => {}
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while json
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                let literal = json.get(start..i).unwrap_or_default();
                let text = String::from_utf8_lossy(literal);
                if literal.iter().any(|c| matches!(c, b'e' | b'E')) {
                    return Err(PolicyError::invalid(
                        "number",
                        format!(
                            "{}: {text} is in exponent form; write numbers as plain decimals (amounts may also be strings, e.g. \"0.00000001\")",
                            path(&stack)
                        ),
                    ));
                }
                if literal.first() == Some(&b'-')
                    && literal.iter().all(|c| matches!(c, b'-' | b'0' | b'.'))
                {
                    return Err(PolicyError::invalid(
                        "number",
                        format!("{}: {text} is a negative zero; write 0", path(&stack)),
                    ));
                }
                if !exact_as_read(&text) {
                    return Err(PolicyError::invalid(
                        "number",
                        format!(
                            "{}: {text} has more than {EXACT_DIGITS} significant digits, more than a JSON number is read exactly with (amounts may be sent as strings)",
                            path(&stack)
                        ),
                    ));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> String {
        match plain_json_numbers(json.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        }
    }

    #[test]
    fn plain_decimals_pass_and_the_rest_is_refused_by_path() {
        for ok in [
            r#"{"a": 1, "b": [0, 0.5, -1.25, 10], "c": "1e3", "d": "-0"}"#,
            r#"[{"size": "0.0"}, {"size": 0.0}]"#,
            r#"{"k\"ey": -10.0}"#,
            "0",
        ] {
            assert_eq!(refused(ok), "", "{ok}");
        }
        let e =
            refused(r#"{"events": [{"metadata": {"size": 1}}, {"metadata": {"size": 1e-400}}]}"#);
        assert!(
            e.contains("events[1].metadata.size: 1e-400 is in exponent form"),
            "{e}"
        );
        let e = refused(r#"{"metadata": {"size": "x", "price": -0}}"#);
        assert!(e.contains("metadata.price: -0 is a negative zero"), "{e}");
        assert!(refused("-0.000").contains("the body: -0.000"));
        assert!(refused(r#"{"a": 2E5}"#).contains("a: 2E5"));
        assert!(refused(r#"[1, 2, -1e2]"#).contains("[2]: -1e2"));
        // Beyond what an f64 keeps: refused rather than silently rounded (found by fuzzing).
        let e = refused(r#"{"size": 91999.999999999999}"#);
        assert!(
            e.contains("size: 91999.999999999999 has more than 15"),
            "{e}"
        );
        assert!(refused("99999999999999999999").contains("more than 15"));
        for bad in [
            "1000000000.00000001",
            "0.100000000000000000001",
            "9007199254740993.5",
        ] {
            assert!(refused(bad).contains("more than 15"), "{bad}");
        }
        let tiny = format!("0.{}1", "0".repeat(400));
        assert!(refused(&tiny).contains("more than 15"), "{tiny}");
        // Not JSON, but scanned without panicking (found by fuzzing).
        let _ = plain_json_numbers(b"[0+0.0, 5-0, -.-, 00.000]");
        for ok in [
            "123456789012.345",
            "0.00000000000012345",
            "9223372036854775807",
            "1.50000000000000000000",
        ] {
            assert_eq!(refused(ok), "", "{ok}");
        }
    }
}

//! The rule for text people write and read: `mandate_policy::human_text` and
//! `exact_human_text`, on arbitrary bytes.
//!
//! Each input is tried as lossy UTF-8 text and, when it is not valid UTF-8, also as its longest
//! valid prefix; both kinds (`Line`, `Note`), at several lengths. An accepted value must be:
//! trimmed; 1 to `max` characters; free of control characters (a `Note` may hold `\n`, never
//! `\r\n`) and of bidirectional formatting (U+061C, U+200E, U+200F, U+202A–U+202E,
//! U+2066–U+2069); not made only of whitespace and zero-width characters; a fixed point
//! (`human_text` gives it back unchanged, `exact_human_text` accepts it); accepted at exactly its
//! own length and refused at one less; and what a `Line` accepts a `Note` accepts as the same
//! text. `exact_human_text` accepts an input exactly when `human_text` returns it unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mandate_policy::{TextKind, exact_human_text, human_text};

const MAX_CHARS: [usize; 5] = [1, 2, 16, 64, 256];

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whitespace and the characters that take no room (zero-width space and joiners, word joiner,
/// byte-order mark, soft hyphen, Mongolian vowel separator).
fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

fn check_accepted(out: &str, max: usize, kind: TextKind) {
    let n = out.chars().count();
    assert!((1..=max).contains(&n), "{n} characters, max {max}: {out:?}");
    assert_eq!(out, out.trim(), "not trimmed: {out:?}");
    if let Some(c) = out
        .chars()
        .find(|&c| c.is_control() && !(kind == TextKind::Note && c == '\n'))
    {
        panic!(
            "control character U+{:04X} in {out:?} ({kind:?})",
            u32::from(c)
        );
    }
    if let Some(c) = out.chars().find(|&c| is_bidi_control(c)) {
        panic!("bidi control U+{:04X} in {out:?}", u32::from(c));
    }
    assert!(!out.chars().all(is_blank), "only blank characters: {out:?}");
    assert!(!out.contains("\r\n"), "\\r\\n in {out:?}");
    assert_eq!(
        human_text("fuzz", out, max, kind).as_deref(),
        Ok(out),
        "not a fixed point ({kind:?})"
    );
    assert!(
        exact_human_text("fuzz", out, max, kind).is_ok(),
        "exact refuses {out:?}"
    );
    assert_eq!(human_text("fuzz", out, n, kind).as_deref(), Ok(out));
    assert!(
        human_text("fuzz", out, n - 1, kind).is_err(),
        "{out:?} within {}",
        n - 1
    );
}

fn check(text: &str) {
    for max in MAX_CHARS {
        let mut line_out = None;
        for kind in [TextKind::Line, TextKind::Note] {
            let result = human_text("fuzz", text, max, kind);
            let exact = exact_human_text("fuzz", text, max, kind);
            assert_eq!(
                exact.is_ok(),
                result.as_deref() == Ok(text),
                "exact_human_text {exact:?} vs human_text {result:?} ({kind:?}, max {max})"
            );
            if let Ok(out) = &result {
                check_accepted(out, max, kind);
            }
            match kind {
                TextKind::Line => line_out = result.ok(),
                TextKind::Note => {
                    if let Some(line) = &line_out {
                        assert_eq!(
                            result.as_ref().ok(),
                            Some(line),
                            "a Line accepts {text:?} but a Note answers {result:?}"
                        );
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        Err(e) => {
            check(&String::from_utf8_lossy(data));
            let valid = std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid prefix");
            check(valid);
        }
    }
});

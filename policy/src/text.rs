//! Text people write and other people read — legal names, names, labels, comments, reasons,
//! resolutions — under one rule, so that what a supervisor reads in a report, a certificate's
//! `O` or the dashboard is what was meant: no control characters (a NUL or an escape sequence
//! in a log or a terminal), no bidirectional formatting (U+202E turns "Acme" into a name that
//! reads differently than it sorts and compares), and never blank or made of invisible
//! characters only.

use crate::PolicyError;

/// Which text it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// One line: names, legal names, labels.
    Line,
    /// A note that may span lines: comments, reasons, resolutions, rationales. `\r\n` (as
    /// browsers send a text area) is read as `\n`.
    Note,
}

/// Characters that reorder text (Unicode bidirectional formatting): ALM, LRM, RLM, the
/// embeddings and overrides, the isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that take no room: zero-width space and joiners, word joiner, byte-order mark,
/// soft hyphen, Mongolian vowel separator. Allowed inside text (scripts and emoji need the
/// joiners), not as all of it.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

/// The text, trimmed (and for a [`TextKind::Note`] with `\r\n` read as `\n`), or why it is
/// refused: empty or invisible only, longer than `max_chars`, a control character (a line
/// break in a [`TextKind::Line`]), bidirectional formatting.
pub fn human_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    kind: TextKind,
) -> Result<String, PolicyError> {
    let text = match kind {
        TextKind::Line => value.trim().to_owned(),
        TextKind::Note => value.replace("\r\n", "\n").trim().to_owned(),
    };
    let refuse = |why: &str| {
        Err(PolicyError::invalid(
            field,
            format!("{why} (1 to {max_chars} characters of visible text)"),
        ))
    };
    if text.chars().all(is_invisible) {
        return refuse("blank or invisible characters only");
    }
    if text.chars().count() > max_chars {
        return refuse("too long");
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !(kind == TextKind::Note && *c == '\n'))
    {
        return refuse(&format!(
            "control character U+{:04X} not allowed{}",
            u32::from(c),
            if kind == TextKind::Line {
                "; one line"
            } else {
                ""
            }
        ));
    }
    if let Some(c) = text.chars().find(|c| is_bidi_control(*c)) {
        return refuse(&format!(
            "bidirectional formatting character U+{:04X} not allowed",
            u32::from(c)
        ));
    }
    Ok(text)
}

/// Like [`human_text`] for text that is signed as it stands (a mandate's fields): it must
/// already be in the form `human_text` returns, since nothing may change it.
pub fn exact_human_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    kind: TextKind,
) -> Result<(), PolicyError> {
    let clean = human_text(field, value, max_chars, kind)?;
    if clean == value {
        Ok(())
    } else {
        Err(PolicyError::invalid(
            field,
            "must not start or end with spaces (or use \\r\\n)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_s_text_is_visible_one_way_round_and_trimmed() {
        for ok in [
            "Acme Trading GmbH",
            "  Müller & Söhne  ",
            "株式会社",
            "👩‍💻 desk",
            "a\u{200d}b",
        ] {
            assert!(human_text("x", ok, 64, TextKind::Line).is_ok(), "{ok:?}");
        }
        assert_eq!(
            human_text("x", "  Acme  ", 64, TextKind::Line)
                .ok()
                .as_deref(),
            Some("Acme")
        );
        assert_eq!(
            human_text("x", "one\r\ntwo\n", 64, TextKind::Note)
                .ok()
                .as_deref(),
            Some("one\ntwo")
        );
        for bad in [
            "",
            " ",
            "\u{200b}",
            "\u{feff} \u{2060}",
            "\u{202e}HbmG",
            "a\u{2066}b",
            "nul\0",
            "esc\u{1b}[31m",
            "two\nlines",
            "tab\there",
        ] {
            assert!(human_text("x", bad, 64, TextKind::Line).is_err(), "{bad:?}");
        }
        assert!(human_text("x", "a\nb", 64, TextKind::Note).is_ok());
        assert!(human_text("x", "a\u{7}b", 64, TextKind::Note).is_err());
        assert!(human_text("x", &"a".repeat(65), 64, TextKind::Line).is_err());
        assert!(exact_human_text("operator", " Acme", 64, TextKind::Line).is_err());
        assert!(exact_human_text("operator", "Acme", 64, TextKind::Line).is_ok());
    }
}

//! Decision ids: every pre-trade decision (preflight, custodial signing) is named, so that the
//! order it let through, the signature and the fills that follow can refer to it.

/// Whether `s` has the shape of a decision id.
pub(crate) fn is_decision_id(s: &str) -> bool {
    s.strip_prefix("dec_").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

//! The crate's single error type.

/// Why a mandate (or one of its parts) was rejected.
///
/// Validation failures name the offending field by its JSON name (e.g.
/// `allowedMarkets`, `tradingHours.timeZone`) so callers can hand the message
/// straight back to an API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A field's value is outside the bounds or shape the mandate format allows.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// JSON name of the offending field.
        field: &'static str,
        /// Human-readable explanation of the violated rule.
        reason: String,
    },
    /// The DER input exceeds the size limit and was not parsed at all.
    #[error("mandate DER is {len} bytes; at most {max} bytes are accepted")]
    DerTooLarge {
        /// Length of the rejected input.
        len: usize,
        /// The limit, [`crate::MAX_DER_LEN`].
        max: usize,
    },
    /// The bytes are not a well-formed DER encoding of the `Mandate` ASN.1 type.
    #[error("malformed mandate DER: {0}")]
    Der(#[from] der::Error),
    /// The encoding carries a version this implementation does not understand.
    #[error("unsupported mandate version {0} (only version 1 is defined)")]
    UnsupportedVersion(u64),
    /// The bytes decode, but are not the single canonical DER encoding of the
    /// mandate (e.g. fields out of order, unknown fields, a non-canonical amount).
    #[error("mandate DER is not in canonical form")]
    NonCanonicalDer,
}

impl PolicyError {
    /// Shorthand used throughout the crate for validation failures.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

//! Risk thresholds in `[0, 1]` with four decimal places.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PolicyError;

const ONE: u16 = 10_000;

/// A fraction in `[0, 1]` with at most four decimal places, stored exactly as
/// basis points (`0..=10000`).
///
/// JSON form is a number (`0.75`); text form (`Display`/`FromStr`) is the
/// shortest decimal (`"0.75"`, `"1"`, `"0.0001"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u16);

impl Threshold {
    /// Default `circuitBreakerThreshold`: 0.75.
    pub const DEFAULT_CIRCUIT_BREAKER: Threshold = Threshold(7_500);
    /// Default `autoRevokeThreshold`: 0.85.
    pub const DEFAULT_AUTO_REVOKE: Threshold = Threshold(8_500);

    /// Builds a threshold from basis points (1/10000); fails above 10000.
    pub fn from_basis_points(basis_points: u16) -> Result<Threshold, PolicyError> {
        if basis_points <= ONE {
            Ok(Threshold(basis_points))
        } else {
            Err(PolicyError::invalid("threshold", "must be between 0 and 1"))
        }
    }

    /// The threshold in basis points, `0..=10000`.
    pub fn basis_points(&self) -> u16 {
        self.0
    }

    /// The threshold as a fraction, e.g. `0.75`.
    pub fn as_f64(&self) -> f64 {
        f64::from(self.0) / f64::from(ONE)
    }

    /// A JSON number, by the same rule as text: its shortest round-trip decimal (what Rust
    /// prints) must be a decimal in `[0, 1]` with at most four places. So `0.3` is taken and
    /// `0.30000000000000004` (the sum 0.1 + 0.2 gives) is refused like `0.12345`, and `-0`
    /// is refused like any negative.
    fn from_f64(v: f64) -> Result<Threshold, PolicyError> {
        if !(0.0..=1.0).contains(&v) || v.is_sign_negative() {
            return Err(PolicyError::invalid("threshold", "must be between 0 and 1"));
        }
        v.to_string().parse()
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / ONE;
        let fraction = self.0 % ONE;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:04}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Threshold {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            PolicyError::invalid(
                "threshold",
                "expected a decimal between 0 and 1 with at most four decimal places",
            )
        };
        let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
        let whole_bp = match whole {
            "0" => 0,
            "1" => ONE,
            _ => return Err(err()),
        };
        if (s.contains('.') && fraction.is_empty())
            || fraction.len() > 4
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let fraction_bp = fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(4)
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        Threshold::from_basis_points(whole_bp + fraction_bp)
    }
}

/// The API document's `Threshold`: a JSON number in `[0, 1]`, at most four decimal places by its
/// shortest decimal form (JSON Schema's `multipleOf` on binary fractions would refuse `0.3`, so
/// the places are said in words).
impl utoipa::PartialSchema for Threshold {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0))
            .maximum(Some(1))
            .description(Some(
                "A fraction in [0, 1] with at most four decimal places, by the number's shortest \
                 decimal form (0.3 is taken; 0.30000000000000004 and 0.12345 are not)",
            ))
            .examples([0.75])
            .into()
    }
}

impl utoipa::ToSchema for Threshold {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Threshold")
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_f64(ThresholdVisitor)
    }
}

struct ThresholdVisitor;

impl Visitor<'_> for ThresholdVisitor {
    type Value = Threshold;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number between 0 and 1 with at most four decimal places")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
        Threshold::from_f64(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
        match v {
            0 => Ok(Threshold(0)),
            1 => Ok(Threshold(ONE)),
            _ => Err(E::custom(PolicyError::invalid(
                "threshold",
                "must be between 0 and 1",
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(PolicyError::invalid(
                "threshold",
                "must be between 0 and 1",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_bounds() {
        assert_eq!(Threshold::from_basis_points(0).unwrap().as_f64(), 0.0);
        assert_eq!(Threshold::from_basis_points(10_000).unwrap().as_f64(), 1.0);
        assert_eq!(Threshold::DEFAULT_CIRCUIT_BREAKER.as_f64(), 0.75);
        assert!(Threshold::from_basis_points(10_001).is_err());
        assert!(Threshold::from_basis_points(u16::MAX).is_err());
    }

    #[test]
    fn text_round_trip() {
        for (text, bp) in [
            ("0", 0),
            ("1", 10_000),
            ("0.75", 7_500),
            ("0.0001", 1),
            ("0.8500", 8_500),
            ("1.0", 10_000),
        ] {
            let t: Threshold = text.parse().unwrap();
            assert_eq!(t.basis_points(), bp, "{text}");
            assert_eq!(t.to_string().parse::<Threshold>().unwrap(), t);
        }
        assert_eq!(Threshold(8_500).to_string(), "0.85");
        for bad in [
            "", ".5", "0.", "1.5", "1.0001", "2", "0.00001", "-0.5", "0,5", "0.5e0",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn json_is_a_number() {
        assert_eq!(serde_json::to_string(&Threshold(7_500)).unwrap(), "0.75");
        assert_eq!(serde_json::to_string(&Threshold(1)).unwrap(), "0.0001");
        assert_eq!(serde_json::to_string(&Threshold(10_000)).unwrap(), "1.0");
        for bp in 0..=10_000 {
            let t = Threshold(bp);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(
                serde_json::from_str::<Threshold>(&json).unwrap(),
                t,
                "{json}"
            );
        }
        let from = |json: &str| serde_json::from_str::<Threshold>(json);
        assert_eq!(from("1").unwrap().basis_points(), 10_000);
        assert_eq!(from("0").unwrap().basis_points(), 0);
        assert_eq!(from("0.3").unwrap().basis_points(), 3_000);
        for bad in [
            "1.01",
            "-0.1",
            "2",
            "-1",
            "0.12345",
            "\"0.75\"",
            "null",
            "1e400",
            "0.30000000000000004",
            "-0",
            "-0.0",
        ] {
            assert!(from(bad).is_err(), "accepted {bad}");
        }
    }
}

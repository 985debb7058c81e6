//! Monetary limits: a decimal [`Amount`] in a [`Currency`].

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PolicyError;

/// Minor units per whole unit: amounts carry exactly eight fractional digits.
const SCALE: u128 = 100_000_000;
const MAX_INTEGER_DIGITS: usize = 18;
const MAX_FRACTION_DIGITS: usize = 8;
/// One past the largest representable value, in minor units (10^26).
const LIMIT: u128 = 1_000_000_000_000_000_000 * SCALE;
/// `f64` round-trips every decimal with at most this many significant digits
/// (`DBL_DIG`); beyond it a JSON number may already have been rounded.
const EXACT_F64_DIGITS: usize = 15;

/// A non-negative decimal amount with at most 18 integer and 8 fractional digits.
///
/// Stored as an integer count of 10^-8 units so comparisons are exact and
/// `"50000" == "50000.00"`. The canonical text form (used by `Display`, JSON
/// output and the DER encoding) has no leading zeros, no trailing fractional
/// zeros and no decimal point for whole numbers; zero is `"0"`.
///
/// Parsing accepts trailing fractional zeros (`"50000.00"`) but rejects signs,
/// exponents, leading zeros (`"007"`), and a bare or dangling point (`".5"`, `"5."`).
/// JSON input may be a string or a number; numbers with more than 15 significant
/// digits are rejected because `f64` may already have rounded them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount, `999999999999999999.99999999`.
    pub const MAX: Amount = Amount(LIMIT - 1);

    /// Builds an amount from a count of 10^-8 units; fails above [`Amount::MAX`].
    pub fn from_minor_units(units: u128) -> Result<Amount, PolicyError> {
        if units < LIMIT {
            Ok(Amount(units))
        } else {
            Err(PolicyError::invalid(
                "amount",
                "more than 18 integer digits",
            ))
        }
    }

    /// The amount as a count of 10^-8 units.
    pub fn as_minor_units(&self) -> u128 {
        self.0
    }

    /// Sum of two amounts, or `None` if it would exceed [`Amount::MAX`].
    pub fn checked_add(&self, other: Amount) -> Option<Amount> {
        self.0
            .checked_add(other.0)
            .and_then(|sum| Amount::from_minor_units(sum).ok())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / SCALE;
        let fraction = self.0 % SCALE;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:08}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Amount {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| PolicyError::invalid("amount", reason);
        if s.starts_with('-') {
            return Err(err("must not be negative"));
        }
        let (whole, fraction) = match s.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (s, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "expected a plain decimal such as \"50000\" or \"0.25\"",
            ));
        }
        if whole.len() > 1 && whole.starts_with('0') {
            return Err(err("leading zeros are not allowed"));
        }
        if whole.len() > MAX_INTEGER_DIGITS {
            return Err(err("more than 18 integer digits"));
        }
        let mut units = parse_digits(whole) * SCALE;
        if let Some(fraction) = fraction {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("expected digits after the decimal point"));
            }
            if fraction.len() > MAX_FRACTION_DIGITS {
                return Err(err("more than 8 fractional digits"));
            }
            let padding = MAX_FRACTION_DIGITS - fraction.len();
            units += parse_digits(fraction) * 10u128.pow(padding as u32);
        }
        Ok(Amount(units))
    }
}

/// Callers have already checked `digits` is at most 18 ASCII digits, so this cannot overflow.
fn parse_digits(digits: &str) -> u128 {
    digits
        .bytes()
        .fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'))
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A string, not a number, so no JSON consumer silently rounds it through f64.
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative decimal amount, as a string or a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
        Amount::from_minor_units(u128::from(v) * SCALE).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(PolicyError::invalid(
                "amount",
                "must not be negative",
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
        if v == 0.0 && v.is_sign_negative() {
            return Err(E::custom(PolicyError::invalid(
                "amount",
                "negative zero (-0) is not an amount; write 0",
            )));
        }
        // Rust prints the shortest decimal that round-trips, never in exponent form.
        let text = v.to_string();
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
        if v.is_finite() && v > 0.0 && significant > EXACT_F64_DIGITS {
            return Err(E::custom(PolicyError::invalid(
                "amount",
                "too many digits to be exact as a JSON number; send the amount as a string",
            )));
        }
        text.parse().map_err(E::custom)
    }
}

/// An ISO 4217-shaped currency code: exactly three ASCII uppercase letters.
///
/// Only the shape is checked, not membership in the current ISO list, so
/// newly assigned codes need no software update.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(String);

impl Currency {
    /// The code, e.g. `"EUR"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Currency {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(s.to_owned()))
        } else {
            Err(PolicyError::invalid(
                "currency",
                "expected three uppercase letters such as \"EUR\"",
            ))
        }
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// An amount of a given currency, e.g. `{"amount": "50000", "currency": "EUR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "50000", "currency": "EUR"})))]
pub struct Money {
    /// How much.
    pub amount: Amount,
    /// Of which currency.
    pub currency: Currency,
}

/// The API document's `Amount`: what [`Amount`]'s serde reads (a decimal string, or a plain
/// JSON number of at most 15 significant digits) and writes (the canonical string).
impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "Non-negative decimal, at most 18 integer and 8 fractional digits; a string, or a \
                 plain JSON number (no exponent, not -0) with at most 15 significant digits. \
                 Written back as a string in canonical form (no leading zeros, no trailing \
                 fractional zeros: \"50000.00\" reads as \"50000\")",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .exclusive_maximum(Some(1e18)),
            )
            .examples(["50000"])
            .into()
    }
}

impl utoipa::ToSchema for Amount {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Amount")
    }
}

/// The API document's `Currency`: three uppercase letters, the shape [`Currency`] reads.
impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Z]{3}$"))
            .description(Some(
                "ISO 4217-shaped currency code: three uppercase letters (the shape only, not \
                 the list)",
            ))
            .examples(["EUR"])
            .into()
    }
}

impl utoipa::ToSchema for Currency {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Currency")
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Amount {
        s.parse().unwrap()
    }

    #[test]
    fn amount_parses_and_prints_canonically() {
        for (input, canonical) in [
            ("0", "0"),
            ("0.0", "0"),
            ("50000", "50000"),
            ("50000.00", "50000"),
            ("0.25", "0.25"),
            ("0.00000001", "0.00000001"),
            ("12.34500", "12.345"),
            ("999999999999999999.99999999", "999999999999999999.99999999"),
        ] {
            assert_eq!(amount(input).to_string(), canonical, "input {input}");
        }
    }

    #[test]
    fn amount_compares_by_value() {
        assert_eq!(amount("50000"), amount("50000.00"));
        assert!(amount("0.5") < amount("1"));
        assert!(amount("10") > amount("9.99999999"));
    }

    #[test]
    fn amount_rejects_malformed_text() {
        for bad in [
            "",
            "-1",
            "+1",
            "-0",
            ".5",
            "5.",
            "1e3",
            "1,5",
            " 1",
            "1 ",
            "01",
            "00",
            "0x10",
            "1.2.3",
            "0.123456789",
            "1000000000000000000",
            "NaN",
            "٣",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn amount_minor_units_round_trip_and_bounds() {
        assert_eq!(amount("1.5").as_minor_units(), 150_000_000);
        assert_eq!(Amount::from_minor_units(1).unwrap(), amount("0.00000001"));
        assert_eq!(Amount::from_minor_units(LIMIT - 1).unwrap(), Amount::MAX);
        assert!(Amount::from_minor_units(LIMIT).is_err());
        assert!(Amount::from_minor_units(u128::MAX).is_err());
    }

    #[test]
    fn amount_checked_add() {
        assert_eq!(
            amount("0.5").checked_add(amount("0.75")),
            Some(amount("1.25"))
        );
        assert_eq!(Amount::MAX.checked_add(amount("0.00000001")), None);
        assert_eq!(Amount::MAX.checked_add(Amount::ZERO), Some(Amount::MAX));
    }

    #[test]
    fn amount_json_accepts_strings_and_numbers() {
        let from = |json: &str| serde_json::from_str::<Amount>(json);
        assert_eq!(from("\"50000.00\"").unwrap(), amount("50000"));
        assert_eq!(from("50000").unwrap(), amount("50000"));
        assert_eq!(from("0.75").unwrap(), amount("0.75"));
        assert_eq!(from("1e3").unwrap(), amount("1000"));
        assert_eq!(from("1e15").unwrap(), amount("1000000000000000"));
        assert_eq!(
            from("1234567890123456").unwrap(),
            amount("1234567890123456")
        );
        assert_eq!(
            from("123456789012.345").unwrap(),
            amount("123456789012.345")
        );
        assert_eq!(
            serde_json::to_string(&amount("50000.00")).unwrap(),
            "\"50000\""
        );
        for bad in [
            "-0",
            "-0.0",
            "-1",
            "-0.5",
            "\"-1\"",
            "0.123456789",
            "1e30",
            "9007199254740993.5",
            "1234567890.123456",
            "true",
            "null",
        ] {
            assert!(from(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn json_numbers_of_15_digits_read_exactly() {
        // Found by fuzzing: the default float parse read this as 99999999900.09999.
        let s: SignedAmount = serde_json::from_str("99999999900.1000000").unwrap();
        assert_eq!(s.to_string(), "99999999900.1");
        let a: Amount = serde_json::from_str("99999999900.1000000").unwrap();
        assert_eq!(a.to_string(), "99999999900.1");
    }

    #[test]
    fn currency_shape() {
        assert_eq!("EUR".parse::<Currency>().unwrap().as_str(), "EUR");
        for bad in ["", "EU", "EURO", "eur", "E1R", "ÉUR", "EU "] {
            assert!(bad.parse::<Currency>().is_err(), "accepted {bad:?}");
        }
        assert!(serde_json::from_str::<Currency>("\"usd\"").is_err());
        assert_eq!(
            serde_json::to_string(&"USD".parse::<Currency>().unwrap()).unwrap(),
            "\"USD\""
        );
    }

    #[test]
    fn money_json() {
        let m: Money = serde_json::from_str(r#"{"amount":"50000","currency":"EUR"}"#).unwrap();
        assert_eq!(m.to_string(), "50000 EUR");
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"EUR","x":1}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1"}"#).is_err());
    }
}

/// A signed decimal: a realised profit (positive) or loss (negative). Text `"-120.5"`, or a
/// JSON number; the magnitude follows [`Amount`]'s rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignedAmount {
    /// A loss.
    pub negative: bool,
    /// How much.
    pub amount: Amount,
}

impl SignedAmount {
    /// The loss this is (zero for a profit).
    pub fn loss(&self) -> Amount {
        if self.negative {
            self.amount
        } else {
            Amount::ZERO
        }
    }

    /// Minor units, signed.
    pub fn minor_units(&self) -> i128 {
        let units = i128::try_from(self.amount.as_minor_units()).unwrap_or(i128::MAX);
        if self.negative { -units } else { units }
    }
}

impl FromStr for SignedAmount {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let amount: Amount = digits.parse()?;
        if negative && amount == Amount::ZERO {
            return Err(PolicyError::invalid(
                "amount",
                "negative zero (-0) is not an amount; write 0",
            ));
        }
        Ok(SignedAmount { negative, amount })
    }
}

impl fmt::Display for SignedAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            write!(f, "-{}", self.amount)
        } else {
            write!(f, "{}", self.amount)
        }
    }
}

impl<'de> Deserialize<'de> for SignedAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "expected a signed decimal, e.g. \"-120.5\"",
            )),
        }
    }
}

impl Serialize for SignedAmount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The API document's `SignedAmount`: what [`SignedAmount`]'s serde reads (a signed decimal
/// string, or a JSON number) and writes (the canonical string).
impl utoipa::PartialSchema for SignedAmount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "Signed decimal: a profit, or (negative) a loss, e.g. \"-120.5\"; the magnitude \
                 as an Amount (at most 18 integer and 8 fractional digits), not -0. A string, or \
                 a plain JSON number",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .exclusive_minimum(Some(-1e18))
                    .exclusive_maximum(Some(1e18)),
            )
            .examples(["-120.5"])
            .into()
    }
}

impl utoipa::ToSchema for SignedAmount {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("SignedAmount")
    }
}

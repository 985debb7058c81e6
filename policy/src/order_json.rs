//! The order as JSON: the body of a pre-trade check, the payload the custodial signer signs and
//! the payload an exchange verifies. One type, so the three can never disagree.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Action, Amount, Currency, Intent, Money, Order, OrderType, PolicyError};

/// Longest market, counterparty or region name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Buy or sell (read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buying.
    Buy,
    /// Selling.
    Sell,
}

crate::case_insensitive_enum!(Side, [Side::Buy, Side::Sell]);

impl Side {
    /// `"buy"` or `"sell"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// An order as clients send it (the fields below; version-2 controls read `quantity`, `price`,
/// `order_type`, `client_order_id` and `intent`):
/// `{action, market, counterparty, region, size, currency, side, timestamp}`, all but `action`
/// optional. `size` is a decimal (string or number), `timestamp` unix seconds or RFC 3339 text.
/// Serialized, the fields come in a fixed order and `timestamp` as unix seconds: that is the
/// canonical payload the custodial signer signs ([`OrderJson::canonical_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    as = Order,
    description = "An order: the body of a pre-trade check and of custodial signing, and the signed payload. Serialized in this field order without spaces, with the timestamp as unix seconds, it is the canonical payload the custodial signer signs. The names market, counterparty, region and client_order_id are 1 to 64 bytes without spaces or control characters",
    examples(json!({"action": "trade_execution", "market": "BTC_EUR", "counterparty": "exchange_a",
                    "region": "eu-west-1", "size": "25000", "currency": "EUR", "side": "buy",
                    "quantity": "0.5", "price": "50000", "order_type": "limit",
                    "client_order_id": "ord-42"}))
)]
pub struct OrderJson {
    /// What the agent wants to do.
    pub action: Action,
    /// Instrument, e.g. `BTC_EUR`; no spaces or control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OrderName>)]
    pub market: Option<String>,
    /// Counterparty or venue, e.g. `exchange_a`; no spaces or control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OrderName>)]
    pub counterparty: Option<String>,
    /// Region, e.g. `eu-west-1`; no spaces or control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OrderName>)]
    pub region: Option<String>,
    /// Order size (needs `currency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Amount>,
    /// ISO 4217 currency of `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Buy or sell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// When the client means the order (unix seconds or RFC 3339; written as unix seconds);
    /// the time of the check when absent. Orders are decided at the daemon's clock: more than
    /// `policy.max_clock_skew_secs` (default 30 s) away, sign refuses it (422 invalid-order),
    /// verify answers `order_time_skew` and preflight answers a what-if for that time
    /// (`hypothetical: true`).
    #[serde(
        default,
        deserialize_with = "unix_or_rfc3339",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Time>)]
    pub timestamp: Option<i64>,
    /// Quantity, in the instrument's unit (a decimal, string or number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Amount>,
    /// Limit (or stop-limit) price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Amount>,
    /// `market`, `limit`, `stop` or `stop_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<OrderType>,
    /// The client's id of the order, 1 to 64 characters, no spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OrderName>)]
    pub client_order_id: Option<String>,
    /// `new` (the default), `amend` or `cancel`; a cancellation is not held to the order's own
    /// version-2 limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// The pre-trade decision that let a signed order through (`dec_` and 32 hex digits): the
    /// daemon writes it into the payload it signs; a request to check or sign an order leaves
    /// it out (422 invalid-order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^dec_[0-9a-f]{32}$")]
    pub decision_id: Option<String>,
}

/// The API document's `OrderName`: a market, counterparty, region or client order id in an order
/// or an event, 1 to [`MAX_NAME_LEN`] characters, none a space or a control character (the rule
/// the order and event checks apply). A name for the schema only, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderName {}

impl utoipa::PartialSchema for OrderName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_NAME_LEN))
            .pattern(Some(
                r"^[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
            ))
            .into()
    }
}

impl utoipa::ToSchema for OrderName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("OrderName")
    }
}

/// The API document's `Time`: how orders and events carry a time, unix seconds or RFC 3339
/// text, from 1970-01-01T00:00:00Z to 9999-12-30T00:00:00Z (read by [`unix_or_rfc3339`]). A
/// name for the schema only, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {}

impl utoipa::PartialSchema for Time {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .description(Some(
                "Unix seconds or RFC 3339 text, from 1970-01-01T00:00:00Z (0) to 9999-12-30T00:00:00Z (253402128000)",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(TIME_MIN))
                    .maximum(Some(TIME_MAX)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .examples([serde_json::json!(1_796_637_600), serde_json::json!("2026-12-07T10:00:00Z")])
            .into()
    }
}

impl utoipa::ToSchema for Time {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Time")
    }
}

/// Deserializes an optional time given as unix seconds or RFC 3339 text into unix seconds
/// (for `#[serde(deserialize_with)]`).
pub fn unix_or_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Unix(i64),
        Text(String),
    }
    let secs = match Option::<Raw>::deserialize(d)? {
        None => return Ok(None),
        Some(Raw::Unix(s)) => s,
        Some(Raw::Text(t)) => match t.parse::<Timestamp>() {
            Ok(ts) => ts.as_second(),
            Err(e) => {
                // Valid RFC 3339 beyond what jiff represents (9999-12-31T23:59:59Z): the
                // range's answer, the one its number gets.
                if let Ok(t) =
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                {
                    t.unix_timestamp()
                } else {
                    return Err(serde::de::Error::custom(format!(
                        "timestamp {t:?} is not RFC 3339: {e}"
                    )));
                }
            }
        },
    };
    if !(TIME_MIN..=TIME_MAX).contains(&secs) {
        return Err(serde::de::Error::custom(format!(
            "timestamp out of range: 1970-01-01T00:00:00Z ({TIME_MIN}) to 9999-12-30T00:00:00Z ({TIME_MAX}), as unix seconds or RFC 3339"
        )));
    }
    Ok(Some(secs))
}

/// The earliest time an order or event may carry, in unix seconds: 1970-01-01T00:00:00Z.
pub const TIME_MIN: i64 = 0;
/// The latest, 9999-12-30T00:00:00Z: inside what every time library here represents, for
/// either form (`253402300799`, 9999-12-31T23:59:59Z, is past it in both).
pub const TIME_MAX: i64 = 253_402_128_000;

fn check_name(field: &'static str, v: &Option<String>) -> Result<(), PolicyError> {
    match v {
        Some(s) if s.is_empty() || s.len() > MAX_NAME_LEN => Err(PolicyError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        )),
        Some(s) if s.chars().any(|c| c.is_control() || c.is_whitespace()) => Err(
            PolicyError::invalid(field, "must not contain spaces or control characters"),
        ),
        _ => Ok(()),
    }
}

impl OrderJson {
    /// Checks the bounds and builds the [`Order`] the decision engine takes; `now` stands in
    /// for a missing timestamp.
    pub fn to_order(&self, now: i64) -> Result<Order, PolicyError> {
        check_name("market", &self.market)?;
        check_name("counterparty", &self.counterparty)?;
        check_name("region", &self.region)?;
        check_name("client_order_id", &self.client_order_id)?;
        let size = match (&self.size, &self.currency) {
            (Some(amount), Some(currency)) => Some(Money {
                amount: *amount,
                currency: currency.clone(),
            }),
            (Some(_), None) => return Err(PolicyError::invalid("currency", "size needs currency")),
            (None, _) => None,
        };
        let at = self.timestamp.unwrap_or(now);
        if Timestamp::from_second(at).is_err() {
            return Err(PolicyError::invalid("timestamp", "out of range"));
        }
        Ok(Order {
            action: self.action,
            market: self.market.clone(),
            counterparty: self.counterparty.clone(),
            region: self.region.clone(),
            size,
            at,
            quantity: self.quantity,
            price: self.price,
            order_type: self.order_type,
            intent: self.intent.unwrap_or_default(),
            side: self.side,
        })
    }

    /// Seconds from `now` to the order's `timestamp` (negative: in the past; 0 without one).
    pub fn skew(&self, now: i64) -> i64 {
        self.timestamp.map_or(0, |t| t.saturating_sub(now))
    }

    /// The order as it is decided for real: at `now`, the daemon's (or relying party's) clock.
    /// A `timestamp` more than `max_skew` seconds from `now` is refused, so no caller can pick
    /// the day (volume), the hour (trading hours) or the moment a signed order is good for.
    pub fn to_order_now(&self, now: i64, max_skew: u32) -> Result<Order, PolicyError> {
        let skew = self.skew(now);
        if skew.unsigned_abs() > u64::from(max_skew) {
            let (amount, way) = if skew > 0 {
                (skew, "ahead of")
            } else {
                (skew.saturating_neg(), "behind")
            };
            return Err(PolicyError::invalid(
                "timestamp",
                format!(
                    "{amount} s {way} the clock of the check; at most {max_skew} s apart are accepted (leave it out to mean now)"
                ),
            ));
        }
        let mut order = self.to_order(now)?;
        order.at = now;
        Ok(order)
    }

    /// The canonical JSON bytes (fixed field order, no spaces, unix-second timestamp): what the
    /// custodial signer signs.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and enums into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(timestamp: Option<i64>) -> OrderJson {
        OrderJson {
            action: Action::TradeExecution,
            market: None,
            counterparty: None,
            region: None,
            size: None,
            currency: None,
            side: None,
            timestamp,
            quantity: None,
            price: None,
            order_type: None,
            client_order_id: None,
            intent: None,
            decision_id: None,
        }
    }

    #[test]
    fn orders_are_decided_at_the_clock_of_the_check() {
        let now = 1_800_000_000;
        for ts in [None, Some(now), Some(now - 30), Some(now + 30)] {
            assert_eq!(order(ts).to_order_now(now, 30).unwrap().at, now, "{ts:?}");
        }
        for ts in [now + 31, now - 31, now + 86_400, now - 86_400, 0] {
            let e = order(Some(ts))
                .to_order_now(now, 30)
                .unwrap_err()
                .to_string();
            assert!(e.contains("timestamp") && e.contains("at most 30 s"), "{e}");
        }
        assert!(
            order(Some(now + 86_400))
                .to_order_now(now, 30)
                .unwrap_err()
                .to_string()
                .contains("86400 s ahead")
        );
        assert_eq!(order(Some(i64::MIN)).skew(now), i64::MIN);
    }
}

#[cfg(test)]
mod time_range_tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct At {
        #[serde(default, deserialize_with = "unix_or_rfc3339")]
        at: Option<i64>,
    }

    fn at(json: &str) -> Result<Option<i64>, String> {
        serde_json::from_str::<At>(json)
            .map(|a| a.at)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_forms_share_one_range_and_one_error() {
        assert_eq!(at(r#"{"at": 0}"#), Ok(Some(0)));
        assert_eq!(
            at(r#"{"at": "2026-12-07T10:00:00Z"}"#),
            Ok(Some(1_796_637_600))
        );
        assert_eq!(at(r#"{"at": 253402128000}"#), Ok(Some(TIME_MAX)));
        let number = at(r#"{"at": 253402300799}"#).unwrap_err();
        let text = at(r#"{"at": "9999-12-31T23:59:59Z"}"#).unwrap_err();
        assert!(number.starts_with("timestamp out of range"), "{number}");
        assert_eq!(
            number.split(" at line").next(),
            text.split(" at line").next()
        );
        assert!(
            at(r#"{"at": -1}"#)
                .unwrap_err()
                .starts_with("timestamp out of range")
        );
        assert!(
            at(r#"{"at": "yesterday"}"#)
                .unwrap_err()
                .contains("not RFC 3339")
        );
    }
}

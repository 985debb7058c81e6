//! Mandate version 2: the pre-trade controls MiFID II RTS 6 asks a firm running algorithms to
//! show (Delegated Regulation (EU) 2017/589, Art. 15 and 12): order quantity, price collars,
//! open orders, positions, losses, message rates, order-to-trade ratios, a throttle on repeated
//! executions, order types and short selling. Each numeric limit is `hard` (the order is
//! refused) or `soft` (allowed, flagged, an incident opened). Every control can be set as a
//! default and again per market; a market's value replaces the default for that market.
//!
//! This module holds the types, their JSON form and their bounds. The DER form is in
//! `der_codec.rs`; what the daemon does with them is docs/MANDATE.md's.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::{Amount, Money, PolicyError};

/// Most `marketControls` entries a mandate may hold.
pub const MAX_MARKET_CONTROLS: usize = 256;
const MAX_BPS: u32 = 100_000;
const MAX_COUNT: u32 = 1_000_000;
const MAX_WINDOW_SECS: u32 = 86_400;

/// How a limit is enforced (read in any case).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Breaking it refuses the order.
    #[default]
    Hard,
    /// Breaking it lets the order through, flagged, and opens an incident.
    Soft,
}

crate::case_insensitive_enum!(Enforcement, [Enforcement::Hard, Enforcement::Soft]);

impl Enforcement {
    /// `"hard"` or `"soft"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Hard => "hard",
            Enforcement::Soft => "soft",
        }
    }
}

/// A limit and how it is enforced. JSON: the value alone (hard), or
/// `{"value": <value>, "enforcement": "soft" | "hard"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit<T> {
    /// The limit.
    pub value: T,
    /// Hard or soft.
    pub enforcement: Enforcement,
}

impl<T> Limit<T> {
    /// A hard limit.
    pub fn hard(value: T) -> Limit<T> {
        Limit {
            value,
            enforcement: Enforcement::Hard,
        }
    }

    /// A soft limit.
    pub fn soft(value: T) -> Limit<T> {
        Limit {
            value,
            enforcement: Enforcement::Soft,
        }
    }
}

impl<T: Serialize> Serialize for Limit<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wrapped<'a, T> {
            value: &'a T,
            enforcement: Enforcement,
        }
        match self.enforcement {
            Enforcement::Hard => self.value.serialize(s),
            Enforcement::Soft => Wrapped {
                value: &self.value,
                enforcement: self.enforcement,
            }
            .serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Limit<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wrapped<T> {
            value: T,
            #[serde(default)]
            enforcement: Enforcement,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Wrapped(Wrapped<T>),
            Bare(T),
        }
        match Raw::<T>::deserialize(d).map_err(|_| {
            de::Error::custom(
                "expected a limit: the value alone, or {\"value\": ..., \"enforcement\": \"hard\" | \"soft\"}",
            )
        })? {
            Raw::Wrapped(w) => Ok(Limit {
                value: w.value,
                enforcement: w.enforcement,
            }),
            Raw::Bare(value) => Ok(Limit::hard(value)),
        }
    }
}

/// The largest deviation of an order's price from the reference price, per side, in basis
/// points (1 to 100000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceCollar {
    /// How far above the reference a buy may be.
    #[schema(minimum = 1, maximum = 100000)]
    pub buy_bps: u32,
    /// How far below the reference a sell may be.
    #[schema(minimum = 1, maximum = 100000)]
    pub sell_bps: u32,
}

/// A cap on the net position: in the instrument's unit, or in money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PositionLimit {
    /// Units of the instrument, long or short.
    Quantity(Amount),
    /// Value at the reference price.
    Value(Money),
}

/// By hand: an externally tagged enum is an object of exactly one key, which the derive leaves
/// open.
impl utoipa::PartialSchema for PositionLimit {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let one = |key: &str, value: Ref, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(key, value)
                .required(key)
                .additional_properties(Some(
                    AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false),
                ))
                .description(Some(description))
        };
        OneOfBuilder::new()
            .item(one(
                "quantity",
                Ref::from_schema_name("Amount"),
                "Units of the instrument, long or short",
            ))
            .item(one(
                "value",
                Ref::from_schema_name("Money"),
                "Value at the reference price",
            ))
            .into()
    }
}

impl utoipa::ToSchema for PositionLimit {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("PositionLimit")
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((<Amount as ToSchema>::name().into(), Amount::schema()));
        schemas.push((<Money as ToSchema>::name().into(), Money::schema()));
        <Money as ToSchema>::schemas(schemas);
    }
}

/// At most `max_ratio` orders (new, amended, cancelled) per trade over `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderToTradeRatio {
    /// Orders per trade (1 to 1000000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_ratio: u32,
    /// The window it is counted over, seconds (1 to 86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub window_secs: u32,
}

/// `executions` executions of one market and side within `within_secs` disable the agent
/// until a named compliance person re-enables it (RTS 6 Art. 15(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionThrottle {
    /// Executions (1 to 1000000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub executions: u32,
    /// Within this many seconds (1 to 86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub within_secs: u32,
}

/// The kind of an order (read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// At the market.
    Market,
    /// At a limit price.
    Limit,
    /// Triggered at a stop price, then at the market.
    Stop,
    /// Triggered at a stop price, then at a limit price.
    StopLimit,
}

crate::case_insensitive_enum!(
    OrderType,
    [
        OrderType::Market,
        OrderType::Limit,
        OrderType::Stop,
        OrderType::StopLimit
    ]
);

impl OrderType {
    /// Every order type, in ASN.1 enumeration order.
    pub const ALL: [OrderType; 4] = [
        OrderType::Market,
        OrderType::Limit,
        OrderType::Stop,
        OrderType::StopLimit,
    ];

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "market",
            OrderType::Limit => "limit",
            OrderType::Stop => "stop",
            OrderType::StopLimit => "stop_limit",
        }
    }
}

impl fmt::Display for OrderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version-2 controls: a mandate's defaults, or one market's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"maxOrderQuantity": "30", "maxOpenOrders": {"value": 5, "enforcement": "soft"}})))]
pub struct Controls {
    /// Largest quantity of one order, in the instrument's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = max_order_quantity)]
    pub max_order_quantity: Option<Limit<Amount>>,
    /// Largest deviation from the reference price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = price_collar)]
    pub price_collar: Option<Limit<PriceCollar>>,
    /// Oldest reference price a collar is checked against, seconds (1 to 86400); older fails
    /// closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 86400)]
    pub reference_price_max_age: Option<u32>,
    /// Most orders open at once (1 to 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = max_open_orders)]
    pub max_open_orders: Option<Limit<u32>>,
    /// Largest net position, long or short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = max_net_position)]
    pub max_net_position: Option<Limit<PositionLimit>>,
    /// Largest realised loss in a trading day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = max_daily_loss)]
    pub max_daily_loss: Option<Limit<Money>>,
    /// Most messages (new, amend, cancel) in any one second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = max_messages_per_second)]
    pub max_messages_per_second: Option<Limit<u32>>,
    /// Largest order-to-trade ratio over a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = max_order_to_trade_ratio)]
    pub max_order_to_trade_ratio: Option<Limit<OrderToTradeRatio>>,
    /// Repeated executions that disable the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = repeated_execution_throttle)]
    pub repeated_execution_throttle: Option<Limit<ExecutionThrottle>>,
    /// The order types allowed (absent: any; empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_order_types: Option<Vec<OrderType>>,
    /// Whether selling more than is held is allowed (absent: no restriction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_selling_allowed: Option<bool>,
}

/// One market's controls, replacing the defaults for that market. JSON:
/// `{"market": "BTC_EUR", "controls": {"maxOrderQuantity": "2", ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketControls {
    /// The market, e.g. `BTC_EUR`: 1 to 64 of `A-Z a-z 0-9 _ . : / -` (compared
    /// case-insensitively).
    #[schema(pattern = "^[A-Za-z0-9_.:/-]{1,64}$")]
    pub market: String,
    /// Its controls.
    pub controls: Controls,
}

/// The schema of a limit of `value` (nullable, as an absent one): the value alone (a hard limit),
/// or `{"value": ..., "enforcement": "hard" | "soft"}`; written back bare when hard.
fn limit(
    value: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    description: &str,
    example: serde_json::Value,
) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let value = value.into();
    OneOfBuilder::new()
        .item(value.clone())
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("value", value)
                .property(
                    "enforcement",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["hard", "soft"]))
                        .default(Some(serde_json::json!("hard")))
                        .description(Some(
                            "hard: breaking it refuses the order; soft: lets it through, flagged, and opens an incident (read in any case)",
                        )),
                )
                .required("value")
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::<
                        utoipa::openapi::schema::Schema,
                    >::FreeForm(false),
                )),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(format!(
            "{description}. A hard limit is its value alone; {{\"value\": ..., \"enforcement\": \"soft\"}} is a soft one (enforcement defaults to hard); written back bare when hard"
        )))
        .examples([example])
        .build()
        .into()
}

/// A count limit's value: an integer from 1 to `max`.
fn count(max: u32) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(max))
        .build()
}

/// The schema of `maxOrderQuantity`.
pub(crate) fn max_order_quantity() -> utoipa::openapi::schema::Schema {
    limit(
        utoipa::openapi::Ref::from_schema_name("Amount"),
        "Largest quantity of one order, in the instrument's unit (a decimal)",
        serde_json::json!("2"),
    )
}

/// The schema of `priceCollar`.
pub(crate) fn price_collar() -> utoipa::openapi::schema::Schema {
    limit(
        <PriceCollar as utoipa::PartialSchema>::schema(),
        "Largest deviation of an order's price from the reference price, per side, in basis points",
        serde_json::json!({"buyBps": 500, "sellBps": 500}),
    )
}

/// The schema of `maxOpenOrders`.
pub(crate) fn max_open_orders() -> utoipa::openapi::schema::Schema {
    limit(
        count(u32::try_from(crate::MAX_TRACKED_OPEN_ORDERS).unwrap_or(MAX_COUNT)),
        "Most orders open at once (1 to 100000, what the daemon tracks per agent)",
        serde_json::json!(20),
    )
}

/// The schema of `maxNetPosition`.
pub(crate) fn max_net_position() -> utoipa::openapi::schema::Schema {
    limit(
        <PositionLimit as utoipa::PartialSchema>::schema(),
        "Largest net position of an instrument, long or short: {\"quantity\": decimal} in its unit, or {\"value\": Money} at the reference price",
        serde_json::json!({"quantity": "10"}),
    )
}

/// The schema of `maxDailyLoss`.
pub(crate) fn max_daily_loss() -> utoipa::openapi::schema::Schema {
    limit(
        utoipa::openapi::Ref::from_schema_name("Money"),
        "Largest net realised loss in a trading day",
        serde_json::json!({"amount": "10000", "currency": "EUR"}),
    )
}

/// The schema of `maxMessagesPerSecond`.
pub(crate) fn max_messages_per_second() -> utoipa::openapi::schema::Schema {
    limit(
        count(MAX_COUNT),
        "Most order messages (new, amend, cancel) in any one second (1 to 1000000)",
        serde_json::json!(10),
    )
}

/// The schema of `maxOrderToTradeRatio`.
pub(crate) fn max_order_to_trade_ratio() -> utoipa::openapi::schema::Schema {
    limit(
        <OrderToTradeRatio as utoipa::PartialSchema>::schema(),
        "Largest order-to-trade ratio over a window",
        serde_json::json!({"maxRatio": 50, "windowSecs": 3600}),
    )
}

/// The schema of `repeatedExecutionThrottle`.
pub(crate) fn repeated_execution_throttle() -> utoipa::openapi::schema::Schema {
    limit(
        <ExecutionThrottle as utoipa::PartialSchema>::schema(),
        "Executions of one market and side within a window that disable the agent until a named compliance person re-enables it",
        serde_json::json!({"executions": 10, "withinSecs": 60}),
    )
}

fn bounded(field: &'static str, v: u32, max: u32) -> Result<(), PolicyError> {
    if (1..=max).contains(&v) {
        Ok(())
    } else {
        Err(PolicyError::invalid(field, format!("must be 1 to {max}")))
    }
}

impl Controls {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Controls::default()
    }

    /// Checks every bound documented on the fields.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Some(c) = &self.price_collar {
            bounded("priceCollar.buyBps", c.value.buy_bps, MAX_BPS)?;
            bounded("priceCollar.sellBps", c.value.sell_bps, MAX_BPS)?;
        }
        if let Some(age) = self.reference_price_max_age {
            bounded("referencePriceMaxAge", age, MAX_WINDOW_SECS)?;
        }
        if let Some(l) = &self.max_open_orders {
            // No more than the daemon tracks per agent.
            bounded(
                "maxOpenOrders",
                l.value,
                u32::try_from(crate::MAX_TRACKED_OPEN_ORDERS).unwrap_or(MAX_COUNT),
            )?;
        }
        if let Some(l) = &self.max_messages_per_second {
            bounded("maxMessagesPerSecond", l.value, MAX_COUNT)?;
        }
        if let Some(l) = &self.max_order_to_trade_ratio {
            bounded(
                "maxOrderToTradeRatio.maxRatio",
                l.value.max_ratio,
                MAX_COUNT,
            )?;
            bounded(
                "maxOrderToTradeRatio.windowSecs",
                l.value.window_secs,
                MAX_WINDOW_SECS,
            )?;
        }
        if let Some(l) = &self.repeated_execution_throttle {
            bounded(
                "repeatedExecutionThrottle.executions",
                l.value.executions,
                MAX_COUNT,
            )?;
            bounded(
                "repeatedExecutionThrottle.withinSecs",
                l.value.within_secs,
                MAX_WINDOW_SECS,
            )?;
        }
        if let Some(types) = &self.allowed_order_types {
            let mut seen = std::collections::BTreeSet::new();
            if let Some(t) = types.iter().find(|t| !seen.insert(**t)) {
                return Err(PolicyError::invalid(
                    "allowedOrderTypes",
                    format!("duplicate order type {t}"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a mandate's market controls: each market named once (case-insensitively), by a
/// valid name, with at least one control, each within its bounds.
pub(crate) fn validate_markets(markets: &[MarketControls]) -> Result<(), PolicyError> {
    if markets.len() > MAX_MARKET_CONTROLS {
        return Err(PolicyError::invalid(
            "marketControls",
            format!("at most {MAX_MARKET_CONTROLS} markets"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in markets {
        if !crate::mandate::is_list_name(&m.market) {
            return Err(PolicyError::invalid(
                "marketControls.market",
                "expected 1 to 64 characters of A-Z, a-z, 0-9 and _ . : / -",
            ));
        }
        if !seen.insert(m.market.to_ascii_lowercase()) {
            return Err(PolicyError::invalid(
                "marketControls",
                format!("market {:?} is listed twice", m.market),
            ));
        }
        if m.controls.is_empty() {
            return Err(PolicyError::invalid(
                "marketControls",
                format!("market {:?} sets no control", m.market),
            ));
        }
        m.controls.validate()?;
    }
    Ok(())
}

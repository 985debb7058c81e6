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

/// How a limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceCollar {
    /// How far above the reference a buy may be.
    pub buy_bps: u32,
    /// How far below the reference a sell may be.
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

/// At most `max_ratio` orders (new, amended, cancelled) per trade over `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderToTradeRatio {
    /// Orders per trade (1 to 1000000).
    pub max_ratio: u32,
    /// The window it is counted over, seconds (1 to 86400).
    pub window_secs: u32,
}

/// `executions` executions of one market and side within `within_secs` disable the agent
/// until a named compliance person re-enables it (RTS 6 Art. 15(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionThrottle {
    /// Executions (1 to 1000000).
    pub executions: u32,
    /// Within this many seconds (1 to 86400).
    pub within_secs: u32,
}

/// The kind of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Controls {
    /// Largest quantity of one order, in the instrument's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_order_quantity: Option<Limit<Amount>>,
    /// Largest deviation from the reference price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_collar: Option<Limit<PriceCollar>>,
    /// Oldest reference price a collar is checked against, seconds (1 to 86400); older fails
    /// closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_price_max_age: Option<u32>,
    /// Most orders open at once (1 to 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_orders: Option<Limit<u32>>,
    /// Largest net position, long or short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_net_position: Option<Limit<PositionLimit>>,
    /// Largest realised loss in a trading day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_daily_loss: Option<Limit<Money>>,
    /// Most messages (new, amend, cancel) in any one second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_per_second: Option<Limit<u32>>,
    /// Largest order-to-trade ratio over a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_order_to_trade_ratio: Option<Limit<OrderToTradeRatio>>,
    /// Repeated executions that disable the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketControls {
    /// The market, e.g. `BTC_EUR` (compared case-insensitively).
    pub market: String,
    /// Its controls.
    pub controls: Controls,
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

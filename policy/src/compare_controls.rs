//! The version-2 controls in [`crate::compare`]: each control has its own order, so that a
//! version which only widens controls lets older certificates run out their grace period
//! like any other widening. Absent means unlimited (a reference price's age: its default);
//! a hard limit is narrower than the same soft one. A market's own value replaces the
//! default for that market, except for the limits that count (open orders, messages, the
//! order-to-trade ratio, the day's loss), where the market's own applies in addition.

use std::collections::BTreeSet;

use crate::compare::{Direction, lower_is_narrower, sets};
use crate::{
    Controls, DEFAULT_REFERENCE_PRICE_MAX_AGE, Enforcement, Limit, Mandate, Money, OrderType,
    PositionLimit,
};

/// One control that differs: its JSON name, the values as text, and the direction.
pub(crate) type ControlChange = (&'static str, String, String, Direction);

/// Both directions together: the same, or one of them alone; opposite ones are a change.
fn both(a: Option<Direction>, b: Option<Direction>) -> Option<Direction> {
    match (a, b) {
        (None, d) | (d, None) => d,
        (Some(x), Some(y)) if x == y => Some(x),
        _ => Some(Direction::Changed),
    }
}

fn lower<T: PartialOrd>(before: &T, after: &T) -> Option<Direction> {
    lower_is_narrower(before, after)
}

fn money(before: &Money, after: &Money) -> Option<Direction> {
    if before.currency != after.currency {
        Some(Direction::Changed)
    } else {
        lower(&before.amount, &after.amount)
    }
}

/// An optional limit, absent meaning none: its value by `cmp`, its enforcement (hard is
/// narrower than soft).
fn limit<T>(
    before: Option<&Limit<T>>,
    after: Option<&Limit<T>>,
    cmp: impl Fn(&T, &T) -> Option<Direction>,
) -> Option<Direction> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(Direction::Narrowed),
        (Some(_), None) => Some(Direction::Widened),
        (Some(b), Some(a)) => {
            let enforcement = match (b.enforcement, a.enforcement) {
                (Enforcement::Soft, Enforcement::Hard) => Some(Direction::Narrowed),
                (Enforcement::Hard, Enforcement::Soft) => Some(Direction::Widened),
                _ => None,
            };
            both(cmp(&b.value, &a.value), enforcement)
        }
    }
}

/// Whether one control narrows or widens, by its JSON name.
fn direction(field: &str, b: &Controls, a: &Controls) -> Option<Direction> {
    match field {
        "maxOrderQuantity" => limit(
            b.max_order_quantity.as_ref(),
            a.max_order_quantity.as_ref(),
            lower,
        ),
        "priceCollar" => limit(b.price_collar.as_ref(), a.price_collar.as_ref(), |b, a| {
            both(
                lower(&b.buy_bps, &a.buy_bps),
                lower(&b.sell_bps, &a.sell_bps),
            )
        }),
        "referencePriceMaxAge" => lower(
            &b.reference_price_max_age
                .unwrap_or(DEFAULT_REFERENCE_PRICE_MAX_AGE),
            &a.reference_price_max_age
                .unwrap_or(DEFAULT_REFERENCE_PRICE_MAX_AGE),
        ),
        "maxOpenOrders" => limit(
            b.max_open_orders.as_ref(),
            a.max_open_orders.as_ref(),
            lower,
        ),
        "maxNetPosition" => limit(
            b.max_net_position.as_ref(),
            a.max_net_position.as_ref(),
            |b, a| match (b, a) {
                (PositionLimit::Quantity(b), PositionLimit::Quantity(a)) => lower(b, a),
                (PositionLimit::Value(b), PositionLimit::Value(a)) => money(b, a),
                _ => Some(Direction::Changed),
            },
        ),
        "maxDailyLoss" => limit(b.max_daily_loss.as_ref(), a.max_daily_loss.as_ref(), money),
        "maxMessagesPerSecond" => limit(
            b.max_messages_per_second.as_ref(),
            a.max_messages_per_second.as_ref(),
            lower,
        ),
        "maxOrderToTradeRatio" => limit(
            b.max_order_to_trade_ratio.as_ref(),
            a.max_order_to_trade_ratio.as_ref(),
            |b, a| {
                // The same ratio over another window neither contains the other.
                if b.window_secs == a.window_secs {
                    lower(&b.max_ratio, &a.max_ratio)
                } else {
                    Some(Direction::Changed)
                }
            },
        ),
        "repeatedExecutionThrottle" => limit(
            b.repeated_execution_throttle.as_ref(),
            a.repeated_execution_throttle.as_ref(),
            // Fewer executions, or a longer window to count them in, trip it sooner.
            |b, a| {
                both(
                    lower(&b.executions, &a.executions),
                    lower(&a.within_secs, &b.within_secs),
                )
            },
        ),
        "allowedOrderTypes" => {
            let set = |l: &Option<Vec<OrderType>>| {
                l.as_ref()
                    .map(|v| v.iter().copied().collect::<BTreeSet<_>>())
            };
            sets(&set(&b.allowed_order_types), &set(&a.allowed_order_types))
        }
        "shortSellingAllowed" => {
            // Absent: no restriction, as `true`.
            let allowed = |v: Option<bool>| v.unwrap_or(true);
            match (
                allowed(b.short_selling_allowed),
                allowed(a.short_selling_allowed),
            ) {
                (true, false) => Some(Direction::Narrowed),
                (false, true) => Some(Direction::Widened),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The controls, in the order of the mandate's fields; `true` for those a market's own value
/// applies to in addition to the default (the counting limits).
const FIELDS: [(&str, bool); 11] = [
    ("maxOrderQuantity", false),
    ("priceCollar", false),
    ("referencePriceMaxAge", false),
    ("maxOpenOrders", true),
    ("maxNetPosition", false),
    ("maxDailyLoss", true),
    ("maxMessagesPerSecond", true),
    ("maxOrderToTradeRatio", true),
    ("repeatedExecutionThrottle", false),
    ("allowedOrderTypes", false),
    ("shortSellingAllowed", false),
];

/// Controls in their JSON form (serialized once, read per field).
fn json_of(c: &Controls) -> serde_json::Value {
    serde_json::to_value(c).unwrap_or_default()
}

/// A control's value as text: its JSON form, or `none`.
fn text(json: &serde_json::Value, field: &str) -> String {
    match &json[field] {
        serde_json::Value::Null => "none".to_owned(),
        v => v.to_string(),
    }
}

/// Every control that differs: the defaults by name, then each market's by
/// `marketControls` (the text names the market and the control).
pub(crate) fn changes(before: &Mandate, after: &Mandate) -> Vec<ControlChange> {
    let mut out = Vec::new();
    // A field whose text differs with nothing changed in force (e.g. the default reference
    // price age stated) is no change.
    let (default_b, default_a) = (json_of(&before.controls), json_of(&after.controls));
    for (field, _) in FIELDS {
        if let Some(d) = direction(field, &before.controls, &after.controls) {
            out.push((field, text(&default_b, field), text(&default_a, field), d));
        }
    }
    let markets: BTreeSet<String> = [before, after]
        .iter()
        .flat_map(|m| m.market_controls.as_deref().unwrap_or_default())
        .map(|m| m.market.to_ascii_uppercase())
        .collect();
    let empty = Controls::default();
    for market in &markets {
        let own_b = before.own_controls(market).unwrap_or(&empty);
        let own_a = after.own_controls(market).unwrap_or(&empty);
        let (json_b, json_a) = (json_of(own_b), json_of(own_a));
        let (eff_b, eff_a) = (
            before.controls_for(Some(market)),
            after.controls_for(Some(market)),
        );
        for (field, counts) in FIELDS {
            if json_b[field] == json_a[field] {
                // A change of the default alone is reported as the default's.
                continue;
            }
            // A counting limit of its own is one more limit; another control's own value is
            // what applies in the market instead of the default.
            let (b, a) = if counts {
                (own_b, own_a)
            } else {
                (&eff_b, &eff_a)
            };
            // None: the market's own value went to or from the default's, nothing in force
            // changed.
            let Some(d) = direction(field, b, a) else {
                continue;
            };
            out.push((
                "marketControls",
                format!("{market} {field} {}", text(&json_b, field)),
                format!("{market} {field} {}", text(&json_a, field)),
                d,
            ));
        }
    }
    out
}

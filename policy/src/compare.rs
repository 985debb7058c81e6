//! How one mandate differs from another, field by field, and whether each change narrows or
//! widens the agent's authority. The compliance officer reads it before approving a new
//! version, and the CA acts on it: a version that narrows anything retires the certificates
//! of older versions at once (their extension carries the wider limits); one that only widens
//! lets them run out a grace period. The order per field is in docs/MANDATE.md.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::{Action, Mandate, Money, OnBreach, Threshold, TradingHours, Weekday};

/// Which way a field moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The agent may do less (or the CA reacts harder).
    Narrowed,
    /// The agent may do more (or the CA reacts more softly).
    Widened,
    /// Neither contains the other (e.g. one market swapped for another, another currency,
    /// another operator): treated as narrowing, since the old value allows something the new
    /// one does not.
    Changed,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = MandateChange)]
pub struct FieldChange {
    /// The JSON name, e.g. `maxTransactionSize`.
    pub field: &'static str,
    /// The old value as text (`unlimited` / `any` when absent).
    pub before: String,
    /// The new value as text.
    pub after: String,
    /// Which way it moved (`changed`: neither contains the other; treated as narrowing).
    pub direction: Direction,
}

/// Every field in which `after` differs from `before`, in the order of the mandate's fields.
pub fn compare(before: &Mandate, after: &Mandate) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field, before: String, after: String, direction| {
        out.push(FieldChange {
            field,
            before,
            after,
            direction,
        });
    };
    if before.operator != after.operator {
        push(
            "operator",
            before.operator.clone(),
            after.operator.clone(),
            Direction::Changed,
        );
    }
    if before.operator_regulator_id != after.operator_regulator_id {
        push(
            "operatorRegulatorId",
            opt_text(&before.operator_regulator_id, "none"),
            opt_text(&after.operator_regulator_id, "none"),
            Direction::Changed,
        );
    }
    for (field, b, a) in [
        (
            "maxTransactionSize",
            &before.max_transaction_size,
            &after.max_transaction_size,
        ),
        (
            "maxDailyVolume",
            &before.max_daily_volume,
            &after.max_daily_volume,
        ),
    ] {
        if let Some(d) = money(b, a) {
            push(field, money_text(b), money_text(a), d);
        }
    }
    for (field, b, a) in [
        (
            "allowedMarkets",
            &before.allowed_markets,
            &after.allowed_markets,
        ),
        (
            "allowedCounterparties",
            &before.allowed_counterparties,
            &after.allowed_counterparties,
        ),
        (
            "allowedRegions",
            &before.allowed_regions,
            &after.allowed_regions,
        ),
    ] {
        let lower = |l: &Option<Vec<String>>| {
            l.as_ref().map(|v| {
                v.iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect::<BTreeSet<_>>()
            })
        };
        if let Some(d) = sets(&lower(b), &lower(a)) {
            push(field, list_text(b), list_text(a), d);
        }
    }
    if let Some(d) = hours(&before.trading_hours, &after.trading_hours) {
        push(
            "tradingHours",
            hours_text(&before.trading_hours),
            hours_text(&after.trading_hours),
            d,
        );
    }
    let actions = |l: &Option<Vec<Action>>| {
        l.as_ref()
            .map(|v| v.iter().copied().collect::<BTreeSet<_>>())
    };
    if let Some(d) = sets(
        &actions(&before.permitted_actions),
        &actions(&after.permitted_actions),
    ) {
        let text = |l: &Option<Vec<Action>>| match l {
            None => "any".to_owned(),
            Some(v) => v.iter().map(Action::as_str).collect::<Vec<_>>().join(","),
        };
        push(
            "permittedActions",
            text(&before.permitted_actions),
            text(&after.permitted_actions),
            d,
        );
    }
    // Lower thresholds, fewer failures and a shorter revocation timeout are stricter.
    for (field, b, a) in [
        (
            "circuitBreakerThreshold",
            before.circuit_breaker_threshold,
            after.circuit_breaker_threshold,
        ),
        (
            "autoRevokeThreshold",
            before.auto_revoke_threshold,
            after.auto_revoke_threshold,
        ),
    ] {
        if let Some(d) = lower_is_narrower(b, a) {
            push(field, threshold_text(b), threshold_text(a), d);
        }
    }
    for (field, b, a) in [
        (
            "maxConsecutiveFailures",
            before.max_consecutive_failures,
            after.max_consecutive_failures,
        ),
        (
            "revocationTimeout",
            before.revocation_timeout_secs,
            after.revocation_timeout_secs,
        ),
    ] {
        if let Some(d) = lower_is_narrower(b, a) {
            push(field, b.to_string(), a.to_string(), d);
        }
    }
    // Version-2 controls, each with its own order (compare_controls.rs).
    for (field, b, a, d) in crate::compare_controls::changes(before, after) {
        push(field, b, a, d);
    }
    if before.on_breach != after.on_breach {
        let d = if after.on_breach == OnBreach::Revoke {
            Direction::Narrowed
        } else {
            Direction::Widened
        };
        push(
            "onBreach",
            before.on_breach.as_str().to_owned(),
            after.on_breach.as_str().to_owned(),
            d,
        );
    }
    out
}

/// Whether any change takes authority away (narrowed or changed).
pub fn narrows(changes: &[FieldChange]) -> bool {
    changes.iter().any(|c| c.direction != Direction::Widened)
}

pub(crate) fn lower_is_narrower<T: PartialOrd>(before: T, after: T) -> Option<Direction> {
    if after < before {
        Some(Direction::Narrowed)
    } else if after > before {
        Some(Direction::Widened)
    } else {
        None
    }
}

/// A limit that is absent means unlimited.
fn money(before: &Option<Money>, after: &Option<Money>) -> Option<Direction> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(Direction::Narrowed),
        (Some(_), None) => Some(Direction::Widened),
        (Some(b), Some(a)) if b.currency != a.currency => Some(Direction::Changed),
        (Some(b), Some(a)) => lower_is_narrower(b.amount, a.amount),
    }
}

/// A list that is absent means anything.
pub(crate) fn sets<T: Ord>(
    before: &Option<BTreeSet<T>>,
    after: &Option<BTreeSet<T>>,
) -> Option<Direction> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(Direction::Narrowed),
        (Some(_), None) => Some(Direction::Widened),
        (Some(b), Some(a)) if a == b => None,
        (Some(b), Some(a)) if a.is_subset(b) => Some(Direction::Narrowed),
        (Some(b), Some(a)) if a.is_superset(b) => Some(Direction::Widened),
        _ => Some(Direction::Changed),
    }
}

/// Trading hours compare as the sets of minutes of the week they open, in one time zone;
/// another time zone is a change (the sets would shift with daylight saving time).
fn hours(before: &Option<TradingHours>, after: &Option<TradingHours>) -> Option<Direction> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(Direction::Narrowed),
        (Some(_), None) => Some(Direction::Widened),
        (Some(b), Some(a)) if b == a => None,
        (Some(b), Some(a)) if b.time_zone != a.time_zone => Some(Direction::Changed),
        (Some(b), Some(a)) => sets(&Some(week_minutes(b)), &Some(week_minutes(a))),
    }
}

/// The minutes of the week (Monday 00:00 = 0) a window is open.
fn week_minutes(h: &TradingHours) -> BTreeSet<u32> {
    const WEEK: u32 = 7 * 1440;
    let (start, end) = (u32::from(h.start.minutes()), u32::from(h.end.minutes()));
    let length = if start < end {
        end - start
    } else {
        1440 - start + end
    };
    let mut out = BTreeSet::new();
    for day in &h.weekdays {
        let offset = Weekday::ALL.iter().position(|d| d == day).unwrap_or(0) as u32 * 1440;
        for m in 0..length {
            out.insert((offset + start + m) % WEEK);
        }
    }
    out
}

fn opt_text(v: &Option<String>, none: &str) -> String {
    v.clone().unwrap_or_else(|| none.to_owned())
}

fn money_text(m: &Option<Money>) -> String {
    m.as_ref()
        .map_or_else(|| "unlimited".to_owned(), ToString::to_string)
}

fn list_text(l: &Option<Vec<String>>) -> String {
    l.as_ref().map_or_else(|| "any".to_owned(), |v| v.join(","))
}

fn hours_text(h: &Option<TradingHours>) -> String {
    match h {
        None => "any time".to_owned(),
        Some(h) => {
            let days: Vec<&str> = h.weekdays.iter().map(Weekday::as_str).collect();
            format!("{}-{} {} {}", h.start, h.end, h.time_zone, days.join(","))
        }
    }
}

fn threshold_text(t: Threshold) -> String {
    t.to_string()
}

//! Pre-trade decisions: is this order inside the agent's mandate, now? Pure: the caller brings
//! the agent's state (daily volume so far, failures in a row, risk score, revocation) from the
//! store, and gets every reason for a refusal, each with the limit and what was asked.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::book::BookState;
use crate::{
    Action, Amount, Controls, Enforcement, Limit, Mandate, Money, OrderType, PositionLimit,
    TradingHours, Weekday,
};

/// What the agent wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The kind of action.
    pub action: Action,
    /// Instrument or market, e.g. `EUR_USD`.
    pub market: Option<String>,
    /// Counterparty or venue.
    pub counterparty: Option<String>,
    /// Jurisdiction, e.g. `EU`.
    pub region: Option<String>,
    /// Size of this order.
    pub size: Option<Money>,
    /// When, unix seconds.
    pub at: i64,
    /// Quantity, in the instrument's unit.
    pub quantity: Option<Amount>,
    /// Limit (or stop-limit) price.
    pub price: Option<Amount>,
    /// Market, limit, stop or stop-limit.
    pub order_type: Option<OrderType>,
    /// New, amend or cancel (default new).
    pub intent: Intent,
    /// Buy or sell, if said.
    pub side: Option<crate::Side>,
}

/// The reference price of the order's market, as the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reference {
    /// The caller does not keep reference prices (a relying party): collars are not checked.
    #[default]
    NotChecked,
    /// None was ever given for the market: a collar fails closed.
    Missing,
    /// The price and when it was taken (unix s).
    Known {
        /// The price.
        price: Amount,
        /// When it was taken, unix seconds.
        at: i64,
    },
}

/// How old a reference price may be when the mandate does not say (`referencePriceMaxAge`).
pub const DEFAULT_REFERENCE_PRICE_MAX_AGE: u32 = 60;

/// What an order message does (read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// A new order.
    #[default]
    New,
    /// A change to a resting order.
    Amend,
    /// The cancellation of a resting order: it takes risk away, so no limit on the order itself
    /// applies to it (only the message rate will).
    Cancel,
}

crate::case_insensitive_enum!(Intent, [Intent::New, Intent::Amend, Intent::Cancel]);

impl Intent {
    /// `new`, `amend` or `cancel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::New => "new",
            Intent::Amend => "amend",
            Intent::Cancel => "cancel",
        }
    }
}

/// What the store knows of the agent right now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentState {
    /// Volume the agent reported for the current trading day (see [`trading_day_start`]), in
    /// the currency of the mandate's `maxDailyVolume`.
    pub daily_volume: Option<Amount>,
    /// Failed actions in a row, as events reported them.
    pub consecutive_failures: u32,
    /// The latest anomaly score, 0 to 1, once a baseline is approved.
    pub risk_score: Option<f64>,
    /// The agent's certificate is revoked (or the kill switch pulled).
    pub certificate_revoked: bool,
    /// The agent holds no valid certificate (none issued yet, or all expired) and none was
    /// revoked: it cannot prove who it is to anyone, so it may not act. False where the caller
    /// checked the certificate itself (a relying party verifying a presented certificate).
    pub no_valid_certificate: bool,
    /// The reference price of the order's market, for price collars.
    pub reference: Reference,
    /// The net realised loss of the current trading day so far, in the currency of
    /// `maxDailyLoss` (zero after a net profit); none where the caller does not keep it.
    pub daily_loss: Option<Amount>,
    /// The agent's open orders, position and order flow in the order's market; none where the
    /// caller does not keep them (a relying party), and then the controls that need them are
    /// not checked.
    pub book: Option<BookState>,
}

/// One reason for a refusal (or, for a soft limit, a breach that lets the order through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Machine-readable code, e.g. `exceeds_scope_size`.
    pub code: &'static str,
    /// The limit, as text, e.g. `50000 EUR`.
    pub limit: String,
    /// What was asked, as text.
    pub requested: String,
    /// Hard: the order is refused. Soft: it goes through, flagged.
    pub enforcement: Enforcement,
}

impl Denial {
    /// Whether this refuses the order.
    pub fn is_hard(&self) -> bool {
        self.enforcement == Enforcement::Hard
    }
}

fn deny(code: &'static str, limit: impl ToString, requested: impl ToString) -> Denial {
    Denial {
        code,
        limit: limit.to_string(),
        requested: requested.to_string(),
        enforcement: Enforcement::Hard,
    }
}

fn breach<T>(
    limit: &Limit<T>,
    code: &'static str,
    shown: impl ToString,
    requested: impl ToString,
) -> Denial {
    Denial {
        enforcement: limit.enforcement,
        ..deny(code, shown, requested)
    }
}

fn listed(allowed: &Option<Vec<String>>, asked: &Option<String>) -> bool {
    match (allowed, asked) {
        (None, _) => true,
        (Some(list), Some(v)) => list.iter().any(|a| a.eq_ignore_ascii_case(v)),
        (Some(_), None) => false,
    }
}

/// Every reason `order` is out of `mandate` given `state`; empty: allowed.
pub fn decide(mandate: &Mandate, order: &Order, state: &AgentState) -> Vec<Denial> {
    let mut out = Vec::new();
    if state.certificate_revoked {
        out.push(deny("certificate_revoked", "valid certificate", "revoked"));
    } else if state.no_valid_certificate {
        out.push(deny("no_valid_certificate", "valid certificate", "none"));
    }
    if let Some(actions) = &mandate.permitted_actions
        && !actions.contains(&order.action)
    {
        let names: Vec<&str> = actions.iter().map(Action::as_str).collect();
        out.push(deny(
            "action_not_permitted",
            names.join(","),
            order.action.as_str(),
        ));
    }
    if let Some(size) = &order.size {
        let limits = [&mandate.max_transaction_size, &mandate.max_daily_volume];
        if let Some(limit) = limits
            .into_iter()
            .flatten()
            .find(|l| l.currency != size.currency)
        {
            out.push(deny(
                "currency_mismatch",
                format!("amounts in {}", limit.currency),
                &size.currency,
            ));
        }
    }
    // A cancellation takes risk away: no size, volume, hours, score or streak limit refuses it
    // (a bot told to cancel after hours, or by the kill function, must be able to).
    let cancel = order.intent == Intent::Cancel;
    if let (false, Some(max), Some(size)) = (cancel, &mandate.max_transaction_size, &order.size)
        && max.currency == size.currency
        && size.amount > max.amount
    {
        out.push(deny("exceeds_scope_size", max, size));
    }
    if !listed(&mandate.allowed_markets, &order.market) {
        out.push(deny(
            "market_not_allowed",
            mandate
                .allowed_markets
                .as_deref()
                .unwrap_or_default()
                .join(","),
            order.market.as_deref().unwrap_or("(none)"),
        ));
    }
    if !listed(&mandate.allowed_counterparties, &order.counterparty) {
        out.push(deny(
            "counterparty_not_allowed",
            mandate
                .allowed_counterparties
                .as_deref()
                .unwrap_or_default()
                .join(","),
            order.counterparty.as_deref().unwrap_or("(none)"),
        ));
    }
    if !listed(&mandate.allowed_regions, &order.region) {
        out.push(deny(
            "region_not_allowed",
            mandate
                .allowed_regions
                .as_deref()
                .unwrap_or_default()
                .join(","),
            order.region.as_deref().unwrap_or("(none)"),
        ));
    }
    if let (false, Some(cap), Some(size)) = (cancel, &mandate.max_daily_volume, &order.size) {
        let so_far = state.daily_volume.unwrap_or_default();
        let total = so_far.checked_add(size.amount);
        if cap.currency == size.currency && total.is_none_or(|t| t > cap.amount) {
            let requested = match total {
                Some(t) => format!("{t} {}", size.currency),
                None => format!("more than {cap}"),
            };
            out.push(deny("daily_volume_cap_exceeded", cap, requested));
        }
    }
    if let (false, Some(hours)) = (cancel, &mandate.trading_hours) {
        match within_hours(hours, order.at) {
            Ok(true) => {}
            Ok(false) => out.push(deny(
                "outside_trading_hours",
                window_text(hours),
                local_text(hours, order.at),
            )),
            Err(why) => out.push(deny("outside_trading_hours", window_text(hours), why)),
        }
    }
    if let (false, Some(score)) = (cancel, state.risk_score)
        && score >= mandate.circuit_breaker_threshold.as_f64()
    {
        out.push(deny(
            "circuit_breaker_active",
            mandate.circuit_breaker_threshold.as_f64(),
            format!("{score:.4}"),
        ));
    }
    if !cancel && state.consecutive_failures >= mandate.max_consecutive_failures {
        out.push(deny(
            "too_many_consecutive_failures",
            mandate.max_consecutive_failures,
            state.consecutive_failures,
        ));
    }
    let controls = mandate.controls_for(order.market.as_deref());
    if let (Some(limit), Some(loss)) = (&mandate.controls.max_daily_loss, state.daily_loss)
        && order.intent != Intent::Cancel
        && loss >= limit.value.amount
    {
        out.push(breach(
            limit,
            "daily_loss_limit_reached",
            &limit.value,
            format!("{loss} {} lost today", limit.value.currency),
        ));
    }
    order_controls(&controls, order, &mut out);
    price_collar(&controls, order, state.reference, &mut out);
    if let Some(book) = &state.book {
        book_controls(mandate, &controls, order, book, state.reference, &mut out);
    }
    out
}

/// The controls that need the agent's book and order flow (RTS 6 Art. 15): open orders,
/// net position, short selling, the order-to-trade ratio and a market's own daily loss. A
/// counting limit set as the default counts every market together; a market's own counts that
/// market, in addition. A cancellation takes risk away and is never refused by them.
fn book_controls(
    mandate: &Mandate,
    c: &Controls,
    order: &Order,
    book: &BookState,
    reference: Reference,
    out: &mut Vec<Denial>,
) {
    if order.intent == Intent::Cancel {
        return;
    }
    let market = order.market.as_deref().unwrap_or("(none)");
    let own = order
        .market
        .as_deref()
        .and_then(|m| mandate.own_controls(m));
    if order.intent == Intent::New {
        let scopes = [
            (
                mandate.controls.max_open_orders.as_ref(),
                book.open_orders,
                String::new(),
            ),
            (
                own.and_then(|o| o.max_open_orders.as_ref()),
                book.open_orders_market,
                format!(" in {market}"),
            ),
        ];
        for (limit, open, scope) in scopes {
            if let Some(limit) = limit
                && u64::from(open) + 1 > u64::from(limit.value)
            {
                out.push(breach(
                    limit,
                    "max_open_orders_reached",
                    format!("{} open orders{scope}", limit.value),
                    format!("{} open orders{scope}", u64::from(open) + 1),
                ));
            }
        }
    }
    let ratios = [
        (
            mandate.controls.max_order_to_trade_ratio.as_ref(),
            book.flow,
            String::new(),
        ),
        (
            own.and_then(|o| o.max_order_to_trade_ratio.as_ref()),
            book.flow_market,
            format!(" in {market}"),
        ),
    ];
    for (limit, (orders, trades), scope) in ratios {
        if let Some(limit) = limit {
            let r = limit.value;
            let orders = orders.saturating_add(1);
            if orders > u64::from(r.max_ratio).saturating_mul(trades.max(1)) {
                out.push(breach(
                    limit,
                    "order_to_trade_ratio_exceeded",
                    format!(
                        "{} orders per trade over {} s{scope}",
                        r.max_ratio, r.window_secs
                    ),
                    format!(
                        "{orders} orders, {trades} trades over {} s{scope}",
                        r.window_secs
                    ),
                ));
            }
        }
    }
    if let Some(limit) = own.and_then(|o| o.max_daily_loss.as_ref())
        && book.market_daily_loss >= limit.value.amount
    {
        out.push(breach(
            limit,
            "daily_loss_limit_reached",
            format!("{} in {market}", limit.value),
            format!(
                "{} {} lost today in {market}",
                book.market_daily_loss, limit.value.currency
            ),
        ));
    }
    position_controls(c, order, book, reference, out);
}

/// The net position the order could leave in the worst case: the position, every resting
/// order of its side and the order itself executed (minor units, long positive).
fn worst_position(order: &Order, book: &BookState) -> Option<i128> {
    let side = order.side?;
    let q = i128::try_from(order.quantity?.as_minor_units()).ok()?;
    let resting = |a: Amount| i128::try_from(a.as_minor_units()).unwrap_or(i128::MAX);
    Some(match side {
        crate::Side::Buy => book
            .position
            .saturating_add(resting(book.open_buy))
            .saturating_add(q),
        crate::Side::Sell => book
            .position
            .saturating_sub(resting(book.open_sell))
            .saturating_sub(q),
    })
}

/// `maxNetPosition` and `shortSellingAllowed` for an order, on its worst case; an order that
/// brings the position closer to flat is never refused by them.
fn position_controls(
    c: &Controls,
    order: &Order,
    book: &BookState,
    reference: Reference,
    out: &mut Vec<Denial>,
) {
    if c.max_net_position.is_none() && c.short_selling_allowed != Some(false) {
        return;
    }
    let market = order.market.as_deref().unwrap_or("(none)");
    let Some(worst) = worst_position(order, book) else {
        // Without a side and a quantity nothing can be projected: refused, as a quantity limit
        // refuses an order without a quantity.
        let limit = c
            .max_net_position
            .as_ref()
            .map_or("no short position".to_owned(), |l| {
                position_limit_text(&l.value)
            });
        out.push(deny(
            "exceeds_net_position",
            limit,
            "(an order without side or quantity)",
        ));
        return;
    };
    let grows = worst.unsigned_abs() > book.position.unsigned_abs();
    if c.short_selling_allowed == Some(false) && worst < 0 && worst < book.position.min(0) {
        out.push(deny(
            "short_selling_not_allowed",
            "no short position",
            format!("{} {market}", crate::book::position_text(worst)),
        ));
    }
    let Some(limit) = &c.max_net_position else {
        return;
    };
    if !grows {
        return;
    }
    match &limit.value {
        PositionLimit::Quantity(max) => {
            if worst.unsigned_abs() > max.as_minor_units() {
                out.push(breach(
                    limit,
                    "exceeds_net_position",
                    position_limit_text(&limit.value),
                    format!("{} {market}", crate::book::position_text(worst)),
                ));
            }
        }
        PositionLimit::Value(max) => {
            let max_age = c
                .reference_price_max_age
                .unwrap_or(DEFAULT_REFERENCE_PRICE_MAX_AGE);
            let price = match reference {
                Reference::NotChecked => return,
                Reference::Known { price, at }
                    if order.at.saturating_sub(at) <= i64::from(max_age) =>
                {
                    price
                }
                Reference::Known { at, .. } => {
                    out.push(deny(
                        "reference_price_stale",
                        format!("a reference price at most {max_age} s old"),
                        format!("{} s old", order.at.saturating_sub(at)),
                    ));
                    return;
                }
                Reference::Missing => {
                    out.push(deny(
                        "reference_price_stale",
                        format!("a reference price at most {max_age} s old"),
                        "none",
                    ));
                    return;
                }
            };
            let value = worst
                .unsigned_abs()
                .checked_mul(price.as_minor_units())
                .map(|v| v / 100_000_000)
                .and_then(|v| Amount::from_minor_units(v).ok());
            if value.is_none_or(|v| v > max.amount) {
                let shown = value.map_or_else(
                    || format!("more than {max}"),
                    |v| format!("{v} {}", max.currency),
                );
                out.push(breach(
                    limit,
                    "exceeds_net_position",
                    position_limit_text(&limit.value),
                    format!("{shown} in {market} at {price}"),
                ));
            }
        }
    }
}

/// `5 (quantity)` or `100000 EUR`.
fn position_limit_text(l: &PositionLimit) -> String {
    match l {
        PositionLimit::Quantity(q) => format!("{q} net"),
        PositionLimit::Value(m) => format!("{m} net"),
    }
}

/// `price` × (10000 ± `bps`) / 10000, rounded towards the reference (the strict side).
fn collar_bound(price: Amount, bps: u32, up: bool) -> Option<Amount> {
    let p = price.as_minor_units();
    let bps = u128::from(bps);
    let units = if up {
        p.checked_mul(10_000 + bps)? / 10_000
    } else {
        p.checked_mul(10_000u128.saturating_sub(bps))?
            .div_ceil(10_000)
    };
    Amount::from_minor_units(units).ok()
}

/// The price collar (RTS 6 Art. 15(1)): a priced order (limit, stop-limit) must lie within the
/// collar around the market's reference price; a reference that is missing or older than
/// `referencePriceMaxAge` fails closed, whatever the collar's enforcement.
fn price_collar(c: &Controls, order: &Order, reference: Reference, out: &mut Vec<Denial>) {
    let Some(collar) = &c.price_collar else {
        return;
    };
    if order.intent == Intent::Cancel {
        return;
    }
    let Some(price) = order.price else {
        if matches!(
            order.order_type,
            Some(OrderType::Limit) | Some(OrderType::StopLimit)
        ) {
            out.push(deny("price_outside_collar", "a priced order", "(no price)"));
        }
        return;
    };
    let max_age = c
        .reference_price_max_age
        .unwrap_or(DEFAULT_REFERENCE_PRICE_MAX_AGE);
    let (reference, at) = match reference {
        Reference::NotChecked => return,
        Reference::Missing => {
            out.push(deny(
                "reference_price_stale",
                format!("a reference price at most {max_age} s old"),
                "none",
            ));
            return;
        }
        Reference::Known { price, at } => (price, at),
    };
    let age = order.at.saturating_sub(at);
    if age > i64::from(max_age) {
        out.push(deny(
            "reference_price_stale",
            format!("a reference price at most {max_age} s old"),
            format!("{age} s old"),
        ));
        return;
    }
    let buy = order.side != Some(crate::Side::Sell);
    let sell = order.side != Some(crate::Side::Buy);
    let high = collar_bound(reference, collar.value.buy_bps, true);
    let low = collar_bound(reference, collar.value.sell_bps, false);
    let above = buy && high.is_none_or(|h| price > h);
    let below = sell && low.is_some_and(|l| price < l);
    if above || below {
        let shown = match (high, low) {
            (Some(h), Some(l)) => format!("{l} to {h} (reference {reference})"),
            _ => format!("around {reference}"),
        };
        out.push(breach(collar, "price_outside_collar", shown, price));
    }
}

/// The version-2 controls that need nothing but the order: its quantity and its type. A
/// cancellation takes risk away and is not held to them.
fn order_controls(c: &Controls, order: &Order, out: &mut Vec<Denial>) {
    if order.intent == Intent::Cancel {
        return;
    }
    if let Some(limit) = &c.max_order_quantity {
        match &order.quantity {
            Some(q) if *q > limit.value => {
                out.push(breach(limit, "exceeds_order_quantity", limit.value, q))
            }
            Some(_) => {}
            // A quantity limit cannot be checked without a quantity: refused, as a market
            // list refuses an order without a market.
            None => out.push(breach(
                limit,
                "exceeds_order_quantity",
                limit.value,
                "(none)",
            )),
        }
    }
    if let Some(types) = &c.allowed_order_types {
        let ok = order.order_type.is_some_and(|t| types.contains(&t));
        if !ok {
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            out.push(deny(
                "order_type_not_allowed",
                names.join(","),
                order.order_type.map_or("(none)", OrderType::as_str),
            ));
        }
    }
}

fn window_text(h: &TradingHours) -> String {
    let days: Vec<&str> = h.weekdays.iter().map(Weekday::as_str).collect();
    format!("{}-{} {} {}", h.start, h.end, h.time_zone, days.join(","))
}

fn local_text(h: &TradingHours, at: i64) -> String {
    match local(h, at) {
        Ok((day, minutes)) => format!(
            "{} {:02}:{:02} {}",
            day,
            minutes / 60,
            minutes % 60,
            h.time_zone
        ),
        Err(e) => e,
    }
}

/// The weekday and minute of the day of `at` in the window's time zone.
fn local(h: &TradingHours, at: i64) -> Result<(Weekday, u16), String> {
    let tz =
        TimeZone::get(&h.time_zone).map_err(|_| format!("unknown time zone {:?}", h.time_zone))?;
    let ts = Timestamp::from_second(at).map_err(|_| format!("time {at} out of range"))?;
    let dt = ts.to_zoned(tz).datetime();
    let day = Weekday::ALL[usize::from(dt.weekday().to_monday_zero_offset().unsigned_abs())];
    let minutes = u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap_or(0);
    Ok((day, minutes))
}

/// True if `at` falls in a window: on a listed weekday between start and end, where a window
/// that crosses midnight belongs to the day it opens.
pub fn within_hours(h: &TradingHours, at: i64) -> Result<bool, String> {
    let (day, m) = local(h, at)?;
    let (start, end) = (h.start.minutes(), h.end.minutes());
    let open_on = |d: Weekday| h.weekdays.contains(&d);
    let previous = Weekday::ALL[(Weekday::ALL.iter().position(|d| *d == day).unwrap_or(0) + 6) % 7];
    Ok(if start < end {
        open_on(day) && start <= m && m < end
    } else {
        (open_on(day) && m >= start) || (open_on(previous) && m < end)
    })
}

/// Unix seconds of the start of the trading day `at` falls in: local midnight in the mandate's
/// time zone (UTC without trading hours). Daily volume counts events from there.
pub fn trading_day_start(mandate: &Mandate, at: i64) -> i64 {
    let tz = mandate
        .trading_hours
        .as_ref()
        .and_then(|h| TimeZone::get(&h.time_zone).ok())
        .unwrap_or(TimeZone::UTC);
    Timestamp::from_second(at)
        .ok()
        .and_then(|ts| ts.to_zoned(tz).start_of_day().ok())
        .map_or(at - at.rem_euclid(86_400), |z| z.timestamp().as_second())
}

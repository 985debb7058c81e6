use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mandate_config::Config;
use mandate_policy::{AgentState, Amount, Baseline, Currency, Mandate, Weights};
use mandate_store::{AgentCounters, AgentStatus, Store};
use serde::Serialize;
use serde_json::Value;

use crate::CaError;

/// Minutes of event buckets kept per agent: the frequency feature looks back one hour.
const KEEP_MINUTES: i64 = 120;
/// Days of daily volumes kept per agent: events may be reported up to 35 days late.
pub(crate) const VOLUME_DAYS: i64 = 36;

/// How trades add up to daily volumes: the days start at local midnight of `time_zone` (UTC
/// without trading hours), and only trades in `currency` (or without one) count.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VolumeRule {
    time_zone: Option<String>,
    currency: Option<Currency>,
    loss_currency: Option<Currency>,
}

impl VolumeRule {
    fn of(mandate: Option<&Mandate>) -> VolumeRule {
        VolumeRule {
            time_zone: mandate
                .and_then(|m| m.trading_hours.as_ref())
                .map(|h| h.time_zone.clone()),
            currency: mandate
                .and_then(|m| m.max_daily_volume.as_ref())
                .map(|c| c.currency.clone()),
            loss_currency: mandate
                .and_then(|m| m.controls.max_daily_loss.as_ref())
                .map(|l| l.value.currency.clone()),
        }
    }
}

/// Whether a successful trade in `currency` adds to the daily volume capped in `cap`.
pub(crate) fn counts_toward(cap: Option<&Currency>, currency: Option<&Currency>) -> bool {
    match (cap, currency) {
        (Some(cap), Some(cur)) => cap == cur,
        _ => true,
    }
}

/// The start of the trading day `at` falls in under `mandate` (UTC days without one).
pub(crate) fn day_of(mandate: Option<&Mandate>, at: i64) -> i64 {
    match mandate {
        Some(m) => mandate_policy::trading_day_start(m, at),
        None => at - at.rem_euclid(86_400),
    }
}

/// An order message let through: unix ms, its market, its client order id and intent.
type Message = (i64, Option<String>, Option<(String, &'static str)>);

/// One agent's state, as the pre-trade check and the scorer need it.
#[derive(Debug)]
pub(crate) struct AgentLive {
    /// The [`Behaviour`] generation the static parts were loaded at.
    generation: u64,
    pub(crate) status: AgentStatus,
    /// The agent's organization (reference prices are per organization).
    pub(crate) organization: String,
    pub(crate) mandate: Option<Arc<Mandate>>,
    /// The agent is suspended (kill switch).
    suspended: bool,
    /// At least one of the agent's certificates is revoked.
    any_revoked: bool,
    /// When the agent's longest-lived valid certificate expires (unix s); none without one.
    valid_until: Option<i64>,
    pub(crate) baseline: Option<(i64, Arc<Baseline>)>,
    /// None before the first event.
    pub(crate) counters: Option<AgentCounters>,
    /// Volume traded per trading day (start of the day, unix s → amount) over the last
    /// [`VOLUME_DAYS`] days, counted under `volume_rule`: every day an agent traded in keeps
    /// its own total, so no late or early report moves the day that counts.
    pub(crate) volumes: BTreeMap<i64, Amount>,
    /// Net realised P&L per trading day (start of the day → signed minor units) in the currency
    /// of `maxDailyLoss`, over the same days as `volumes` and counted under the same rule.
    pub(crate) pnl: BTreeMap<i64, i128>,
    /// The rule `volumes` was counted under (the mandate's time zone and cap currency); a new
    /// mandate with another rule recounts from the store.
    volume_rule: Option<VolumeRule>,
    /// Times of the successful executions of the last day, per (market, side): the window of
    /// the repeated-execution throttle (RTS 6 Art. 15(3)); loaded from the store.
    pub(crate) executions: BTreeMap<(String, String), std::collections::VecDeque<i64>>,
    /// Order messages let through in the last second: (unix ms, market, client order id and
    /// intent), for `maxMessagesPerSecond`. In memory: a second does not outlive a restart.
    messages: std::collections::VecDeque<Message>,
    /// Events per minute (unix minute → count), the last [`KEEP_MINUTES`] minutes.
    minutes: BTreeMap<i64, u32>,
    /// Open orders and net positions, from the order events (all of them, replayed on load).
    pub(crate) book: mandate_policy::Book,
    /// Order messages and trades reported per second over the last day (unix s → market in
    /// lower case, `""` for every market → (messages, trades)): the order-to-trade ratio.
    flow: BTreeMap<i64, HashMap<String, (u32, u32)>>,
    /// Net realised P&L per trading day, market (lower case) and currency (`""` for none), in
    /// minor units: a market's own `maxDailyLoss`.
    pnl_market: BTreeMap<(i64, String, String), i128>,
    /// The agent's latest limit overrides (RTS 6 Art. 15(6)), ended and expired ones included:
    /// an event is judged under those in force at its own time.
    pub(crate) overrides: Vec<mandate_store::OverrideRow>,
}

impl AgentLive {
    /// Nothing known yet, at `generation`.
    fn empty(generation: u64) -> AgentLive {
        AgentLive {
            generation,
            status: AgentStatus::PendingApproval,
            mandate: None,
            organization: String::new(),
            suspended: false,
            any_revoked: false,
            valid_until: None,
            baseline: None,
            volumes: BTreeMap::new(),
            pnl: BTreeMap::new(),
            volume_rule: None,
            executions: BTreeMap::new(),
            messages: std::collections::VecDeque::new(),
            counters: None,
            minutes: BTreeMap::new(),
            book: mandate_policy::Book::default(),
            flow: BTreeMap::new(),
            pnl_market: BTreeMap::new(),
            overrides: Vec::new(),
        }
    }

    /// The approved mandate with the overrides in force at `at` applied (none without an
    /// approved mandate).
    pub(crate) fn mandate_at(&self, at: i64) -> Option<Arc<Mandate>> {
        let base = self.mandate.clone()?;
        let mut active = self.overrides.iter().filter(|o| o.in_force(at)).peekable();
        if active.peek().is_none() {
            return Some(base);
        }
        let mut m = (*base).clone();
        for o in active {
            let Ok(value) = serde_json::from_str(&o.value_json) else {
                continue;
            };
            let lo = mandate_policy::LimitOverride {
                limit: o.limit_name.clone(),
                market: o.market.clone(),
                value,
            };
            // Checked when granted; one that no longer fits the approved mandate is left out.
            match m.with_override(&lo) {
                Ok(next) => m = next,
                Err(e) => {
                    tracing::warn!(override_id = o.id, error = %e, "limit override left out");
                }
            }
        }
        Some(Arc::new(m))
    }

    /// Adds a trade of `size` to the volume of the trading day starting at `day`, and forgets
    /// days older than [`VOLUME_DAYS`] before it.
    pub(crate) fn add_volume(&mut self, day: i64, size: Amount) {
        let v = self.volumes.entry(day).or_default();
        *v = v.checked_add(size).unwrap_or(Amount::MAX);
        let newest = self.volumes.last_key_value().map_or(day, |(k, _)| *k);
        while let Some((&oldest, _)) = self.volumes.first_key_value() {
            if oldest >= newest - VOLUME_DAYS * 86_400 {
                break;
            }
            self.volumes.pop_first();
        }
    }

    /// Counts a successful execution of `market` on `side` at `at`, and forgets those older
    /// than a day (the longest throttle window).
    pub(crate) fn note_execution(&mut self, market: &str, side: &str, at: i64) {
        let q = self
            .executions
            .entry((market.to_ascii_lowercase(), side.to_owned()))
            .or_default();
        let pos = q.partition_point(|t| *t <= at);
        q.insert(pos, at);
        let newest = q.back().copied().unwrap_or(at);
        while q.front().is_some_and(|t| *t < newest - 86_400) {
            q.pop_front();
        }
    }

    /// Successful executions of `market` on `side` in `[from, to]`.
    pub(crate) fn executions_within(&self, market: &str, side: &str, from: i64, to: i64) -> usize {
        self.executions
            .get(&(market.to_ascii_lowercase(), side.to_owned()))
            .map_or(0, |q| q.iter().filter(|t| (from..=to).contains(*t)).count())
    }

    /// Whether the message `id` was counted in the last second, and how many messages (of
    /// `market`, or of every market) were.
    pub(crate) fn messages_in_last_second(
        &mut self,
        now_ms: i64,
        market: Option<&str>,
        id: Option<&(String, &'static str)>,
    ) -> (bool, u64) {
        while self
            .messages
            .front()
            .is_some_and(|(t, _, _)| *t <= now_ms - 1000)
        {
            self.messages.pop_front();
        }
        let seen =
            id.is_some_and(|id| self.messages.iter().any(|(_, _, m)| m.as_ref() == Some(id)));
        let count = self
            .messages
            .iter()
            .filter(|(_, m, _)| {
                market.is_none_or(|x| m.as_deref().is_some_and(|y| y.eq_ignore_ascii_case(x)))
            })
            .count() as u64;
        (seen, count)
    }

    /// Counts an order message let through (once per client order id and intent).
    pub(crate) fn note_message(
        &mut self,
        now_ms: i64,
        market: Option<&str>,
        id: Option<(String, &'static str)>,
    ) {
        if id
            .as_ref()
            .is_some_and(|id| self.messages.iter().any(|(_, _, m)| m.as_ref() == Some(id)))
        {
            return;
        }
        self.messages
            .push_back((now_ms, market.map(str::to_owned), id));
        // Bounded: a second of messages at the largest allowed rate.
        while self.messages.len() > 1_000_000 {
            self.messages.pop_front();
        }
    }

    /// Applies an order event reported at `at` to the book and the order flow.
    pub(crate) fn note_order(&mut self, at: i64, u: &mandate_policy::OrderUpdate<'_>) {
        self.book.apply(u);
        self.note_flow(at, u.market, u.state);
    }

    /// Counts an order event reported at `at` in the order flow.
    fn note_flow(&mut self, at: i64, market: Option<&str>, state: mandate_policy::OrderState) {
        let (messages, trades) = (u32::from(state.is_message()), u32::from(state.is_fill()));
        let second = self.flow.entry(at).or_default();
        for key in [
            String::new(),
            market.unwrap_or_default().to_ascii_lowercase(),
        ] {
            let c = second.entry(key).or_default();
            c.0 = c.0.saturating_add(messages);
            c.1 = c.1.saturating_add(trades);
        }
        let newest = self.flow.last_key_value().map_or(at, |(k, _)| *k);
        while self
            .flow
            .first_key_value()
            .is_some_and(|(k, _)| *k < newest - 86_400)
        {
            self.flow.pop_first();
        }
    }

    /// Order messages and trades reported in `[from, to]` (unix s), in `market` or (none)
    /// every market.
    pub(crate) fn flow_within(&self, market: Option<&str>, from: i64, to: i64) -> (u64, u64) {
        let key = market.unwrap_or_default().to_ascii_lowercase();
        self.flow
            .range(from..=to)
            .filter_map(|(_, m)| m.get(&key))
            .fold((0, 0), |(a, b), (m, t)| {
                (a + u64::from(*m), b + u64::from(*t))
            })
    }

    /// Adds realised P&L reported for `market` in `currency` to its trading day.
    pub(crate) fn add_market_pnl(
        &mut self,
        day: i64,
        market: &str,
        currency: Option<&Currency>,
        pnl: i128,
    ) {
        let key = (
            day,
            market.to_ascii_lowercase(),
            currency.map_or(String::new(), |c| c.as_str().to_owned()),
        );
        *self.pnl_market.entry(key).or_default() += pnl;
        let newest = self.pnl_market.last_key_value().map_or(day, |(k, _)| k.0);
        while self
            .pnl_market
            .first_key_value()
            .is_some_and(|(k, _)| k.0 < newest - VOLUME_DAYS * 86_400)
        {
            self.pnl_market.pop_first();
        }
    }

    /// The net realised loss in `market` on the trading day starting at `day`, counting P&L
    /// in `currency` or without one (zero after a net profit).
    pub(crate) fn market_loss_of(&self, day: i64, market: &str, currency: &Currency) -> Amount {
        let market = market.to_ascii_lowercase();
        let net: i128 = self
            .pnl_market
            .range((day, market.clone(), String::new())..)
            .take_while(|((d, m, _), _)| *d == day && *m == market)
            .filter(|((_, _, c), _)| c.is_empty() || c == currency.as_str())
            .map(|(_, v)| *v)
            .sum();
        if net >= 0 {
            Amount::ZERO
        } else {
            Amount::from_minor_units(net.unsigned_abs()).unwrap_or(Amount::MAX)
        }
    }

    /// What the pre-trade check needs of the book and the order flow for `order` under
    /// `mandate` (an amendment is checked in place of the order it replaces).
    pub(crate) fn book_state(
        &self,
        mandate: &Mandate,
        order: &mandate_policy::Order,
        client_order_id: Option<&str>,
    ) -> mandate_policy::BookState {
        let market = order.market.as_deref().unwrap_or_default();
        let except = (order.intent == mandate_policy::Intent::Amend)
            .then_some(client_order_id)
            .flatten();
        let window = |l: Option<&mandate_policy::Limit<mandate_policy::OrderToTradeRatio>>| {
            l.map(|l| i64::from(l.value.window_secs))
        };
        let own = order
            .market
            .as_deref()
            .and_then(|m| mandate.own_controls(m));
        let flow = window(mandate.controls.max_order_to_trade_ratio.as_ref()).map_or((0, 0), |w| {
            self.flow_within(None, order.at - w + 1, order.at)
        });
        let flow_market = window(own.and_then(|o| o.max_order_to_trade_ratio.as_ref()))
            .map_or((0, 0), |w| {
                self.flow_within(Some(market), order.at - w + 1, order.at)
            });
        let market_daily_loss = own
            .and_then(|o| o.max_daily_loss.as_ref())
            .map_or(Amount::ZERO, |l| {
                self.market_loss_of(day_of(Some(mandate), order.at), market, &l.value.currency)
            });
        let mut open_orders = u32::try_from(self.book.open_orders()).unwrap_or(u32::MAX);
        let mut open_orders_market = self.book.open_orders_in(market);
        if let Some(id) = except
            && self.book.order(id).is_some()
        {
            // An amendment replaces its order: it does not open another.
            open_orders = open_orders.saturating_sub(1);
            open_orders_market = open_orders_market.saturating_sub(1);
        }
        mandate_policy::BookState {
            position: self.book.position(market),
            open_buy: self.book.resting(market, mandate_policy::Side::Buy, except),
            open_sell: self
                .book
                .resting(market, mandate_policy::Side::Sell, except),
            open_orders,
            open_orders_market,
            flow,
            flow_market,
            market_daily_loss,
        }
    }

    /// The net realised loss of the trading day starting at `day` (zero after a net profit).
    pub(crate) fn loss_of(&self, day: i64) -> Amount {
        let net = self.pnl.get(&day).copied().unwrap_or(0);
        if net >= 0 {
            Amount::ZERO
        } else {
            Amount::from_minor_units(net.unsigned_abs()).unwrap_or(Amount::MAX)
        }
    }

    /// The volume traded on the trading day starting at `day`.
    pub(crate) fn volume_of(&self, day: i64) -> Amount {
        self.volumes.get(&day).copied().unwrap_or_default()
    }

    /// Counts an event in its minute.
    pub(crate) fn note_minute(&mut self, at: i64) {
        let minute = at.div_euclid(60);
        *self.minutes.entry(minute).or_default() += 1;
        let newest = self.minutes.last_key_value().map_or(minute, |(k, _)| *k);
        while let Some((&oldest, _)) = self.minutes.first_key_value() {
            if oldest >= newest - KEEP_MINUTES {
                break;
            }
            self.minutes.pop_first();
        }
    }

    /// Events in the hour up to and including `at`'s minute.
    pub(crate) fn events_last_hour(&self, at: i64) -> u32 {
        let minute = at.div_euclid(60);
        self.minutes
            .range(minute - 59..=minute)
            .map(|(_, c)| *c)
            .sum()
    }

    /// The risk score decayed to `now_ms`, with its contributions.
    pub(crate) fn risk_at(&self, now_ms: i64, half_life_secs: u64) -> Option<(f64, &Value, i64)> {
        let risk = self.counters.as_ref()?.risk.as_ref()?;
        Some((
            decay(risk.score, risk.at_ms, now_ms, half_life_secs),
            &risk.contributions,
            risk.at_ms,
        ))
    }

    /// What [`mandate_policy::decide`] needs for an order on the trading day starting at
    /// `order_day`.
    pub(crate) fn policy_state(
        &self,
        now_ms: i64,
        half_life_secs: u64,
        order_day: i64,
    ) -> AgentState {
        let valid = self.valid_until.is_some_and(|t| t > now_ms / 1000);
        AgentState {
            daily_volume: Some(self.volume_of(order_day)),
            daily_loss: Some(self.loss_of(order_day)),
            consecutive_failures: self.counters.as_ref().map_or(0, |c| {
                u32::try_from(c.consecutive_failures).unwrap_or(u32::MAX)
            }),
            risk_score: self.risk_at(now_ms, half_life_secs).map(|(s, _, _)| s),
            certificate_revoked: self.suspended || (!valid && self.any_revoked),
            no_valid_certificate: !valid,
            // The pre-trade check adds the market's reference price when a collar needs it.
            reference: mandate_policy::Reference::NotChecked,
            // The pre-trade check adds the book for the order's market.
            book: None,
        }
    }
}

/// `score` computed at `at_ms`, halved every `half_life_secs` until `now_ms`.
pub(crate) fn decay(score: f64, at_ms: i64, now_ms: i64, half_life_secs: u64) -> f64 {
    let elapsed = (now_ms - at_ms).max(0) as f64 / 1000.0;
    score * 0.5f64.powf(elapsed / half_life_secs.max(1) as f64)
}

/// low below 0.5, medium below the warning threshold, high from it.
pub(crate) fn band(score: f64, warning: f64) -> &'static str {
    if score >= warning {
        "high"
    } else if score >= 0.5 {
        "medium"
    } else {
        "low"
    }
}

/// One feature's part in a score, each as `#/components/schemas/Contribution`.
pub(crate) fn contributions() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema_refs::contribution())
        .build()
}

/// Limit overrides, each as `#/components/schemas/LimitOverride`.
pub(crate) fn limit_overrides() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema_refs::limit_override())
        .build()
}

/// low below 0.5, medium below the warning threshold, high from it; not_monitored before a
/// baseline is approved.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the band is text at run time"
)]
enum RiskBand {
    Low,
    Medium,
    High,
    NotMonitored,
}

/// `GET /v1/agents/{id}/risk-score`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RiskScore)]
pub struct RiskView {
    /// The agent.
    pub agent_id: String,
    /// 0 to 1, decayed to now; null before a baseline is approved (not monitored: there is
    /// nothing to compare behaviour with, which is not the same as low risk).
    #[serde(serialize_with = "crate::ser_opt_score")]
    #[schema(required = true, minimum = 0, maximum = 1)]
    pub risk_score: Option<f64>,
    /// `low`, `medium` or `high`; `not_monitored` before a baseline is approved.
    #[schema(schema_with = <RiskBand as utoipa::PartialSchema>::schema)]
    pub risk_band: &'static str,
    /// Each feature's part in the score that set it.
    #[serde(serialize_with = "ser_rounded")]
    #[schema(schema_with = contributions)]
    pub contributions: Value,
    /// When the score was set (RFC 3339), if ever.
    #[schema(format = DateTime, required = true)]
    pub computed_at: Option<String>,
    /// The approved baseline scored against.
    #[schema(required = true)]
    pub baseline_version: Option<i64>,
    /// The mandate's warning (circuit breaker) threshold.
    pub warning_threshold: f64,
    /// The mandate's auto-revoke threshold.
    pub auto_revoke_threshold: f64,
}

/// `GET /v1/agents/{id}/usage`: what the agent has used of its stateful limits now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    /// The agent.
    pub agent_id: String,
    /// The start of the current trading day (the mandate's time zone; UTC without one).
    #[schema(format = DateTime)]
    pub trading_day_start: String,
    /// Volume traded today, in the currency of `maxDailyVolume`.
    pub daily_volume: String,
    /// `maxDailyVolume`, if set.
    #[schema(required = true)]
    pub max_daily_volume: Option<String>,
    /// Net realised loss today, in the currency of `maxDailyLoss`.
    pub daily_loss: String,
    /// `maxDailyLoss`, if set.
    #[schema(required = true)]
    pub max_daily_loss: Option<String>,
    /// Order messages let through in the last second (every market).
    pub messages_last_second: u64,
    /// `maxMessagesPerSecond` (the default), if set.
    #[schema(required = true)]
    pub max_messages_per_second: Option<u32>,
    /// Failed events in a row.
    pub consecutive_failures: i64,
    /// Orders open now (every market), from the order events.
    pub open_orders: usize,
    /// `maxOpenOrders` (the default), if set.
    #[schema(required = true)]
    pub max_open_orders: Option<u32>,
    /// The net position per market (long positive), from the fills; flat markets left out.
    pub net_positions: BTreeMap<String, String>,
    /// Order messages and trades within the default `maxOrderToTradeRatio`'s window (every
    /// market), if it is set.
    #[schema(required = true, inline)]
    pub order_to_trade: Option<OrderToTradeUsage>,
    /// The limit overrides in force now; the limits above include them.
    #[schema(schema_with = limit_overrides)]
    pub overrides: Vec<OverrideView>,
}

/// A limit override, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(
    as = LimitOverride,
    examples(json!({"id": 7, "agent_id": "trading-bot-1", "limit": "maxOrderQuantity",
                    "market": null, "value": "4", "reason": "Index rebalancing until the close",
                    "granted_by": ["carol", "dave"],
                    "starts_at": "2026-12-07T10:00:00Z", "expires_at": "2026-12-07T16:00:00Z",
                    "ended_at": null, "ended_by": null, "in_force": true}))
)]
pub struct OverrideView {
    /// Its id.
    pub id: i64,
    /// The agent.
    pub agent_id: String,
    /// The limit's JSON name (one of `maxOrderQuantity`, `priceCollar`,
    /// `referencePriceMaxAge`, `maxOpenOrders`, `maxNetPosition`, `maxDailyLoss`,
    /// `maxMessagesPerSecond`, `maxOrderToTradeRatio`).
    pub limit: String,
    /// The market whose own value it sets; none: the default.
    #[schema(required = true)]
    pub market: Option<String>,
    /// The value in force meanwhile, as the mandate writes it.
    #[schema(value_type = serde_json::Value)]
    pub value: Value,
    /// Why.
    pub reason: String,
    /// The people who granted it, in order.
    pub granted_by: Vec<String>,
    /// From (RFC 3339).
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// Until (RFC 3339), unless ended before.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When it was ended early.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
    /// Who ended it early.
    #[schema(required = true)]
    pub ended_by: Option<String>,
    /// Whether it is in force now.
    pub in_force: bool,
}

impl From<&mandate_store::OverrideRow> for OverrideView {
    fn from(o: &mandate_store::OverrideRow) -> OverrideView {
        OverrideView {
            id: o.id,
            agent_id: o.agent_id.clone(),
            limit: o.limit_name.clone(),
            market: o.market.clone(),
            value: serde_json::from_str(&o.value_json).unwrap_or(Value::Null),
            reason: o.reason.clone(),
            granted_by: o.granted_by.split(',').map(str::to_owned).collect(),
            starts_at: crate::rfc3339(o.starts_at),
            expires_at: crate::rfc3339(o.expires_at),
            ended_at: o.ended_at.map(crate::rfc3339),
            ended_by: o.ended_by.clone(),
            in_force: o.in_force(mandate_store::now_unix()),
        }
    }
}

/// The order flow within the window of `maxOrderToTradeRatio`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderToTradeUsage {
    /// Order messages (new, amended, cancelled) reported within the window.
    pub orders: u64,
    /// Trades (fills) reported within the window.
    pub trades: u64,
    /// The window, seconds.
    pub window_secs: u32,
    /// The largest ratio allowed.
    pub max_ratio: u32,
}

/// Agents whose live state must reload before its next use (e.g. one that just got a
/// certificate); cheap to clone, shared with the issuer.
#[derive(Debug, Clone, Default)]
pub struct Touched(Arc<Mutex<std::collections::HashSet<String>>>);

impl Touched {
    /// Marks `agent_id`'s live state stale.
    pub fn touch(&self, agent_id: &str) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(agent_id.to_owned());
        }
    }

    /// Whether `agent_id` was touched since the last call; clears the mark.
    fn take(&self, agent_id: &str) -> bool {
        self.0.lock().is_ok_and(|mut set| set.remove(agent_id))
    }
}

/// The live state of every agent seen since start, and the settings of the scorer.
#[derive(Debug)]
pub struct Behaviour {
    pub(crate) store: Store,
    pub(crate) cfg: Arc<Config>,
    pub(crate) weights: Weights,
    /// Bumped by every change that may alter agents' mandates, certificates or baselines.
    generation: Arc<AtomicU64>,
    /// Agents whose state changed alone (issuance, approvals).
    pub(crate) touched: Touched,
    agents: Mutex<HashMap<String, Arc<tokio::sync::Mutex<AgentLive>>>>,
    /// Reference prices for price collars (in memory).
    pub(crate) reference_prices: crate::reference_prices::ReferencePrices,
    /// Where pre-trade decisions are recorded.
    pub(crate) decisions: crate::decision::DecisionLog,
}

impl Behaviour {
    /// A scorer over `store`; `generation` is shared with the CRL publisher (which notices
    /// revocations by other processes) and `touched` with the issuer.
    pub fn new(
        store: Store,
        cfg: Arc<Config>,
        generation: Arc<AtomicU64>,
        touched: Touched,
    ) -> Behaviour {
        let w = &cfg.scoring.weights;
        let weights = Weights {
            size: w.size,
            frequency: w.frequency,
            instrument: w.instrument,
            time_of_day: w.time_of_day,
            geography: w.geography,
        };
        Behaviour {
            decisions: crate::decision::DecisionLog::start(store.clone()),
            store,
            cfg,
            weights,
            generation,
            touched,
            agents: Mutex::new(HashMap::new()),
            reference_prices: Default::default(),
        }
    }

    /// Says something changed that live states must reload (mandate, certificates, baseline).
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets an agent's live state (after a failed write, so the store is the truth again).
    pub(crate) fn forget(&self, agent_id: &str) {
        if let Ok(mut map) = self.agents.lock() {
            map.remove(agent_id);
        }
    }

    /// The agent's live state, loaded or refreshed as needed; `NotFound` for an unknown agent.
    pub(crate) async fn live(
        &self,
        agent_id: &str,
    ) -> Result<Arc<tokio::sync::Mutex<AgentLive>>, CaError> {
        let cached = self
            .agents
            .lock()
            .map_err(|_| CaError::Internal("behaviour cache poisoned".into()))?
            .get(agent_id)
            .cloned();
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(entry) = cached {
            let touched = self.touched.take(agent_id);
            let mut live = entry.lock().await;
            if (touched || live.generation != generation)
                && let Err(e) = self.refresh(agent_id, &mut live, generation).await
            {
                if touched {
                    self.touched.touch(agent_id);
                }
                return Err(e);
            }
            drop(live);
            return Ok(entry);
        }
        // Loaded fresh now: an earlier mark is moot.
        self.touched.take(agent_id);
        let fresh = self.load(agent_id, generation).await?;
        let mut map = self
            .agents
            .lock()
            .map_err(|_| CaError::Internal("behaviour cache poisoned".into()))?;
        // Another request may have loaded it meanwhile: keep the first.
        Ok(map
            .entry(agent_id.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(fresh)))
            .clone())
    }

    async fn load(&self, agent_id: &str, generation: u64) -> Result<AgentLive, CaError> {
        let mut live = AgentLive::empty(generation);
        live.counters = self.store.agent_counters(agent_id).await?;
        self.refresh(agent_id, &mut live, generation).await?;
        self.replay_orders(agent_id, &mut live).await?;
        let since = mandate_store::now_unix() - 86_400;
        for (at, market, side) in self.store.executions_since(agent_id, since).await? {
            live.note_execution(&market, &side, at);
        }
        if let Some(c) = &live.counters {
            let times = self
                .store
                .event_times_since(agent_id, c.last_event_at - 3600, 100_000)
                .await?;
            for t in times {
                live.note_minute(t);
            }
        }
        Ok(live)
    }

    async fn refresh(
        &self,
        agent_id: &str,
        live: &mut AgentLive,
        generation: u64,
    ) -> Result<(), CaError> {
        let (agent, approved) = self
            .store
            .agent_with_approved_mandate(agent_id)
            .await?
            .ok_or_else(|| CaError::NotFound(format!("agent {agent_id}")))?;
        let mandate = match approved {
            Some(m) => Some(Arc::new(
                serde_json::from_str::<Mandate>(&m.mandate_json)
                    .map_err(|e| CaError::Internal(format!("stored mandate of {agent_id}: {e}")))?,
            )),
            None => None,
        };
        let (_, revoked, valid_until) = self
            .store
            .agent_certificate_state(agent_id, mandate_store::now_unix())
            .await?;
        let baseline = match self.store.approved_baseline(agent_id).await? {
            Some(b) => Some((
                b.version,
                Arc::new(serde_json::from_value::<Baseline>(b.baseline).map_err(|e| {
                    CaError::Internal(format!("stored baseline of {agent_id}: {e}"))
                })?),
            )),
            None => None,
        };
        let rule = VolumeRule::of(mandate.as_deref());
        if live.volume_rule.as_ref() != Some(&rule) {
            live.volumes = self.recount(agent_id, mandate.as_deref(), &rule).await?;
            (live.pnl, live.pnl_market) = self
                .recount_pnl(agent_id, mandate.as_deref(), &rule)
                .await?;
            live.volume_rule = Some(rule);
        }
        live.suspended = agent.status == AgentStatus::Suspended;
        live.any_revoked = revoked > 0;
        live.valid_until = valid_until;
        live.status = agent.status;
        live.organization = agent.organization.clone();
        live.mandate = mandate;
        live.overrides = self.store.overrides(agent_id, 100).await?;
        live.baseline = baseline;
        live.generation = generation;
        Ok(())
    }

    /// Rebuilds the book, the order flow of the last day and the P&L per market from the
    /// stored events, in the order they were stored (as they were applied when reported).
    async fn replay_orders(&self, agent_id: &str, live: &mut AgentLive) -> Result<(), CaError> {
        let since = mandate_store::now_unix() - 86_400;
        for row in self.store.order_events(agent_id).await? {
            let Ok(state) = row.order_state.parse::<mandate_policy::OrderState>() else {
                continue;
            };
            let amount = |v: &Option<String>| v.as_deref().and_then(|t| t.parse::<Amount>().ok());
            let side = match row.side.as_deref() {
                Some("buy") => Some(mandate_policy::Side::Buy),
                Some("sell") => Some(mandate_policy::Side::Sell),
                _ => None,
            };
            let update = mandate_policy::OrderUpdate {
                state,
                client_order_id: row.client_order_id.as_deref().unwrap_or_default(),
                market: row.market.as_deref(),
                side,
                quantity: amount(&row.quantity),
                price: amount(&row.price),
                fill_quantity: amount(&row.fill_quantity),
            };
            live.book.apply(&update);
            if row.at >= since {
                live.note_flow(row.at, update.market, state);
            }
        }
        Ok(())
    }

    /// The net realised P&L per trading day of the last [`VOLUME_DAYS`] days, from the stored
    /// events: in the currency of `maxDailyLoss` (events in another currency do not count), and
    /// per market and currency (a market's own `maxDailyLoss`).
    #[allow(clippy::type_complexity)]
    async fn recount_pnl(
        &self,
        agent_id: &str,
        mandate: Option<&Mandate>,
        rule: &VolumeRule,
    ) -> Result<(BTreeMap<i64, i128>, BTreeMap<(i64, String, String), i128>), CaError> {
        let mut out = BTreeMap::new();
        let mut scratch = AgentLive::empty(0);
        let since = mandate_store::now_unix() - VOLUME_DAYS * 86_400;
        for (at, pnl, currency, market) in self.store.pnl_since(agent_id, since).await? {
            let currency = currency.and_then(|c| c.parse::<Currency>().ok());
            let Ok(pnl) = pnl.parse::<mandate_policy::SignedAmount>() else {
                continue;
            };
            let day = day_of(mandate, at);
            if rule.loss_currency.is_some()
                && counts_toward(rule.loss_currency.as_ref(), currency.as_ref())
            {
                *out.entry(day).or_default() += pnl.minor_units();
            }
            if let Some(market) = market {
                scratch.add_market_pnl(day, &market, currency.as_ref(), pnl.minor_units());
            }
        }
        Ok((out, scratch.pnl_market))
    }

    /// The daily volumes of the last [`VOLUME_DAYS`] days, added up from the stored trades.
    async fn recount(
        &self,
        agent_id: &str,
        mandate: Option<&Mandate>,
        rule: &VolumeRule,
    ) -> Result<BTreeMap<i64, Amount>, CaError> {
        let since = mandate_store::now_unix() - VOLUME_DAYS * 86_400;
        let mut volumes: BTreeMap<i64, Amount> = BTreeMap::new();
        for (at, size, currency) in self.store.trades_since(agent_id, since).await? {
            let currency = currency.and_then(|c| c.parse::<Currency>().ok());
            let Ok(size) = size.parse::<Amount>() else {
                continue;
            };
            if counts_toward(rule.currency.as_ref(), currency.as_ref()) {
                let v = volumes.entry(day_of(mandate, at)).or_default();
                *v = v.checked_add(size).unwrap_or(Amount::MAX);
            }
        }
        Ok(volumes)
    }

    /// What the agent has used today of its stateful limits, at the daemon's clock.
    pub async fn usage(&self, agent_id: &str) -> Result<UsageView, CaError> {
        let entry = self.live(agent_id).await?;
        let mut live = entry.lock().await;
        let now = mandate_store::now_unix();
        let mandate = live.mandate_at(now);
        let day = day_of(mandate.as_deref(), now);
        let (_, messages) = live.messages_in_last_second(now_ms(), None, None);
        let c = mandate
            .as_deref()
            .map(|m| m.controls.clone())
            .unwrap_or_default();
        Ok(UsageView {
            agent_id: agent_id.to_owned(),
            trading_day_start: crate::rfc3339(day),
            daily_volume: live.volume_of(day).to_string(),
            max_daily_volume: mandate
                .as_deref()
                .and_then(|m| m.max_daily_volume.as_ref())
                .map(ToString::to_string),
            daily_loss: live.loss_of(day).to_string(),
            max_daily_loss: c.max_daily_loss.map(|l| l.value.to_string()),
            messages_last_second: messages,
            max_messages_per_second: c.max_messages_per_second.map(|l| l.value),
            consecutive_failures: live.counters.as_ref().map_or(0, |c| c.consecutive_failures),
            open_orders: live.book.open_orders(),
            max_open_orders: c.max_open_orders.as_ref().map(|l| l.value),
            net_positions: live
                .book
                .positions()
                .map(|(m, p)| (m.to_ascii_uppercase(), mandate_policy::position_text(p)))
                .collect(),
            order_to_trade: c.max_order_to_trade_ratio.as_ref().map(|l| {
                let w = i64::from(l.value.window_secs);
                let (orders, trades) = live.flow_within(None, now - w + 1, now);
                OrderToTradeUsage {
                    orders,
                    trades,
                    window_secs: l.value.window_secs,
                    max_ratio: l.value.max_ratio,
                }
            }),
            overrides: live
                .overrides
                .iter()
                .filter(|o| o.in_force(now))
                .map(OverrideView::from)
                .collect(),
        })
    }

    /// The agent's risk score now.
    pub async fn risk(&self, agent_id: &str) -> Result<RiskView, CaError> {
        let entry = self.live(agent_id).await?;
        let live = entry.lock().await;
        let (warning, auto) = thresholds(live.mandate.as_deref());
        let now_ms = now_ms();
        let (score, contributions, at_ms) = match live.risk_at(now_ms, self.half_life()) {
            Some((s, c, at)) => (s, c.clone(), Some(at)),
            None => (0.0, Value::Array(Vec::new()), None),
        };
        let monitored = live.baseline.is_some();
        Ok(RiskView {
            agent_id: agent_id.to_owned(),
            risk_score: monitored.then_some(score),
            risk_band: if monitored {
                band(score, warning)
            } else {
                "not_monitored"
            },
            contributions,
            computed_at: at_ms.map(|ms| crate::rfc3339(ms / 1000)),
            baseline_version: live.baseline.as_ref().map(|(v, _)| *v),
            warning_threshold: warning,
            auto_revoke_threshold: auto,
        })
    }

    pub(crate) fn half_life(&self) -> u64 {
        self.cfg.scoring.risk_half_life_secs
    }
}

/// The warning and auto-revoke thresholds: the mandate's, or the defaults 0.75 and 0.85.
pub(crate) fn thresholds(mandate: Option<&Mandate>) -> (f64, f64) {
    match mandate {
        Some(m) => (
            m.circuit_breaker_threshold.as_f64(),
            m.auto_revoke_threshold.as_f64(),
        ),
        None => (0.75, 0.85),
    }
}

pub(crate) use crate::now_ms;

/// Serializes a JSON value with its fractional numbers rounded ([`crate::round_scores`]).
fn ser_rounded<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::round_scores(v.clone()), s)
}

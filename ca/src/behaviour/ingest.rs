//! `POST /v1/events`: store what agents did, keep their counters, score each event against the
//! approved baseline, and act on the thresholds.

use std::collections::BTreeSet;
use std::sync::Arc;

use mandate_policy::{
    Action, Amount, Currency, Intent, MAX_NAME_LEN, Observation, OrderState, OrderUpdate, Side,
    score, unix_or_rfc3339,
};
use mandate_store::{
    AgentCounters, EventBatch, IncidentKind, IncidentTrigger, KillScope, MAX_EVENTS_PER_BATCH,
    NewEvent, RiskState,
};
use serde::{Deserialize, Serialize};

use super::live::{AgentLive, Behaviour, counts_toward, day_of, decay, now_ms, thresholds};
use crate::CaError;
use crate::node::Node;

/// Events may be reported this far ahead of the daemon's clock.
const MAX_FUTURE_SECS: i64 = 300;
/// ... and this far behind it.
const MAX_AGE_SECS: i64 = 35 * 86_400;

/// One reported event. On the wire it is flat, with an order's names for what an order also
/// has (`action`, `market`, `size`, `currency`, `side`, `quantity`, `price`, `order_type`,
/// `client_order_id`, `decision_id`, `timestamp`), beside what only an event has (`success`,
/// `realised_pnl`, `order_state`, `fill_quantity`, `fill_price`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "WireEvent")]
pub struct EventInput {
    /// The agent.
    pub agent_id: String,
    /// What it did: a permitted-action name, e.g. `trade_execution`.
    pub action: Action,
    /// Details.
    pub metadata: EventMetadata,
}

/// An event as sent; its schema is the API document's `Event`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "One event an agent reports: flat, with an order's names for what an order also has (action, market, size, currency, side, counterparty, region, quantity, price, order_type, client_order_id, decision_id, timestamp), beside what only an event has (success, realised_pnl, order_state, fill_quantity, fill_price). The nested action_type/metadata form of before v1 is refused (422 invalid-json) with what to send instead",
    examples(json!({"agent_id": "trading-bot-1", "action": "trade_execution", "market": "BTC_EUR",
                    "size": "25000", "currency": "EUR", "side": "buy", "quantity": "0.5",
                    "price": "50000", "order_type": "limit", "order_state": "filled",
                    "client_order_id": "ord-42", "fill_quantity": "0.5", "fill_price": "50000",
                    "timestamp": "2026-12-07T10:00:00Z"}))
)]
struct WireEvent {
    /// The agent that did it: 1 to 128 bytes.
    #[schema(min_length = 1, max_length = 128)]
    agent_id: String,
    /// What it did.
    #[schema(required = true, value_type = Action)]
    action: Option<Action>,
    /// Instrument, e.g. `BTC_EUR`: 1 to 64 bytes, no spaces or control characters.
    #[schema(value_type = Option<mandate_policy::OrderName>)]
    market: Option<String>,
    /// Size, in `currency`.
    size: Option<Amount>,
    /// ISO 4217 currency of `size` and `realised_pnl`.
    currency: Option<Currency>,
    /// Buy or sell.
    side: Option<Side>,
    /// Counterparty or venue: 1 to 64 bytes, no spaces or control characters.
    #[schema(value_type = Option<mandate_policy::OrderName>)]
    counterparty: Option<String>,
    /// Region: 1 to 64 bytes, no spaces or control characters.
    #[schema(value_type = Option<mandate_policy::OrderName>)]
    region: Option<String>,
    /// When it happened: within the last 35 days and at most 300 s ahead; the time of receipt
    /// when absent.
    #[serde(default, deserialize_with = "unix_or_rfc3339")]
    #[schema(value_type = Option<mandate_policy::Time>)]
    timestamp: Option<i64>,
    /// Whether it succeeded (absent: true, but false for `order_state` `rejected`).
    success: Option<bool>,
    /// Quantity, in the instrument's unit (version-2 controls); an order event's open quantity.
    quantity: Option<Amount>,
    /// Price (version-2 controls).
    price: Option<Amount>,
    /// The order's type (version-2 controls).
    order_type: Option<mandate_policy::OrderType>,
    /// Realised profit, or (negative) loss, in `currency`; counts towards `maxDailyLoss`.
    realised_pnl: Option<mandate_policy::SignedAmount>,
    /// What happened to an order; needs action `trade_execution` and `client_order_id`
    /// (docs/API.md says what each state needs).
    order_state: Option<OrderState>,
    /// The agent's id of the order: 1 to 64 bytes, no spaces or control characters.
    #[schema(value_type = Option<mandate_policy::OrderName>)]
    client_order_id: Option<String>,
    /// What this execution filled; only with `order_state`.
    fill_quantity: Option<Amount>,
    /// The price it filled at; only with `order_state`.
    fill_price: Option<Amount>,
    /// The `decision_id` of the preflight or signing that let the order through.
    #[schema(pattern = "^dec_[0-9a-f]{32}$")]
    decision_id: Option<String>,
    /// The names before v1 had one dialect: refused with what to send instead.
    #[schema(ignore)]
    action_type: Option<serde::de::IgnoredAny>,
    #[schema(ignore)]
    metadata: Option<serde::de::IgnoredAny>,
}

mandate_policy::schema_of!(EventInput, "Event", WireEvent);

impl TryFrom<WireEvent> for EventInput {
    type Error = String;

    fn try_from(w: WireEvent) -> Result<EventInput, String> {
        if w.action_type.is_some() || w.metadata.is_some() {
            return Err("action_type and metadata are gone: send `action` and the metadata's \
                        fields at the top level, named as in an order \
                        ({\"agent_id\": \"bot-1\", \"action\": \"trade_execution\", \"market\": \"BTC_EUR\", ...})"
                .into());
        }
        let action = w.action.ok_or("missing field `action`")?;
        Ok(EventInput {
            agent_id: w.agent_id,
            action,
            metadata: EventMetadata {
                market: w.market,
                size: w.size,
                currency: w.currency,
                side: w.side,
                counterparty: w.counterparty,
                region: w.region,
                timestamp: w.timestamp,
                success: w.success,
                quantity: w.quantity,
                price: w.price,
                order_type: w.order_type,
                realised_pnl: w.realised_pnl,
                order_state: w.order_state,
                client_order_id: w.client_order_id,
                fill_quantity: w.fill_quantity,
                fill_price: w.fill_price,
                decision_id: w.decision_id,
            },
        })
    }
}

/// What an event carries.
#[derive(Debug, Clone, Default)]
pub struct EventMetadata {
    /// Instrument.
    pub market: Option<String>,
    /// Size, decimal.
    pub size: Option<Amount>,
    /// Currency of `size`.
    pub currency: Option<Currency>,
    /// Buy or sell.
    pub side: Option<Side>,
    /// Counterparty.
    pub counterparty: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// When it happened (unix seconds or RFC 3339); the time of receipt when absent.
    pub timestamp: Option<i64>,
    /// Whether it succeeded (default true).
    pub success: Option<bool>,
    /// Quantity, in the instrument's unit (version-2 controls).
    pub quantity: Option<Amount>,
    /// Price (version-2 controls).
    pub price: Option<Amount>,
    /// `market`, `limit`, `stop` or `stop_limit` (version-2 controls).
    pub order_type: Option<mandate_policy::OrderType>,
    /// Realised profit (or, negative, loss) in `currency` (maxDailyLoss).
    pub realised_pnl: Option<mandate_policy::SignedAmount>,
    /// What happened to the order (`new`, `amended`, `cancelled`, `filled`,
    /// `partially_filled`, `rejected`): open orders, positions and the order-to-trade ratio
    /// follow these.
    pub order_state: Option<OrderState>,
    /// The agent's id of the order (required with `order_state`).
    pub client_order_id: Option<String>,
    /// What this execution filled (`partially_filled`; `filled` defaults to what was open).
    pub fill_quantity: Option<Amount>,
    /// At what price it filled.
    pub fill_price: Option<Amount>,
    /// The pre-trade decision that let the order through (`decision_id` of preflight or
    /// sign).
    pub decision_id: Option<String>,
}

impl EventMetadata {
    /// The order event this carries, if it is one.
    fn order_update(&self) -> Option<OrderUpdate<'_>> {
        Some(OrderUpdate {
            state: self.order_state?,
            client_order_id: self.client_order_id.as_deref()?,
            market: self.market.as_deref(),
            side: self.side,
            quantity: self.quantity,
            price: self.price,
            fill_quantity: self.fill_quantity,
        })
    }

    /// Whether this counts as an execution (daily volume, the throttle): a fill, or a trade
    /// reported without an order state.
    fn is_execution(&self) -> bool {
        self.order_state.is_none_or(OrderState::is_fill)
    }

    /// Whether it succeeded: as said, else all but a rejection.
    fn succeeded(&self) -> bool {
        self.success
            .unwrap_or(self.order_state != Some(OrderState::Rejected))
    }
}

/// What the ingestion did.
#[derive(Debug, Serialize)]
pub struct IngestOutcome {
    /// Events stored.
    pub accepted: usize,
    /// Each event's id and score (none before a baseline is approved), in order.
    pub events: Vec<EventResult>,
    /// Incidents opened.
    pub incidents: Vec<IncidentOpened>,
}

/// One stored event.
#[derive(Debug, Serialize)]
pub struct EventResult {
    /// Its id.
    pub id: i64,
    /// Its anomaly score (none before a baseline is approved: not monitored).
    #[serde(serialize_with = "crate::ser_opt_score")]
    pub score: Option<f64>,
    /// How it broke the approved mandate, if it did: the pre-trade check's reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breach: Vec<BreachReason>,
}

/// One way an event broke its mandate.
#[derive(Debug, Clone, Serialize)]
pub struct BreachReason {
    /// The pre-trade check's code, e.g. `exceeds_scope_size`.
    pub code: &'static str,
    /// The limit, as text.
    pub limit: String,
    /// What the event did, as text.
    pub requested: String,
    /// `hard`, or `soft` for a limit that lets the order through (flagged, an incident, no
    /// revocation).
    pub enforcement: mandate_policy::Enforcement,
}

/// An incident opened by this ingestion.
#[derive(Debug, Serialize)]
pub struct IncidentOpened {
    /// Its id.
    pub id: i64,
    /// The agent.
    pub agent_id: String,
    /// `risk_warning`, `auto_revocation` or `mandate_breach`.
    pub kind: &'static str,
}

fn check_name(index: usize, field: &str, v: &Option<String>) -> Result<(), CaError> {
    match v {
        Some(s)
            if s.is_empty()
                || s.len() > MAX_NAME_LEN
                || s.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            Err(CaError::InvalidRequest(format!(
                "events[{index}].{field}: 1 to {MAX_NAME_LEN} characters, no spaces"
            )))
        }
        _ => Ok(()),
    }
}

fn validate(index: usize, e: &EventInput, now: i64) -> Result<i64, CaError> {
    if e.agent_id.is_empty() || e.agent_id.len() > 128 {
        return Err(CaError::InvalidRequest(format!(
            "events[{index}].agent_id: 1 to 128 characters"
        )));
    }
    let m = &e.metadata;
    check_name(index, "market", &m.market)?;
    check_name(index, "counterparty", &m.counterparty)?;
    check_name(index, "region", &m.region)?;
    check_name(index, "client_order_id", &m.client_order_id)?;
    if let Some(d) = &m.decision_id
        && !crate::decision::is_decision_id(d)
    {
        return Err(CaError::InvalidRequest(format!(
            "events[{index}].decision_id: not a decision id (dec_ and 32 hex digits)"
        )));
    }
    if let Some(state) = m.order_state {
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(CaError::InvalidRequest(format!(
                    "events[{index}]: an order event ({}) needs {what}",
                    state.as_str()
                )))
            }
        };
        need(e.action == Action::TradeExecution, "action trade_execution")?;
        need(m.client_order_id.is_some(), "client_order_id")?;
        if matches!(
            state,
            OrderState::New | OrderState::Filled | OrderState::PartiallyFilled
        ) {
            need(m.market.is_some() && m.side.is_some(), "market and side")?;
        }
        if matches!(state, OrderState::New | OrderState::Amended) {
            need(
                m.quantity.is_some_and(|q| q > Amount::ZERO),
                "a quantity above 0",
            )?;
        }
        if state == OrderState::PartiallyFilled {
            need(
                m.fill_quantity.is_some_and(|q| q > Amount::ZERO),
                "a fill_quantity above 0",
            )?;
        }
    } else if m.fill_quantity.is_some() || m.fill_price.is_some() {
        return Err(CaError::InvalidRequest(format!(
            "events[{index}]: fill_quantity and fill_price belong to an order event: add order_state"
        )));
    }
    let at = m.timestamp.unwrap_or(now);
    if at > now + MAX_FUTURE_SECS || at < now - MAX_AGE_SECS {
        return Err(CaError::InvalidRequest(format!(
            "events[{index}].timestamp: must be within the last 35 days and at most {MAX_FUTURE_SECS} s ahead"
        )));
    }
    Ok(at)
}

fn size_f64(a: &Amount) -> f64 {
    a.as_minor_units() as f64 / 1e8
}

impl Behaviour {
    /// Stores `events` (reported with API key `reported_by`) with the counters after them and
    /// their scores, and opens incidents for scores past the thresholds; all or nothing.
    pub(crate) async fn ingest(
        &self,
        reported_by: &str,
        events: Vec<EventInput>,
    ) -> Result<(IngestOutcome, Vec<(i64, String)>), CaError> {
        if events.is_empty() || events.len() > MAX_EVENTS_PER_BATCH {
            return Err(CaError::InvalidRequest(format!(
                "send 1 to {MAX_EVENTS_PER_BATCH} events per request"
            )));
        }
        let now = mandate_store::now_unix();
        let mut times = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            times.push(validate(i, e, now)?);
        }
        let ids: BTreeSet<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
        // Lock every agent of the batch, in id order (no deadlock), until the write committed:
        // counters are written whole, so writes of one agent must not overtake each other.
        let mut guards = Vec::with_capacity(ids.len());
        for id in &ids {
            let entry = self.live(id).await?;
            guards.push(((*id).to_owned(), entry.lock_owned().await));
        }
        let now_ms = now_ms();
        let mut batch = EventBatch {
            reported_by: reported_by.to_owned(),
            ..Default::default()
        };
        let mut scores = Vec::with_capacity(events.len());
        let mut breaches = Vec::with_capacity(events.len());
        for (index, (e, at)) in events.iter().zip(times).enumerate() {
            let Some((_, live)) = guards.iter_mut().find(|(id, _)| *id == e.agent_id) else {
                return Err(CaError::Internal("agent lock missing".into()));
            };
            if let Some(u) = e.metadata.order_update()
                && live.book.would_overflow(&u)
            {
                return Err(CaError::InvalidRequest(format!(
                    "events[{index}]: agent {} has {} open orders tracked, the most there may be; report the cancellations and fills first",
                    e.agent_id,
                    mandate_policy::MAX_TRACKED_OPEN_ORDERS
                )));
            }
            // The breach is judged on the state before the event (its day's volume so far).
            let breach = breach_of(live, e, at);
            if let Some(t) = breach_trigger(live, e, index, &breach) {
                batch.triggers.push(t);
            }
            breaches.push(breach);
            let (scored, trigger) = self.apply(live, e, at, index, now_ms);
            scores.push(scored.as_ref().map(|(s, _, _)| s.score));
            let (score, contributions, baseline_version) = match scored {
                Some((s, text, v)) => (Some(s.score), Some(text), Some(v)),
                None => (None, None, None),
            };
            if let Some(t) = trigger {
                batch.triggers.push(t);
            }
            let m = &e.metadata;
            batch.events.push(NewEvent {
                agent_id: e.agent_id.clone(),
                action_type: e.action.as_str().to_owned(),
                market: m.market.clone(),
                size: m.size.map(|s| s.to_string()),
                currency: m.currency.as_ref().map(|c| c.as_str().to_owned()),
                side: m.side.map(|s| s.as_str().to_owned()),
                counterparty: m.counterparty.clone(),
                region: m.region.clone(),
                at,
                success: m.succeeded(),
                score,
                contributions,
                baseline_version,
                pnl: m.realised_pnl.map(|p| p.to_string()),
                quantity: m.quantity.map(|q| q.to_string()),
                price: m.price.map(|p| p.to_string()),
                order_type: m.order_type.map(|t| t.as_str().to_owned()),
                order_state: m.order_state.map(|s| s.as_str().to_owned()),
                client_order_id: m.client_order_id.clone(),
                fill_quantity: m.fill_quantity.map(|q| q.to_string()),
                fill_price: m.fill_price.map(|p| p.to_string()),
                decision_id: m.decision_id.clone(),
            });
        }
        let batch_revokes: Vec<(String, bool)> = batch
            .triggers
            .iter()
            .filter(|t| t.kind == IncidentKind::MandateBreach)
            .map(|t| (t.agent_id.clone(), t.revokes))
            .collect();
        batch.counters = guards
            .iter()
            .filter_map(|(_, live)| live.counters.clone())
            .collect();
        let stored = match self.store.ingest_events(batch).await {
            Ok(s) => s,
            Err(e) => {
                // The in-memory counters ran ahead of the store: drop them, reload next time.
                for (id, _) in &guards {
                    self.forget(id);
                }
                return Err(e.into());
            }
        };
        // The risk names its event by batch position until the store gave ids.
        for (_, live) in guards.iter_mut() {
            if let Some(risk) = live.counters.as_mut().and_then(|c| c.risk.as_mut())
                && let Some(id) = risk.event_id
                && id < 0
            {
                risk.event_id = usize::try_from(-id - 1)
                    .ok()
                    .and_then(|k| stored.event_ids.get(k).copied());
            }
        }
        drop(guards);
        // The incidents whose response is the kill switch: auto-revocations, and breaches of
        // mandates with onBreach = revoke.
        let auto: Vec<(i64, String)> = stored
            .incidents
            .iter()
            .filter(|(_, agent, k)| match k {
                IncidentKind::AutoRevocation => true,
                IncidentKind::MandateBreach => batch_revokes
                    .iter()
                    .any(|(a, revokes)| a == agent && *revokes),
                IncidentKind::RiskWarning => false,
            })
            .map(|(id, agent, _)| (*id, agent.clone()))
            .collect();
        Ok((
            IngestOutcome {
                accepted: stored.event_ids.len(),
                events: stored
                    .event_ids
                    .iter()
                    .zip(scores)
                    .zip(breaches)
                    .map(|((&id, score), breach)| EventResult { id, score, breach })
                    .collect(),
                incidents: stored
                    .incidents
                    .iter()
                    .map(|(id, agent, kind)| IncidentOpened {
                        id: *id,
                        agent_id: agent.clone(),
                        kind: kind.as_str(),
                    })
                    .collect(),
            },
            auto,
        ))
    }

    /// Applies one event to the agent's live state: counters, minute buckets, score and risk.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        live: &mut AgentLive,
        e: &EventInput,
        at: i64,
        index: usize,
        now_ms: i64,
    ) -> (
        Option<(mandate_policy::Score, String, i64)>,
        Option<IncidentTrigger>,
    ) {
        let m = &e.metadata;
        let success = m.succeeded();
        let mandate = live.mandate.clone();
        let day = day_of(mandate.as_deref(), at);
        let cap_currency = mandate
            .as_deref()
            .and_then(|md| md.max_daily_volume.as_ref())
            .map(|c| c.currency.clone());
        let counts = e.action == Action::TradeExecution
            && success
            && m.is_execution()
            && counts_toward(cap_currency.as_ref(), m.currency.as_ref());
        let mut c = live.counters.take().unwrap_or(AgentCounters {
            agent_id: e.agent_id.clone(),
            events: 0,
            first_event_at: at,
            last_event_at: at,
            consecutive_failures: 0,
            day_start: day,
            day_volume: "0".into(),
            risk: None,
        });
        c.events += 1;
        c.first_event_at = c.first_event_at.min(at);
        c.last_event_at = c.last_event_at.max(at);
        // A failure adds one; a success resets the streak, except an order message that
        // went through (new, amended, cancelled): placing or cancelling orders is not the
        // success of an action, or a bot whose orders keep timing out would never stop.
        let message = m.order_state.is_some_and(OrderState::is_message);
        c.consecutive_failures = if !success {
            c.consecutive_failures.saturating_add(1)
        } else if message {
            c.consecutive_failures
        } else {
            0
        };
        if counts && let Some(size) = m.size {
            live.add_volume(day, size);
        }
        if e.action == Action::TradeExecution
            && success
            && m.is_execution()
            && let (Some(market), Some(side)) = (&m.market, m.side)
        {
            live.note_execution(market, side.as_str(), at);
        }
        if let Some(u) = m.order_update() {
            live.note_order(at, &u);
        }
        if let (Some(pnl), Some(market)) = (m.realised_pnl, &m.market) {
            live.add_market_pnl(day, market, m.currency.as_ref(), pnl.minor_units());
        }
        if let Some(pnl) = m.realised_pnl {
            let loss_currency = mandate
                .as_deref()
                .and_then(|md| md.controls.max_daily_loss.as_ref())
                .map(|l| l.value.currency.clone());
            if counts_toward(loss_currency.as_ref(), m.currency.as_ref()) {
                *live.pnl.entry(day).or_default() += pnl.minor_units();
            }
        }
        // The stored counters keep the latest day's total (the live state counts every day).
        c.day_start = c.day_start.max(day);
        c.day_volume = live.volume_of(c.day_start).to_string();
        live.note_minute(at);

        let mut scored = None;
        let mut trigger = None;
        if let Some((version, baseline)) = live.baseline.clone() {
            let obs = Observation {
                at,
                size: m.size.as_ref().map(size_f64),
                market: m.market.clone(),
                region: m.region.clone(),
            };
            let started = std::time::Instant::now();
            let s = score(&baseline, &self.weights, &obs, live.events_last_hour(at));
            let m = &crate::metrics::METRICS;
            m.scoring_seconds.observe(started.elapsed());
            let (warning, _) = thresholds(mandate.as_deref());
            m.scored_events
                .inc(&[crate::behaviour::live::band(s.score, warning)]);
            // The event's row takes the contributions as text, serialized once; a JSON value
            // is built only where one is kept (the agent's risk state, an incident). Building
            // and copying values for every event cost a tenth of ingestion.
            let text = serde_json::to_string(&s.contributions).unwrap_or_default();
            let value = || serde_json::to_value(&s.contributions).unwrap_or_default();
            let previous = c
                .risk
                .as_ref()
                .map_or(0.0, |r| decay(r.score, r.at_ms, now_ms, self.half_life()));
            let event_ref = -i64::try_from(index + 1).unwrap_or(i64::MAX);
            c.risk = Some(if s.score >= previous {
                RiskState {
                    score: s.score,
                    contributions: value(),
                    event_id: Some(event_ref),
                    at_ms: now_ms,
                }
            } else {
                let mut r = c.risk.take().unwrap_or_else(|| RiskState {
                    score: previous,
                    contributions: value(),
                    event_id: None,
                    at_ms: now_ms,
                });
                r.score = previous;
                r.at_ms = now_ms;
                r
            });
            let (warning, auto) = thresholds(mandate.as_deref());
            let kind = if s.score >= auto {
                Some((IncidentKind::AutoRevocation, auto))
            } else if s.score >= warning {
                Some((IncidentKind::RiskWarning, warning))
            } else {
                None
            };
            trigger = kind.map(|(kind, threshold)| IncidentTrigger {
                agent_id: e.agent_id.clone(),
                kind,
                score: s.score,
                threshold,
                contributions: value(),
                event_index: index,
                reasons: None,
                revokes: kind == IncidentKind::AutoRevocation,
            });
            scored = Some((s, text, version));
        }
        live.counters = Some(c);
        (scored, trigger)
    }
}

/// How `e` breaks the agent's approved mandate, judged as the pre-trade check would judge the
/// order it reports (action, size, market, counterparty, region, trading hours at the event's
/// time, the daily volume of its trading day so far), without the agent's state (revocation,
/// risk score, failures in a row): those are what the event reports, not limits it broke.
/// Nothing without an approved mandate.
fn breach_of(live: &AgentLive, e: &EventInput, at: i64) -> Vec<BreachReason> {
    // Judged under the overrides in force at the event's time.
    let mandate_at = live.mandate_at(at);
    let Some(mandate) = mandate_at.as_deref() else {
        return Vec::new();
    };
    let m = &e.metadata;
    let order = mandate_policy::Order {
        action: e.action,
        market: m.market.clone(),
        counterparty: m.counterparty.clone(),
        region: m.region.clone(),
        size: match (&m.size, &m.currency) {
            (Some(amount), Some(currency)) => Some(mandate_policy::Money {
                amount: *amount,
                currency: currency.clone(),
            }),
            _ => None,
        },
        at,
        quantity: m.quantity,
        price: m.price,
        order_type: m.order_type,
        intent: match m.order_state {
            Some(OrderState::Amended) => Intent::Amend,
            // Nothing rests after these: judged as a cancellation is.
            Some(OrderState::Cancelled | OrderState::Rejected) => Intent::Cancel,
            _ => Intent::New,
        },
        side: m.side,
    };
    // A new or amended order is judged on the book before it, as the pre-trade check judged
    // it; a fill moved the position, judged below.
    let book = matches!(m.order_state, Some(OrderState::New | OrderState::Amended))
        .then(|| live.book_state(mandate, &order, m.client_order_id.as_deref()));
    let state = mandate_policy::AgentState {
        daily_volume: Some(live.volume_of(day_of(Some(mandate), at))),
        book,
        ..Default::default()
    };
    let mut out: Vec<BreachReason> = mandate_policy::decide(mandate, &order, &state)
        .into_iter()
        .map(|d| BreachReason {
            code: d.code,
            limit: d.limit,
            requested: d.requested,
            enforcement: d.enforcement,
        })
        .collect();
    // The daily loss: this event's realised loss on top of its trading day's net P&L.
    if let (Some(limit), Some(pnl)) = (&mandate.controls.max_daily_loss, m.realised_pnl)
        && counts_toward(Some(&limit.value.currency), m.currency.as_ref())
    {
        let day = day_of(Some(mandate), at);
        let net = live.pnl.get(&day).copied().unwrap_or(0) + pnl.minor_units();
        let loss = if net < 0 {
            Amount::from_minor_units(net.unsigned_abs()).unwrap_or(Amount::MAX)
        } else {
            Amount::ZERO
        };
        if pnl.negative && loss > limit.value.amount {
            out.push(BreachReason {
                code: "daily_loss_limit_reached",
                limit: limit.value.to_string(),
                requested: format!("{loss} {} lost today", limit.value.currency),
                enforcement: limit.enforcement,
            });
        }
    }
    // A market's own daily loss: this event's loss on top of the market's day so far.
    if let (Some(market), Some(pnl)) = (m.market.as_deref(), m.realised_pnl)
        && let Some(limit) = mandate
            .own_controls(market)
            .and_then(|c| c.max_daily_loss.as_ref())
        && pnl.negative
        && counts_toward(Some(&limit.value.currency), m.currency.as_ref())
    {
        let before = live.market_loss_of(day_of(Some(mandate), at), market, &limit.value.currency);
        let net = -i128::try_from(before.as_minor_units()).unwrap_or(i128::MAX) + pnl.minor_units();
        let loss = Amount::from_minor_units(net.min(0).unsigned_abs()).unwrap_or(Amount::MAX);
        if loss > limit.value.amount {
            out.push(BreachReason {
                code: "daily_loss_limit_reached",
                limit: format!("{} in {market}", limit.value),
                requested: format!("{loss} {} lost today in {market}", limit.value.currency),
                enforcement: limit.enforcement,
            });
        }
    }
    if let Some(u) = m.order_update()
        && u.state.is_fill()
    {
        fill_breaches(live, mandate, &u, m.fill_price.or(m.price), &mut out);
    }
    // The repeated-execution throttle (RTS 6 Art. 15(3)): this execution and those before it
    // in the window, of one market and side.
    if let (Some(throttle), true, Some(market), Some(side)) = (
        mandate
            .controls_for(m.market.as_deref())
            .repeated_execution_throttle,
        e.action == Action::TradeExecution && m.succeeded() && m.is_execution(),
        m.market.as_deref(),
        m.side,
    ) {
        let t = throttle.value;
        let within = i64::from(t.within_secs);
        let n = live.executions_within(market, side.as_str(), at - within + 1, at) + 1;
        if n >= usize::try_from(t.executions).unwrap_or(usize::MAX) {
            out.push(BreachReason {
                code: "repeated_execution_throttle",
                limit: format!(
                    "{} executions of {market} {} within {within} s",
                    t.executions,
                    side.as_str()
                ),
                requested: format!("{n} within {within} s"),
                enforcement: throttle.enforcement,
            });
        }
    }
    out
}

/// What a fill did to the position: past `maxNetPosition` (in quantity, or in value at the
/// fill's price), or short where `shortSellingAllowed` is false; a fill that brings the
/// position closer to flat breaks neither.
fn fill_breaches(
    live: &AgentLive,
    mandate: &mandate_policy::Mandate,
    u: &OrderUpdate<'_>,
    price: Option<Amount>,
    out: &mut Vec<BreachReason>,
) {
    let Some((market, before, after)) = live.book.fill_effect(u) else {
        return;
    };
    let c = mandate.controls_for(Some(&market));
    let shown = |p: i128| format!("{} {market}", mandate_policy::position_text(p));
    if c.short_selling_allowed == Some(false) && after < 0 && after < before.min(0) {
        out.push(BreachReason {
            code: "short_selling_not_allowed",
            limit: "no short position".into(),
            requested: shown(after),
            enforcement: mandate_policy::Enforcement::Hard,
        });
    }
    let Some(limit) = c.max_net_position else {
        return;
    };
    if after.unsigned_abs() <= before.unsigned_abs() {
        return;
    }
    let (over, limit_text, requested) = match &limit.value {
        mandate_policy::PositionLimit::Quantity(max) => (
            after.unsigned_abs() > max.as_minor_units(),
            format!("{max} net"),
            shown(after),
        ),
        mandate_policy::PositionLimit::Value(max) => {
            let Some(price) = price else { return };
            let value = after
                .unsigned_abs()
                .checked_mul(price.as_minor_units())
                .map(|v| v / 100_000_000)
                .and_then(|v| Amount::from_minor_units(v).ok());
            (
                value.is_none_or(|v| v > max.amount),
                format!("{max} net"),
                format!(
                    "{} {} in {market} at {price}",
                    value.map_or("more".to_owned(), |v| v.to_string()),
                    max.currency
                ),
            )
        }
    };
    if over {
        out.push(BreachReason {
            code: "exceeds_net_position",
            limit: limit_text,
            requested,
            enforcement: limit.enforcement,
        });
    }
}

/// The incident a breach opens: `mandate_breach`, revoking or not as the mandate says.
fn breach_trigger(
    live: &AgentLive,
    e: &EventInput,
    index: usize,
    breach: &[BreachReason],
) -> Option<IncidentTrigger> {
    if breach.is_empty() {
        return None;
    }
    let on_breach = live
        .mandate
        .as_deref()
        .map_or(mandate_policy::OnBreach::Revoke, |m| m.on_breach);
    let score = live
        .counters
        .as_ref()
        .and_then(|c| c.risk.as_ref())
        .map_or(0.0, |r| r.score);
    Some(IncidentTrigger {
        agent_id: e.agent_id.clone(),
        kind: IncidentKind::MandateBreach,
        score,
        threshold: 0.0,
        contributions: serde_json::Value::Array(Vec::new()),
        event_index: index,
        reasons: Some(serde_json::to_value(breach).unwrap_or_default()),
        // Soft limits never revoke: a hard breach does under onBreach = revoke, and a hard
        // repeated-execution throttle always does (RTS 6 Art. 15(3): disabled until a named
        // person re-enables it, which is reinstating after resolving this incident).
        revokes: breach.iter().any(|b| {
            b.enforcement == mandate_policy::Enforcement::Hard
                && (on_breach == mandate_policy::OnBreach::Revoke
                    || b.code == "repeated_execution_throttle")
        }),
    })
}

/// Carries out the incidents whose response is the kill switch (auto-revocations, breaches of
/// mandates with `onBreach: revoke`), with the incident as the reason; OCSP, CRLs and the
/// pre-signed responses follow at once.
pub(crate) async fn auto_revoke(node: &Arc<Node>, incidents: &[(i64, String)]) {
    for (incident, agent) in incidents {
        let row = node.store.incident(*incident).await.ok().flatten();
        let breach = row.as_ref().is_some_and(|r| r.kind == "mandate_breach");
        let reason = match &row {
            Some(row) if breach => format!(
                "mandate breach: {} (incident {incident})",
                breach_text(row.reasons.as_ref())
            ),
            Some(row) => format!(
                "behavioural anomaly: risk score {:.3} passed the auto-revoke threshold {:.2} (incident {incident})",
                row.score, row.threshold
            ),
            None => format!("incident {incident}"),
        };
        let actor = if breach {
            "system:mandate"
        } else {
            "system:scoring"
        };
        match crate::revocation::pull(
            &node.store,
            KillScope::Agent,
            agent,
            actor,
            &reason,
            Some(*incident),
        )
        .await
        {
            Ok(k) => {
                tracing::warn!(agent = %agent, incident, certificates = ?k.certificates_revoked, "agent revoked automatically");
            }
            Err(e) => {
                tracing::error!(agent = %agent, incident, error = %e, "automatic revocation failed; retried by the scoring loop");
            }
        }
    }
}

/// `exceeds_scope_size (limit 50000 EUR, requested 60000 EUR), ...` from stored reasons.
fn breach_text(reasons: Option<&serde_json::Value>) -> String {
    let list = reasons
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = list
        .iter()
        .map(|r| {
            format!(
                "{} (limit {}, requested {})",
                r["code"].as_str().unwrap_or("?"),
                r["limit"].as_str().unwrap_or("?"),
                r["requested"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if parts.is_empty() {
        "outside the mandate".to_owned()
    } else {
        parts.join(", ")
    }
}

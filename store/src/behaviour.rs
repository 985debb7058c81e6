//! What agents report (events), the per-agent counters the pre-trade check reads, behavioural
//! baselines and incidents.

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::Change;
use crate::audit::append;
use crate::webhooks::{enqueue, operator_of};
use crate::{AuditEvent, Store, StoreError, now_ms, now_unix};

/// Most events one ingestion call may carry.
pub const MAX_EVENTS_PER_BATCH: usize = 1000;

/// A reported event, scored or not.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The agent.
    pub agent_id: String,
    /// `trade_execution`, `data_access`, ...
    pub action_type: String,
    /// Instrument.
    pub market: Option<String>,
    /// Size, decimal text.
    pub size: Option<String>,
    /// Currency of `size`.
    pub currency: Option<String>,
    /// `buy` or `sell`.
    pub side: Option<String>,
    /// Counterparty.
    pub counterparty: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// When it happened, unix seconds.
    pub at: i64,
    /// Whether it succeeded.
    pub success: bool,
    /// Anomaly score, once the agent has an approved baseline.
    pub score: Option<f64>,
    /// The score's contributions, JSON text (serialized once, straight from the score).
    pub contributions: Option<String>,
    /// The baseline version it was scored against.
    pub baseline_version: Option<i64>,
    /// Realised profit (or, negative, loss), a signed decimal text in `currency`.
    pub pnl: Option<String>,
    /// The order's quantity, decimal text.
    pub quantity: Option<String>,
    /// The order's price, decimal text.
    pub price: Option<String>,
    /// `market`, `limit`, `stop` or `stop_limit`.
    pub order_type: Option<String>,
    /// What happened to the order: `new`, `amended`, `cancelled`, `filled`,
    /// `partially_filled` or `rejected`.
    pub order_state: Option<String>,
    /// The agent's id of the order.
    pub client_order_id: Option<String>,
    /// What this execution filled, decimal text.
    pub fill_quantity: Option<String>,
    /// At what price, decimal text.
    pub fill_price: Option<String>,
    /// The pre-trade decision that let the order through.
    pub decision_id: Option<String>,
}

/// A stored order event, as the live book replays it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderEventRow {
    /// When it happened, unix seconds.
    pub at: i64,
    /// Instrument.
    pub market: Option<String>,
    /// `buy` or `sell`.
    pub side: Option<String>,
    /// `new`, `amended`, ...
    pub order_state: String,
    /// The agent's id of the order.
    pub client_order_id: Option<String>,
    /// Decimal text.
    pub quantity: Option<String>,
    /// Decimal text.
    pub price: Option<String>,
    /// Decimal text.
    pub fill_quantity: Option<String>,
}

/// An agent's risk score: the latest highest event score, with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskState {
    /// 0 to 1, as computed at `at_ms`.
    pub score: f64,
    /// Contributions of the event that set it, JSON.
    pub contributions: Value,
    /// That event's id (after ingestion).
    pub event_id: Option<i64>,
    /// When it was computed, unix ms.
    pub at_ms: i64,
}

/// The counters of one agent, written whole after each batch.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentCounters {
    /// The agent.
    pub agent_id: String,
    /// Events reported, ever.
    pub events: i64,
    /// Timestamp of the earliest event, unix s.
    pub first_event_at: i64,
    /// Timestamp of the latest event, unix s.
    pub last_event_at: i64,
    /// Failed events in a row.
    pub consecutive_failures: i64,
    /// The trading day `day_volume` counts, unix s of its start.
    pub day_start: i64,
    /// Volume of that day, decimal text.
    pub day_volume: String,
    /// The current risk score, once any event was scored.
    pub risk: Option<RiskState>,
}

/// The kind of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// The score passed the warning (circuit breaker) threshold.
    RiskWarning,
    /// The score passed the auto-revoke threshold: the agent's certificates are revoked.
    AutoRevocation,
    /// A reported event broke the approved mandate (the mandate's `onBreach` says whether the
    /// agent is revoked too).
    MandateBreach,
}

impl IncidentKind {
    /// `risk_warning` or `auto_revocation`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::RiskWarning => "risk_warning",
            IncidentKind::AutoRevocation => "auto_revocation",
            IncidentKind::MandateBreach => "mandate_breach",
        }
    }
}

/// A threshold an event's score passed.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentTrigger {
    /// The agent.
    pub agent_id: String,
    /// Which threshold.
    pub kind: IncidentKind,
    /// The agent's risk score.
    pub score: f64,
    /// The threshold passed.
    pub threshold: f64,
    /// Why, JSON contributions.
    pub contributions: Value,
    /// Index in the batch of the event that passed it.
    pub event_index: usize,
    /// A breach's reasons, JSON `[{code, limit, requested}]`.
    pub reasons: Option<Value>,
    /// The response is the kill switch (auto-revocation, or a breach with `onBreach: revoke`):
    /// the incident must be resolved before the agent is reinstated.
    pub revokes: bool,
}

/// One ingestion: events, the counters after them, and the thresholds passed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventBatch {
    /// API key id of the reporter.
    pub reported_by: String,
    /// The events.
    pub events: Vec<NewEvent>,
    /// Each agent's counters after the batch.
    pub counters: Vec<AgentCounters>,
    /// Thresholds passed.
    pub triggers: Vec<IncidentTrigger>,
}

/// What an ingestion stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ingested {
    /// Ids of the events, in batch order.
    pub event_ids: Vec<i64>,
    /// Incidents opened: (incident id, agent id, kind). A trigger for an agent that has an
    /// unresolved incident of that kind opens none.
    pub incidents: Vec<(i64, String, IncidentKind)>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Row id.
    pub id: i64,
    /// The agent.
    pub agent_id: String,
    /// `risk_warning`, `auto_revocation` or `mandate_breach`.
    pub kind: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// The score that opened it.
    pub score: f64,
    /// The threshold it passed.
    pub threshold: f64,
    /// Why: the contributions.
    pub contributions: Value,
    /// The event that passed the threshold.
    pub event_id: Option<i64>,
    /// The kill switch that revoked the agent (auto_revocation).
    pub kill_switch_id: Option<i64>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When, unix s.
    pub acknowledged_at: Option<i64>,
    /// Who resolved it (the human sign-off).
    pub resolved_by: Option<String>,
    /// When, unix s.
    pub resolved_at: Option<i64>,
    /// The sign-off's note.
    pub resolution: Option<String>,
    /// A breach's reasons: `[{code, limit, requested}]`.
    pub reasons: Option<Value>,
    /// Its response is the kill switch (every auto-revocation; a breach with `onBreach:
    /// revoke`): it must be resolved before the agent is reinstated.
    pub revokes: bool,
}

/// A stored baseline version.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRow {
    /// The agent.
    pub agent_id: String,
    /// 1, 2, ...
    pub version: i64,
    /// The baseline, JSON.
    pub baseline: Value,
    /// `pending_approval`, `approved`, `superseded` or `rejected`.
    pub status: String,
    /// Who had it learnt (`system:learner` when automatic).
    pub learnt_by: String,
    /// Unix s.
    pub created_at: i64,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When, unix s.
    pub decided_at: Option<i64>,
}

/// What a baseline is learnt from: one stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow {
    /// Unix s.
    pub at: i64,
    /// Size, decimal text.
    pub size: Option<String>,
    /// Market.
    pub market: Option<String>,
    /// Region.
    pub region: Option<String>,
}

/// A stored event as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// What was done (`trade_execution`, ...).
    pub action_type: String,
    /// Market, if any.
    pub market: Option<String>,
    /// Size, decimal text.
    pub size: Option<String>,
    /// Currency of the size.
    pub currency: Option<String>,
    /// `buy` or `sell`.
    pub side: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// When it happened, as the agent says (unix s).
    pub at: i64,
    /// Whether it succeeded.
    pub success: bool,
    /// When the daemon stored it (unix ms).
    pub received_at_ms: i64,
    /// Anomaly score 0..1, if a baseline was approved then.
    pub score: Option<f64>,
    /// Every feature's part in the score, JSON.
    pub contributions: Option<Value>,
}

macro_rules! incident_columns {
    () => {
        "id, agent_id, kind, status, score, threshold, contributions, event_id, kill_switch_id,
         created_at_ms, acknowledged_by, acknowledged_at, resolved_by, resolved_at, resolution,
         reasons, CASE WHEN revokes THEN 1 ELSE 0 END AS revokes"
    };
}

macro_rules! baseline_columns {
    () => {
        "agent_id, version, baseline, status, learnt_by, created_at, decided_by, decided_at"
    };
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

fn parse_json(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn incident_row(r: &AnyRow) -> Result<IncidentRow, StoreError> {
    let contributions: String = r.try_get("contributions")?;
    Ok(IncidentRow {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        score: r.try_get("score")?,
        threshold: r.try_get("threshold")?,
        contributions: parse_json(&contributions, "incident contributions")?,
        event_id: r.try_get("event_id")?,
        kill_switch_id: r.try_get("kill_switch_id")?,
        created_at_ms: r.try_get("created_at_ms")?,
        acknowledged_by: r.try_get("acknowledged_by")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        resolved_by: r.try_get("resolved_by")?,
        resolved_at: r.try_get("resolved_at")?,
        resolution: r.try_get("resolution")?,
        reasons: r
            .try_get::<Option<String>, _>("reasons")?
            .map(|t| parse_json(&t, "incident reasons"))
            .transpose()?,
        revokes: r.try_get::<i64, _>("revokes")? != 0,
    })
}

pub(crate) fn baseline_row(r: &AnyRow) -> Result<BaselineRow, StoreError> {
    let baseline: String = r.try_get("baseline")?;
    Ok(BaselineRow {
        agent_id: r.try_get("agent_id")?,
        version: r.try_get("version")?,
        baseline: parse_json(&baseline, "baseline")?,
        status: r.try_get("status")?,
        learnt_by: r.try_get("learnt_by")?,
        created_at: r.try_get("created_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
    })
}

/// Rows per multi-row INSERT: 24 parameters each stays far below SQLite's 32,766.
const INSERT_CHUNK: usize = 200;

/// Inserts events with one statement per [`INSERT_CHUNK`] rows; returns their ids in order.
async fn insert_events(
    conn: &mut AnyConnection,
    backend: crate::db::Backend,
    events: &[NewEvent],
    reported_by: &str,
    received_at_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(events.len());
    for chunk in events.chunks(INSERT_CHUNK) {
        const COLUMNS: usize = 24;
        let mut sql = String::from(
            "INSERT INTO events (agent_id, action_type, market, size, currency, side,
                 counterparty, region, at, success, reported_by, received_at_ms, score,
                 contributions, baseline_version, pnl, quantity, price, order_type, order_state,
                 client_order_id, fill_quantity, fill_price, decision_id) VALUES ",
        );
        sql.push_str(&crate::db::values_rows(backend, chunk.len(), COLUMNS));
        sql.push_str(" RETURNING id");
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        for e in chunk {
            q = q
                .bind(e.agent_id.clone())
                .bind(e.action_type.clone())
                .bind(e.market.clone())
                .bind(e.size.clone())
                .bind(e.currency.clone())
                .bind(e.side.clone())
                .bind(e.counterparty.clone())
                .bind(e.region.clone())
                .bind(e.at)
                .bind(e.success)
                .bind(reported_by.to_owned())
                .bind(received_at_ms)
                .bind(crate::nullable::OptF64(e.score))
                .bind(e.contributions.clone())
                .bind(e.baseline_version)
                .bind(e.pnl.clone())
                .bind(e.quantity.clone())
                .bind(e.price.clone())
                .bind(e.order_type.clone())
                .bind(e.order_state.clone())
                .bind(e.client_order_id.clone())
                .bind(e.fill_quantity.clone())
                .bind(e.fill_price.clone())
                .bind(e.decision_id.clone());
        }
        let mut got: Vec<i64> = q.fetch_all(&mut *conn).await?;
        // RETURNING yields rows in no promised order; ids grow in VALUES order.
        got.sort_unstable();
        ids.extend(got);
    }
    Ok(ids)
}

async fn save_counters(
    conn: &mut AnyConnection,
    c: &AgentCounters,
    event_ids: &[i64],
) -> Result<(), StoreError> {
    let risk = c.risk.as_ref();
    let risk_event = risk.and_then(|r| r.event_id).map(|i| {
        // Ids below zero name an event of this batch: -(index + 1).
        if i < 0 {
            usize::try_from(-i - 1)
                .ok()
                .and_then(|k| event_ids.get(k).copied())
                .unwrap_or(i)
        } else {
            i
        }
    });
    sqlx::query(
        "INSERT INTO agent_counters (agent_id, events, first_event_at, last_event_at,
             consecutive_failures, day_start, day_volume, risk_score, risk_contributions,
             risk_event_id, risk_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (agent_id) DO UPDATE SET events = excluded.events,
             first_event_at = excluded.first_event_at, last_event_at = excluded.last_event_at,
             consecutive_failures = excluded.consecutive_failures,
             day_start = excluded.day_start, day_volume = excluded.day_volume,
             risk_score = excluded.risk_score, risk_contributions = excluded.risk_contributions,
             risk_event_id = excluded.risk_event_id, risk_at_ms = excluded.risk_at_ms",
    )
    .bind(&c.agent_id)
    .bind(c.events)
    .bind(c.first_event_at)
    .bind(c.last_event_at)
    .bind(c.consecutive_failures)
    .bind(c.day_start)
    .bind(&c.day_volume)
    .bind(crate::nullable::OptF64(risk.map(|r| r.score)))
    .bind(risk.map(|r| json_text(&r.contributions)))
    .bind(risk_event)
    .bind(risk.map(|r| r.at_ms))
    .execute(conn)
    .await?;
    Ok(())
}

/// Opens an incident unless the agent has an unresolved one of that kind; with its audit record
/// and outbox event.
async fn open_incident(
    conn: &mut AnyConnection,
    t: &IncidentTrigger,
    event_id: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    // One open incident per agent, kind and response: a second breach while the first is
    // open adds to it nothing but its event.
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO incidents (agent_id, kind, status, score, threshold, contributions,
             event_id, created_at_ms, reasons, revokes)
         SELECT $1, $2, 'open', $3, $4, $5, $6, $7, $8, $9
         WHERE NOT EXISTS (SELECT 1 FROM incidents
                           WHERE agent_id = $1 AND kind = $2 AND revokes = $9
                             AND status <> 'resolved')
         RETURNING id",
    )
    .bind(&t.agent_id)
    .bind(t.kind.as_str())
    .bind(t.score)
    .bind(t.threshold)
    .bind(json_text(&t.contributions))
    .bind(event_id)
    .bind(now_ms())
    .bind(t.reasons.as_ref().map(json_text))
    .bind(t.revokes)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    let mut data = json!({
        "incident_id": id, "agent_id": t.agent_id, "kind": t.kind.as_str(),
        "risk_score": t.score, "threshold": t.threshold, "contributions": t.contributions,
        "event_id": event_id,
    });
    if let Some(reasons) = &t.reasons {
        data["reasons"] = reasons.clone();
        data["on_breach"] = json!(if t.revokes { "revoke" } else { "warn" });
    }
    append(
        conn,
        &AuditEvent::new(
            "system:scoring",
            "incident.opened",
            &t.agent_id,
            data.clone(),
        )
        .with_risk_score(t.score),
    )
    .await?;
    let operator = operator_of(conn, &t.agent_id).await?;
    let kind = match t.kind {
        IncidentKind::RiskWarning => "risk.warning",
        IncidentKind::AutoRevocation => "incident.opened",
        IncidentKind::MandateBreach => "mandate.breach",
    };
    enqueue(conn, kind, operator.as_deref(), &data).await?;
    Ok(Some(id))
}

impl Store {
    /// How many of the agent's certificates are valid now (issued, unrevoked, unexpired), and
    /// how many are revoked.
    pub async fn agent_certificate_summary(
        &self,
        agent_id: &str,
        now: i64,
    ) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(
            "SELECT
                 COALESCE(SUM(CASE WHEN status = 'issued' AND not_after > $2 THEN 1 ELSE 0 END), 0)
                     AS valid,
                 COALESCE(SUM(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END), 0) AS revoked
             FROM certificates WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        Ok((r.try_get("valid")?, r.try_get("revoked")?))
    }

    /// An agent's certificates at `now`: how many are valid, how many were revoked for another
    /// reason than `superseded` (a renewal or a newer mandate version replaced those: their
    /// holder renews, it is not stopped), and until when the longest-lived valid one lasts
    /// (unix s, none without a valid certificate).
    pub async fn agent_certificate_state(
        &self,
        agent_id: &str,
        now: i64,
    ) -> Result<(i64, i64, Option<i64>), StoreError> {
        let r = sqlx::query(
            "SELECT
                 COALESCE(SUM(CASE WHEN status = 'issued' AND not_after > $2 THEN 1 ELSE 0 END), 0)
                     AS valid,
                 COALESCE(SUM(CASE WHEN status = 'revoked' AND COALESCE(revocation_reason, 0) <> 4
                                   THEN 1 ELSE 0 END), 0) AS revoked,
                 MAX(CASE WHEN status = 'issued' AND not_after > $2 THEN not_after END)
                     AS valid_until
             FROM certificates WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        Ok((
            r.try_get("valid")?,
            r.try_get("revoked")?,
            r.try_get("valid_until")?,
        ))
    }

    /// The HSM keys generated for an agent, newest first: (key id, key kind).
    pub async fn agent_key_ids(&self, agent_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, key_kind FROM agent_keys WHERE agent_id = $1
             ORDER BY created_at DESC, key_id LIMIT 20",
        )
        .bind(agent_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key_id")?, r.try_get("key_kind")?)))
            .collect()
    }

    /// Stores a batch of events with the counters after it, and opens the incidents its scores
    /// call for, all in one transaction.
    pub async fn ingest_events(&self, batch: EventBatch) -> Result<Ingested, StoreError> {
        let received = now_ms();
        let backend = self.backend();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mut out = Ingested {
                        event_ids: insert_events(
                            conn,
                            backend,
                            &batch.events,
                            &batch.reported_by,
                            received,
                        )
                        .await?,
                        ..Ingested::default()
                    };
                    for c in &batch.counters {
                        save_counters(conn, c, &out.event_ids).await?;
                    }
                    for t in &batch.triggers {
                        let event_id = out.event_ids.get(t.event_index).copied();
                        if let Some(id) = open_incident(conn, t, event_id).await? {
                            out.incidents.push((id, t.agent_id.clone(), t.kind));
                        }
                    }
                    Ok(out)
                })
            })
            .await
    }

    /// An agent's counters, if it ever reported an event.
    pub async fn agent_counters(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentCounters>, StoreError> {
        let row = sqlx::query(
            "SELECT agent_id, events, first_event_at, last_event_at, consecutive_failures,
                    day_start, day_volume, risk_score, risk_contributions, risk_event_id,
                    risk_at_ms
             FROM agent_counters WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let score: Option<f64> = r.try_get("risk_score")?;
        let contributions: Option<String> = r.try_get("risk_contributions")?;
        let risk = match (score, contributions) {
            (Some(score), Some(c)) => Some(RiskState {
                score,
                contributions: parse_json(&c, "risk contributions")?,
                event_id: r.try_get("risk_event_id")?,
                at_ms: r.try_get::<Option<i64>, _>("risk_at_ms")?.unwrap_or(0),
            }),
            _ => None,
        };
        Ok(Some(AgentCounters {
            agent_id: r.try_get("agent_id")?,
            events: r.try_get("events")?,
            first_event_at: r.try_get("first_event_at")?,
            last_event_at: r.try_get("last_event_at")?,
            consecutive_failures: r.try_get("consecutive_failures")?,
            day_start: r.try_get("day_start")?,
            day_volume: r.try_get("day_volume")?,
            risk,
        }))
    }

    /// Timestamps of an agent's events at or after `since`, oldest first (at most `limit`).
    pub async fn event_times_since(
        &self,
        agent_id: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT at FROM events WHERE agent_id = $1 AND at >= $2 ORDER BY at LIMIT $3",
        )
        .bind(agent_id)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Every order event of an agent, in the order they were stored (the live book replays
    /// them after a restart).
    pub async fn order_events(&self, agent_id: &str) -> Result<Vec<OrderEventRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, market, side, order_state, client_order_id, quantity, price, fill_quantity
             FROM events WHERE agent_id = $1 AND order_state IS NOT NULL ORDER BY id",
        )
        .bind(agent_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// An agent's reported realised P&L at or after `since`: `(at, pnl, currency, market)`,
    /// the P&L as signed decimal text (daily losses).
    #[allow(clippy::type_complexity)]
    pub async fn pnl_since(
        &self,
        agent_id: &str,
        since: i64,
    ) -> Result<Vec<(i64, String, Option<String>, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, pnl, currency, market FROM events
             WHERE agent_id = $1 AND at >= $2 AND pnl IS NOT NULL",
        )
        .bind(agent_id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?)
    }

    /// An agent's successful trades with a market and a side at or after `since`, oldest
    /// first: `(at, market, side)` (the repeated-execution throttle's window).
    pub async fn executions_since(
        &self,
        agent_id: &str,
        since: i64,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, market, side FROM events
             WHERE agent_id = $1 AND at >= $2 AND success = TRUE
               AND action_type = 'trade_execution' AND market IS NOT NULL AND side IS NOT NULL
               AND (order_state IS NULL OR order_state IN ('filled', 'partially_filled'))
             ORDER BY at",
        )
        .bind(agent_id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?)
    }

    /// An agent's successful trades with a size at or after `since`: `(at, size, currency)`,
    /// sizes as decimal texts for the caller to add exactly (daily volumes).
    pub async fn trades_since(
        &self,
        agent_id: &str,
        since: i64,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, size, currency FROM events
             WHERE agent_id = $1 AND at >= $2 AND success = TRUE
               AND action_type = 'trade_execution' AND size IS NOT NULL
               AND (order_state IS NULL OR order_state IN ('filled', 'partially_filled'))",
        )
        .bind(agent_id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?)
    }

    /// An agent's events in `[from, to)`, as the baseline learner needs them (at most `limit`).
    pub async fn observations(
        &self,
        agent_id: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<ObservationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, size, market, region FROM events
             WHERE agent_id = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4",
        )
        .bind(agent_id)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ObservationRow {
                    at: r.try_get("at")?,
                    size: r.try_get("size")?,
                    market: r.try_get("market")?,
                    region: r.try_get("region")?,
                })
            })
            .collect()
    }

    /// An agent's events that happened in `[from, to)` (unix s, the agent's times), oldest
    /// stored first, after row `after_id`, at most `limit`.
    pub async fn agent_events_between(
        &self,
        agent_id: &str,
        (from, to): (i64, i64),
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, action_type, market, size, currency, side, region, at,
                    CASE WHEN success THEN 1 ELSE 0 END AS ok, received_at_ms, score,
                    contributions
             FROM events WHERE agent_id = $1 AND at >= $2 AND at < $3 AND id > $4
             ORDER BY id LIMIT $5",
        )
        .bind(agent_id)
        .bind(from)
        .bind(to)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// An agent's latest events by the time they happened (not the order they arrived in: a
    /// batch may report older events late), latest first.
    pub async fn agent_events(
        &self,
        agent_id: &str,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, action_type, market, size, currency, side, region, at,
                    CASE WHEN success THEN 1 ELSE 0 END AS ok, received_at_ms, score,
                    contributions
             FROM events WHERE agent_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(agent_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// Baselines waiting for a compliance decision, oldest first.
    pub async fn pending_baselines(
        &self,
        organization: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            baseline_columns!(),
            " FROM baselines WHERE status = 'pending_approval'
                AND ($2 = '' OR agent_id IN (SELECT id FROM agents WHERE organization = $2))
              ORDER BY created_at, agent_id LIMIT $1"
        ))
        .bind(limit)
        .bind(organization.unwrap_or(""))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(baseline_row).collect()
    }

    /// Active agents with events since before `first_before` and no baseline at all.
    pub async fn agents_without_baseline(
        &self,
        first_before: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT c.agent_id FROM agent_counters c JOIN agents a ON a.id = c.agent_id
             WHERE c.first_event_at <= $1 AND a.status = 'active'
               AND NOT EXISTS (SELECT 1 FROM baselines b WHERE b.agent_id = c.agent_id)
             ORDER BY c.agent_id LIMIT $2",
        )
        .bind(first_before)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Stores a newly learnt baseline as the next version, pending approval (an older pending
    /// version is superseded). Returns its version.
    pub async fn insert_baseline(
        &self,
        agent_id: &str,
        baseline: &Value,
        learnt_by: &str,
    ) -> Result<i64, StoreError> {
        let published = Change::Agent(agent_id.to_owned());
        let (agent_id, baseline, learnt_by) =
            (agent_id.to_owned(), baseline.clone(), learnt_by.to_owned());
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let version: i64 = sqlx::query_scalar(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM baselines WHERE agent_id = $1",
                    )
                    .bind(&agent_id)
                    .fetch_one(&mut *conn)
                    .await?;
                    sqlx::query(
                        "UPDATE baselines SET status = 'superseded'
                         WHERE agent_id = $1 AND status = 'pending_approval'",
                    )
                    .bind(&agent_id)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(concat!(
                        "INSERT INTO baselines (",
                        baseline_columns!(),
                        ") VALUES ($1, $2, $3, 'pending_approval', $4, $5, NULL, NULL)"
                    ))
                    .bind(&agent_id)
                    .bind(version)
                    .bind(json_text(&baseline))
                    .bind(&learnt_by)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?;
                    append(
                        conn,
                        &AuditEvent::new(
                            &learnt_by,
                            "baseline.learnt",
                            &agent_id,
                            json!({"version": version, "events": baseline.get("events")}),
                        ),
                    )
                    .await?;
                    Ok(version)
                })
            })
            .await?;
        self.publish([published]);
        Ok(out)
    }

    /// Approves or rejects a pending baseline version. An approval supersedes the approved one.
    pub async fn decide_baseline(
        &self,
        agent_id: &str,
        version: i64,
        approve: bool,
        actor: &str,
    ) -> Result<BaselineRow, StoreError> {
        let (agent_id, actor) = (agent_id.to_owned(), actor.to_owned());
        let decision = if approve { "approved" } else { "rejected" };
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE baselines SET status = $3, decided_by = $4, decided_at = $5
                         WHERE agent_id = $1 AND version = $2 AND status = 'pending_approval'",
                    )
                    .bind(&agent_id)
                    .bind(version)
                    .bind(decision)
                    .bind(&actor)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed != 1 {
                        return Err(StoreError::WrongState(format!(
                            "baseline version {version} of agent {agent_id} is not pending approval"
                        )));
                    }
                    if approve {
                        sqlx::query(
                            "UPDATE baselines SET status = 'superseded'
                             WHERE agent_id = $1 AND status = 'approved' AND version <> $2",
                        )
                        .bind(&agent_id)
                        .bind(version)
                        .execute(&mut *conn)
                        .await?;
                    }
                    let data = json!({"agent_id": agent_id, "version": version});
                    append(
                        conn,
                        &AuditEvent::new(
                            &actor,
                            format!("baseline.{decision}"),
                            &agent_id,
                            data.clone(),
                        ),
                    )
                    .await?;
                    if approve {
                        let operator = operator_of(conn, &agent_id).await?;
                        enqueue(conn, "baseline.approved", operator.as_deref(), &data).await?;
                    }
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        baseline_columns!(),
                        " FROM baselines WHERE agent_id = $1 AND version = $2"
                    ))
                    .bind(&agent_id)
                    .bind(version)
                    .fetch_one(&mut *conn)
                    .await?;
                    baseline_row(&row)
                })
            })
            .await?;
        self.publish([Change::Agent(out.agent_id.clone())]);
        Ok(out)
    }

    /// An agent's baseline versions, newest first.
    pub async fn baselines(&self, agent_id: &str) -> Result<Vec<BaselineRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            baseline_columns!(),
            " FROM baselines WHERE agent_id = $1 ORDER BY version DESC LIMIT 100"
        ))
        .bind(agent_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(baseline_row).collect()
    }

    /// The approved baseline of an agent, if any.
    pub async fn approved_baseline(
        &self,
        agent_id: &str,
    ) -> Result<Option<BaselineRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            baseline_columns!(),
            " FROM baselines WHERE agent_id = $1 AND status = 'approved'"
        ))
        .bind(agent_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(baseline_row).transpose()
    }

    /// Incidents, newest first, optionally of one agent and/or one status, with ids below
    /// `before` (0: from the newest).
    pub async fn incidents(
        &self,
        organization: Option<&str>,
        agent_id: Option<&str>,
        status: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE ($1 IS NULL OR agent_id = $1) AND ($2 IS NULL OR status = $2)
               AND ($3 = 0 OR id < $3)
               AND ($5 = '' OR agent_id IN (SELECT id FROM agents WHERE organization = $5))
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(agent_id)
        .bind(status)
        .bind(before)
        .bind(limit)
        .bind(organization.unwrap_or(""))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(incident_row).collect()
    }

    /// An incident by id.
    pub async fn incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(incident_row).transpose()
    }

    /// Incidents whose response is the kill switch (auto-revocations, breaches with
    /// `onBreach: revoke`) and whose revocation has not happened yet (the daemon stopped in
    /// between): the scoring loop finishes them at start.
    pub async fn unfinished_auto_revocations(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE revokes = TRUE AND kill_switch_id IS NULL
               AND status <> 'resolved' ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(incident_row).collect()
    }

    /// Moves an incident on: `acknowledged` (from open) or `resolved` (from open or
    /// acknowledged, with a note: the human sign-off, which also clears the agent's risk score).
    /// An auto-revocation is resolved only once its revocation happened.
    pub async fn update_incident(
        &self,
        id: i64,
        to: &str,
        actor: &str,
        note: Option<&str>,
    ) -> Result<IncidentRow, StoreError> {
        let (to, actor, note) = (to.to_owned(), actor.to_owned(), note.map(str::to_owned));
        let now = now_unix();
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let changed = match to.as_str() {
                        "acknowledged" => sqlx::query(
                            "UPDATE incidents SET status = 'acknowledged', acknowledged_by = $2,
                                 acknowledged_at = $3
                             WHERE id = $1 AND status = 'open'",
                        )
                        .bind(id)
                        .bind(&actor)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected(),
                        "resolved" => sqlx::query(
                            "UPDATE incidents SET status = 'resolved', resolved_by = $2,
                                 resolved_at = $3, resolution = $4
                             WHERE id = $1 AND status <> 'resolved'
                               AND (revokes = FALSE OR kill_switch_id IS NOT NULL)",
                        )
                        .bind(id)
                        .bind(&actor)
                        .bind(now)
                        .bind(&note)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected(),
                        other => {
                            return Err(StoreError::WrongState(format!(
                                "an incident can be acknowledged or resolved, not {other:?}"
                            )));
                        }
                    };
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        incident_columns!(),
                        " FROM incidents WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let row = row
                        .as_ref()
                        .map(incident_row)
                        .transpose()?
                        .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
                    if changed != 1 {
                        return Err(StoreError::WrongState(format!(
                            "incident {id} is {} and cannot become {to}",
                            row.status
                        )));
                    }
                    if to == "resolved" {
                        // The sign-off answers for the behaviour that raised the score.
                        sqlx::query(
                            "UPDATE agent_counters SET risk_score = NULL,
                                 risk_contributions = NULL, risk_event_id = NULL,
                                 risk_at_ms = NULL
                             WHERE agent_id = $1",
                        )
                        .bind(&row.agent_id)
                        .execute(&mut *conn)
                        .await?;
                    }
                    let data = json!({"incident_id": id, "agent_id": row.agent_id,
                                      "kind": row.kind, "status": to, "note": note});
                    append(
                        conn,
                        &AuditEvent::new(
                            &actor,
                            format!("incident.{to}"),
                            &row.agent_id,
                            data.clone(),
                        ),
                    )
                    .await?;
                    let operator = operator_of(conn, &row.agent_id).await?;
                    enqueue(conn, "incident.updated", operator.as_deref(), &data).await?;
                    Ok(row)
                })
            })
            .await?;
        self.publish([Change::Agent(out.agent_id.clone())]);
        Ok(out)
    }
}

fn event_row(r: &sqlx::any::AnyRow) -> Result<EventRow, StoreError> {
    let ok: i64 = r.try_get("ok")?;
    let contributions: Option<String> = r.try_get("contributions")?;
    Ok(EventRow {
        id: r.try_get("id")?,
        action_type: r.try_get("action_type")?,
        market: r.try_get("market")?,
        size: r.try_get("size")?,
        currency: r.try_get("currency")?,
        side: r.try_get("side")?,
        region: r.try_get("region")?,
        at: r.try_get("at")?,
        success: ok != 0,
        received_at_ms: r.try_get("received_at_ms")?,
        score: r.try_get("score")?,
        contributions: contributions
            .as_deref()
            .map(|c| parse_json(c, "event contributions"))
            .transpose()?,
    })
}

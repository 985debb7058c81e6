//! Webhook endpoints, the outbox and the delivery log.
//!
//! A change that others should hear of writes a `webhook_events` row in its own transaction
//! ([`enqueue`]), so an event exists if and only if the change does. The delivery worker then
//! fans each event out to the endpoints subscribed at that moment (one `webhook_deliveries` row
//! per endpoint, in one transaction) and works the deliveries off with retries. Nothing lives only
//! in memory, so a restart loses nothing.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::append;
use crate::{AuditEvent, Store, StoreError, now_ms, now_unix};

/// Event types an endpoint can subscribe to (`*` subscribes to all).
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "certificate.issued",
    "certificate.revoked",
    "agent.approved",
    "agent.suspended",
    "baseline.approved",
    "risk.warning",
    "incident.opened",
    "incident.updated",
    "mandate.breach",
    "certificate.superseded",
];

/// An event type, for the API document: one of [`WEBHOOK_EVENT_TYPES`].
pub struct WebhookEventType;

impl utoipa::PartialSchema for WebhookEventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(WEBHOOK_EVENT_TYPES.iter().copied()))
            .into()
    }
}
impl utoipa::ToSchema for WebhookEventType {}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// `wh_...`.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Subscribed event types, or `["*"]`.
    pub events: Vec<String>,
    /// Only events about this operator's agents, if set.
    pub operator: Option<String>,
    /// API key id that created it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Set once disabled: no further deliveries.
    pub disabled_at: Option<i64>,
}

/// One delivery of one event to one endpoint, with its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Row id.
    pub id: i64,
    /// The endpoint.
    pub webhook_id: String,
    /// The event's id (`evt_<n>` on the wire).
    pub event_id: i64,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending only), unix ms.
    pub next_attempt_at_ms: i64,
    /// The latest attempt, unix ms.
    pub last_attempt_at_ms: Option<i64>,
    /// HTTP status of the latest attempt, if an answer came.
    pub last_status_code: Option<i64>,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered, unix ms.
    pub delivered_at_ms: Option<i64>,
}

/// A delivery due now, with what it needs to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// Delivery row id.
    pub id: i64,
    /// The endpoint.
    pub webhook_id: String,
    /// Its URL.
    pub url: String,
    /// The event id.
    pub event_id: i64,
    /// The event type.
    pub event_type: String,
    /// The event's data, JSON text exactly as stored.
    pub data: String,
    /// When the event was written, unix ms.
    pub created_at_ms: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The organization the event concerns (none: CA-wide).
    pub organization: Option<String>,
}

/// What waits to be delivered (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookBacklog {
    /// Deliveries with status `pending`.
    pub pending_deliveries: i64,
    /// Outbox events not fanned out to deliveries yet.
    pub events_not_fanned_out: i64,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered {
        /// The HTTP status.
        status: i64,
    },
    /// Failed; try again at `next_at_ms`.
    Retry {
        /// The HTTP status, if one came.
        status: Option<i64>,
        /// What went wrong.
        error: String,
        /// When to try again, unix ms.
        next_at_ms: i64,
    },
    /// Failed for the last time.
    GiveUp {
        /// The HTTP status, if one came.
        status: Option<i64>,
        /// What went wrong.
        error: String,
    },
}

/// Writes an event to the outbox inside the caller's transaction, if any endpoint is enabled
/// (with none, nobody could be told: the audit log is the record). Returns its id if written.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    event_type: &str,
    operator: Option<&str>,
    data: &Value,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO webhook_events (type, operator, data, created_at_ms, fanned_out)
         SELECT $1, $2, $3, $4, FALSE
         WHERE EXISTS (SELECT 1 FROM webhooks WHERE disabled_at IS NULL)
         RETURNING id",
    )
    .bind(event_type)
    .bind(operator)
    .bind(data.to_string())
    .bind(now_ms())
    .fetch_optional(conn)
    .await?)
}

/// The operator (organization) of an agent, for the outbox's operator filter.
pub(crate) async fn operator_of(
    conn: &mut AnyConnection,
    agent_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT organization FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(conn)
            .await?,
    )
}

macro_rules! webhook_columns {
    () => {
        "id, url, events, operator, created_by, created_at, disabled_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "d.id, d.webhook_id, d.event_id, e.type AS event_type, d.status, d.attempts,
         d.next_attempt_at_ms, d.last_attempt_at_ms, d.last_status_code, d.last_error,
         d.delivered_at_ms"
    };
}

fn webhook_row(r: &AnyRow) -> Result<WebhookRow, StoreError> {
    let events: String = r.try_get("events")?;
    Ok(WebhookRow {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?,
        operator: r.try_get("operator")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

/// Pending deliveries due at $1, oldest first, at most $2 (read by [`DueDelivery`]'s row).
const DUE_DELIVERIES: &str = "SELECT d.id, d.webhook_id, w.url, d.event_id, e.type, e.data,
        e.created_at_ms, d.attempts, e.operator
     FROM webhook_deliveries d
     JOIN webhooks w ON w.id = d.webhook_id
     JOIN webhook_events e ON e.id = d.event_id
     WHERE d.status = 'pending' AND d.next_attempt_at_ms <= $1
     ORDER BY d.next_attempt_at_ms, d.id LIMIT $2";

fn due_row(r: &AnyRow) -> Result<DueDelivery, StoreError> {
    Ok(DueDelivery {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        url: r.try_get("url")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("type")?,
        data: r.try_get("data")?,
        created_at_ms: r.try_get("created_at_ms")?,
        attempts: r.try_get("attempts")?,
        organization: r.try_get("operator")?,
    })
}

fn delivery_row(r: &AnyRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at_ms: r.try_get("next_attempt_at_ms")?,
        last_attempt_at_ms: r.try_get("last_attempt_at_ms")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        delivered_at_ms: r.try_get("delivered_at_ms")?,
    })
}

fn subscribed(hook: &WebhookRow, event_type: &str, operator: Option<&str>) -> bool {
    let type_ok = hook.events.iter().any(|e| e == "*" || e == event_type);
    let operator_ok = match (&hook.operator, operator) {
        (None, _) => true,
        (Some(want), Some(got)) => want == got,
        (Some(_), None) => false,
    };
    type_ok && operator_ok && hook.disabled_at.is_none()
}

impl Store {
    /// Creates an endpoint, with its audit event.
    pub async fn create_webhook(
        &self,
        hook: &WebhookRow,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (hook, event) = (hook.clone(), event.clone());
        let events = serde_json::to_string(&hook.events)
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    sqlx::query(concat!(
                        "INSERT INTO webhooks (",
                        webhook_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, NULL)"
                    ))
                    .bind(&hook.id)
                    .bind(&hook.url)
                    .bind(&events)
                    .bind(&hook.operator)
                    .bind(&hook.created_by)
                    .bind(hook.created_at)
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// An endpoint by id.
    pub async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(webhook_row).transpose()
    }

    /// Endpoints, by id, after `after`, at most `limit`.
    pub async fn webhooks(
        &self,
        organization: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<WebhookRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE id > $1 AND ($3 = '' OR operator = $3) ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .bind(organization.unwrap_or(""))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(webhook_row).collect()
    }

    /// Disables an endpoint: its pending deliveries are given up, no new ones are made.
    pub async fn disable_webhook(&self, id: &str, event: &AuditEvent) -> Result<(), StoreError> {
        let (id, event) = (id.to_owned(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE webhooks SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
                    )
                    .bind(&id)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed != 1 {
                        let exists: Option<String> =
                            sqlx::query_scalar("SELECT id FROM webhooks WHERE id = $1")
                                .bind(&id)
                                .fetch_optional(&mut *conn)
                                .await?;
                        return Err(match exists {
                            Some(_) => {
                                StoreError::WrongState(format!("webhook {id} is already disabled"))
                            }
                            None => StoreError::NotFound(format!("webhook {id}")),
                        });
                    }
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = 'failed',
                             last_error = 'endpoint disabled'
                         WHERE webhook_id = $1 AND status = 'pending'",
                    )
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// Makes a delivery that was delivered or given up due again now, for an endpoint still
    /// in use, with its audit record: one more attempt, then the usual retries while attempts
    /// remain. `NotFound` if the endpoint has no such delivery; `WrongState` if the endpoint
    /// is disabled or the delivery is still waiting for an attempt.
    pub async fn redeliver(
        &self,
        webhook_id: &str,
        delivery_id: i64,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (webhook_id, event) = (webhook_id.to_owned(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let row: Option<(String, Option<i64>)> = sqlx::query_as(
                        "SELECT d.status, w.disabled_at FROM webhook_deliveries d
                         JOIN webhooks w ON w.id = d.webhook_id
                         WHERE d.id = $1 AND d.webhook_id = $2",
                    )
                    .bind(delivery_id)
                    .bind(&webhook_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    match row {
                        None => {
                            return Err(StoreError::NotFound(format!(
                                "delivery {delivery_id} of webhook {webhook_id}"
                            )));
                        }
                        Some((_, Some(_))) => {
                            return Err(StoreError::WrongState(format!(
                                "webhook {webhook_id} is disabled: nothing is delivered to it"
                            )));
                        }
                        Some((status, None)) if status == "pending" => {
                            return Err(StoreError::WrongState(format!(
                                "delivery {delivery_id} is already waiting for its next attempt"
                            )));
                        }
                        Some(_) => {}
                    }
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at_ms = $2
                         WHERE id = $1 AND status <> 'pending'",
                    )
                    .bind(delivery_id)
                    .bind(now_ms())
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// Deliveries to one endpoint, newest first, with ids below `before` (0: from the newest).
    pub async fn webhook_deliveries(
        &self,
        webhook_id: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
             WHERE d.webhook_id = $1 AND ($2 = 0 OR d.id < $2) ORDER BY d.id DESC LIMIT $3"
        ))
        .bind(webhook_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// Deliveries of the events about one agent (their data names it as `agent_id`) created in
    /// `[from_ms, to_ms)`, oldest first, at most `limit`.
    pub async fn agent_deliveries(
        &self,
        agent_id: &str,
        (from_ms, to_ms): (i64, i64),
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = match self.backend() {
            crate::Backend::Sqlite => concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
                 WHERE json_extract(e.data, '$.agent_id') = $1
                   AND e.created_at_ms >= $2 AND e.created_at_ms < $3
                 ORDER BY d.id LIMIT $4"
            ),
            crate::Backend::Postgres => concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
                 WHERE (e.data::jsonb ->> 'agent_id') = $1
                   AND e.created_at_ms >= $2 AND e.created_at_ms < $3
                 ORDER BY d.id LIMIT $4"
            ),
        };
        let rows = sqlx::query(sql)
            .bind(agent_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// Fans up to `limit` new outbox events out to the endpoints subscribed now, in one
    /// transaction; returns how many events it took.
    pub async fn fan_out_webhook_events(&self, limit: i64) -> Result<usize, StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let events = sqlx::query(
                        "SELECT id, type, operator FROM webhook_events
                         WHERE fanned_out = FALSE ORDER BY id LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                    if events.is_empty() {
                        return Ok(0);
                    }
                    let hooks = sqlx::query(concat!(
                        "SELECT ",
                        webhook_columns!(),
                        " FROM webhooks WHERE disabled_at IS NULL"
                    ))
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(webhook_row)
                    .collect::<Result<Vec<_>, _>>()?;
                    let now = now_ms();
                    for e in &events {
                        let id: i64 = e.try_get("id")?;
                        let kind: String = e.try_get("type")?;
                        let operator: Option<String> = e.try_get("operator")?;
                        for h in hooks
                            .iter()
                            .filter(|h| subscribed(h, &kind, operator.as_deref()))
                        {
                            sqlx::query(
                                "INSERT INTO webhook_deliveries (webhook_id, event_id, status,
                                     attempts, next_attempt_at_ms)
                                 VALUES ($1, $2, 'pending', 0, $3)
                                 ON CONFLICT (webhook_id, event_id) DO NOTHING",
                            )
                            .bind(&h.id)
                            .bind(id)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                        }
                        sqlx::query("UPDATE webhook_events SET fanned_out = TRUE WHERE id = $1")
                            .bind(id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(events.len())
                })
            })
            .await
    }

    /// Pending deliveries due at `now_ms`, oldest first, at most `limit`.
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows = sqlx::query(DUE_DELIVERIES)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(due_row).collect()
    }

    /// Claims the pending deliveries due at `now_ms` (oldest first, at most `limit`) for
    /// `lease_ms`: they are not due again until then, so several nodes sharing the outbox do
    /// not send the same delivery at once. If the claimer dies, the lease runs out and another
    /// node retries it (delivery is at least once; receivers dedupe on the event id).
    pub async fn claim_due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let rows = sqlx::query(DUE_DELIVERIES)
                        .bind(now_ms)
                        .bind(limit)
                        .fetch_all(&mut *conn)
                        .await?;
                    let mut due = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let d = due_row(r)?;
                        sqlx::query(
                            "UPDATE webhook_deliveries SET next_attempt_at_ms = $2
                             WHERE id = $1 AND status = 'pending'",
                        )
                        .bind(d.id)
                        .bind(now_ms.saturating_add(lease_ms))
                        .execute(&mut *conn)
                        .await?;
                        due.push(d);
                    }
                    Ok(due)
                })
            })
            .await
    }

    /// Whether the outbox holds events not fanned out yet (a cheap read before a write).
    pub async fn has_new_webhook_events(&self) -> Result<bool, StoreError> {
        let row: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_events WHERE fanned_out = FALSE LIMIT 1")
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.is_some())
    }

    /// The webhook backlog: deliveries waiting for a (first or next) attempt, and outbox events
    /// not yet turned into deliveries.
    pub async fn webhook_backlog(&self) -> Result<WebhookBacklog, StoreError> {
        let (pending, unfanned): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'), \
                    (SELECT COUNT(*) FROM webhook_events WHERE fanned_out = FALSE)",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(WebhookBacklog {
            pending_deliveries: pending,
            events_not_fanned_out: unfanned,
        })
    }

    /// When the next pending delivery is due, unix ms, if any.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at_ms) FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.reader)
        .await?)
    }

    /// Records an attempt's outcome.
    pub async fn record_delivery_attempt(
        &self,
        id: i64,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    let (status, code, error, next, delivered) = match outcome {
                        AttemptOutcome::Delivered { status } => {
                            ("delivered", Some(status), None, now, Some(now))
                        }
                        AttemptOutcome::Retry {
                            status,
                            error,
                            next_at_ms,
                        } => ("pending", status, Some(error), next_at_ms, None),
                        AttemptOutcome::GiveUp { status, error } => {
                            ("failed", status, Some(error), now, None)
                        }
                    };
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1,
                             last_attempt_at_ms = $3, last_status_code = $4, last_error = $5,
                             next_attempt_at_ms = $6, delivered_at_ms = $7
                         WHERE id = $1 AND status = 'pending'",
                    )
                    .bind(id)
                    .bind(status)
                    .bind(now)
                    .bind(code)
                    .bind(error)
                    .bind(next)
                    .bind(delivered)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}

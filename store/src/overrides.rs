//! Controlled overrides of one limit of one agent, for a while (RTS 6 Art. 15(6)).

use sqlx::Row;

use crate::audit::append;
use crate::changes::Change;
use crate::{AuditEvent, Store, StoreError};

/// Most overrides in force for one agent at once.
pub const MAX_ACTIVE_OVERRIDES: i64 = 16;

/// An override, granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRow {
    /// Its id.
    pub id: i64,
    /// The agent.
    pub agent_id: String,
    /// The limit's JSON name, e.g. `maxOrderQuantity`.
    pub limit_name: String,
    /// The market whose own value it sets; none: the default.
    pub market: Option<String>,
    /// The value in force meanwhile, JSON text.
    pub value_json: String,
    /// Why.
    pub reason: String,
    /// Who granted it: the people (or keys), comma-separated, in order.
    pub granted_by: String,
    /// From (unix s).
    pub starts_at: i64,
    /// Until (unix s), unless ended before.
    pub expires_at: i64,
    /// When it was ended early, if it was.
    pub ended_at: Option<i64>,
    /// Who ended it early.
    pub ended_by: Option<String>,
}

impl OverrideRow {
    /// Whether it is in force at `at` (unix s).
    pub fn in_force(&self, at: i64) -> bool {
        self.starts_at <= at && at < self.expires_at && self.ended_at.is_none_or(|e| at < e)
    }
}

const COLUMNS: &str = "id, agent_id, limit_name, market, value_json, reason, granted_by, starts_at,
                       expires_at, ended_at, ended_by";

fn row(r: &sqlx::any::AnyRow) -> Result<OverrideRow, StoreError> {
    Ok(OverrideRow {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        limit_name: r.try_get("limit_name")?,
        market: r.try_get("market")?,
        value_json: r.try_get("value_json")?,
        reason: r.try_get("reason")?,
        granted_by: r.try_get("granted_by")?,
        starts_at: r.try_get("starts_at")?,
        expires_at: r.try_get("expires_at")?,
        ended_at: r.try_get("ended_at")?,
        ended_by: r.try_get("ended_by")?,
    })
}

impl Store {
    /// Grants `o` (its id is ignored) with `event` as its audit record; returns its id. Refused
    /// (`WrongState`) while the agent already has an override of the same limit and market in
    /// force, or [`MAX_ACTIVE_OVERRIDES`] of any.
    pub async fn grant_override(
        &self,
        o: OverrideRow,
        event: &AuditEvent,
    ) -> Result<i64, StoreError> {
        let event = event.clone();
        let agent_id = o.agent_id.clone();
        let id = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let now = o.starts_at;
                    let same: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM limit_overrides
                         WHERE agent_id = $1 AND limit_name = $2
                           AND COALESCE(LOWER(market), '') = COALESCE(LOWER($3), '')
                           AND expires_at > $4 AND ended_at IS NULL",
                    )
                    .bind(&o.agent_id)
                    .bind(&o.limit_name)
                    .bind(&o.market)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    if same > 0 {
                        return Err(StoreError::WrongState(format!(
                            "agent {} already has an override of {}{} in force: end it first",
                            o.agent_id,
                            o.limit_name,
                            o.market.as_deref().map(|m| format!(" in {m}")).unwrap_or_default()
                        )));
                    }
                    let all: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM limit_overrides
                         WHERE agent_id = $1 AND expires_at > $2 AND ended_at IS NULL",
                    )
                    .bind(&o.agent_id)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    if all >= MAX_ACTIVE_OVERRIDES {
                        return Err(StoreError::WrongState(format!(
                            "agent {} has {MAX_ACTIVE_OVERRIDES} overrides in force, the most there may be",
                            o.agent_id
                        )));
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO limit_overrides (agent_id, limit_name, market, value_json,
                             reason, granted_by, starts_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    )
                    .bind(&o.agent_id)
                    .bind(&o.limit_name)
                    .bind(&o.market)
                    .bind(&o.value_json)
                    .bind(&o.reason)
                    .bind(&o.granted_by)
                    .bind(o.starts_at)
                    .bind(o.expires_at)
                    .fetch_one(&mut *conn)
                    .await?;
                    let mut event = event;
                    event.details["override_id"] = serde_json::json!(id);
                    append(conn, &event).await?;
                    Ok(id)
                })
            })
            .await?;
        self.publish([Change::Agent(agent_id)]);
        Ok(id)
    }

    /// Ends override `id` of `agent_id` now, if it is still in force; `NotFound` otherwise.
    pub async fn end_override(
        &self,
        agent_id: &str,
        id: i64,
        by: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (agent, by, event) = (agent_id.to_owned(), by.to_owned(), event.clone());
        let now = crate::now_unix();
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE limit_overrides SET ended_at = $3, ended_by = $4
                         WHERE id = $1 AND agent_id = $2 AND ended_at IS NULL AND expires_at > $3",
                    )
                    .bind(id)
                    .bind(&agent)
                    .bind(now)
                    .bind(&by)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed != 1 {
                        return Err(StoreError::NotFound(format!(
                            "override {id} of agent {agent} in force"
                        )));
                    }
                    append(conn, &event).await
                })
            })
            .await?;
        self.publish([Change::Agent(agent_id.to_owned())]);
        Ok(())
    }

    /// The agent's overrides, newest first (at most `limit`).
    pub async fn overrides(
        &self,
        agent_id: &str,
        limit: i64,
    ) -> Result<Vec<OverrideRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM limit_overrides WHERE agent_id = $1 ORDER BY id DESC LIMIT $2"
        )))
        .bind(agent_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row).collect()
    }

    /// The agent's overrides in force now or later (not ended, not expired at `now`).
    pub async fn live_overrides(
        &self,
        agent_id: &str,
        now: i64,
    ) -> Result<Vec<OverrideRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM limit_overrides
             WHERE agent_id = $1 AND expires_at > $2 AND ended_at IS NULL ORDER BY id"
        )))
        .bind(agent_id)
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row).collect()
    }
}

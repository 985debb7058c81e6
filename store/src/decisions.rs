//! Pre-trade decisions: what the check answered, for which order, when and to whom; and the
//! events that refer to them (the order it let through, its fills).

use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError};

/// Rows per INSERT statement (9 parameters each).
const INSERT_CHUNK: usize = 500;

/// One pre-trade decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    /// `dec_` and 32 hex digits.
    pub id: String,
    /// The agent.
    pub agent_id: String,
    /// When it was decided (unix ms, the daemon's clock).
    pub at_ms: i64,
    /// `preflight` or `sign`.
    pub via: String,
    /// Whether the order was allowed.
    pub allowed: bool,
    /// A what-if for another time: never a permission.
    pub hypothetical: bool,
    /// The order as asked, canonical JSON text.
    pub order_json: String,
    /// Every reason, hard and soft: `[{"code", "limit", "requested", "enforcement"}]`.
    pub reasons: Value,
    /// The API key that asked.
    pub decided_by: String,
}

/// An event that refers to a decision, or to the order it decided.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct LinkedEvent {
    /// The event's id.
    pub id: i64,
    /// When it happened (unix s).
    pub at: i64,
    /// `new`, `filled`, ... (none for an event without an order state).
    #[schema(required = true)]
    pub order_state: Option<String>,
    /// The agent's id of the order.
    #[schema(required = true)]
    pub client_order_id: Option<String>,
    /// The market.
    #[schema(required = true)]
    pub market: Option<String>,
    /// `buy` or `sell`.
    #[schema(required = true)]
    pub side: Option<String>,
    /// Decimal text.
    #[schema(required = true)]
    pub quantity: Option<String>,
    /// Decimal text.
    #[schema(required = true)]
    pub price: Option<String>,
    /// Decimal text.
    #[schema(required = true)]
    pub fill_quantity: Option<String>,
    /// Decimal text.
    #[schema(required = true)]
    pub fill_price: Option<String>,
    /// The decision it names, if it names one.
    #[schema(required = true)]
    pub decision_id: Option<String>,
    /// The profit (or, negative, loss) it realised, signed decimal text.
    #[schema(required = true)]
    pub realised_pnl: Option<String>,
}

impl Store {
    /// Stores decisions, all or none.
    pub async fn insert_decisions(&self, rows: Vec<DecisionRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let backend = self.backend();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    for chunk in rows.chunks(INSERT_CHUNK) {
                        const COLUMNS: usize = 9;
                        let mut sql = String::from(
                            "INSERT INTO decisions (id, agent_id, at_ms, via, allowed, hypothetical,
                                 order_json, reasons, decided_by) VALUES ",
                        );
                        sql.push_str(&crate::db::values_rows(backend, chunk.len(), COLUMNS));
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for d in chunk {
                            q = q
                                .bind(d.id.clone())
                                .bind(d.agent_id.clone())
                                .bind(d.at_ms)
                                .bind(d.via.clone())
                                .bind(d.allowed)
                                .bind(d.hypothetical)
                                .bind(d.order_json.clone())
                                .bind(d.reasons.to_string())
                                .bind(d.decided_by.clone());
                        }
                        q.execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The decision `id`, if recorded.
    pub async fn decision(&self, id: &str) -> Result<Option<DecisionRow>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT id, agent_id, at_ms, via, CASE WHEN allowed THEN 1 ELSE 0 END AS ok,
                    CASE WHEN hypothetical THEN 1 ELSE 0 END AS what_if, order_json, reasons,
                    decided_by
             FROM decisions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(decision_of(&r)?))
    }

    /// An agent's pre-trade decisions in `[from_ms, to_ms)` after decision `after` (ids grow
    /// with time), oldest first, at most `limit`; what-ifs left out: (id, at_ms, via, allowed,
    /// reasons).
    pub async fn agent_decisions_between(
        &self,
        agent_id: &str,
        (from_ms, to_ms): (i64, i64),
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64, String, bool, Value)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, via, CASE WHEN allowed THEN 1 ELSE 0 END AS ok, reasons
             FROM decisions
             WHERE agent_id = $1 AND at_ms >= $2 AND at_ms < $3 AND id > $4
               AND NOT hypothetical
             ORDER BY id LIMIT $5",
        )
        .bind(agent_id)
        .bind(from_ms)
        .bind(to_ms)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let ok: i64 = r.try_get("ok")?;
                let reasons: String = r.try_get("reasons")?;
                Ok((
                    r.try_get("id")?,
                    r.try_get("at_ms")?,
                    r.try_get("via")?,
                    ok != 0,
                    serde_json::from_str(&reasons)
                        .map_err(|e| StoreError::Corrupt(format!("decision reasons: {e}")))?,
                ))
            })
            .collect()
    }

    /// The events of `agent_id` that name decision `id`, and those of the order
    /// `client_order_id` (its fills and cancellation) from `since` on (unix s), oldest first
    /// (at most 1000).
    pub async fn decision_events(
        &self,
        agent_id: &str,
        id: &str,
        client_order_id: Option<&str>,
        since: i64,
    ) -> Result<Vec<LinkedEvent>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at, order_state, client_order_id, market, side, quantity, price,
                    fill_quantity, fill_price, decision_id, pnl AS realised_pnl
             FROM events
             WHERE agent_id = $1
               AND (decision_id = $2
                    OR ($3 IS NOT NULL AND client_order_id = $3 AND at >= $4))
             ORDER BY id LIMIT 1000",
        )
        .bind(agent_id)
        .bind(id)
        .bind(client_order_id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?)
    }

    /// `agent_id`'s order events (with an order state or naming a decision) from `from` to
    /// `to` (unix s, inclusive), oldest first, at most `limit`; and the decisions they name.
    pub async fn orders_with_decisions(
        &self,
        agent_id: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<LinkedEvent>, Vec<DecisionRow>), StoreError> {
        let events: Vec<LinkedEvent> = sqlx::query_as(
            "SELECT id, at, order_state, client_order_id, market, side, quantity, price,
                    fill_quantity, fill_price, decision_id, pnl AS realised_pnl
             FROM events
             WHERE agent_id = $1 AND at >= $2 AND at <= $3
               AND (order_state IS NOT NULL OR decision_id IS NOT NULL)
             ORDER BY id LIMIT $4",
        )
        .bind(agent_id)
        .bind(from)
        .bind(to)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        let mut ids: Vec<&str> = events
            .iter()
            .filter_map(|e| e.decision_id.as_deref())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut decisions = Vec::with_capacity(ids.len());
        // One statement per chunk of ids; another agent's decision is never read.
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut sql = String::from(
                "SELECT id, agent_id, at_ms, via, CASE WHEN allowed THEN 1 ELSE 0 END AS ok,
                        CASE WHEN hypothetical THEN 1 ELSE 0 END AS what_if, order_json,
                        reasons, decided_by
                 FROM decisions WHERE agent_id = $1 AND id IN (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(i + 2).to_string());
            }
            sql.push_str(") ORDER BY at_ms, id");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agent_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.reader).await? {
                decisions.push(decision_of(&r)?);
            }
        }
        Ok((events, decisions))
    }
}

/// A decision from its row.
fn decision_of(r: &sqlx::any::AnyRow) -> Result<DecisionRow, StoreError> {
    let reasons: String = r.try_get("reasons")?;
    Ok(DecisionRow {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        at_ms: r.try_get("at_ms")?,
        via: r.try_get("via")?,
        allowed: r.try_get::<i64, _>("ok")? != 0,
        hypothetical: r.try_get::<i64, _>("what_if")? != 0,
        order_json: r.try_get("order_json")?,
        reasons: serde_json::from_str(&reasons).unwrap_or(Value::Null),
        decided_by: r.try_get("decided_by")?,
    })
}

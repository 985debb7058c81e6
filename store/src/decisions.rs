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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LinkedEvent {
    /// The event's id.
    pub id: i64,
    /// When it happened (unix s).
    pub at: i64,
    /// `new`, `filled`, ... (none for an event without an order state).
    pub order_state: Option<String>,
    /// The agent's id of the order.
    pub client_order_id: Option<String>,
    /// The market.
    pub market: Option<String>,
    /// `buy` or `sell`.
    pub side: Option<String>,
    /// Decimal text.
    pub quantity: Option<String>,
    /// Decimal text.
    pub price: Option<String>,
    /// Decimal text.
    pub fill_quantity: Option<String>,
    /// Decimal text.
    pub fill_price: Option<String>,
    /// The decision it names, if it names one.
    pub decision_id: Option<String>,
}

impl Store {
    /// Stores decisions, all or none.
    pub async fn insert_decisions(&self, rows: Vec<DecisionRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    for chunk in rows.chunks(INSERT_CHUNK) {
                        const COLUMNS: usize = 9;
                        let mut sql = String::from(
                            "INSERT INTO decisions (id, agent_id, at_ms, via, allowed, hypothetical,
                                 order_json, reasons, decided_by) VALUES ",
                        );
                        for row in 0..chunk.len() {
                            sql.push_str(if row == 0 { "(" } else { ", (" });
                            for col in 0..COLUMNS {
                                if col > 0 {
                                    sql.push_str(", ");
                                }
                                sql.push('$');
                                sql.push_str(&(row * COLUMNS + col + 1).to_string());
                            }
                            sql.push(')');
                        }
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
        let reasons: String = r.try_get("reasons")?;
        Ok(Some(DecisionRow {
            id: r.try_get("id")?,
            agent_id: r.try_get("agent_id")?,
            at_ms: r.try_get("at_ms")?,
            via: r.try_get("via")?,
            allowed: r.try_get::<i64, _>("ok")? != 0,
            hypothetical: r.try_get::<i64, _>("what_if")? != 0,
            order_json: r.try_get("order_json")?,
            reasons: serde_json::from_str(&reasons).unwrap_or(Value::Null),
            decided_by: r.try_get("decided_by")?,
        }))
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
                    fill_quantity, fill_price, decision_id
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
}

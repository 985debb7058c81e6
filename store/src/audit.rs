use sqlx::{Row, SqliteConnection};

use crate::{AuditEvent, AuditRow, Store, StoreError, now_ms};

/// Appends one audit record inside the caller's transaction.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (at_ms, actor, action, subject, cert_fingerprint, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now_ms())
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.subject)
    .bind(&event.cert_fingerprint)
    .bind(event.details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records an event that comes with no other change (e.g. a certificate issued outside the
    /// agent certificate table).
    pub async fn record_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let event = event.clone();
        self.writer
            .write_first_statement(move |conn| Box::pin(async move { append(conn, &event).await }))
            .await
    }

    /// Audit records after `after_seq`, oldest first, at most `limit`.
    pub async fn audit_events(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, subject, cert_fingerprint, details
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let details: String = r.try_get("details")?;
                Ok(AuditRow {
                    seq: r.try_get("seq")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    cert_fingerprint: r.try_get("cert_fingerprint")?,
                    details: serde_json::from_str(&details)
                        .map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?,
                })
            })
            .collect()
    }
}

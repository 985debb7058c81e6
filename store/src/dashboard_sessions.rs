//! Dashboard sign-in sessions: the SHA-256 of a random cookie token, the API key it acts as,
//! and an absolute expiry. Expired rows are swept whenever a session is opened.

use crate::audit::append;
use crate::{AuditEvent, Store, StoreError, now_unix};

impl Store {
    /// Opens a session for `key_id` until `expires_at` (unix s), recording `event`; sweeps
    /// expired sessions in the same transaction.
    pub async fn open_dashboard_session(
        &self,
        token_hash: &[u8],
        key_id: &str,
        expires_at: i64,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (hash, key, event) = (token_hash.to_vec(), key_id.to_owned(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let now = now_unix();
                    sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO dashboard_sessions (token_hash, key_id, created_at, expires_at)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&hash)
                    .bind(&key)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// The API key id of the unexpired session with this token hash.
    pub async fn dashboard_session(&self, token_hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT key_id FROM dashboard_sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_unix())
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Ends a session (sign-out); ending one that is gone is not an error.
    pub async fn close_dashboard_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        let hash = token_hash.to_vec();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
                        .bind(&hash)
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }
}

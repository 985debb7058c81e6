//! ACME: the HSM secrets registry and external account bindings.

use sqlx::Row;

use crate::audit::append;
use crate::{AuditEvent, Store, StoreError, now_unix};

/// An external account binding as stored (never its HMAC key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EabRow {
    /// The key id a client sends as `kid`.
    pub key_id: String,
    /// The one agent an account made with it may order for.
    pub agent_id: String,
    /// API key id (or `cli:...`) that created it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; unusable after.
    pub expires_at: i64,
    /// Unix seconds, once an account was created with it.
    pub used_at: Option<i64>,
}

impl Store {
    /// The CKA_ID (hex) of the HSM secret with this role, if one was made.
    pub async fn hsm_secret(&self, role: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT key_id FROM hsm_secrets WHERE role = $1")
                .bind(role)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// Records the HSM secret of a role, unless one is recorded already (two processes raced):
    /// returns the one that is recorded now.
    pub async fn record_hsm_secret(
        &self,
        role: &str,
        key_id: &str,
        event: &AuditEvent,
    ) -> Result<String, StoreError> {
        let (role, key_id, event) = (role.to_owned(), key_id.to_owned(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let inserted = sqlx::query(
                        "INSERT INTO hsm_secrets (role, key_id, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (role) DO NOTHING",
                    )
                    .bind(&role)
                    .bind(&key_id)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if inserted == 1 {
                        append(conn, &event).await?;
                    }
                    Ok(
                        sqlx::query_scalar("SELECT key_id FROM hsm_secrets WHERE role = $1")
                            .bind(&role)
                            .fetch_one(&mut *conn)
                            .await?,
                    )
                })
            })
            .await
    }

    /// Stores a new external account binding for an existing agent, with its audit event.
    pub async fn insert_eab(&self, eab: &EabRow, event: &AuditEvent) -> Result<(), StoreError> {
        let (eab, event) = (eab.clone(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let found: Option<String> =
                        sqlx::query_scalar("SELECT id FROM agents WHERE id = $1")
                            .bind(&eab.agent_id)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if found.is_none() {
                        return Err(StoreError::NotFound(format!("agent {}", eab.agent_id)));
                    }
                    sqlx::query(
                        "INSERT INTO acme_eab (key_id, agent_id, created_by, created_at,
                             expires_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&eab.key_id)
                    .bind(&eab.agent_id)
                    .bind(&eab.created_by)
                    .bind(eab.created_at)
                    .bind(eab.expires_at)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, format!("EAB key {}", eab.key_id)))?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// An external account binding by key id.
    pub async fn eab(&self, key_id: &str) -> Result<Option<EabRow>, StoreError> {
        let row = sqlx::query(
            "SELECT key_id, agent_id, created_by, created_at, expires_at, used_at
             FROM acme_eab WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(EabRow {
                key_id: r.try_get("key_id")?,
                agent_id: r.try_get("agent_id")?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
            })
        })
        .transpose()
    }
}

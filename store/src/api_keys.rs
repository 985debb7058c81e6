use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::Change;
use crate::audit::append;
use crate::{ApiKeyRow, AuditEvent, NewApiKey, Store, StoreError, now_unix};

pub(crate) async fn insert(conn: &mut AnyConnection, key: &NewApiKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, secret_hash, role, agent_id, person_id, label, created_by,
             created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.id)
    .bind(&key.secret_hash)
    .bind(key.role.as_str())
    .bind(&key.agent_id)
    .bind(&key.person_id)
    .bind(&key.label)
    .bind(&key.created_by)
    .bind(now_unix())
    .execute(conn)
    .await
    .map_err(|e| crate::error::conflict_or(e, format!("API key {}", key.id)))?;
    Ok(())
}

fn key_row(r: &AnyRow) -> Result<ApiKeyRow, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        secret_hash: r.try_get("secret_hash")?,
        role: role.parse()?,
        agent_id: r.try_get("agent_id")?,
        person_id: r.try_get("person_id")?,
        label: r.try_get("label")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

async fn fetch_key(conn: &mut AnyConnection, id: &str) -> Result<ApiKeyRow, StoreError> {
    let row = sqlx::query(
        "SELECT id, secret_hash, role, agent_id, person_id, label, created_by, created_at, revoked_at
         FROM api_keys WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(key_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("API key {id}")))
}

impl Store {
    /// Stores a new API key (its hash) with its audit event. An agent key needs an existing agent.
    pub async fn insert_api_key(
        &self,
        key: &NewApiKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (key, event) = (key.clone(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(agent) = &key.agent_id {
                        let found: Option<String> =
                            sqlx::query_scalar("SELECT id FROM agents WHERE id = $1")
                                .bind(agent)
                                .fetch_optional(&mut *conn)
                                .await?;
                        if found.is_none() {
                            return Err(StoreError::NotFound(format!("agent {agent}")));
                        }
                    }
                    if let Some(person) = &key.person_id {
                        let row = crate::people::fetch_person(&mut *conn, person)
                            .await?
                            .ok_or_else(|| StoreError::NotFound(format!("person {person}")))?;
                        if row.disabled_at.is_some() {
                            return Err(StoreError::WrongState(format!(
                                "person {person} is disabled"
                            )));
                        }
                        if !row.roles.contains(&key.role) {
                            return Err(StoreError::WrongState(format!(
                                "person {person} does not hold the role {}",
                                key.role
                            )));
                        }
                    }
                    insert(conn, &key).await?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// An API key by its public id.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, secret_hash, role, agent_id, person_id, label, created_by, created_at, revoked_at
             FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(key_row).transpose()
    }

    /// API keys ordered by id, after `after` (exclusive), at most `limit`.
    pub async fn api_keys(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, secret_hash, role, agent_id, person_id, label, created_by, created_at, revoked_at
             FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key_row).collect()
    }

    /// Revokes an API key, with its audit event. Refused ([`StoreError::WrongState`]) for the
    /// last unrevoked admin key, so the CA cannot lock its administrators out. Returns the row
    /// and whether this call revoked it (false: it was revoked before).
    pub async fn revoke_api_key(
        &self,
        id: &str,
        event: &AuditEvent,
    ) -> Result<(ApiKeyRow, bool), StoreError> {
        let (id, event) = (id.to_owned(), event.clone());
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let row = fetch_key(&mut *conn, &id).await?;
                    if row.revoked_at.is_some() {
                        return Ok((row, false));
                    }
                    if row.role == crate::Role::Admin {
                        let others =
                            crate::people::other_admins(&mut *conn, None, Some(&id)).await?;
                        if others == 0 {
                            return Err(StoreError::WrongState(
                                "this is the last admin key: create another admin key first".into(),
                            ));
                        }
                    }
                    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                        .bind(&id)
                        .bind(now_unix())
                        .execute(&mut *conn)
                        .await?;
                    append(conn, &event).await?;
                    Ok((fetch_key(&mut *conn, &id).await?, true))
                })
            })
            .await?;
        if out.1 {
            self.publish([Change::Keys]);
        }
        Ok(out)
    }
}

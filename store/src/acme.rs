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

/// An ACME account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountRow {
    /// Last segment of the account URL.
    pub id: String,
    /// RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its public key, JSON.
    pub jwk: String,
    /// The agent it may order for.
    pub agent_id: String,
    /// The external account binding it was made with.
    pub eab_key_id: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// JSON array of contact URLs.
    pub contact: String,
    /// Unix seconds.
    pub created_at: i64,
}

macro_rules! account_columns {
    () => {
        "id, thumbprint, jwk, agent_id, eab_key_id, status, contact, created_at"
    };
}

fn account_row(r: &sqlx::any::AnyRow) -> Result<AcmeAccountRow, StoreError> {
    Ok(AcmeAccountRow {
        id: r.try_get("id")?,
        thumbprint: r.try_get("thumbprint")?,
        jwk: r.try_get("jwk")?,
        agent_id: r.try_get("agent_id")?,
        eab_key_id: r.try_get("eab_key_id")?,
        status: r.try_get("status")?,
        contact: r.try_get("contact")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Creates an account and uses up its external account binding, in one transaction: the
    /// binding must exist, be unused and unexpired, and belong to `account.agent_id`
    /// ([`StoreError::WrongState`] otherwise); a key with an account already is a
    /// [`StoreError::Conflict`].
    pub async fn create_acme_account(
        &self,
        account: &AcmeAccountRow,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (account, event) = (account.clone(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let used = sqlx::query(
                        "UPDATE acme_eab SET used_at = $2, account_id = $3
                         WHERE key_id = $1 AND used_at IS NULL AND expires_at > $2
                             AND agent_id = $4",
                    )
                    .bind(&account.eab_key_id)
                    .bind(now_unix())
                    .bind(&account.id)
                    .bind(&account.agent_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if used != 1 {
                        return Err(StoreError::WrongState(format!(
                            "external account binding {} is unknown, used or expired",
                            account.eab_key_id
                        )));
                    }
                    sqlx::query(concat!(
                        "INSERT INTO acme_accounts (",
                        account_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    ))
                    .bind(&account.id)
                    .bind(&account.thumbprint)
                    .bind(&account.jwk)
                    .bind(&account.agent_id)
                    .bind(&account.eab_key_id)
                    .bind(&account.status)
                    .bind(&account.contact)
                    .bind(account.created_at)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, "an account for this key"))?;
                    append(conn, &event).await
                })
            })
            .await
    }

    /// The account with this key thumbprint.
    pub async fn acme_account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccountRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM acme_accounts WHERE thumbprint = $1"
        );
        let row = sqlx::query(sql)
            .bind(thumbprint)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(account_row).transpose()
    }

    /// The account with this id.
    pub async fn acme_account(&self, id: &str) -> Result<Option<AcmeAccountRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM acme_accounts WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(account_row).transpose()
    }
}

/// An ACME order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeOrderRow {
    /// Last segment of the order URL.
    pub id: String,
    /// The account that placed it.
    pub account_id: String,
    /// The agent it is for.
    pub agent_id: String,
    /// The agent's DNS name.
    pub identifier: String,
    /// `ready`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The certificate, once issued.
    pub cert_serial: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// RFC 9773 certID of the certificate it renews.
    pub replaces: Option<String>,
    /// The certificate profile it asked for (draft-ietf-acme-profiles); none: the default.
    pub profile: Option<String>,
}

macro_rules! order_columns {
    () => {
        "id, account_id, agent_id, identifier, status, expires_at, cert_serial, created_at, \
         replaces, profile"
    };
}

fn order_row(r: &sqlx::any::AnyRow) -> Result<AcmeOrderRow, StoreError> {
    Ok(AcmeOrderRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        agent_id: r.try_get("agent_id")?,
        identifier: r.try_get("identifier")?,
        status: r.try_get("status")?,
        expires_at: r.try_get("expires_at")?,
        cert_serial: r.try_get("cert_serial")?,
        created_at: r.try_get("created_at")?,
        replaces: r.try_get("replaces")?,
        profile: r.try_get("profile")?,
    })
}

impl Store {
    /// Stores a new order.
    pub async fn create_acme_order(&self, order: &AcmeOrderRow) -> Result<(), StoreError> {
        let order = order.clone();
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    sqlx::query(concat!(
                        "INSERT INTO acme_orders (",
                        order_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ))
                    .bind(&order.id)
                    .bind(&order.account_id)
                    .bind(&order.agent_id)
                    .bind(&order.identifier)
                    .bind(&order.status)
                    .bind(order.expires_at)
                    .bind(&order.cert_serial)
                    .bind(order.created_at)
                    .bind(&order.replaces)
                    .bind(&order.profile)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, format!("order {}", order.id)))?;
                    Ok(())
                })
            })
            .await
    }

    /// An order by id.
    pub async fn acme_order(&self, id: &str) -> Result<Option<AcmeOrderRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            order_columns!(),
            " FROM acme_orders WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(order_row).transpose()
    }

    /// The order that produced a certificate.
    pub async fn acme_order_by_serial(
        &self,
        serial: &str,
    ) -> Result<Option<AcmeOrderRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            order_columns!(),
            " FROM acme_orders WHERE cert_serial = $1"
        );
        let row = sqlx::query(sql)
            .bind(serial)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(order_row).transpose()
    }

    /// Up to `limit` order ids of an account, newest first.
    pub async fn acme_order_ids(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM acme_orders WHERE account_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Moves an order from status `from` to `to` (and records its certificate); false if it
    /// was not in `from` (another request moved it first).
    pub async fn move_acme_order(
        &self,
        id: &str,
        from: &str,
        to: &str,
        cert_serial: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (id, from, to, serial) = (
            id.to_owned(),
            from.to_owned(),
            to.to_owned(),
            cert_serial.map(str::to_owned),
        );
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    let n = sqlx::query(
                        "UPDATE acme_orders SET status = $3,
                             cert_serial = COALESCE($4, cert_serial)
                         WHERE id = $1 AND status = $2",
                    )
                    .bind(&id)
                    .bind(&from)
                    .bind(&to)
                    .bind(&serial)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    Ok(n == 1)
                })
            })
            .await
    }
}

impl Store {
    /// Changes an account's contact list and/or status (`deactivated`), with its audit event.
    /// Only a `valid` account changes.
    pub async fn update_acme_account(
        &self,
        id: &str,
        contact: Option<&str>,
        status: Option<&str>,
        event: &AuditEvent,
    ) -> Result<AcmeAccountRow, StoreError> {
        let (id, contact, status, event) = (
            id.to_owned(),
            contact.map(str::to_owned),
            status.map(str::to_owned),
            event.clone(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let n = sqlx::query(
                        "UPDATE acme_accounts SET contact = COALESCE($2, contact),
                             status = COALESCE($3, status)
                         WHERE id = $1 AND status = 'valid'",
                    )
                    .bind(&id)
                    .bind(&contact)
                    .bind(&status)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n != 1 {
                        return Err(StoreError::WrongState(format!("account {id} is not valid")));
                    }
                    append(conn, &event).await?;
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        account_columns!(),
                        " FROM acme_accounts WHERE id = $1"
                    ))
                    .bind(&id)
                    .fetch_one(&mut *conn)
                    .await?;
                    account_row(&row)
                })
            })
            .await
    }

    /// Replaces an account's key (keyChange), if it still has `old_thumbprint`; a key another
    /// account uses is a [`StoreError::Conflict`].
    pub async fn change_acme_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (id, old, new, jwk, event) = (
            id.to_owned(),
            old_thumbprint.to_owned(),
            new_thumbprint.to_owned(),
            new_jwk.to_owned(),
            event.clone(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let n = sqlx::query(
                        "UPDATE acme_accounts SET thumbprint = $3, jwk = $4
                         WHERE id = $1 AND thumbprint = $2 AND status = 'valid'",
                    )
                    .bind(&id)
                    .bind(&old)
                    .bind(&new)
                    .bind(&jwk)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, "an account for the new key"))?
                    .rows_affected();
                    if n != 1 {
                        return Err(StoreError::WrongState(format!(
                            "account {id} changed meanwhile"
                        )));
                    }
                    append(conn, &event).await
                })
            })
            .await
    }
}

impl Store {
    /// Records an agent key generated in the HSM, with its audit event.
    pub async fn insert_agent_key(
        &self,
        key_id: &str,
        agent_id: &str,
        key_kind: &str,
        label: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (key_id, agent_id, key_kind, label, event) = (
            key_id.to_owned(),
            agent_id.to_owned(),
            key_kind.to_owned(),
            label.to_owned(),
            event.clone(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO agent_keys (key_id, agent_id, key_kind, label, created_by,
                             created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&key_id)
                    .bind(&agent_id)
                    .bind(&key_kind)
                    .bind(&label)
                    .bind(&event.actor)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await
                })
            })
            .await
    }
}

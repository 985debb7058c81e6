use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::append;
use crate::{AuditEvent, CaCertRow, CaRole, NewApiKey, NewCaCert, Store, StoreError, now_unix};

macro_rules! ca_columns {
    () => {
        "c.id, c.key_id, k.label, k.kind, c.role, c.subject, c.serial, c.der, \
     c.sha256, c.ski, c.not_before, c.not_after,
     CASE WHEN c.active THEN 1 ELSE 0 END AS active"
    };
}

fn ca_row(r: &AnyRow) -> Result<CaCertRow, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(CaCertRow {
        id: r.try_get("id")?,
        key_id: r.try_get("key_id")?,
        key_label: r.try_get("label")?,
        key_kind: r.try_get("kind")?,
        role: role.parse()?,
        subject: r.try_get("subject")?,
        serial: r.try_get("serial")?,
        der: r.try_get("der")?,
        sha256: r.try_get("sha256")?,
        ski: r.try_get("ski")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        // SQLite BOOLEAN columns cannot be read through sqlx's Any driver: read 0/1.
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

pub(crate) async fn insert_ca_cert(
    conn: &mut AnyConnection,
    cert: &NewCaCert,
) -> Result<(), StoreError> {
    let now = now_unix();
    sqlx::query(
        "INSERT INTO ca_keys (id, label, kind, role, spki, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&cert.key_id)
    .bind(&cert.key_label)
    .bind(&cert.key_kind)
    .bind(cert.role.as_str())
    .bind(&cert.spki)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| crate::error::conflict_or(e, format!("CA key {}", cert.key_id)))?;
    sqlx::query(
        "INSERT INTO ca_certificates
           (key_id, role, subject, serial, der, sha256, ski, not_before, not_after, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10)",
    )
    .bind(&cert.key_id)
    .bind(cert.role.as_str())
    .bind(&cert.subject)
    .bind(&cert.serial)
    .bind(&cert.der)
    .bind(&cert.sha256)
    .bind(&cert.ski)
    .bind(cert.not_before)
    .bind(cert.not_after)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| crate::error::conflict_or(e, format!("CA certificate {}", cert.sha256)))?;
    Ok(())
}

impl Store {
    /// Whether the key ceremony has run (an active root exists).
    pub async fn ca_initialised(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ca_certificates WHERE role = 'root' AND active",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(n > 0)
    }

    /// Stores the outcome of the key ceremony in one transaction: root, intermediate, the first
    /// admin key and their audit events. Refuses if a root exists already.
    pub async fn insert_ca_hierarchy(
        &self,
        root: &NewCaCert,
        intermediate: &NewCaCert,
        admin_key: &NewApiKey,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let (root, intermediate, admin_key, events) = (
            root.clone(),
            intermediate.clone(),
            admin_key.clone(),
            events.to_vec(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM ca_certificates WHERE role = 'root'",
                    )
                    .fetch_one(&mut *conn)
                    .await?;
                    if n > 0 {
                        return Err(StoreError::Conflict("CA hierarchy".to_owned()));
                    }
                    insert_ca_cert(conn, &root).await?;
                    insert_ca_cert(conn, &intermediate).await?;
                    // The bootstrap key's holder: a CA-staff person `admin`.
                    if let Some(person) = &admin_key.person_id {
                        sqlx::query(
                            "INSERT INTO people (id, name, organization, roles, created_by,
                                 created_at)
                             VALUES ($1, 'CA administrator (bootstrap)', NULL, 'admin',
                                 'system:ceremony', $2)",
                        )
                        .bind(person)
                        .bind(crate::now_unix())
                        .execute(&mut *conn)
                        .await?;
                    }
                    crate::api_keys::insert(conn, &admin_key).await?;
                    for event in &events {
                        append(conn, event).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The active CA certificate of a role (the root, or the intermediate new issuance uses).
    pub async fn active_ca(&self, role: CaRole) -> Result<Option<CaCertRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            ca_columns!(),
            " FROM ca_certificates c JOIN ca_keys k ON k.id = c.key_id
             WHERE c.role = $1 AND c.active ORDER BY c.id DESC LIMIT 1"
        );
        let row = sqlx::query(sql)
            .bind(role.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(ca_row).transpose()
    }

    /// A CA certificate by row id.
    pub async fn ca_certificate(&self, id: i64) -> Result<Option<CaCertRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            ca_columns!(),
            " FROM ca_certificates c JOIN ca_keys k ON k.id = c.key_id
             WHERE c.id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(ca_row).transpose()
    }

    /// Every CA certificate, oldest first.
    pub async fn ca_certificates(&self) -> Result<Vec<CaCertRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            ca_columns!(),
            " FROM ca_certificates c JOIN ca_keys k ON k.id = c.key_id
             ORDER BY c.id"
        );
        let rows = sqlx::query(sql).fetch_all(&self.reader).await?;
        rows.iter().map(ca_row).collect()
    }
}

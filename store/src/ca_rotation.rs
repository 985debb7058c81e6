//! Key rotation in the store: a new intermediate (and, at a root rollover, a new root and the
//! cross-certificates between the roots) becomes active in one transaction, the old ones are
//! retired but kept, and the change is audit-logged with it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Change;
use crate::audit::append;
use crate::ca::insert_ca_cert;
use crate::{AuditEvent, CaRole, NewCaCert, Store, StoreError, now_unix};

/// A cross-certificate to store: one root's key certified by another root. The roots are named
/// by the SHA-256 of their self-signed certificates, so a root stored in the same change can be
/// referred to.
#[derive(Debug, Clone)]
pub struct NewCrossCert {
    /// The root whose key and name the certificate carries.
    pub subject_sha256: String,
    /// The root that signed it.
    pub issuer_sha256: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
}

/// A stored cross-certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrossCertRow {
    /// Row id.
    pub id: i64,
    /// The root (ca_certificates id) whose key it certifies.
    pub subject_id: i64,
    /// The root (ca_certificates id) that signed it.
    pub issuer_id: i64,
    /// Serial, lowercase hex.
    pub serial: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
}

/// One rotation: what becomes active, and the audit records that say so.
#[derive(Debug, Clone)]
pub struct CaRotation {
    /// The intermediate new issuance must have used until now: the change is refused
    /// (`Conflict`) if another rotation got there first.
    pub expected_intermediate: i64,
    /// A new root (root rollover), replacing the active one.
    pub root: Option<NewCaCert>,
    /// The new intermediate.
    pub intermediate: NewCaCert,
    /// Cross-certificates between the old and the new root.
    pub cross: Vec<NewCrossCert>,
    /// Audit records of the change.
    pub events: Vec<AuditEvent>,
}

fn cross_row(r: &AnyRow) -> Result<CrossCertRow, StoreError> {
    Ok(CrossCertRow {
        id: r.try_get("id")?,
        subject_id: r.try_get("subject_id")?,
        issuer_id: r.try_get("issuer_id")?,
        serial: r.try_get("serial")?,
        der: r.try_get("der")?,
        sha256: r.try_get("sha256")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
    })
}

impl Store {
    /// Moves whenever a CA certificate or cross-certificate is added: nodes poll it to load a
    /// rotation made by another process.
    pub async fn ca_generation(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM ca_certificates) * 1000000
                  + (SELECT COUNT(*) FROM ca_cross_certificates)",
        )
        .fetch_one(&self.reader)
        .await?)
    }

    /// Stores a rotation in one transaction: the old intermediate (and root, if a new one
    /// comes) retired, the new ones active, the cross-certificates and the audit records.
    pub async fn rotate_ca(&self, rotation: &CaRotation) -> Result<(), StoreError> {
        let rotation = rotation.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let active: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM ca_certificates WHERE role = 'intermediate' AND active
                         ORDER BY id DESC LIMIT 1",
                    )
                    .fetch_optional(&mut *conn)
                    .await?;
                    if active != Some(rotation.expected_intermediate) {
                        return Err(StoreError::Conflict(
                            "the active intermediate changed meanwhile (another rotation)".into(),
                        ));
                    }
                    if let Some(root) = &rotation.root {
                        retire(conn, CaRole::Root).await?;
                        insert_ca_cert(conn, root).await?;
                    }
                    retire(conn, CaRole::Intermediate).await?;
                    insert_ca_cert(conn, &rotation.intermediate).await?;
                    for c in &rotation.cross {
                        sqlx::query(
                            "INSERT INTO ca_cross_certificates
                               (subject_id, issuer_id, serial, der, sha256, not_before, not_after,
                                created_at)
                             VALUES ((SELECT id FROM ca_certificates WHERE sha256 = $1),
                                     (SELECT id FROM ca_certificates WHERE sha256 = $2),
                                     $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(&c.subject_sha256)
                        .bind(&c.issuer_sha256)
                        .bind(&c.serial)
                        .bind(&c.der)
                        .bind(&c.sha256)
                        .bind(c.not_before)
                        .bind(c.not_after)
                        .bind(now_unix())
                        .execute(&mut *conn)
                        .await?;
                    }
                    for event in &rotation.events {
                        append(conn, event).await?;
                    }
                    Ok(())
                })
            })
            .await?;
        self.publish([Change::Ca]);
        Ok(())
    }

    /// Every cross-certificate, oldest first.
    pub async fn cross_certificates(&self) -> Result<Vec<CrossCertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subject_id, issuer_id, serial, der, sha256, not_before, not_after
             FROM ca_cross_certificates ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(cross_row).collect()
    }
}

async fn retire(conn: &mut sqlx::AnyConnection, role: CaRole) -> Result<(), StoreError> {
    sqlx::query("UPDATE ca_certificates SET active = FALSE WHERE role = $1 AND active")
        .bind(role.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

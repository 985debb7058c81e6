use serde_json::json;
use sqlx::Row;

use crate::audit::append;
use crate::{AuditEvent, Store, StoreError};

/// A published CRL.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    /// CRL number.
    pub number: i64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// The signed CRL, DER.
    pub der: Vec<u8>,
}

/// A revoked certificate as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedRow {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Revocation time, unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 CRLReason code.
    pub reason: i64,
}

impl Store {
    /// Makes the issuer's next CRL number larger than `published` (after a restore, the CRLs
    /// relying parties hold may be newer than the database: RFC 5280 numbers only grow).
    pub async fn raise_crl_number(&self, issuer_id: i64, published: i64) -> Result<(), StoreError> {
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO crl_state (issuer_id, last_number, published_number)
                         VALUES ($1, $2, 0)
                         ON CONFLICT (issuer_id) DO UPDATE SET last_number =
                             CASE WHEN crl_state.last_number < $2 THEN $2
                                  ELSE crl_state.last_number END",
                    )
                    .bind(issuer_id)
                    .bind(published)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Hands out the next CRL number of an issuer (1, 2, ...), before the CRL is signed.
    pub async fn reserve_crl_number(&self, issuer_id: i64) -> Result<i64, StoreError> {
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query_scalar(
                        "INSERT INTO crl_state (issuer_id, last_number, published_number)
                         VALUES ($1, 1, 0)
                         ON CONFLICT (issuer_id) DO UPDATE SET last_number = crl_state.last_number + 1
                         RETURNING last_number",
                    )
                    .bind(issuer_id)
                    .fetch_one(&mut *conn)
                    .await?)
                })
            })
            .await
    }

    /// Stores a signed CRL unless a newer one (higher number) is already stored; true if stored.
    pub async fn save_crl(
        &self,
        issuer_id: i64,
        crl: StoredCrl,
        entries: usize,
        sha256_hex: &str,
    ) -> Result<bool, StoreError> {
        let sha256 = sha256_hex.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE crl_state SET published_number = $2, this_update = $3,
                             next_update = $4, der = $5
                         WHERE issuer_id = $1 AND published_number < $2",
                    )
                    .bind(issuer_id)
                    .bind(crl.number)
                    .bind(crl.this_update)
                    .bind(crl.next_update)
                    .bind(&crl.der)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed == 1 {
                        let event = AuditEvent::new(
                            "system",
                            "crl.issued",
                            issuer_id.to_string(),
                            json!({"number": crl.number, "entries": entries, "sha256": sha256,
                                   "this_update": crl.this_update, "next_update": crl.next_update}),
                        );
                        append(conn, &event).await?;
                    }
                    Ok(changed == 1)
                })
            })
            .await
    }

    /// The CRL currently published for an issuer.
    pub async fn published_crl(&self, issuer_id: i64) -> Result<Option<StoredCrl>, StoreError> {
        let row = sqlx::query(
            "SELECT published_number, this_update, next_update, der FROM crl_state
             WHERE issuer_id = $1 AND der IS NOT NULL",
        )
        .bind(issuer_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(StoredCrl {
                number: r.try_get("published_number")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }

    /// Every revoked certificate of an issuer, by serial.
    pub async fn revoked_by_issuer(&self, issuer_id: i64) -> Result<Vec<RevokedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates
             WHERE issuer_id = $1 AND status = 'revoked' ORDER BY serial",
        )
        .bind(issuer_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedRow {
                    serial: r.try_get("serial")?,
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or(0),
                    reason: r
                        .try_get::<Option<i64>, _>("revocation_reason")?
                        .unwrap_or(0),
                })
            })
            .collect()
    }

    /// How many certificates are revoked in all: it only grows (revocation is final), so a
    /// change means a CRL is due. Cheap enough to poll.
    pub async fn revocation_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE status = 'revoked'")
                .fetch_one(&self.reader)
                .await?,
        )
    }
}

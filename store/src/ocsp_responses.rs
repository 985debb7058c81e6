//! Pre-signed OCSP responses and the change feed stand-alone responders follow.
//!
//! The daemon asks for the certificates whose responses are due ([`Store::ocsp_due`]), signs
//! them in the HSM and stores them ([`Store::save_presigned`]). A responder serves them by
//! (serial, hash) and learns of new ones by reading the feed from its cursor
//! ([`Store::presigned_changes`]): every batch takes the next feed position in the transaction
//! that writes it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{CertStatus, Store, StoreError};

/// A certificate whose OCSP responses must be signed (again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspDue {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The issuing intermediate.
    pub issuer_id: i64,
    /// `Issued` or `Revoked`.
    pub status: CertStatus,
    /// Revocation time, unix seconds, if revoked.
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code, if revoked.
    pub revocation_reason: Option<i64>,
    /// End of the certificate's validity, unix seconds.
    pub not_after: i64,
}

/// The signed responses of one certificate, to store.
#[derive(Debug, Clone)]
pub struct PresignedSet {
    /// The certificate, as it was when the responses were signed.
    pub due: OcspDue,
    /// thisUpdate of the responses, unix seconds.
    pub this_update: i64,
    /// nextUpdate of the responses, unix seconds.
    pub next_update: i64,
    /// When to sign again; `None` once the responses outlive the certificate.
    pub refresh_at: Option<i64>,
    /// (CertID hash name — `sha1` or `sha256` —, OCSPResponse DER).
    pub responses: Vec<(&'static str, Vec<u8>)>,
}

/// A stored, ready-to-send OCSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedResponse {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The CertID's hash algorithm: `sha1` or `sha256`.
    pub hash: String,
    /// The issuing intermediate.
    pub issuer_id: i64,
    /// `Issued` (good) or `Revoked`.
    pub status: CertStatus,
    /// The OCSPResponse, DER.
    pub der: Vec<u8>,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// Feed position of the batch that wrote it.
    pub seq: i64,
}

/// A position in the feed: everything up to and including this row has been read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCursor {
    /// Feed position.
    pub seq: i64,
    /// Last serial read at that position.
    pub serial: String,
    /// Last hash read at that serial.
    pub hash: String,
}

macro_rules! presigned_columns {
    () => {
        "serial, hash, issuer_id, status, der, this_update, next_update, seq"
    };
}

fn presigned_row(r: &AnyRow) -> Result<PresignedResponse, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(PresignedResponse {
        serial: r.try_get("serial")?,
        hash: r.try_get("hash")?,
        issuer_id: r.try_get("issuer_id")?,
        status: status.parse()?,
        der: r.try_get("der")?,
        this_update: r.try_get("this_update")?,
        next_update: r.try_get("next_update")?,
        seq: r.try_get("seq")?,
    })
}

/// Certificates whose responses are due at $1, most urgent first, at most $2.
const OCSP_DUE: &str = "SELECT serial, issuer_id, status, revoked_at, revocation_reason, not_after
     FROM certificates WHERE ocsp_refresh_at <= $1
     ORDER BY ocsp_refresh_at LIMIT $2";

fn due_row(r: &AnyRow) -> Result<OcspDue, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(OcspDue {
        serial: r.try_get("serial")?,
        issuer_id: r.try_get("issuer_id")?,
        status: status.parse()?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
        not_after: r.try_get("not_after")?,
    })
}

impl Store {
    /// Up to `limit` certificates whose responses are due at `now`: revocations first (their
    /// refresh time is 0), then new certificates, then the oldest responses.
    pub async fn ocsp_due(&self, now: i64, limit: i64) -> Result<Vec<OcspDue>, StoreError> {
        let rows = sqlx::query(OCSP_DUE)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(due_row).collect()
    }

    /// Like [`Store::ocsp_due`], and claims them for `lease_secs`: their refresh time moves
    /// to `now + lease_secs`, so the pre-signer of another node sharing the database does not
    /// sign them too. If this node dies before storing them, they are due again when the lease
    /// runs out. A revocation meanwhile sets the refresh time to 0 again, as always.
    pub async fn claim_ocsp_due(
        &self,
        now: i64,
        limit: i64,
        lease_secs: i64,
    ) -> Result<Vec<OcspDue>, StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let rows = sqlx::query(OCSP_DUE)
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&mut *conn)
                        .await?;
                    let mut due = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let d = due_row(r)?;
                        sqlx::query(
                            "UPDATE certificates SET ocsp_refresh_at = $2
                             WHERE serial = $1 AND status = $3",
                        )
                        .bind(&d.serial)
                        .bind(now.saturating_add(lease_secs))
                        .bind(d.status.as_str())
                        .execute(&mut *conn)
                        .await?;
                        due.push(d);
                    }
                    Ok(due)
                })
            })
            .await
    }

    /// Stores signed responses in one transaction at the next feed position. A set whose
    /// certificate changed status since it was read (revoked meanwhile) is skipped: its refresh
    /// time is 0 again, so it is signed anew. A good response never replaces a revoked one.
    /// Returns how many sets were stored.
    pub async fn save_presigned(&self, sets: Vec<PresignedSet>) -> Result<usize, StoreError> {
        if sets.is_empty() {
            return Ok(0);
        }
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let seq: i64 = sqlx::query_scalar(
                        "UPDATE ocsp_feed SET last_seq = last_seq + 1 WHERE id = 1
                         RETURNING last_seq",
                    )
                    .fetch_one(&mut *conn)
                    .await?;
                    let mut saved = 0;
                    for set in &sets {
                        let status = set.due.status.as_str();
                        let changed = sqlx::query(
                            "UPDATE certificates SET ocsp_refresh_at = $2
                             WHERE serial = $1 AND status = $3",
                        )
                        .bind(&set.due.serial)
                        .bind(set.refresh_at)
                        .bind(status)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if changed != 1 {
                            continue;
                        }
                        for (hash, der) in &set.responses {
                            sqlx::query(
                                "INSERT INTO ocsp_responses (serial, hash, issuer_id, status, der,
                                     this_update, next_update, seq)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                                 ON CONFLICT (serial, hash) DO UPDATE SET
                                     issuer_id = excluded.issuer_id, status = excluded.status,
                                     der = excluded.der, this_update = excluded.this_update,
                                     next_update = excluded.next_update, seq = excluded.seq
                                 WHERE ocsp_responses.status = 'issued'
                                     OR excluded.status = 'revoked'",
                            )
                            .bind(&set.due.serial)
                            .bind(*hash)
                            .bind(set.due.issuer_id)
                            .bind(status)
                            .bind(der)
                            .bind(set.this_update)
                            .bind(set.next_update)
                            .bind(seq)
                            .execute(&mut *conn)
                            .await?;
                        }
                        saved += 1;
                    }
                    Ok(saved)
                })
            })
            .await
    }

    /// The stored response for a certificate and CertID hash (`sha1` or `sha256`).
    pub async fn presigned_response(
        &self,
        serial: &str,
        hash: &str,
    ) -> Result<Option<PresignedResponse>, StoreError> {
        let sql = concat!(
            "SELECT ",
            presigned_columns!(),
            " FROM ocsp_responses WHERE serial = $1 AND hash = $2"
        );
        let row = sqlx::query(sql)
            .bind(serial)
            .bind(hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(presigned_row).transpose()
    }

    /// Up to `limit` responses written after `cursor`, in feed order.
    pub async fn presigned_changes(
        &self,
        cursor: &FeedCursor,
        limit: i64,
    ) -> Result<Vec<PresignedResponse>, StoreError> {
        let sql = concat!(
            "SELECT ",
            presigned_columns!(),
            " FROM ocsp_responses WHERE (seq, serial, hash) > ($1, $2, $3)
              ORDER BY seq, serial, hash LIMIT $4"
        );
        let rows = sqlx::query(sql)
            .bind(cursor.seq)
            .bind(&cursor.serial)
            .bind(&cursor.hash)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(presigned_row).collect()
    }

    /// The feed's current end: a responder starting now reads only what comes after it.
    pub async fn presigned_feed_end(&self) -> Result<FeedCursor, StoreError> {
        let row = sqlx::query(
            "SELECT seq, serial, hash FROM ocsp_responses
             ORDER BY seq DESC, serial DESC, hash DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        Ok(match row {
            Some(r) => FeedCursor {
                seq: r.try_get("seq")?,
                serial: r.try_get("serial")?,
                hash: r.try_get("hash")?,
            },
            None => FeedCursor::default(),
        })
    }
}

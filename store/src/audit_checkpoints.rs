//! Signed checkpoints of the audit chain, and the certificates of the keys that sign them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::append;
use crate::{AuditEvent, Store, StoreError, now_ms, now_unix};

/// The certificate of an audit signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSignerRow {
    /// Row id.
    pub id: i64,
    /// CKA_ID of the key in the HSM, hex.
    pub key_id: String,
    /// `ec-p256`, ...
    pub key_kind: String,
    /// The intermediate that issued it.
    pub issuer_id: i64,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Row id.
    pub id: i64,
    /// The last record it covers.
    pub seq: i64,
    /// That record's hash.
    pub hash: Vec<u8>,
    /// When it was signed, unix ms.
    pub signed_at_ms: i64,
    /// The signer's row id.
    pub signer_id: i64,
    /// ECDSA signature (DER): over the note's text for a tree checkpoint, else over
    /// [`checkpoint_message`].
    pub signature: Vec<u8>,
    /// A tree checkpoint: the C2SP signed note (tlog-checkpoint) over the audit tree of `seq`
    /// leaves. `None` for the chain checkpoints signed before the tree (migration 0025).
    pub note: Option<String>,
    /// A tree checkpoint: the tree's root hash.
    pub root: Option<Vec<u8>>,
}

/// What a checkpoint signs: `"mandate-audit-checkpoint-v1"`, seq and time (8 bytes big-endian
/// each) and the record's 32-byte hash.
pub fn checkpoint_message(seq: i64, hash: &[u8], signed_at_ms: i64) -> Vec<u8> {
    let mut m = b"mandate-audit-checkpoint-v1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&signed_at_ms.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

fn signer_row(r: &AnyRow) -> Result<AuditSignerRow, StoreError> {
    Ok(AuditSignerRow {
        id: r.try_get("id")?,
        key_id: r.try_get("key_id")?,
        key_kind: r.try_get("key_kind")?,
        issuer_id: r.try_get("issuer_id")?,
        der: r.try_get("der")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
    })
}

fn checkpoint_row(r: &AnyRow) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        signed_at_ms: r.try_get("signed_at_ms")?,
        signer_id: r.try_get("signer_id")?,
        signature: r.try_get("signature")?,
        note: r.try_get("note")?,
        root: r.try_get("root")?,
    })
}

impl Store {
    /// Records a new audit signer certificate, with its audit event; returns its id.
    pub async fn insert_audit_signer(
        &self,
        row: &AuditSignerRow,
        event: &AuditEvent,
    ) -> Result<i64, StoreError> {
        let (row, event) = (row.clone(), event.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO audit_signers (key_id, key_kind, issuer_id, der, not_before,
                             not_after, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(&row.key_id)
                    .bind(&row.key_kind)
                    .bind(row.issuer_id)
                    .bind(&row.der)
                    .bind(row.not_before)
                    .bind(row.not_after)
                    .bind(now_unix())
                    .fetch_one(&mut *conn)
                    .await?;
                    append(conn, &event).await?;
                    Ok(id)
                })
            })
            .await
    }

    /// Every audit signer, oldest first.
    pub async fn audit_signers(&self) -> Result<Vec<AuditSignerRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, key_id, key_kind, issuer_id, der, not_before, not_after
             FROM audit_signers ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(signer_row).collect()
    }

    /// The newest audit record's number, chained yet or not (0 for an empty log).
    pub async fn audit_last_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events")
            .fetch_one(&self.reader)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The newest record's seq and hash, if any.
    pub async fn audit_tip(&self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, hash FROM audit_events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
            .transpose()
    }

    /// Stores a signed checkpoint.
    pub async fn insert_checkpoint(&self, cp: &CheckpointRow) -> Result<i64, StoreError> {
        let cp = cp.clone();
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query_scalar(
                        "INSERT INTO audit_checkpoints (seq, hash, signed_at_ms, signer_id,
                             signature, note, root)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(cp.seq)
                    .bind(&cp.hash)
                    .bind(cp.signed_at_ms)
                    .bind(cp.signer_id)
                    .bind(&cp.signature)
                    .bind(&cp.note)
                    .bind(&cp.root)
                    .fetch_one(&mut *conn)
                    .await?)
                })
            })
            .await
    }

    /// Every checkpoint, oldest first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, seq, hash, signed_at_ms, signer_id, signature, note, root
             FROM audit_checkpoints ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(checkpoint_row).collect()
    }

    /// Marks the database as refused (behind the HSM's audit anchor), with the reason, for the
    /// stand-alone responders that read it.
    pub async fn refuse_serving(&self, reason: &str) -> Result<(), StoreError> {
        let reason = reason.to_owned();
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO serving_refusal (id, reason, at) VALUES (1, $1, $2)
                         ON CONFLICT (id) DO UPDATE SET reason = $1, at = $2",
                    )
                    .bind(&reason)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Lifts the mark (after a recovery, or on a database that reaches the anchor again).
    pub async fn clear_serving_refusal(&self) -> Result<(), StoreError> {
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM serving_refusal")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Why this database is refused, if it is.
    pub async fn serving_refusal(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT reason FROM serving_refusal WHERE id = 1")
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// The newest tree checkpoint (a signed note), if any.
    pub async fn last_tree_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, seq, hash, signed_at_ms, signer_id, signature, note, root
             FROM audit_checkpoints WHERE note IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(checkpoint_row).transpose()
    }

    /// The newest checkpoint, if any.
    pub async fn last_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, seq, hash, signed_at_ms, signer_id, signature, note, root
             FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(checkpoint_row).transpose()
    }
}

/// Milliseconds now, as checkpoints record it.
pub fn checkpoint_now_ms() -> i64 {
    now_ms()
}

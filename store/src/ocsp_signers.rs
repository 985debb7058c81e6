use sqlx::Row;

use crate::audit::append;
use crate::{AuditEvent, Store, StoreError, now_unix};

/// A delegated OCSP signing certificate and its key in the HSM.
#[derive(Debug, Clone)]
pub struct OcspSignerRow {
    /// The intermediate it signs for.
    pub issuer_id: i64,
    /// CKA_ID of its key, hex.
    pub key_id: String,
    /// Key type, e.g. `ec-p256`.
    pub key_kind: String,
    /// Its certificate, DER.
    pub der: Vec<u8>,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
}

impl Store {
    /// The newest delegated OCSP signer of an issuer, if any.
    pub async fn current_ocsp_signer(
        &self,
        issuer_id: i64,
    ) -> Result<Option<OcspSignerRow>, StoreError> {
        let row = sqlx::query(
            "SELECT issuer_id, key_id, key_kind, der, not_before, not_after FROM ocsp_signers
             WHERE issuer_id = $1 ORDER BY not_after DESC, id DESC LIMIT 1",
        )
        .bind(issuer_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(OcspSignerRow {
                issuer_id: r.try_get("issuer_id")?,
                key_id: r.try_get("key_id")?,
                key_kind: r.try_get("key_kind")?,
                der: r.try_get("der")?,
                not_before: r.try_get("not_before")?,
                not_after: r.try_get("not_after")?,
            })
        })
        .transpose()
    }

    /// Records a new delegated OCSP signer, with its audit event.
    pub async fn insert_ocsp_signer(
        &self,
        signer: &OcspSignerRow,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (signer, event) = (signer.clone(), event.clone());
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO ocsp_signers
                             (issuer_id, key_id, key_kind, der, not_before, not_after, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(signer.issuer_id)
                    .bind(&signer.key_id)
                    .bind(&signer.key_kind)
                    .bind(&signer.der)
                    .bind(signer.not_before)
                    .bind(signer.not_after)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await
                })
            })
            .await
    }
}

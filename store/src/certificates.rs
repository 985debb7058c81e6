use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::append;
use crate::{AuditEvent, CertificateRow, NewCertificate, Store, StoreError, now_unix};

macro_rules! cert_columns {
    () => {
        "serial, agent_id, mandate_version, issuer_id, status, der, sha256, \
     not_before, not_after, requested_by, created_at, issued_at, revoked_at, revocation_reason, \
     revoked_by, retire_at, profile"
    };
}

pub(crate) fn cert_row(r: &AnyRow) -> Result<CertificateRow, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(CertificateRow {
        serial: r.try_get("serial")?,
        agent_id: r.try_get("agent_id")?,
        mandate_version: r.try_get("mandate_version")?,
        issuer_id: r.try_get("issuer_id")?,
        status: status.parse()?,
        der: r.try_get("der")?,
        sha256: r.try_get("sha256")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
        issued_at: r.try_get("issued_at")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
        revoked_by: r.try_get("revoked_by")?,
        retire_at: r.try_get("retire_at")?,
        profile: r.try_get("profile")?,
    })
}

/// A certificate by serial, inside a write job.
pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    serial: &str,
) -> Result<CertificateRow, StoreError> {
    let sql = concat!(
        "SELECT ",
        cert_columns!(),
        " FROM certificates WHERE serial = $1"
    );
    let row = sqlx::query(sql).bind(serial).fetch_one(conn).await?;
    cert_row(&row)
}

impl Store {
    /// Reserves a serial and stores the exact to-be-signed certificate, before the HSM signs.
    /// A serial that exists already is a [`StoreError::Conflict`] (the caller draws another).
    /// The agent's eligibility is checked again in this write, serialised with the kill switch:
    /// an agent no longer active, or a mandate version no longer the approved one, is a
    /// [`StoreError::WrongState`] and nothing is written.
    pub async fn reserve_certificate(
        &self,
        cert: &NewCertificate,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (cert, event) = (cert.clone(), event.clone());
        // Only the INSERT can be refused (serial taken), and then it wrote nothing.
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    let inserted = sqlx::query(
                        "INSERT INTO certificates (serial, agent_id, mandate_version, issuer_id,
                             status, tbs, not_before, not_after, requested_by, created_at, profile)
                         SELECT $1, $2, $3, $4, 'reserved', $5, $6, $7, $8, $9, $10
                          WHERE EXISTS (SELECT 1 FROM agents WHERE id = $2 AND status = 'active')
                            AND EXISTS (SELECT 1 FROM mandates WHERE agent_id = $2
                                          AND version = $3 AND status = 'approved')",
                    )
                    .bind(&cert.serial)
                    .bind(&cert.agent_id)
                    .bind(cert.mandate_version)
                    .bind(cert.issuer_id)
                    .bind(&cert.tbs)
                    .bind(cert.not_before)
                    .bind(cert.not_after)
                    .bind(&cert.requested_by)
                    .bind(now_unix())
                    .bind(&cert.profile)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, format!("serial {}", cert.serial)))?
                    .rows_affected();
                    if inserted != 1 {
                        return Err(StoreError::WrongState(format!(
                            "agent {} is not active with mandate version {} approved (a kill switch or a new approval came first)",
                            cert.agent_id, cert.mandate_version
                        )));
                    }
                    append(conn, &event).await
                })
            })
            .await
    }

    /// Stores the signed certificate for a reserved serial, with its audit event, and says
    /// whether it is issued. Eligibility is checked again here: a certificate whose agent was
    /// suspended (the kill switch revoked the reservation) or whose mandate version stopped
    /// being the approved one while the HSM signed is stored revoked (privilegeWithdrawn) in
    /// this same transaction, and `false` comes back: it must not be handed out.
    pub async fn complete_certificate(
        &self,
        serial: &str,
        der: &[u8],
        sha256_hex: &str,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let (serial, der, sha256, event) = (
            serial.to_owned(),
            der.to_vec(),
            sha256_hex.to_owned(),
            event.clone(),
        );
        // Only the UPDATE can be refused (not reserved: it then changed no row).
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    let now = now_unix();
                    // The agent and its organization come back with the status: one statement
                    // where three were (each a round trip to the connection's thread).
                    let row = sqlx::query(
                        "UPDATE certificates SET der = $2, sha256 = $3, issued_at = $4,
                             ocsp_refresh_at = $4,
                             status = CASE WHEN status = 'reserved'
                                 AND EXISTS (SELECT 1 FROM agents a
                                              WHERE a.id = certificates.agent_id
                                                AND a.status = 'active')
                                 AND EXISTS (SELECT 1 FROM mandates m
                                              WHERE m.agent_id = certificates.agent_id
                                                AND m.version = certificates.mandate_version
                                                AND m.status = 'approved')
                               THEN 'issued' ELSE status END
                         WHERE serial = $1 AND status IN ('reserved', 'revoked') AND der IS NULL
                         RETURNING status, agent_id,
                             (SELECT a.organization FROM agents a
                               WHERE a.id = certificates.agent_id) AS organization",
                    )
                    .bind(&serial)
                    .bind(&der)
                    .bind(&sha256)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else {
                        return Err(StoreError::WrongState(format!(
                            "serial {serial} is not reserved"
                        )));
                    };
                    let status: String = row.try_get("status")?;
                    if status != "issued" {
                        // Signed across a kill switch or a new approval: kept, revoked, and
                        // never handed out.
                        if status == "reserved" {
                            crate::revocation::revoke_reserved(conn, &serial, now).await?;
                        }
                        let mut withheld = event.clone();
                        withheld.action = "certificate.withheld".into();
                        append(conn, &withheld).await?;
                        return Ok(false);
                    }
                    append(conn, &event).await?;
                    let agent: String = row.try_get("agent_id")?;
                    // Every agent has an organization (NOT NULL).
                    let operator: Option<String> = Some(row.try_get("organization")?);
                    let data = serde_json::json!({"serial_number": serial, "agent_id": agent,
                                                  "sha256": sha256});
                    crate::webhooks::enqueue(
                        conn,
                        "certificate.issued",
                        operator.as_deref(),
                        &data,
                    )
                    .await?;
                    Ok(true)
                })
            })
            .await
    }

    /// A certificate by serial (lowercase hex).
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            cert_columns!(),
            " FROM certificates WHERE serial = $1"
        );
        let row = sqlx::query(sql)
            .bind(serial)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(cert_row).transpose()
    }

    /// The most recently revoked certificates, newest first.
    pub async fn recent_revocations(
        &self,
        organization: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CertificateRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cert_columns!(),
            " FROM certificates WHERE status = 'revoked'
                AND ($2 = '' OR agent_id IN (SELECT id FROM agents WHERE organization = $2))
              ORDER BY revoked_at DESC, serial LIMIT $1"
        ))
        .bind(limit)
        .bind(organization.unwrap_or(""))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(cert_row).collect()
    }

    /// An agent's certificates, newest first, at most `limit`, starting after the certificate
    /// `after` (a serial from the previous page).
    pub async fn agent_certificates(
        &self,
        agent_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CertificateRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            cert_columns!(),
            " FROM certificates WHERE agent_id = $1
              AND ($2 = '' OR (created_at, serial) <
                   (SELECT created_at, serial FROM certificates WHERE serial = $2))
             ORDER BY created_at DESC, serial DESC LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .bind(agent_id)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(cert_row).collect()
    }
}

//! The audit log: append-only and hash-chained.
//!
//! Each record's `hash` is SHA-256 over [`record_hash`]'s canonical encoding of its fields and the
//! previous record's hash, so changing, deleting, inserting or reordering a record breaks the
//! chain at that record. Triggers refuse UPDATE and DELETE and any INSERT without a hash.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{AuditEvent, AuditRow, Store, StoreError, now_ms};

/// The hash before the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The fields of a record as they are hashed.
#[derive(Debug, Clone, Copy)]
pub struct AuditFields<'a> {
    /// Position in the log.
    pub seq: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub subject: &'a str,
    /// The certificate concerned.
    pub cert_fingerprint: Option<&'a str>,
    /// The risk score behind the decision.
    pub risk_score: Option<f64>,
    /// The details JSON exactly as stored.
    pub details: &'a str,
    /// The organization it concerns.
    pub organization: Option<&'a str>,
    /// The person who acted.
    pub person: Option<&'a str>,
}

impl<'a> AuditFields<'a> {
    /// The fields of a stored record, as hashed.
    pub fn of(r: &'a AuditRow) -> Self {
        AuditFields {
            seq: r.seq,
            at_ms: r.at_ms,
            actor: &r.actor,
            action: &r.action,
            subject: &r.subject,
            cert_fingerprint: r.cert_fingerprint.as_deref(),
            risk_score: r.risk_score,
            details: &r.details_text,
            organization: r.organization.as_deref(),
            person: r.person.as_deref(),
        }
    }
}

/// SHA-256 over `"mandate-audit-v1"`, then seq and time (8 bytes big-endian each), then each text
/// field as a 4-byte big-endian length and its UTF-8 bytes, the optional fields preceded by a
/// presence byte (the score as its IEEE 754 bits), then — only when the record names an
/// organization or a person (records since migration 0016) — the byte 2 followed by both as
/// optional text fields, then the previous hash.
pub fn record_hash(f: &AuditFields<'_>, prev: &[u8]) -> [u8; 32] {
    fn text(h: &mut Sha256, s: &str) {
        h.update(u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(s.as_bytes());
    }
    let mut h = Sha256::new();
    h.update(b"mandate-audit-v1");
    h.update(f.seq.to_be_bytes());
    h.update(f.at_ms.to_be_bytes());
    text(&mut h, f.actor);
    text(&mut h, f.action);
    text(&mut h, f.subject);
    match f.cert_fingerprint {
        Some(fp) => {
            h.update([1]);
            text(&mut h, fp);
        }
        None => h.update([0]),
    }
    match f.risk_score {
        Some(s) => {
            h.update([1]);
            h.update(s.to_bits().to_be_bytes());
        }
        None => h.update([0]),
    }
    text(&mut h, f.details);
    if f.organization.is_some() || f.person.is_some() {
        h.update([2]);
        for field in [f.organization, f.person] {
            match field {
                Some(v) => {
                    h.update([1]);
                    text(&mut h, v);
                }
                None => h.update([0]),
            }
        }
    }
    h.update(prev);
    h.finalize().into()
}

/// The last record's seq and hash (0 and the genesis hash for an empty log).
async fn last(conn: &mut AnyConnection) -> Result<(i64, Vec<u8>), StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(conn)
        .await?;
    match row {
        Some(r) => {
            let hash: Option<Vec<u8>> = r.try_get("hash")?;
            Ok((
                r.try_get("seq")?,
                hash.ok_or_else(|| StoreError::Corrupt("unsealed audit record".into()))?,
            ))
        }
        None => Ok((0, GENESIS_HASH.to_vec())),
    }
}

/// Appends one audit record inside the caller's transaction, chained to the last one.
pub(crate) async fn append(conn: &mut AnyConnection, event: &AuditEvent) -> Result<(), StoreError> {
    let (last_seq, prev) = last(&mut *conn).await?;
    let seq = last_seq + 1;
    let at_ms = now_ms();
    let details = event.details.to_string();
    let (organization, person) = who(&mut *conn, event).await?;
    let hash = record_hash(
        &AuditFields {
            seq,
            at_ms,
            actor: &event.actor,
            action: &event.action,
            subject: &event.subject,
            cert_fingerprint: event.cert_fingerprint.as_deref(),
            risk_score: event.risk_score,
            details: &details,
            organization: organization.as_deref(),
            person: person.as_deref(),
        },
        &prev,
    );
    sqlx::query(
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, cert_fingerprint, details,
             risk_score, prev_hash, hash, organization, person)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(seq)
    .bind(at_ms)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.subject)
    .bind(&event.cert_fingerprint)
    .bind(&details)
    .bind(crate::nullable::OptF64(event.risk_score))
    .bind(&prev)
    .bind(hash.as_slice())
    .bind(&organization)
    .bind(&person)
    .execute(conn)
    .await?;
    Ok(())
}

/// The organization and person of an event: as given, else the person holding the actor's
/// API key and the organization of the subject (an agent, or a certificate's agent) or of
/// that person. One query, in the appending transaction.
async fn who(
    conn: &mut AnyConnection,
    event: &AuditEvent,
) -> Result<(Option<String>, Option<String>), StoreError> {
    if event.resolved || (event.organization.is_some() && event.person.is_some()) {
        return Ok((event.organization.clone(), event.person.clone()));
    }
    let row = sqlx::query(
        "SELECT (SELECT person_id FROM api_keys WHERE id = $1) AS person,
                COALESCE(
                    (SELECT organization FROM agents WHERE id = $2),
                    (SELECT a.organization FROM certificates c JOIN agents a ON a.id = c.agent_id
                      WHERE c.serial = $2),
                    (SELECT p.organization FROM api_keys k JOIN people p ON p.id = k.person_id
                      WHERE k.id = $1)) AS organization",
    )
    .bind(&event.actor)
    .bind(&event.subject)
    .fetch_one(conn)
    .await?;
    let person: Option<String> = row.try_get("person")?;
    let organization: Option<String> = row.try_get("organization")?;
    Ok((
        event.organization.clone().or(organization),
        event.person.clone().or(person),
    ))
}

pub(crate) fn audit_row(r: &AnyRow) -> Result<AuditRow, StoreError> {
    let details: String = r.try_get("details")?;
    let prev: Option<Vec<u8>> = r.try_get("prev_hash")?;
    let hash: Option<Vec<u8>> = r.try_get("hash")?;
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        cert_fingerprint: r.try_get("cert_fingerprint")?,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?,
        details_text: details,
        risk_score: r.try_get("risk_score")?,
        organization: r.try_get("organization")?,
        person: r.try_get("person")?,
        prev_hash: prev.map(hex::encode).unwrap_or_default(),
        hash: hash.map(hex::encode).unwrap_or_default(),
    })
}

impl Store {
    /// The first record at or after `at_ms` (unix ms), if any.
    pub async fn audit_seq_since(&self, at_ms: i64) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(seq) FROM audit_events WHERE at_ms >= $1")
                .bind(at_ms)
                .fetch_one(&self.reader)
                .await?,
        )
    }

    /// Records an event that comes with no other change (e.g. a certificate issued outside the
    /// agent certificate table).
    pub async fn record_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let event = event.clone();
        self.writer
            .write_first_statement(move |conn| Box::pin(async move { append(conn, &event).await }))
            .await
    }

    /// Audit records after `after_seq`, oldest first, at most `limit`.
    pub async fn audit_events(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, subject, cert_fingerprint, details, risk_score,
                    prev_hash, hash, organization, person
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The audit records about any of `subjects` (an agent and its certificates' serials)
    /// after `after_seq`, oldest first, at most `limit`.
    pub async fn subject_audit_events(
        &self,
        subjects: &[String],
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut out = Vec::new();
        let backend = self.backend();
        for chunk in subjects.chunks(500) {
            let sql = format!(
                "SELECT seq, at_ms, actor, action, subject, cert_fingerprint, details, risk_score,
                        prev_hash, hash, organization, person
                 FROM audit_events WHERE seq > {} AND subject IN {} ORDER BY seq LIMIT {}",
                crate::db::param(backend, 1),
                crate::db::param_list(backend, 2, chunk.len()),
                crate::db::param(backend, chunk.len() + 2),
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq);
            for s in chunk {
                q = q.bind(s);
            }
            for r in q.bind(limit).fetch_all(&self.reader).await? {
                out.push(audit_row(&r)?);
            }
        }
        out.sort_by_key(|r| r.seq);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    /// One organization's audit records after `after_seq`, oldest first, at most `limit`.
    pub async fn organization_audit_events(
        &self,
        organization: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, subject, cert_fingerprint, details, risk_score,
                    prev_hash, hash, organization, person
             FROM audit_events WHERE organization = $3 AND seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .bind(organization)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Seals the records written before the log was chained (once, at the first start after the
    /// migration); returns how many.
    pub(crate) async fn seal_legacy_audit(&self) -> Result<usize, StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT seq, at_ms, actor, action, subject, cert_fingerprint, details,
                                risk_score
                         FROM audit_events
                         WHERE hash IS NULL AND seq <= (SELECT max_seq FROM audit_legacy)
                         ORDER BY seq",
                    )
                    .fetch_all(&mut *conn)
                    .await?;
                    let mut prev = GENESIS_HASH.to_vec();
                    let mut first = true;
                    for r in &rows {
                        let seq: i64 = r.try_get("seq")?;
                        if first {
                            first = false;
                            let before: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                                "SELECT hash FROM audit_events WHERE seq < $1
                                 ORDER BY seq DESC LIMIT 1",
                            )
                            .bind(seq)
                            .fetch_optional(&mut *conn)
                            .await?;
                            if let Some(Some(h)) = before {
                                prev = h;
                            }
                        }
                        let (actor, action, subject): (String, String, String) = (
                            r.try_get("actor")?,
                            r.try_get("action")?,
                            r.try_get("subject")?,
                        );
                        let fp: Option<String> = r.try_get("cert_fingerprint")?;
                        let details: String = r.try_get("details")?;
                        let hash = record_hash(
                            &AuditFields {
                                seq,
                                at_ms: r.try_get("at_ms")?,
                                actor: &actor,
                                action: &action,
                                subject: &subject,
                                cert_fingerprint: fp.as_deref(),
                                risk_score: r.try_get("risk_score")?,
                                details: &details,
                                organization: None,
                                person: None,
                            },
                            &prev,
                        );
                        sqlx::query(
                            "UPDATE audit_events SET prev_hash = $2, hash = $3 WHERE seq = $1",
                        )
                        .bind(seq)
                        .bind(&prev)
                        .bind(hash.as_slice())
                        .execute(&mut *conn)
                        .await?;
                        prev = hash.to_vec();
                    }
                    Ok(rows.len())
                })
            })
            .await
    }
}

/// Where the chain breaks: the first record that does not follow from the ones before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The record's seq (for a gap: the first record after it).
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

/// Checks records one by one, in seq order, against the chain so far.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    next_seq: i64,
    prev: Vec<u8>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            next_seq: 1,
            prev: GENESIS_HASH.to_vec(),
        }
    }
}

impl ChainCheck {
    /// Checks a stretch of the chain that starts at record `seq`, whose previous-hash is taken
    /// on trust: what vouches for the stretch is a signed checkpoint at its end.
    pub fn resume(seq: i64, prev_hash: Vec<u8>) -> ChainCheck {
        ChainCheck {
            next_seq: seq,
            prev: prev_hash,
        }
    }

    /// Records checked so far.
    pub fn records(&self) -> i64 {
        self.next_seq - 1
    }

    /// The hash of the last record checked (hex).
    pub fn last_hash(&self) -> String {
        hex::encode(&self.prev)
    }

    /// Checks the next record.
    pub fn check(&mut self, r: &AuditRow) -> Result<(), ChainBreak> {
        let broken = |reason: String| ChainBreak { seq: r.seq, reason };
        if r.seq != self.next_seq {
            return Err(broken(format!(
                "expected record {} next, found {}: records are missing or out of order",
                self.next_seq, r.seq
            )));
        }
        if r.prev_hash != hex::encode(&self.prev) {
            return Err(broken(
                "its previous-hash is not the hash of the record before it".into(),
            ));
        }
        let computed = record_hash(&AuditFields::of(r), &self.prev);
        if hex::encode(computed) != r.hash {
            return Err(broken(
                "its content does not match its hash: it was changed".into(),
            ));
        }
        self.prev = computed.to_vec();
        self.next_seq += 1;
        Ok(())
    }
}

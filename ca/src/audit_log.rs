//! Checking the audit log's hash chain, in the database or in an exported file, and exporting it.

use std::io::{BufRead, Write};
use std::path::Path;

use mandate_store::{AuditRow, ChainCheck, Store};
use serde::{Deserialize, Serialize};

use crate::CaError;

/// Records read per page when checking the database.
const PAGE: i64 = 5000;
/// The first line of an export names its format.
const FORMAT: &str = "mandate-audit-export-v1";

/// What a check found.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// True if every record follows from the ones before it.
    pub intact: bool,
    /// Records that passed, from the first.
    pub records_verified: i64,
    /// The hash of the last record that passed (hex).
    pub last_hash: String,
    /// The first broken record, if any.
    pub first_broken: Option<Broken>,
}

/// The first record that does not follow from the ones before it.
#[derive(Debug, Serialize)]
pub struct Broken {
    /// Its seq.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// One record of an export: every field the hash covers, the details as stored.
#[derive(Debug, Serialize, Deserialize)]
struct ExportRecord {
    seq: i64,
    at_ms: i64,
    actor: String,
    action: String,
    subject: String,
    cert_fingerprint: Option<String>,
    risk_score: Option<f64>,
    /// The details JSON text exactly as stored.
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for ExportRecord {
    fn from(r: AuditRow) -> Self {
        ExportRecord {
            seq: r.seq,
            at_ms: r.at_ms,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            cert_fingerprint: r.cert_fingerprint,
            risk_score: r.risk_score,
            details: r.details_text,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

impl From<ExportRecord> for AuditRow {
    fn from(r: ExportRecord) -> Self {
        AuditRow {
            seq: r.seq,
            at_ms: r.at_ms,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            cert_fingerprint: r.cert_fingerprint,
            details: serde_json::Value::Null,
            details_text: r.details,
            risk_score: r.risk_score,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

fn report(check: &ChainCheck, broken: Option<mandate_store::ChainBreak>) -> AuditReport {
    AuditReport {
        intact: broken.is_none(),
        records_verified: check.records(),
        last_hash: check.last_hash(),
        first_broken: broken.map(|b| Broken {
            seq: b.seq,
            reason: b.reason,
        }),
    }
}

/// Checks the whole chain in the database, oldest first.
pub async fn verify_store(store: &Store) -> Result<AuditReport, CaError> {
    let mut check = ChainCheck::default();
    let mut after = 0;
    loop {
        let rows = store.audit_events(after, PAGE).await?;
        let Some(last) = rows.last() else {
            return Ok(report(&check, None));
        };
        after = last.seq;
        for r in &rows {
            if let Err(b) = check.check(r) {
                return Ok(report(&check, Some(b)));
            }
        }
    }
}

/// Writes the whole log to `out` as JSON lines: a header, then one record per line.
pub async fn export(store: &Store, out: &Path) -> Result<i64, CaError> {
    let file = std::fs::File::create(out)
        .map_err(|e| CaError::io(format!("create {}", out.display()), e))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e| CaError::io(format!("write {}", out.display()), e);
    writeln!(w, "{}", serde_json::json!({"format": FORMAT})).map_err(io)?;
    let (mut after, mut n) = (0, 0);
    loop {
        let rows = store.audit_events(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in rows {
            let line = serde_json::to_string(&ExportRecord::from(r))
                .map_err(|e| CaError::Internal(e.to_string()))?;
            writeln!(w, "{line}").map_err(io)?;
            n += 1;
        }
    }
    w.flush().map_err(io)?;
    Ok(n)
}

/// Checks an exported file offline.
pub fn verify_file(path: &Path) -> Result<AuditReport, CaError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CaError::io(format!("open {}", path.display()), e))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header = lines
        .next()
        .transpose()
        .map_err(|e| CaError::io(format!("read {}", path.display()), e))?
        .unwrap_or_default();
    let header: serde_json::Value = serde_json::from_str(&header).unwrap_or_default();
    if header["format"] != FORMAT {
        return Err(CaError::InvalidRequest(format!(
            "{} is not a mandate audit export (first line must name {FORMAT})",
            path.display()
        )));
    }
    let mut check = ChainCheck::default();
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| CaError::io(format!("read {}", path.display()), e))?;
        let record: ExportRecord = serde_json::from_str(&line).map_err(|e| {
            CaError::InvalidRequest(format!("{} line {}: {e}", path.display(), i + 2))
        })?;
        if let Err(b) = check.check(&record.into()) {
            return Ok(report(&check, Some(b)));
        }
    }
    Ok(report(&check, None))
}

//! Checking the audit log's hash chain and its signed checkpoints, in the database or in an
//! exported file, and exporting it.
//!
//! An export is JSON lines: a header naming the format, then every record, then the
//! certificates (intermediates and audit signers, base64 DER) and the checkpoints. With only the
//! root certificate, `mandate audit verify --file F --root root.pem` checks all of it.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mandate_store::{AuditRow, CaRole, ChainCheck, CheckpointRow, Store, checkpoint_message};
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
    /// Signed checkpoints whose signature, certificate chain and record hash all verified.
    pub checkpoints_verified: usize,
    /// The newest record a verified checkpoint covers.
    pub last_checkpoint_seq: Option<i64>,
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
    /// The organization it concerns (records since migration 0016).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organization: Option<String>,
    /// The person who acted (records since migration 0016).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    person: Option<String>,
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
            organization: r.organization,
            person: r.person,
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
            organization: r.organization,
            person: r.person,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A signer certificate, an export line.
#[derive(Debug, Serialize, Deserialize)]
struct ExportCert {
    kind: String,
    /// `intermediate`, `cross` (a cross-certificate between roots) or `audit_signer`.
    role: String,
    /// The row id checkpoints (signer) and signers (issuer) refer to.
    id: i64,
    /// For a signer: its issuer's id.
    issuer_id: Option<i64>,
    /// Base64 DER.
    der: String,
}

/// A checkpoint, an export line.
#[derive(Debug, Serialize, Deserialize)]
struct ExportCheckpoint {
    kind: String,
    id: i64,
    seq: i64,
    hash: String,
    signed_at_ms: i64,
    signer_id: i64,
    signature: String,
}

/// What the checkpoints are checked with.
#[derive(Default)]
struct Trust {
    roots: Vec<Vec<u8>>,
    intermediates: HashMap<i64, Vec<u8>>,
    /// Cross-certificates between roots (after a root rollover): a signer under the old root
    /// verifies from the new one through them.
    cross: Vec<Vec<u8>>,
    /// Signer id → (issuer id, certificate DER).
    signers: HashMap<i64, (i64, Vec<u8>)>,
    checkpoints: Vec<CheckpointRow>,
}

/// Walks the records in order and checks every checkpoint against them; the first problem (by
/// seq) wins.
struct Walk {
    check: ChainCheck,
    /// Checkpoint seq → the hashes they claim (hex).
    wanted: HashMap<i64, Vec<String>>,
    broken: Option<mandate_store::ChainBreak>,
    matched: HashMap<i64, bool>,
}

impl Walk {
    fn new(trust: &Trust) -> Walk {
        let mut wanted: HashMap<i64, Vec<String>> = HashMap::new();
        for c in &trust.checkpoints {
            wanted.entry(c.seq).or_default().push(hex::encode(&c.hash));
        }
        Walk {
            check: ChainCheck::default(),
            wanted,
            broken: None,
            matched: HashMap::new(),
        }
    }

    /// False once broken.
    fn record(&mut self, r: &AuditRow) -> bool {
        if let Err(b) = self.check.check(r) {
            self.broken = Some(b);
            return false;
        }
        if let Some(hashes) = self.wanted.get(&r.seq) {
            let ok = hashes.iter().all(|h| *h == r.hash);
            self.matched.insert(r.seq, ok);
            if !ok {
                self.broken = Some(mandate_store::ChainBreak {
                    seq: r.seq,
                    reason: "a signed checkpoint names another hash for this record".into(),
                });
                return false;
            }
        }
        true
    }

    fn finish(mut self, trust: &Trust) -> AuditReport {
        let mut verified = 0;
        let mut last_cp = None;
        for c in &trust.checkpoints {
            let problem = match trust.signers.get(&c.signer_id) {
                None => Some(format!(
                    "checkpoint {}: its signer certificate is missing",
                    c.id
                )),
                Some((issuer, der)) => {
                    let chain: Vec<Vec<u8>> = trust
                        .intermediates
                        .get(issuer)
                        .cloned()
                        .into_iter()
                        .collect();
                    let verify = |chain: &[Vec<u8>]| {
                        mandate_verify::verify_signed_by(
                            der,
                            chain,
                            &trust.roots,
                            crate::x509::AUDIT_SIGNING_EKU,
                            &checkpoint_message(c.seq, &c.hash, c.signed_at_ms),
                            &c.signature,
                            c.signed_at_ms / 1000,
                        )
                    };
                    // Directly to a root, or through one of the cross-certificates.
                    let mut reasons = verify(&chain);
                    for cross in &trust.cross {
                        if reasons.is_empty() {
                            break;
                        }
                        let mut via = chain.clone();
                        via.push(cross.clone());
                        if verify(&via).is_empty() {
                            reasons.clear();
                        }
                    }
                    (!reasons.is_empty()).then(|| {
                        let why: Vec<String> = reasons.iter().map(|r| r.detail.clone()).collect();
                        format!("checkpoint {} does not verify: {}", c.id, why.join("; "))
                    })
                }
            };
            let problem = problem.or_else(|| match self.matched.get(&c.seq) {
                Some(true) => None,
                _ if self.broken.is_some() => None,
                _ => Some(format!(
                    "checkpoint {} covers records up to {}, but the log ends at {}: records were cut off",
                    c.id,
                    c.seq,
                    self.check.records()
                )),
            });
            match problem {
                None if self.matched.get(&c.seq) == Some(&true) => {
                    verified += 1;
                    last_cp = last_cp.max(Some(c.seq));
                }
                None => {}
                Some(reason) => {
                    let seq = c.seq.min(self.check.records() + 1);
                    if self.broken.as_ref().is_none_or(|b| seq < b.seq) {
                        self.broken = Some(mandate_store::ChainBreak { seq, reason });
                    }
                }
            }
        }
        AuditReport {
            intact: self.broken.is_none(),
            records_verified: self.check.records(),
            last_hash: self.check.last_hash(),
            first_broken: self.broken.map(|b| Broken {
                seq: b.seq,
                reason: b.reason,
            }),
            checkpoints_verified: verified,
            last_checkpoint_seq: last_cp,
        }
    }
}

async fn store_trust(store: &Store, roots: Option<Vec<Vec<u8>>>) -> Result<Trust, CaError> {
    let cas = store.ca_certificates().await?;
    Ok(Trust {
        roots: roots.unwrap_or_else(|| {
            cas.iter()
                .filter(|c| c.role == CaRole::Root)
                .map(|c| c.der.clone())
                .collect()
        }),
        intermediates: cas
            .iter()
            .filter(|c| c.role == CaRole::Intermediate)
            .map(|c| (c.id, c.der.clone()))
            .collect(),
        cross: store
            .cross_certificates()
            .await?
            .into_iter()
            .map(|c| c.der)
            .collect(),
        signers: store
            .audit_signers()
            .await?
            .into_iter()
            .map(|s| (s.id, (s.issuer_id, s.der)))
            .collect(),
        checkpoints: store.audit_checkpoints().await?,
    })
}

/// Checks the whole chain in the database, oldest first, and every checkpoint (against `roots`,
/// or the database's own root certificates).
pub async fn verify_store(
    store: &Store,
    roots: Option<Vec<Vec<u8>>>,
) -> Result<AuditReport, CaError> {
    let trust = store_trust(store, roots).await?;
    let mut walk = Walk::new(&trust);
    let mut after = 0;
    'pages: loop {
        let rows = store.audit_events(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in &rows {
            if !walk.record(r) {
                break 'pages;
            }
        }
    }
    Ok(walk.finish(&trust))
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
            writeln!(w, "{}", line(&ExportRecord::from(r))?).map_err(io)?;
            n += 1;
        }
    }
    let trust = store_trust(store, None).await?;
    for (id, der) in &trust.intermediates {
        let c = ExportCert {
            kind: "certificate".into(),
            role: "intermediate".into(),
            id: *id,
            issuer_id: None,
            der: B64.encode(der),
        };
        writeln!(w, "{}", line(&c)?).map_err(io)?;
    }
    for (i, der) in trust.cross.iter().enumerate() {
        let c = ExportCert {
            kind: "certificate".into(),
            role: "cross".into(),
            id: i64::try_from(i).unwrap_or(i64::MAX),
            issuer_id: None,
            der: B64.encode(der),
        };
        writeln!(w, "{}", line(&c)?).map_err(io)?;
    }
    for (id, (issuer, der)) in &trust.signers {
        let c = ExportCert {
            kind: "certificate".into(),
            role: "audit_signer".into(),
            id: *id,
            issuer_id: Some(*issuer),
            der: B64.encode(der),
        };
        writeln!(w, "{}", line(&c)?).map_err(io)?;
    }
    for c in &trust.checkpoints {
        let c = ExportCheckpoint {
            kind: "checkpoint".into(),
            id: c.id,
            seq: c.seq,
            hash: hex::encode(&c.hash),
            signed_at_ms: c.signed_at_ms,
            signer_id: c.signer_id,
            signature: B64.encode(&c.signature),
        };
        writeln!(w, "{}", line(&c)?).map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(n)
}

/// One export line.
fn line<T: Serialize>(v: &T) -> Result<String, CaError> {
    serde_json::to_string(v).map_err(|e| CaError::Internal(e.to_string()))
}

/// Checks an exported file offline against `roots` (the root certificates, DER).
pub fn verify_file(path: &Path, roots: Vec<Vec<u8>>) -> Result<AuditReport, CaError> {
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
    let bad = |i: usize, e: String| {
        CaError::InvalidRequest(format!("{} line {}: {e}", path.display(), i + 2))
    };
    let decode = |i: usize, t: &str| B64.decode(t).map_err(|e| bad(i, e.to_string()));
    let mut records = Vec::new();
    let mut trust = Trust {
        roots,
        ..Trust::default()
    };
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| CaError::io(format!("read {}", path.display()), e))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(i, e.to_string()))?;
        match v["kind"].as_str() {
            None => {
                let r: ExportRecord =
                    serde_json::from_value(v).map_err(|e| bad(i, e.to_string()))?;
                records.push(AuditRow::from(r));
            }
            Some("certificate") => {
                let c: ExportCert = serde_json::from_value(v).map_err(|e| bad(i, e.to_string()))?;
                let der = decode(i, &c.der)?;
                match (c.role.as_str(), c.issuer_id) {
                    ("intermediate", _) => {
                        trust.intermediates.insert(c.id, der);
                    }
                    ("cross", _) => trust.cross.push(der),
                    ("audit_signer", Some(issuer)) => {
                        trust.signers.insert(c.id, (issuer, der));
                    }
                    _ => return Err(bad(i, format!("unknown certificate role {:?}", c.role))),
                }
            }
            Some("checkpoint") => {
                let c: ExportCheckpoint =
                    serde_json::from_value(v).map_err(|e| bad(i, e.to_string()))?;
                trust.checkpoints.push(CheckpointRow {
                    id: c.id,
                    seq: c.seq,
                    hash: hex::decode(&c.hash).map_err(|e| bad(i, e.to_string()))?,
                    signed_at_ms: c.signed_at_ms,
                    signer_id: c.signer_id,
                    signature: decode(i, &c.signature)?,
                });
            }
            Some(other) => return Err(bad(i, format!("unknown line kind {other:?}"))),
        }
    }
    if !trust.checkpoints.is_empty() && trust.roots.is_empty() {
        return Err(CaError::InvalidRequest(
            "the export has signed checkpoints: give the root certificate (--root root.pem) to check them".into(),
        ));
    }
    let mut walk = Walk::new(&trust);
    for r in &records {
        if !walk.record(r) {
            break;
        }
    }
    Ok(walk.finish(&trust))
}

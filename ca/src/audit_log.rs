//! Checking the audit log's hash chain and its signed checkpoints, in the database or in an
//! exported file, and exporting it.
//!
//! An export is JSON lines: a header naming the format, then every record (with its leaf's salt
//! once the audit tree covers it), then the certificates (intermediates and audit signers,
//! base64 DER) and the checkpoints (tree checkpoints with their signed note). With only the root
//! certificate, `mandate audit verify --file F --root root.pem` checks all of it: the hash chain,
//! the tree rebuilt from the records, and every checkpoint's signature and root.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mandate_store::{
    AuditFields, AuditRow, CaRole, ChainCheck, CheckpointRow, Store, TreeBuilder,
    checkpoint_message, leaf_hash,
};
use serde::{Deserialize, Serialize};

use crate::CaError;

/// Records read per page when checking the database.
const PAGE: i64 = 5000;
/// The first line of an export names its format.
const FORMAT: &str = "mandate-audit-export-v2";
/// The format before the audit tree (no salts, no notes): still read.
const FORMAT_V1: &str = "mandate-audit-export-v1";

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
    /// Records the audit tree covers (rebuilt from the records and their salts).
    pub tree_size: u64,
    /// The root of that tree (base64), if it has leaves.
    pub tree_root: Option<String>,
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
    /// The salt of its leaf in the audit tree, base64 (records the tree covers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
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
            salt: None,
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
    /// A tree checkpoint's signed note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// What the checkpoints are checked with.
#[derive(Default)]
struct Trust {
    /// Roots, intermediates and cross-certificates (after a root rollover, a signer under the
    /// old root verifies from the new one through them).
    ca: crate::audit_note::SignerTrust,
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
    /// Tree checkpoint size → the roots they claim.
    wanted_roots: HashMap<u64, Vec<Vec<u8>>>,
    broken: Option<mandate_store::ChainBreak>,
    matched: HashMap<i64, bool>,
    /// The audit tree rebuilt from the records with a salt, which come first.
    tree: TreeBuilder,
    /// Tree sizes whose root matched every checkpoint of that size.
    matched_roots: HashMap<u64, bool>,
    /// A record without a salt was seen: the tree ends before it.
    tree_ended: bool,
}

impl Walk {
    fn new(trust: &Trust) -> Walk {
        let mut wanted: HashMap<i64, Vec<String>> = HashMap::new();
        let mut wanted_roots: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
        for c in &trust.checkpoints {
            wanted.entry(c.seq).or_default().push(hex::encode(&c.hash));
            if let (Some(root), Ok(size)) = (&c.root, u64::try_from(c.seq)) {
                wanted_roots.entry(size).or_default().push(root.clone());
            }
        }
        Walk {
            check: ChainCheck::default(),
            wanted,
            wanted_roots,
            broken: None,
            matched: HashMap::new(),
            tree: TreeBuilder::default(),
            matched_roots: HashMap::new(),
            tree_ended: false,
        }
    }

    fn fail(&mut self, seq: i64, reason: String) -> bool {
        self.broken = Some(mandate_store::ChainBreak { seq, reason });
        false
    }

    /// False once broken. `salt`: the record's leaf salt, if the tree covers it.
    fn record(&mut self, r: &AuditRow, salt: Option<&[u8]>) -> bool {
        if let Err(b) = self.check.check(r) {
            self.broken = Some(b);
            return false;
        }
        if let Some(hashes) = self.wanted.get(&r.seq) {
            let ok = hashes.iter().all(|h| *h == r.hash);
            self.matched.insert(r.seq, ok);
            if !ok {
                return self.fail(
                    r.seq,
                    "a signed checkpoint names another hash for this record".into(),
                );
            }
        }
        match salt {
            None => self.tree_ended = true,
            Some(_) if self.tree_ended => {
                return self.fail(
                    r.seq,
                    "it has a leaf in the audit tree, but a record before it has none".into(),
                );
            }
            Some(salt) => {
                if let Err(e) = self.tree.push(leaf_hash(&AuditFields::of(r), salt)) {
                    return self.fail(r.seq, e.to_string());
                }
                let size = self.tree.size();
                if let Some(roots) = self.wanted_roots.get(&size) {
                    let root = match self.tree.root() {
                        Ok(h) => h.0.to_vec(),
                        Err(e) => return self.fail(r.seq, e.to_string()),
                    };
                    let ok = roots.iter().all(|x| *x == root);
                    self.matched_roots.insert(size, ok);
                    if !ok {
                        return self.fail(
                            r.seq,
                            "the audit tree of the records up to here is not the one a signed checkpoint names: a record or a leaf salt was changed".into(),
                        );
                    }
                }
            }
        }
        true
    }

    /// The signature problem of one checkpoint, if any.
    fn signature_problem(trust: &Trust, c: &CheckpointRow) -> Option<String> {
        let Some((issuer, der)) = trust.signers.get(&c.signer_id) else {
            return Some(format!(
                "checkpoint {}: its signer certificate is missing",
                c.id
            ));
        };
        let at = c.signed_at_ms / 1000;
        let result = match &c.note {
            Some(note) => crate::audit_note::open(note).and_then(|cp| {
                if i64::try_from(cp.size).ok() != Some(c.seq)
                    || c.root.as_deref() != Some(cp.root.0.as_slice())
                {
                    return Err("its note names another tree than its record".into());
                }
                if !cp.signatures.iter().any(|(_, sig)| *sig == c.signature) {
                    return Err("its signature is not the one in its note".into());
                }
                trust.ca.check_checkpoint(&cp, der, *issuer, at)
            }),
            None => trust.ca.check(
                der,
                *issuer,
                &checkpoint_message(c.seq, &c.hash, c.signed_at_ms),
                &c.signature,
                at,
            ),
        };
        result
            .err()
            .map(|why| format!("checkpoint {} does not verify: {why}", c.id))
    }

    fn finish(mut self, trust: &Trust) -> AuditReport {
        let mut verified = 0;
        let mut last_cp = None;
        for c in &trust.checkpoints {
            let covered = match (&c.note, u64::try_from(c.seq)) {
                (Some(_), Ok(size)) => self.matched_roots.get(&size) == Some(&true),
                _ => self.matched.get(&c.seq) == Some(&true),
            };
            let problem = Self::signature_problem(trust, c).or_else(|| {
                (!covered && self.broken.is_none()).then(|| {
                    format!(
                        "checkpoint {} covers records up to {}, but the {} ends at {}: records were cut off",
                        c.id,
                        c.seq,
                        if c.note.is_some() { "audit tree" } else { "log" },
                        if c.note.is_some() {
                            i64::try_from(self.tree.size()).unwrap_or(i64::MAX)
                        } else {
                            self.check.records()
                        }
                    )
                })
            });
            match problem {
                None if covered => {
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
        let tree_root = (self.tree.size() > 0)
            .then(|| self.tree.root().ok())
            .flatten()
            .map(|h| crate::audit_note::b64(&h));
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
            tree_size: self.tree.size(),
            tree_root,
        }
    }
}

async fn store_trust(store: &Store, roots: Option<Vec<Vec<u8>>>) -> Result<Trust, CaError> {
    let cas = store.ca_certificates().await?;
    Ok(Trust {
        ca: crate::audit_note::SignerTrust {
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
        },
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
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let salts = store.audit_leaf_salts(&seqs).await?;
        for r in &rows {
            if !walk.record(r, salts.get(&r.seq).map(Vec::as_slice)) {
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
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let salts = store.audit_leaf_salts(&seqs).await?;
        for r in rows {
            let salt = salts.get(&r.seq).map(|s| B64.encode(s));
            let mut rec = ExportRecord::from(r);
            rec.salt = salt;
            writeln!(w, "{}", line(&rec)?).map_err(io)?;
            n += 1;
        }
    }
    let trust = store_trust(store, None).await?;
    for (id, der) in &trust.ca.intermediates {
        let c = ExportCert {
            kind: "certificate".into(),
            role: "intermediate".into(),
            id: *id,
            issuer_id: None,
            der: B64.encode(der),
        };
        writeln!(w, "{}", line(&c)?).map_err(io)?;
    }
    for (i, der) in trust.ca.cross.iter().enumerate() {
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
            note: c.note.clone(),
        };
        writeln!(w, "{}", line(&c)?).map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(n)
}

/// One export line.
pub(crate) fn line<T: Serialize>(v: &T) -> Result<String, CaError> {
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
    if header["format"] != FORMAT && header["format"] != FORMAT_V1 {
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
        ca: crate::audit_note::SignerTrust {
            roots,
            ..Default::default()
        },
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
                let salt = r.salt.as_deref().map(|t| decode(i, t)).transpose()?;
                records.push((AuditRow::from(r), salt));
            }
            Some("certificate") => {
                let c: ExportCert = serde_json::from_value(v).map_err(|e| bad(i, e.to_string()))?;
                let der = decode(i, &c.der)?;
                match (c.role.as_str(), c.issuer_id) {
                    ("intermediate", _) => {
                        trust.ca.intermediates.insert(c.id, der);
                    }
                    ("cross", _) => trust.ca.cross.push(der),
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
                    root: match &c.note {
                        Some(n) => Some(
                            crate::audit_note::open(n)
                                .map_err(|e| bad(i, e))?
                                .root
                                .0
                                .to_vec(),
                        ),
                        None => None,
                    },
                    note: c.note,
                });
            }
            Some(other) => return Err(bad(i, format!("unknown line kind {other:?}"))),
        }
    }
    if !trust.checkpoints.is_empty() && trust.ca.roots.is_empty() {
        return Err(CaError::InvalidRequest(
            "the export has signed checkpoints: give the root certificate (--root root.pem) to check them".into(),
        ));
    }
    let mut walk = Walk::new(&trust);
    for (r, salt) in &records {
        if !walk.record(r, salt.as_deref()) {
            break;
        }
    }
    Ok(walk.finish(&trust))
}

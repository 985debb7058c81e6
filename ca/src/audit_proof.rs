//! One subject's audit records, each with its inclusion proof to one signed checkpoint, and
//! checking them offline with only the root certificate.
//!
//! This is what leaves the CA about one organization or one agent: its records and nothing of
//! anyone else's. A proof's sibling hashes belong to other records, but every leaf is salted
//! (see `mandate_store::leaf_data`), so they reveal nothing of them. The chain's previous-hash
//! is left out for the same reason: it would let a reader test guesses of the record before.
//!
//! A proof shows that a record is in the log the CA signed; that no record of the subject was
//! left out of the file is what the CA attests by signing the report that carries it, and what
//! a witness of the checkpoints (`mandate audit witness`) keeps the CA to over time.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mandate_store::{AuditFields, AuditRow, CheckpointRow, Store, leaf_hash};
use serde::{Deserialize, Serialize};
use tlog_tiles::tlog;

use crate::CaError;
use crate::audit_log::line;
use crate::audit_note::{OpenedCheckpoint, SignerTrust, b64, hash_b64};

/// The first line of a proofs file names its format.
pub const PROOFS_FORMAT: &str = "mandate-audit-proofs-v1";
/// Records whose proofs are read from the store at a time.
const PAGE: i64 = 2000;
/// Longest proof accepted (a tree of 2^64 leaves needs 64 hashes).
const MAX_PROOF: usize = 64;

/// One audit record with what proves it: every field its leaf covers, its salt and its
/// inclusion proof.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProvedRecord {
    /// Its position in the log (leaf `seq - 1`).
    pub seq: i64,
    /// When, RFC 3339 UTC with milliseconds (the leaf covers the milliseconds).
    pub at: String,
    /// Who acted: an API key id, `system`, `cli:<command>`, ...
    pub actor: String,
    /// What was done.
    pub action: String,
    /// On what.
    pub subject: String,
    /// The certificate concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
    /// The risk score behind the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<f64>,
    /// The details, JSON text exactly as recorded.
    pub details: String,
    /// The organization it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The person who acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Its leaf's salt, base64.
    pub salt: String,
    /// The inclusion proof (RFC 6962 audit path), base64 hashes, leaf to root.
    pub proof: Vec<String>,
}

impl ProvedRecord {
    /// The record's milliseconds, from `at`.
    fn at_ms(&self) -> Result<i64, String> {
        let t =
            time::OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| format!("its time {:?} is not RFC 3339", self.at))?;
        let nanos = t.unix_timestamp_nanos();
        if nanos % 1_000_000 != 0 {
            return Err(format!("its time {:?} is finer than milliseconds", self.at));
        }
        i64::try_from(nanos / 1_000_000)
            .map_err(|_| format!("its time {:?} is out of range", self.at))
    }

    /// Checks that the record is leaf `seq - 1` of the checkpoint's tree.
    pub fn check(&self, cp: &OpenedCheckpoint) -> Result<(), String> {
        let at_ms = self.at_ms()?;
        let salt = B64
            .decode(&self.salt)
            .map_err(|_| "its salt is not base64".to_owned())?;
        if self.proof.len() > MAX_PROOF {
            return Err("its proof is longer than any tree needs".into());
        }
        let proof = self
            .proof
            .iter()
            .map(|h| hash_b64(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("its proof: {e}"))?;
        let leaf = leaf_hash(
            &AuditFields {
                seq: self.seq,
                at_ms,
                actor: &self.actor,
                action: &self.action,
                subject: &self.subject,
                cert_fingerprint: self.cert_fingerprint.as_deref(),
                risk_score: self.risk_score,
                details: &self.details,
                organization: self.organization.as_deref(),
                person: self.person.as_deref(),
            },
            &salt,
        );
        let index =
            u64::try_from(self.seq - 1).map_err(|_| format!("there is no record {}", self.seq))?;
        if index >= cp.size {
            return Err(format!(
                "it is not in the signed tree of {} records",
                cp.size
            ));
        }
        tlog::check_record(&proof, cp.size, cp.root, index, leaf).map_err(|_| {
            "its inclusion proof does not lead to the signed checkpoint's root: the record, its salt or its proof was changed".to_owned()
        })
    }
}

/// The signed checkpoint proofs lead to, and the certificate of its signer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedCheckpoint {
    /// The C2SP signed note.
    pub note: String,
    /// When it was signed, RFC 3339 UTC.
    pub signed_at: String,
    /// The audit signer's certificate, PEM.
    pub signer_certificate: String,
    /// The intermediate that issued it (an id among `ca_certificates`).
    pub signer_issuer_id: i64,
}

impl SignedCheckpoint {
    /// From a stored tree checkpoint and its signer.
    pub async fn of(store: &Store, cp: &CheckpointRow) -> Result<SignedCheckpoint, CaError> {
        let note = cp
            .note
            .clone()
            .ok_or_else(|| CaError::Internal("a chain checkpoint has no tree to prove".into()))?;
        let signer = store
            .audit_signers()
            .await?
            .into_iter()
            .find(|s| s.id == cp.signer_id)
            .ok_or_else(|| CaError::Internal("checkpoint signer missing".into()))?;
        Ok(SignedCheckpoint {
            note,
            signed_at: crate::rfc3339_ms(cp.signed_at_ms),
            signer_certificate: crate::x509::cert_pem(&signer.der)?,
            signer_issuer_id: signer.issuer_id,
        })
    }

    /// Opens the note and checks its signature against `trust`.
    pub fn check(&self, trust: &SignerTrust) -> Result<OpenedCheckpoint, String> {
        let cp = crate::audit_note::open(&self.note)?;
        let cert = mandate_verify::pem_to_der_chain(&self.signer_certificate)
            .ok()
            .and_then(|c| c.into_iter().next())
            .ok_or("its signer certificate is missing or unreadable")?;
        let at = time::OffsetDateTime::parse(
            &self.signed_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| format!("its signing time {:?} is not RFC 3339", self.signed_at))?
        .unix_timestamp();
        trust.check_checkpoint(&cp, &cert, self.signer_issuer_id, at)?;
        Ok(cp)
    }
}

/// A signed checkpoint as the CA publishes it, with what a witness needs to check it from the
/// root certificate alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// Records in the tree.
    pub tree_size: u64,
    /// The tree's root hash, base64.
    pub root_hash: String,
    /// The note, its time and its signer.
    #[serde(flatten)]
    pub signed: SignedCheckpoint,
    /// The intermediate that issued the signer's certificate, PEM.
    pub issuer_certificate: String,
}

impl PublishedCheckpoint {
    /// From a stored tree checkpoint.
    pub async fn of(store: &Store, cp: &CheckpointRow) -> Result<PublishedCheckpoint, CaError> {
        let signed = SignedCheckpoint::of(store, cp).await?;
        let opened = crate::audit_note::open(&signed.note).map_err(CaError::Internal)?;
        let issuer = store
            .ca_certificate(signed.signer_issuer_id)
            .await?
            .ok_or_else(|| CaError::Internal("the audit signer's issuer is missing".into()))?;
        Ok(PublishedCheckpoint {
            origin: opened.origin,
            tree_size: opened.size,
            root_hash: b64(&opened.root),
            issuer_certificate: crate::x509::cert_pem(&issuer.der)?,
            signed,
        })
    }

    /// Checks the signature against `roots` (DER) and opens the note.
    pub fn check(&self, roots: &[Vec<u8>]) -> Result<OpenedCheckpoint, String> {
        let issuer = mandate_verify::pem_to_der_chain(&self.issuer_certificate)
            .ok()
            .and_then(|c| c.into_iter().next())
            .ok_or("the issuer certificate is missing or unreadable")?;
        let trust = SignerTrust {
            roots: roots.to_vec(),
            intermediates: HashMap::from([(self.signed.signer_issuer_id, issuer)]),
            cross: Vec::new(),
        };
        let cp = self.signed.check(&trust)?;
        if cp.origin != self.origin || cp.size != self.tree_size || b64(&cp.root) != self.root_hash
        {
            return Err("the fields beside the note do not match the signed note".into());
        }
        Ok(cp)
    }
}

/// Proves records (each in the checkpoint's tree) to the checkpoint.
pub async fn prove(
    store: &Store,
    cp: &CheckpointRow,
    records: &[AuditRow],
) -> Result<Vec<ProvedRecord>, CaError> {
    let size = u64::try_from(cp.seq).map_err(|_| CaError::Internal("checkpoint size".into()))?;
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    let salts: HashMap<i64, Vec<u8>> = store.audit_leaf_salts(&seqs).await?;
    let proofs = store.audit_inclusion_proofs(&seqs, size).await?;
    let mut out = Vec::with_capacity(records.len());
    for (r, proof) in records.iter().zip(proofs) {
        let salt = salts
            .get(&r.seq)
            .ok_or_else(|| CaError::Internal(format!("audit record {} has no leaf", r.seq)))?;
        out.push(ProvedRecord {
            seq: r.seq,
            at: crate::rfc3339_ms(r.at_ms),
            actor: r.actor.clone(),
            action: r.action.clone(),
            subject: r.subject.clone(),
            cert_fingerprint: r.cert_fingerprint.clone(),
            risk_score: r.risk_score,
            details: r.details_text.clone(),
            organization: r.organization.clone(),
            person: r.person.clone(),
            salt: B64.encode(salt),
            proof: proof.iter().map(b64).collect(),
        });
    }
    Ok(out)
}

/// Whose records a proofs file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProofSubject {
    /// Every record of an organization.
    Organization(String),
    /// Every record about an agent or its certificates.
    Agent(String),
}

/// The first line of a proofs file.
#[derive(Debug, Serialize, Deserialize)]
struct ProofsHeader {
    format: String,
    subject: ProofSubject,
    checkpoint: SignedCheckpoint,
    /// Intermediates: `{"id", "pem"}`.
    ca_certificates: Vec<CaCert>,
    /// Cross-certificates between roots, PEM.
    cross_certificates: Vec<String>,
    /// How many record lines follow.
    records: u64,
}

/// An intermediate a signer may chain through.
#[derive(Debug, Serialize, Deserialize)]
struct CaCert {
    id: i64,
    pem: String,
}

/// The serials of every certificate of an agent.
pub(crate) async fn agent_serials(store: &Store, agent_id: &str) -> Result<Vec<String>, CaError> {
    let mut serials = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .agent_certificates(agent_id, after.as_deref(), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.serial.clone());
        let done = page.len() < 500;
        serials.extend(page.into_iter().map(|c| c.serial));
        if done {
            break;
        }
    }
    Ok(serials)
}

/// Whether a record belongs to the subject: an organization's own records; an agent's, or one
/// of its certificates', or one that names it as `agent_id`.
pub(crate) fn belongs(r: &AuditRow, subject: &ProofSubject, serials: &[String]) -> bool {
    match subject {
        ProofSubject::Organization(org) => r.organization.as_deref() == Some(org.as_str()),
        ProofSubject::Agent(id) => {
            r.subject == *id
                || serials.contains(&r.subject)
                || r.details
                    .get("agent_id")
                    .and_then(serde_json::Value::as_str)
                    == Some(id)
        }
    }
}

/// Records the export in the audit log, signs a checkpoint that covers it and writes the
/// subject's records with their proofs to `out`; returns how many. `actor` names who asked;
/// `max`: refuse, before anything is recorded, a subject with more records than this.
pub async fn export_now(
    hsm: &mandate_hsm::Hsm,
    store: &Store,
    cfg: &mandate_config::Config,
    subject: &ProofSubject,
    actor: &str,
    max: Option<usize>,
    out: &mut (dyn Write + Send),
) -> Result<u64, CaError> {
    let name = match subject {
        ProofSubject::Organization(o) => {
            if store.organization(o).await?.is_none() {
                return Err(CaError::NotFound(format!("organization {o}")));
            }
            o.clone()
        }
        ProofSubject::Agent(a) => {
            if store.agent(a).await?.is_none() {
                return Err(CaError::NotFound(format!("agent {a}")));
            }
            a.clone()
        }
    };
    let serials: Vec<String> = match subject {
        ProofSubject::Agent(id) => agent_serials(store, id).await?,
        ProofSubject::Organization(_) => Vec::new(),
    };
    let mut kept = gather(store, subject, &serials, 0, i64::MAX).await?;
    if let Some(max) = max
        && kept.len() > max
    {
        return Err(CaError::InvalidRequest(format!(
            "{name} has {} audit records, more than {max} in one answer: export it with `mandate audit export`",
            kept.len()
        )));
    }
    let mut event = mandate_store::AuditEvent::new(
        actor,
        "audit.exported",
        &name,
        serde_json::json!({"subject": subject}),
    );
    if let ProofSubject::Organization(o) = subject {
        // The subject is no agent: name the organization (the person is looked up).
        event.organization = Some(o.clone());
    }
    store.record_audit_event(&event).await?;
    crate::audit_checkpoint::checkpoint_now(hsm, store, cfg).await?;
    let cp = store
        .last_tree_checkpoint()
        .await?
        .ok_or_else(|| CaError::Internal("no audit checkpoint after signing one".into()))?;
    kept.retain(|r| r.seq <= cp.seq);
    let after = kept.last().map_or(0, |r| r.seq);
    kept.extend(gather(store, subject, &serials, after, cp.seq).await?);
    write(store, &cp, subject, &kept, out).await
}

/// The subject's records after `after`, up to `up_to`, oldest first.
async fn gather(
    store: &Store,
    subject: &ProofSubject,
    serials: &[String],
    after: i64,
    up_to: i64,
) -> Result<Vec<AuditRow>, CaError> {
    let mut kept = Vec::new();
    let mut after = after;
    'walk: loop {
        let rows = match subject {
            ProofSubject::Organization(org) => {
                store.organization_audit_events(org, after, PAGE).await?
            }
            ProofSubject::Agent(_) => store.audit_events(after, PAGE).await?,
        };
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in rows {
            if r.seq > up_to {
                break 'walk;
            }
            if belongs(&r, subject, serials) {
                kept.push(r);
            }
        }
    }
    Ok(kept)
}

/// Writes the records (each in the checkpoint's tree) with their proofs as JSON lines: the
/// header, then one record per line; returns how many.
async fn write(
    store: &Store,
    cp: &CheckpointRow,
    subject: &ProofSubject,
    kept: &[AuditRow],
    w: &mut (dyn Write + Send),
) -> Result<u64, CaError> {
    let cas = store.ca_certificates().await?;
    let header = ProofsHeader {
        format: PROOFS_FORMAT.into(),
        subject: subject.clone(),
        checkpoint: SignedCheckpoint::of(store, cp).await?,
        ca_certificates: cas
            .iter()
            .filter(|c| c.role == mandate_store::CaRole::Intermediate)
            .map(|c| {
                Ok(CaCert {
                    id: c.id,
                    pem: crate::x509::cert_pem(&c.der)?,
                })
            })
            .collect::<Result<_, CaError>>()?,
        cross_certificates: store
            .cross_certificates()
            .await?
            .iter()
            .map(|c| crate::x509::cert_pem(&c.der))
            .collect::<Result<_, _>>()?,
        records: kept.len() as u64,
    };
    let io = |e| CaError::io("write the export", e);
    writeln!(w, "{}", line(&header)?).map_err(io)?;
    for page in kept.chunks(PAGE as usize) {
        for rec in prove(store, cp, page).await? {
            writeln!(w, "{}", line(&rec)?).map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    Ok(kept.len() as u64)
}

/// What a check of a proofs file found.
#[derive(Debug, Serialize)]
pub struct ProofsReport {
    /// True if the checkpoint and every record verified.
    pub valid: bool,
    /// Whose records.
    pub subject: ProofSubject,
    /// The log's origin, from the checkpoint.
    pub origin: Option<String>,
    /// Records in the signed tree.
    pub tree_size: Option<u64>,
    /// Records proven to be in it.
    pub records_verified: u64,
    /// Everything wrong, in the order found.
    pub problems: Vec<String>,
}

/// Whether a file is a proofs file (by its first line).
pub fn is_proofs_file(path: &Path) -> bool {
    std::fs::File::open(path)
        .ok()
        .and_then(|f| std::io::BufReader::new(f).lines().next())
        .and_then(Result::ok)
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .is_some_and(|v| v["format"] == PROOFS_FORMAT)
}

/// Checks a proofs file offline against `roots` (DER).
pub fn verify_file(path: &Path, roots: Vec<Vec<u8>>) -> Result<ProofsReport, CaError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CaError::io(format!("open {}", path.display()), e))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let read = |l: Option<std::io::Result<String>>| {
        l.transpose()
            .map_err(|e| CaError::io(format!("read {}", path.display()), e))
    };
    let header: ProofsHeader = read(lines.next())?
        .and_then(|l| serde_json::from_str(&l).ok())
        .ok_or_else(|| {
            CaError::InvalidRequest(format!(
                "{} is not a mandate audit proofs file (first line must name {PROOFS_FORMAT})",
                path.display()
            ))
        })?;
    if roots.is_empty() {
        return Err(CaError::InvalidRequest(
            "give the root certificate (--root root.pem) to check the checkpoint".into(),
        ));
    }
    let trust = SignerTrust {
        roots,
        intermediates: header
            .ca_certificates
            .iter()
            .filter_map(|c| {
                let der = mandate_verify::pem_to_der_chain(&c.pem)
                    .ok()?
                    .into_iter()
                    .next()?;
                Some((c.id, der))
            })
            .collect(),
        cross: header
            .cross_certificates
            .iter()
            .filter_map(|p| mandate_verify::pem_to_der_chain(p).ok()?.into_iter().next())
            .collect(),
    };
    let mut problems = Vec::new();
    let cp = match header.checkpoint.check(&trust) {
        Ok(cp) => Some(cp),
        Err(why) => {
            problems.push(format!("the checkpoint does not verify: {why}"));
            None
        }
    };
    let (mut verified, mut seen) = (0u64, 0u64);
    let mut last_seq = 0;
    for (i, l) in lines.enumerate() {
        let Some(l) = read(Some(l))? else { break };
        seen += 1;
        let rec: ProvedRecord = match serde_json::from_str(&l) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("line {}: not an audit record: {e}", i + 2));
                continue;
            }
        };
        if rec.seq <= last_seq {
            problems.push(format!(
                "audit record {}: records are out of order or repeated",
                rec.seq
            ));
        }
        last_seq = rec.seq;
        if let ProofSubject::Organization(org) = &header.subject
            && rec.organization.as_deref() != Some(org.as_str())
        {
            problems.push(format!(
                "audit record {}: it is not of organization {org}",
                rec.seq
            ));
        }
        if let Some(cp) = &cp {
            match rec.check(cp) {
                Ok(()) => verified += 1,
                Err(why) => problems.push(format!("audit record {}: {why}", rec.seq)),
            }
        }
    }
    if seen != header.records {
        problems.push(format!(
            "the file says it holds {} records but has {seen}: records were cut off or added",
            header.records
        ));
    }
    Ok(ProofsReport {
        valid: problems.is_empty(),
        subject: header.subject,
        origin: cp.as_ref().map(|c| c.origin.clone()),
        tree_size: cp.as_ref().map(|c| c.size),
        records_verified: verified,
        problems,
    })
}

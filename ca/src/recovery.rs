//! `mandate recover`: bringing an older copy of the database (a restored backup) back to what
//! the CA had published, when the HSM's audit anchor shows it is behind.
//!
//! What the copy lost is gone from it, but some of it was published under the CA's keys and can
//! be proven: the newest CRLs and OCSP responses that relying parties, responders and caches
//! hold. The operator gathers them; recovery checks each against the CA's intermediates and
//! re-applies every revocation they state that the copy lacks, first. Then it records the
//! recovery in the audit log (what the anchor says was there, how much is lost, what was
//! re-applied, which revoked serials the copy has never seen), raises the CRL numbers past the
//! published ones, signs a checkpoint and makes it the HSM's anchor. Witnesses see the new
//! history as a fork of the one they followed: that is the truth, and the recovery record says
//! why.

use std::collections::BTreeMap;

use mandate_config::Config;
use mandate_hsm::Hsm;
use mandate_store::{CaRole, Store};
use serde::Serialize;
use serde_json::json;

use crate::CaError;
use crate::audit_anchor::Standing;
use crate::ra::Principal;
use crate::revocation::RevocationReason;

/// One revocation put back.
#[derive(Debug, Serialize)]
pub struct Reapplied {
    /// Serial, hex (JSON: `serial_number`, as everywhere).
    #[serde(rename = "serial_number")]
    pub serial: String,
    /// The reason's name (JSON: `revocation_reason`).
    #[serde(rename = "revocation_reason")]
    pub reason: &'static str,
    /// When it was revoked first, RFC 3339 (the evidence's time).
    pub revoked_at: String,
    /// The file that proved it.
    pub source: String,
}

/// What `mandate recover` did.
#[derive(Debug, Serialize)]
pub struct RecoveryReport {
    /// `current` (nothing to recover: the database reaches the anchor) or `recovered`.
    pub status: &'static str,
    /// Records the HSM's anchor covered.
    pub anchored_records: Option<u64>,
    /// Records the database had.
    pub present_records: u64,
    /// Records lost for good (their content is not in any evidence).
    pub lost_records: u64,
    /// Revocations the evidence proved and the database lacked, now applied.
    pub reapplied: Vec<Reapplied>,
    /// Revocations the evidence proved that the database already had.
    pub already_revoked: usize,
    /// Serials the evidence names as revoked that the database does not know: certificates
    /// issued after the backup. Their certificates are lost from it; treat them as revoked.
    pub unknown_serials: Vec<String>,
    /// The size of the tree the new anchor covers.
    pub checkpoint_tree_size: Option<u64>,
}

/// Strips the sign-padding zero bytes DER may put before a serial.
fn normalised(serial_hex: &str) -> String {
    let mut s = serial_hex.to_ascii_lowercase();
    while s.len() > 2 && s.starts_with("00") {
        s.drain(..2);
    }
    s
}

/// Recovers the database from the evidence (DER CRLs and OCSP responses, named by file).
pub async fn recover(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    evidence: &[(String, Vec<u8>)],
) -> Result<RecoveryReport, CaError> {
    let origin = crate::audit_checkpoint::origin(store, cfg).await?;
    let standing = crate::audit_anchor::standing(hsm, store, &origin).await?;
    let present = store.audit_tree_size().await?;
    let anchored = match &standing {
        Standing::NoAnchor | Standing::Current => {
            return Ok(RecoveryReport {
                status: "current",
                anchored_records: None,
                present_records: present,
                lost_records: 0,
                reapplied: Vec::new(),
                already_revoked: 0,
                unknown_serials: Vec::new(),
                checkpoint_tree_size: None,
            });
        }
        Standing::Behind { anchored, .. } | Standing::Diverged { anchored } => *anchored,
    };
    let (anchor, anchor_note) = crate::audit_anchor::read(hsm)
        .await?
        .ok_or_else(|| CaError::Internal("the anchor went away".into()))?;

    // Every piece of evidence must verify before anything changes.
    let issuers: Vec<mandate_store::CaCertRow> = store
        .ca_certificates()
        .await?
        .into_iter()
        .filter(|c| c.role == CaRole::Intermediate)
        .collect();
    let ders: Vec<Vec<u8>> = issuers.iter().map(|c| c.der.clone()).collect();
    let mut proven: BTreeMap<String, (mandate_verify::ProvenRevocation, String)> = BTreeMap::new();
    let mut crl_numbers: BTreeMap<i64, u64> = BTreeMap::new();
    for (name, der) in evidence {
        let found = mandate_verify::signed_revocations(der, &ders)
            .map_err(|why| CaError::InvalidRequest(format!("{name}: {why}")))?;
        if let Some((i, n)) = found.crl_number
            && let Some(issuer) = issuers.get(i)
        {
            let e = crl_numbers.entry(issuer.id).or_default();
            *e = (*e).max(n);
        }
        for r in found.revocations {
            let key = normalised(&r.serial_hex);
            match proven.get(&key) {
                Some((old, _)) if old.revoked_at <= r.revoked_at => {}
                _ => {
                    proven.insert(key, (r, name.clone()));
                }
            }
        }
    }

    // Revocations first.
    let cli = Principal::cli("cli:recover");
    let mut reapplied = Vec::new();
    let mut already = 0;
    let mut unknown = Vec::new();
    for (serial, (r, source)) in &proven {
        let Some(row) = store.certificate(serial).await? else {
            unknown.push(serial.clone());
            continue;
        };
        let reason = r
            .reason
            .and_then(|c| RevocationReason::from_code(i64::from(c)))
            .unwrap_or(RevocationReason::Unspecified);
        let details = json!({"reason": reason.code(), "reason_name": reason.name(),
            "comment": format!("re-applied by recovery from {source}"),
            "recovered": {"source": source, "revoked_at": crate::rfc3339(r.revoked_at)},
            "by": cli.audit_details()});
        match store
            .revoke_certificate(&row.serial, reason.code(), &cli.key_id, details)
            .await?
        {
            mandate_store::Revocation::Revoked(_) => reapplied.push(Reapplied {
                serial: row.serial.clone(),
                reason: reason.name(),
                revoked_at: crate::rfc3339(r.revoked_at),
                source: source.clone(),
            }),
            mandate_store::Revocation::AlreadyRevoked(_) => already += 1,
        }
    }
    for (issuer_id, n) in &crl_numbers {
        store
            .raise_crl_number(*issuer_id, i64::try_from(*n).unwrap_or(i64::MAX))
            .await?;
    }

    // Then the record of the recovery, a checkpoint over it, and the new anchor.
    let lost = anchored.saturating_sub(present);
    let event = mandate_store::AuditEvent::new(
        "cli:recover",
        "audit.recovered",
        &origin,
        json!({
            "anchor": {"tree_size": anchor.size, "root_hash": crate::audit_note::b64(&anchor.root),
                       "note": anchor_note},
            "standing": match standing { Standing::Behind { .. } => "behind", _ => "diverged" },
            "present_records": present,
            "lost_records": lost,
            "reapplied": reapplied.iter().map(|r| json!({"serial_number": r.serial, "revocation_reason": r.reason,
                "revoked_at": r.revoked_at, "source": r.source})).collect::<Vec<_>>(),
            "already_revoked": already,
            "unknown_serials": unknown,
            "evidence": evidence.iter().map(|(n, d)| json!({"file": n,
                "sha256": crate::x509::sha256_hex(d)})).collect::<Vec<_>>(),
            "crl_numbers_raised_to": crl_numbers.iter().map(|(i, n)| json!({"issuer_id": i, "number": n})).collect::<Vec<_>>(),
        }),
    );
    store.record_audit_event(&event).await?;
    let cp = crate::audit_checkpoint::checkpoint_recovered(hsm, store, cfg)
        .await?
        .or(store.last_tree_checkpoint().await?)
        .ok_or_else(|| CaError::Internal("no checkpoint after recovery".into()))?;
    let note = cp
        .note
        .as_deref()
        .ok_or_else(|| CaError::Internal("no checkpoint note after recovery".into()))?;
    crate::audit_anchor::replace(hsm, note).await?;
    store.clear_serving_refusal().await?;
    tracing::warn!(
        lost,
        reapplied = reapplied.len(),
        unknown = unknown.len(),
        "database recovered from an older copy; the HSM's audit anchor now follows it"
    );
    Ok(RecoveryReport {
        status: "recovered",
        anchored_records: Some(anchored),
        present_records: present,
        lost_records: lost,
        reapplied,
        already_revoked: already,
        unknown_serials: unknown,
        checkpoint_tree_size: u64::try_from(cp.seq).ok(),
    })
}

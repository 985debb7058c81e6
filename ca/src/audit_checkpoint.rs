//! Extends the audit tree behind the records and signs checkpoints of it (C2SP signed notes, see
//! `audit_note`) with a dedicated P-256 key in the HSM, certified by the intermediate for audit
//! signing only: after `audit.checkpoint_records` new records or `audit.checkpoint_secs` seconds,
//! whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mandate_config::Config;
use mandate_hsm::{Hsm, KeyKind, SignatureAlgorithm};
use mandate_store::{AuditEvent, AuditSignerRow, CaRole, CheckpointRow, Store, checkpoint_now_ms};
use serde_json::json;

use crate::CaError;

const KEY: KeyKind = KeyKind::EcP256;
/// How often the checkpointer looks at the log.
const TICK: Duration = Duration::from_millis(500);
/// Audit signer certificates last this long (never beyond the intermediate); a new one is made
/// when half is gone.
const SIGNER_DAYS: u32 = 365;

/// The current signer, made (key in the HSM, certificate from the active intermediate) if there
/// is none or it is past half its life.
async fn signer(hsm: &Hsm, store: &Store, cfg: &Config) -> Result<AuditSignerRow, CaError> {
    let now = mandate_store::now_unix();
    if let Some(s) = store.audit_signers().await?.pop()
        && now < s.not_before + (s.not_after - s.not_before) / 2
    {
        return Ok(s);
    }
    let issuer = store
        .active_ca(CaRole::Intermediate)
        .await?
        .ok_or(CaError::NotInitialised)?;
    let (key, cert) = crate::delegated::issue(
        hsm,
        cfg,
        &issuer,
        KEY,
        &format!("mandate-audit-{now}"),
        "Audit Checkpoint Signer",
        SIGNER_DAYS,
        crate::x509::audit_signer_extensions,
    )
    .await?;
    let mut row = AuditSignerRow {
        id: 0,
        key_id: key.id.to_string(),
        key_kind: KEY.to_string(),
        issuer_id: issuer.id,
        der: cert.der,
        not_before: cert.not_before,
        not_after: cert.not_after,
    };
    row.id = store
        .insert_audit_signer(
            &row,
            &AuditEvent::new(
                "system",
                "audit_signer.issued",
                &cert.serial_hex,
                json!({"key_id": row.key_id, "not_after": crate::rfc3339(row.not_after)}),
            )
            .with_fingerprint(crate::x509::sha256_hex(&row.der)),
        )
        .await?;
    tracing::info!(serial = %cert.serial_hex, "audit checkpoint signer issued");
    Ok(row)
}

/// Records made leaves per write.
const EXTEND_BATCH: u32 = 5000;

/// The log's origin: `audit.origin`, else one derived from the CA's first root certificate.
pub async fn origin(store: &Store, cfg: &Config) -> Result<String, CaError> {
    if let Some(o) = &cfg.audit.origin {
        return Ok(o.clone());
    }
    let first_root = store
        .ca_certificates()
        .await?
        .into_iter()
        .filter(|c| c.role == CaRole::Root)
        .min_by_key(|c| c.id)
        .ok_or(CaError::NotInitialised)?;
    let fp = first_root.sha256.get(..16).unwrap_or(&first_root.sha256);
    Ok(format!("mandate-audit/{fp}"))
}

/// Makes every record a leaf of the audit tree; returns the tree's size.
pub async fn extend_tree(store: &Store) -> Result<u64, CaError> {
    let tip = store.audit_tip().await?.map_or(0, |(s, _)| s);
    let tip = u64::try_from(tip).unwrap_or(0);
    let mut size = store.audit_tree_size().await?;
    while size < tip {
        let grown = store.extend_audit_tree(EXTEND_BATCH).await?;
        if grown == size {
            break;
        }
        size = grown;
    }
    Ok(size)
}

/// Extends the tree to every record and signs a checkpoint of it now, if the newest checkpoint
/// does not cover it yet; returns it. Refuses (`RolledBack`) on a database behind the HSM's
/// anchor.
pub async fn checkpoint_now(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
) -> Result<Option<CheckpointRow>, CaError> {
    sign(hsm, store, cfg, true).await
}

/// Signs a checkpoint of every record on a database the operator recovers (see `recovery`):
/// behind the anchor by design, which the anchor then follows.
pub async fn checkpoint_recovered(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
) -> Result<Option<CheckpointRow>, CaError> {
    sign(hsm, store, cfg, false).await
}

async fn sign(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    check_anchor: bool,
) -> Result<Option<CheckpointRow>, CaError> {
    let size = extend_tree(store).await?;
    let Ok(seq) = i64::try_from(size) else {
        return Err(CaError::Internal("audit tree too large".into()));
    };
    if size == 0 {
        return Ok(None);
    }
    if store
        .last_tree_checkpoint()
        .await?
        .is_some_and(|c| c.seq >= seq)
    {
        return Ok(None);
    }
    let origin = origin(store, cfg).await?;
    // Never sign on top of an older copy of the database (restored under a running node).
    if check_anchor
        && let Some(problem) = crate::audit_anchor::standing(hsm, store, &origin)
            .await?
            .problem()
    {
        return Err(CaError::RolledBack(problem));
    }
    let root = store.audit_tree_root(size).await?;
    let hash = store
        .audit_events(seq - 1, 1)
        .await?
        .pop()
        .and_then(|r| hex::decode(r.hash).ok())
        .ok_or_else(|| CaError::Internal(format!("audit record {seq} is missing")))?;
    let signer = signer(hsm, store, cfg).await?;
    let key_id = signer
        .key_id
        .parse()
        .map_err(|_| CaError::Internal(format!("stored key id {:?}", signer.key_id)))?;
    let text = crate::audit_note::checkpoint_text(&origin, size, root)?;
    let signed_at_ms = checkpoint_now_ms();
    let signature = hsm
        .sign(&key_id, SignatureAlgorithm::EcdsaSha256, &text)
        .await?;
    let note_key = crate::audit_note::key_id(&signer.der).map_err(CaError::Internal)?;
    let note = crate::audit_note::assemble(&text, &origin, note_key, signature.clone())?;
    let mut cp = CheckpointRow {
        id: 0,
        seq,
        hash,
        signed_at_ms,
        signer_id: signer.id,
        signature,
        note: Some(note),
        root: Some(root.0.to_vec()),
    };
    cp.id = store.insert_checkpoint(&cp).await?;
    tracing::debug!(checkpoint = cp.id, size, "audit checkpoint signed");
    if check_anchor
        && let Some(note) = &cp.note
        && let Err(e) = crate::audit_anchor::advance(hsm, note).await
    {
        tracing::error!(error = %e, size, "audit checkpoint not anchored in the HSM; retried with the next one");
    }
    Ok(Some(cp))
}

/// Starts the checkpointer: it extends the tree behind the records, and signs a checkpoint
/// when enough records or time have gone by. `rolled_back` is told, once, if the database turns
/// out to be behind the HSM's anchor (restored under the running node).
pub fn start(
    hsm: Hsm,
    store: Store,
    cfg: Arc<Config>,
    rolled_back: Box<dyn Fn(String) + Send + Sync>,
) {
    tokio::spawn(async move {
        let every = Duration::from_secs(u64::from(cfg.audit.checkpoint_secs));
        let records = i64::from(cfg.audit.checkpoint_records);
        let mut last_signed = Instant::now();
        loop {
            tokio::time::sleep(TICK).await;
            let due = async {
                let size = extend_tree(&store).await?;
                let size = i64::try_from(size).unwrap_or(i64::MAX);
                let covered = store.last_tree_checkpoint().await?.map_or(0, |c| c.seq);
                Ok::<bool, CaError>(
                    size > covered && (size - covered >= records || last_signed.elapsed() >= every),
                )
            };
            match due.await {
                Ok(true) => match checkpoint_now(&hsm, &store, &cfg).await {
                    Ok(_) => last_signed = Instant::now(),
                    Err(CaError::RolledBack(problem)) => {
                        tracing::error!(%problem, "refusing to serve: the database is behind the audit anchor in the HSM");
                        if let Err(e) = store.refuse_serving(&problem).await {
                            tracing::error!(error = %e, "the refusal could not be marked for the OCSP responders");
                        }
                        rolled_back(problem);
                        return;
                    }
                    Err(e) => tracing::error!(error = %e, "audit checkpoint not signed; retrying"),
                },
                Ok(false) => {}
                // The node is stopping.
                Err(CaError::Store(e)) if e.is_closed() => return,
                Err(e) => tracing::error!(error = %e, "audit tree not extended; retrying"),
            }
        }
    });
}

//! Rollback detection: the newest signed audit checkpoint, kept in the HSM token as a data
//! object, where restoring an older copy of the database cannot take it back.
//!
//! Every checkpoint the daemon signs is also written to the token (after it is stored). At start,
//! and before every checkpoint, the audit tree in the database must reach the anchored size and
//! have the anchored root there. A database behind it is an older copy: revocations, approvals and
//! records made since are gone from it, and serving from it would answer `good` for revoked
//! certificates. The node then refuses to serve, naming what was lost, until an operator runs
//! `mandate recover` (see `recovery`).

use mandate_hsm::Hsm;
use mandate_store::Store;

use crate::CaError;
use crate::audit_note::{OpenedCheckpoint, b64};

/// The application name of the anchor's data objects.
const APPLICATION: &str = "mandate-audit-anchor";

/// The anchored checkpoint: the newest of the token's anchor objects.
pub async fn read(hsm: &Hsm) -> Result<Option<(OpenedCheckpoint, String)>, CaError> {
    let mut best: Option<(OpenedCheckpoint, String)> = None;
    for (label, value) in hsm.data_objects(APPLICATION).await? {
        let Ok(note) = String::from_utf8(value) else {
            tracing::warn!(%label, "an audit anchor in the HSM is not text; ignored");
            continue;
        };
        match crate::audit_note::open(&note) {
            Ok(cp) if best.as_ref().is_none_or(|(b, _)| cp.size > b.size) => {
                best = Some((cp, note))
            }
            Ok(_) => {}
            Err(why) => {
                tracing::warn!(%label, %why, "an audit anchor in the HSM is unreadable; ignored")
            }
        }
    }
    Ok(best)
}

fn label(size: u64) -> String {
    format!("mandate-audit-anchor-{size:020}")
}

/// Anchors a newly signed checkpoint (a larger tree than any anchored: another node may have
/// anchored a larger one meanwhile, which stays), then drops the smaller anchors.
pub async fn advance(hsm: &Hsm, note: &str) -> Result<(), CaError> {
    let cp = crate::audit_note::open(note).map_err(CaError::Internal)?;
    let existing = hsm.data_objects(APPLICATION).await?;
    let sizes: Vec<(String, Option<u64>)> = existing
        .iter()
        .map(|(l, v)| {
            let size = std::str::from_utf8(v)
                .ok()
                .and_then(|n| crate::audit_note::open(n).ok())
                .map(|c| c.size);
            (l.clone(), size)
        })
        .collect();
    if sizes.iter().any(|(_, s)| s.is_some_and(|s| s >= cp.size)) {
        return Ok(());
    }
    hsm.put_data(APPLICATION, &label(cp.size), note.as_bytes())
        .await?;
    let older: Vec<String> = sizes.into_iter().map(|(l, _)| l).collect();
    hsm.destroy_data(APPLICATION, &older).await?;
    Ok(())
}

/// Replaces every anchor by this checkpoint's (after a recovery: the history before it is gone).
pub async fn replace(hsm: &Hsm, note: &str) -> Result<(), CaError> {
    let cp = crate::audit_note::open(note).map_err(CaError::Internal)?;
    let old: Vec<String> = hsm
        .data_objects(APPLICATION)
        .await?
        .into_iter()
        .map(|(l, _)| l)
        .filter(|l| *l != label(cp.size))
        .collect();
    hsm.put_data(APPLICATION, &label(cp.size), note.as_bytes())
        .await?;
    hsm.destroy_data(APPLICATION, &old).await?;
    Ok(())
}

/// How the database's audit tree stands against the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// No anchor yet (a new CA, or a token from before anchors): nothing to compare.
    NoAnchor,
    /// The database reaches the anchor with the same root.
    Current,
    /// The database has fewer records than the anchor: an older copy.
    Behind {
        /// Records the anchor covers.
        anchored: u64,
        /// Records in the database.
        present: u64,
        /// The anchored root, base64.
        root: String,
    },
    /// The database has as many records or more, but another history.
    Diverged {
        /// Records the anchor covers.
        anchored: u64,
    },
}

impl Standing {
    /// What people are told, or `None` when all is well.
    pub fn problem(&self) -> Option<String> {
        match self {
            Standing::NoAnchor | Standing::Current => None,
            Standing::Behind {
                anchored, present, ..
            } => Some(format!(
                "the database is an older copy: its audit log has {present} records, but the HSM anchors a signed log of {anchored}; {} records and whatever they recorded (revocations, approvals, kill switches) are missing from it. Refusing to serve; see `mandate recover` in docs/OPERATIONS.md",
                anchored - present
            )),
            Standing::Diverged { anchored } => Some(format!(
                "the database's audit log is another history than the one the HSM anchors (the trees differ at {anchored} records): it is not this CA's current database. Refusing to serve; see `mandate recover` in docs/OPERATIONS.md"
            )),
        }
    }
}

/// Makes every record a leaf, then compares the tree with the anchor.
pub async fn standing(hsm: &Hsm, store: &Store, origin: &str) -> Result<Standing, CaError> {
    let Some((anchor, _)) = read(hsm).await? else {
        return Ok(Standing::NoAnchor);
    };
    // A record changed behind the database's back stops the tree there (the checkpointer keeps
    // saying so): compare what the tree does cover.
    let present = match crate::audit_checkpoint::extend_tree(store).await {
        Ok(n) => n,
        Err(CaError::Store(e)) if !e.is_unavailable() => {
            tracing::error!(error = %e, "the audit tree cannot grow past a broken record");
            store.audit_tree_size().await?
        }
        Err(e) => return Err(e),
    };
    if anchor.origin != origin {
        return Ok(Standing::Diverged {
            anchored: anchor.size,
        });
    }
    if present < anchor.size {
        return Ok(Standing::Behind {
            anchored: anchor.size,
            present,
            root: b64(&anchor.root),
        });
    }
    if store.audit_tree_root(anchor.size).await? != anchor.root {
        return Ok(Standing::Diverged {
            anchored: anchor.size,
        });
    }
    Ok(Standing::Current)
}

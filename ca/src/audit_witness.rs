//! `mandate audit witness`: watching the CA's audit log from outside.
//!
//! A witness keeps the last checkpoint it accepted in a state file. Each run fetches the newest
//! checkpoint, checks its signature against the root certificate, and accepts it only if the log
//! it names extends the one it saw (an RFC 6962 consistency proof from the CA). A log that shrank,
//! or a tree of the same size with another root, or a proof that does not hold, is a rewritten
//! history: the run fails loudly and keeps the old state, so every later run fails too until a
//! person looks.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tlog_tiles::tlog;

use crate::CaError;
use crate::audit_note::hash_b64;
use crate::audit_proof::PublishedCheckpoint;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read.
const MAX_BODY: usize = 1 << 20;

/// What a witness remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WitnessState {
    /// The log's origin.
    pub origin: String,
    /// Records in the tree last accepted.
    pub tree_size: u64,
    /// Its root, base64.
    pub root_hash: String,
    /// The signed note last accepted, as evidence.
    pub note: String,
    /// When it was accepted, RFC 3339.
    pub accepted_at: String,
}

/// What one run found.
#[derive(Debug, Serialize)]
pub struct WitnessReport {
    /// `first` (nothing seen before), `unchanged` or `extended`.
    pub status: &'static str,
    /// The log's origin.
    pub origin: String,
    /// The size seen before, if any.
    pub previous_size: Option<u64>,
    /// The size now.
    pub tree_size: u64,
    /// The root now, base64.
    pub root_hash: String,
}

async fn get(client: &reqwest::Client, url: &str, json: bool) -> Result<Vec<u8>, CaError> {
    let mut req = client.get(url);
    if json {
        req = req.header(reqwest::header::ACCEPT, "application/json");
    }
    let resp = req
        .send()
        .await
        .map_err(|e| CaError::Witness(format!("GET {url}: {e}")))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| CaError::Witness(format!("GET {url}: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(CaError::InvalidRequest(format!(
            "GET {url}: answer too large"
        )));
    }
    if !status.is_success() {
        return Err(CaError::Witness(format!(
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body.to_vec())
}

/// One witness run against the CA at `base` (its public URL), with `state` as memory.
pub async fn witness(
    base: &str,
    state: &Path,
    roots: &[Vec<u8>],
) -> Result<WitnessReport, CaError> {
    if roots.is_empty() {
        return Err(CaError::InvalidRequest(
            "give the root certificate (--root root.pem) to check the checkpoints".into(),
        ));
    }
    let base = base.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CaError::Internal(e.to_string()))?;
    let body = get(&client, &format!("{base}/v1/audit/checkpoint"), true).await?;
    let published: PublishedCheckpoint = serde_json::from_slice(&body).map_err(|e| {
        CaError::InvalidRequest(format!("the CA's checkpoint is not readable: {e}"))
    })?;
    let new = published.check(roots).map_err(|why| {
        CaError::Witness(format!(
            "the CA's newest checkpoint does not verify against the root: {why}"
        ))
    })?;
    let before: Option<WitnessState> = match std::fs::read(state) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| {
            CaError::InvalidRequest(format!("{} is not a witness state: {e}", state.display()))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(CaError::io(format!("read {}", state.display()), e)),
    };
    let root_now = crate::audit_note::b64(&new.root);
    let status = match &before {
        None => "first",
        Some(old) => {
            if old.origin != new.origin {
                return Err(CaError::Witness(format!(
                    "ANOTHER LOG: the state is of {:?}, the CA now answers as {:?}",
                    old.origin, new.origin
                )));
            }
            let old_root = hash_b64(&old.root_hash).map_err(CaError::InvalidRequest)?;
            if new.size < old.tree_size {
                return Err(CaError::Witness(format!(
                    "ROLLBACK: the log shrank from {} to {} records since {} (a restored or rewritten history)",
                    old.tree_size, new.size, old.accepted_at
                )));
            }
            if new.size == old.tree_size {
                if new.root != old_root {
                    return Err(CaError::Witness(format!(
                        "FORK: the log of {} records has another root than the one seen at {}: its history was rewritten",
                        new.size, old.accepted_at
                    )));
                }
                "unchanged"
            } else {
                let url = format!(
                    "{base}/v1/audit/consistency?from={}&to={}",
                    old.tree_size, new.size
                );
                let body = get(&client, &url, true).await?;
                let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    CaError::InvalidRequest(format!("the consistency proof is not readable: {e}"))
                })?;
                let proof = v["proof"]
                    .as_array()
                    .ok_or_else(|| CaError::InvalidRequest("no proof in the answer".into()))?
                    .iter()
                    .take(64)
                    .map(|h| hash_b64(h.as_str().unwrap_or_default()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(CaError::InvalidRequest)?;
                tlog::check_tree(&proof, new.size, new.root, old.tree_size, old_root).map_err(
                    |_| {
                        CaError::Witness(format!(
                            "FORK: the log of {} records does not extend the log of {} records seen at {}: its history was rewritten",
                            new.size, old.tree_size, old.accepted_at
                        ))
                    },
                )?;
                "extended"
            }
        }
    };
    let next = WitnessState {
        origin: new.origin.clone(),
        tree_size: new.size,
        root_hash: root_now.clone(),
        note: published.signed.note.clone(),
        accepted_at: crate::rfc3339(mandate_store::now_unix()),
    };
    let text = serde_json::to_vec_pretty(&next).map_err(|e| CaError::Internal(e.to_string()))?;
    let tmp = state.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| CaError::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, state)
        .map_err(|e| CaError::io(format!("replace {}", state.display()), e))?;
    Ok(WitnessReport {
        status,
        origin: new.origin,
        previous_size: before.map(|b| b.tree_size),
        tree_size: new.size,
        root_hash: root_now,
    })
}

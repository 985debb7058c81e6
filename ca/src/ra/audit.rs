//! Reading the audit log: CA staff read all of it; an organization's auditors and compliance
//! officers read the records that concern their organization.

use std::collections::BTreeMap;

use mandate_config::Config;
use mandate_hsm::Hsm;
use mandate_store::{AuditRow, Store};
use tlog_tiles::tlog::Hash;

use super::Principal;
use super::roles::AUDIT_READERS;
use crate::CaError;

/// Records after `after`, oldest first, at most `limit`: the whole log for CA staff, the
/// caller's organization's records otherwise; with the names of the people they name.
pub async fn list(
    store: &Store,
    p: &Principal,
    after: i64,
    limit: i64,
) -> Result<(Vec<AuditRow>, BTreeMap<String, String>), CaError> {
    p.require(AUDIT_READERS)?;
    let rows = match p.org_filter() {
        None => store.audit_events(after, limit).await?,
        Some(org) => store.organization_audit_events(org, after, limit).await?,
    };
    let mut names = BTreeMap::new();
    for id in rows.iter().filter_map(|r| r.person.as_deref()) {
        if !names.contains_key(id)
            && let Some(person) = store.person(id).await?
        {
            names.insert(id.to_owned(), person.name);
        }
    }
    Ok((rows, names))
}

/// The newest signed checkpoint of the audit tree, published to anyone: a tree size and a root,
/// nothing about any record.
pub async fn latest_checkpoint(
    store: &Store,
) -> Result<crate::audit_proof::PublishedCheckpoint, CaError> {
    let cp = store
        .last_tree_checkpoint()
        .await?
        .ok_or_else(|| CaError::NotFound("no audit checkpoint has been signed yet".into()))?;
    crate::audit_proof::PublishedCheckpoint::of(store, &cp).await
}

/// The consistency proof from the tree of `from` records to the tree of `to` (both at most the
/// newest signed checkpoint's size), for anyone: hashes of salted subtrees only.
pub async fn consistency(store: &Store, from: u64, to: u64) -> Result<Vec<Hash>, CaError> {
    let signed = store
        .last_tree_checkpoint()
        .await?
        .map_or(0, |c| u64::try_from(c.seq).unwrap_or(0));
    if from == 0 || from > to {
        return Err(CaError::InvalidRequest(format!(
            "from ({from}) must be at least 1 and at most to ({to})"
        )));
    }
    if to > signed {
        return Err(CaError::InvalidRequest(format!(
            "to ({to}) is beyond the newest signed checkpoint ({signed} records)"
        )));
    }
    Ok(store.audit_consistency_proof(from, to).await?)
}

/// Most records one export over HTTP holds (the CLI has no bound).
pub const HTTP_EXPORT_MAX: usize = 200_000;

/// One organization's or one agent's audit records with their proofs to a checkpoint signed
/// now (JSON lines): for the organization's own auditors and compliance officers, and CA staff.
/// Another organization's subject is not found, as a missing one; a refusal records nothing.
pub async fn export(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    p: &Principal,
    subject: crate::audit_proof::ProofSubject,
) -> Result<Vec<u8>, CaError> {
    use crate::audit_proof::ProofSubject;
    p.require(AUDIT_READERS)?;
    match &subject {
        ProofSubject::Organization(o) => {
            if p.org_filter().is_some_and(|mine| mine != o) {
                return Err(CaError::NotFound(format!("organization {o}")));
            }
        }
        ProofSubject::Agent(a) => {
            super::tenant::agent(store, p, AUDIT_READERS, a).await?;
        }
    }
    let mut out = Vec::new();
    crate::audit_proof::export_now(
        hsm,
        store,
        cfg,
        &subject,
        &p.key_id,
        Some(HTTP_EXPORT_MAX),
        &mut out,
    )
    .await?;
    Ok(out)
}

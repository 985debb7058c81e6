//! Reading the audit log: CA staff read all of it; an organization's auditors and compliance
//! officers read the records that concern their organization.

use std::collections::BTreeMap;

use mandate_store::{AuditRow, Store};

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

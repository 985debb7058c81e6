//! Reading the audit log: CA staff read all of it; an organization's auditors and compliance
//! officers read the records that concern their organization.

use mandate_store::{AuditRow, Store};

use super::Principal;
use super::roles::AUDIT_READERS;
use crate::CaError;

/// Records after `after`, oldest first, at most `limit`: the whole log for CA staff, the
/// caller's organization's records otherwise.
pub async fn list(
    store: &Store,
    p: &Principal,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, CaError> {
    p.require(AUDIT_READERS)?;
    Ok(match p.org_filter() {
        None => store.audit_events(after, limit).await?,
        Some(org) => store.organization_audit_events(org, after, limit).await?,
    })
}

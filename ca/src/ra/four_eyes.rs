//! The second pair of eyes: an organization with `approvals_required = 2` needs two different
//! compliance people for a baseline, the lifting of a suspension and the resolution of an
//! incident (mandate versions count theirs in the store's `approvals`). The first approval is
//! recorded and answered as awaiting; the second is the action itself.

use mandate_store::{AuditEvent, OrganizationRow, Store, StoreError};
use serde_json::json;

use super::Principal;
use crate::CaError;

/// Where a decision that may need a second person stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// Enough people approved: act.
    Reached,
    /// Recorded; another person must approve too.
    Awaiting {
        /// Approvals so far.
        recorded: i64,
        /// Approvals needed.
        required: i64,
    },
}

/// Counts `p`'s approval of `kind`/`reference` (`subject`: the agent, for the audit record)
/// toward `org`'s quorum. The same person twice is a conflict.
pub async fn approve(
    store: &Store,
    p: &Principal,
    org: &OrganizationRow,
    kind: &str,
    reference: &str,
    subject: &str,
    comment: Option<&str>,
) -> Result<Quorum, CaError> {
    let required = org.approvals_required;
    if required < 2 {
        return Ok(Quorum::Reached);
    }
    let Some(person) = p.person_id() else {
        return Err(CaError::Forbidden(
            "approvals are given by a named compliance person".into(),
        ));
    };
    let so_far = store.approvals_of(kind, reference).await?;
    let already = || {
        CaError::Conflict(format!(
            "{person} already approved this {kind}; another compliance person must approve it"
        ))
    };
    if so_far.iter().any(|s| s == person) {
        return Err(already());
    }
    if i64::try_from(so_far.len()).unwrap_or(i64::MAX) + 1 >= required {
        return Ok(Quorum::Reached);
    }
    let mut details = json!({"kind": kind, "ref": reference, "comment": comment,
                             "approvals_required": required});
    details["by"] = p.audit_details();
    let event = AuditEvent::new(
        &p.key_id,
        format!("{kind}.approval_recorded"),
        subject,
        details,
    );
    match store
        .record_approval(kind, reference, person, &p.key_id, comment, &event)
        .await
    {
        // Another person's approval landed meanwhile: this one completes the pair.
        Ok(n) if n >= required => Ok(Quorum::Reached),
        Ok(n) => Ok(Quorum::Awaiting {
            recorded: n,
            required,
        }),
        Err(StoreError::Conflict(_)) => Err(already()),
        Err(e) => Err(e.into()),
    }
}

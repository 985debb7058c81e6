//! Revocation by people and agents: one certificate, or the kill switch for an agent or a
//! whole organization. The automatic kill switch of the scoring loop acts as the CA itself
//! (`crate::revocation::pull`); these are the decisions of a principal.

use mandate_policy::TextKind;
use mandate_store::{CertificateRow, KillScope, Revocation, Role, Store};
use serde_json::json;

use super::roles::REVOKERS;
use super::{Principal, tenant};
use crate::CaError;
use crate::revocation::{KillSwitchView, RevocationReason};

/// Revokes one certificate (`serial`, lowercase hex): operator, compliance or admin of its
/// organization, or the agent's own key with a reason open to agents. Idempotent: returns the
/// row and whether this call revoked it. `channel` names the adapter for the metrics.
pub async fn revoke_certificate(
    store: &Store,
    p: &Principal,
    serial: &str,
    reason: RevocationReason,
    comment: Option<&str>,
    channel: &'static str,
) -> Result<(CertificateRow, bool), CaError> {
    if p.role != Role::Agent {
        p.require(REVOKERS)?;
    }
    let comment = super::organizations::check_note("comment", comment, 500)?;
    // Another organization's (or agent's) certificate answers as a missing one.
    tenant::certificate(store, p, serial).await?;
    if p.role == Role::Agent && !reason.open_to_agents() {
        return Err(CaError::Forbidden(format!(
            "an agent may not revoke with reason {}; ask its operator",
            reason.name()
        )));
    }
    let mut details =
        json!({"reason": reason.code(), "reason_name": reason.name(), "comment": comment});
    details["by"] = p.audit_details();
    let outcome = store
        .revoke_certificate(serial, reason.code(), &p.key_id, details)
        .await?;
    Ok(match outcome {
        Revocation::Revoked(row) => {
            crate::metrics::METRICS.revocations.inc(&[channel]);
            tracing::info!(serial = %serial, reason = reason.name(), channel, "certificate revoked");
            (row, true)
        }
        Revocation::AlreadyRevoked(row) => (row, false),
    })
}

/// Pulls the kill switch on an agent or a whole organization (operator, compliance or admin of
/// that organization; CA staff: any). The reason (1 to 500 characters) is recorded.
pub async fn kill(
    store: &Store,
    p: &Principal,
    scope: KillScope,
    target: &str,
    reason: &str,
) -> Result<KillSwitchView, CaError> {
    p.require(REVOKERS)?;
    match scope {
        KillScope::Agent => {
            tenant::visible_agent(store, p, target).await?;
        }
        KillScope::Operator => {
            tenant::organization(store, p, target).await?;
        }
    }
    if reason.trim().is_empty() {
        return Err(CaError::InvalidRequest(
            "reason is required: say why the kill switch is pulled".into(),
        ));
    }
    let reason = super::organizations::check_text("reason", reason, 500, TextKind::Note)?;
    crate::revocation::pull(store, scope, target, &p.key_id, &reason, None).await
}

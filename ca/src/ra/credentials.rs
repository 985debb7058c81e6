//! Credentials an organization hands out: ACME external account binding for its agents, and
//! dashboard sessions for its people.

use mandate_store::{AuditEvent, Role, Store};
use serde_json::json;

use super::{Principal, tenant};
use crate::CaError;
use crate::eab::EabCredentials;

/// Who may make EAB credentials for an agent.
pub const EAB_MAKERS: &[Role] = &[Role::Operator, Role::Admin];

/// Single-use ACME credentials for the agent `agent_id` (an operator of its organization, or
/// CA staff's admin; the CLI).
pub async fn eab(
    hsm: &mandate_hsm::Hsm,
    store: &Store,
    p: &Principal,
    agent_id: &str,
) -> Result<EabCredentials, CaError> {
    tenant::agent(store, p, EAB_MAKERS, agent_id).await?;
    crate::eab::create(hsm, store, agent_id, &p.key_id).await
}

/// Opens a dashboard session for `p` (a person; agents have none): only the SHA-256 of its
/// token is stored, with the audit record of the sign-in.
pub async fn open_session(
    store: &Store,
    p: &Principal,
    token_hash: &[u8],
    expires: i64,
) -> Result<(), CaError> {
    if !p.role.signs_in() {
        return Err(CaError::Forbidden(
            "agent and market-data keys cannot sign in to the dashboard".into(),
        ));
    }
    let mut details = json!({"role": p.role.as_str(), "expires_at": crate::rfc3339(expires)});
    details["by"] = p.audit_details();
    let event = AuditEvent::new(&p.key_id, "dashboard.signed_in", &p.key_id, details);
    Ok(store
        .open_dashboard_session(token_hash, &p.key_id, expires, &event)
        .await?)
}

/// Ends a dashboard session.
pub async fn close_session(store: &Store, token_hash: &[u8]) -> Result<(), CaError> {
    Ok(store.close_dashboard_session(token_hash).await?)
}

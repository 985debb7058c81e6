//! The tenant rule: a principal outside CA staff sees and acts only on its organization's
//! objects. Another organization's object answers exactly as a missing one (`not found`), so
//! no caller learns which ids exist elsewhere. Role checks come first (403 says nothing about
//! existence), the tenant check second.

use mandate_store::{AgentRow, CertificateRow, IncidentRow, Role, Store, WebhookRow};

use super::Principal;
use crate::CaError;

/// The agent `id`, if `p` has one of `roles` and may see it.
pub async fn agent(
    store: &Store,
    p: &Principal,
    roles: &[Role],
    id: &str,
) -> Result<AgentRow, CaError> {
    p.require(roles)?;
    visible_agent(store, p, id).await
}

/// The agent `id`, if `p` has one of `roles` or is that agent's own key, and may see it.
pub async fn agent_or_own(
    store: &Store,
    p: &Principal,
    roles: &[Role],
    id: &str,
) -> Result<AgentRow, CaError> {
    p.require_or_own_agent(roles, id)?;
    visible_agent(store, p, id).await
}

/// Agents' organizations as read from the store. An agent never changes organization and is
/// never deleted, so an entry never goes stale; an agent not found is not kept (it may be
/// registered a moment later, on this node or another). The pre-trade and event paths, which
/// run thousands of times a second, check their agent's organization here instead of reading
/// the agent's row each time (the read was 8% of the daemon's CPU reporting one event per
/// request, docs/BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct AgentOrganizations(std::sync::RwLock<std::collections::HashMap<String, String>>);

impl AgentOrganizations {
    /// The organization of agent `id`, or `None` when there is no such agent.
    async fn of(&self, store: &Store, id: &str) -> Result<Option<String>, CaError> {
        if let Some(org) = self
            .0
            .read()
            .map_err(|_| CaError::Internal("agent organizations poisoned".into()))?
            .get(id)
        {
            return Ok(Some(org.clone()));
        }
        let Some(agent) = store.agent(id).await? else {
            return Ok(None);
        };
        self.0
            .write()
            .map_err(|_| CaError::Internal("agent organizations poisoned".into()))?
            .insert(agent.id, agent.organization.clone());
        Ok(Some(agent.organization))
    }
}

/// Refuses unless `p` has one of `roles` or is agent `id`'s own key, and may see agent `id`:
/// [`agent_or_own`] without the agent's row, for the pre-trade path.
pub async fn check_agent_or_own(
    node: &crate::node::Node,
    p: &Principal,
    roles: &[Role],
    id: &str,
) -> Result<(), CaError> {
    p.require_or_own_agent(roles, id)?;
    check_visible_agent(node, p, id).await
}

/// Refuses unless `p` may see agent `id` (no role check): [`visible_agent`] without the
/// agent's row, for the event path.
pub async fn check_visible_agent(
    node: &crate::node::Node,
    p: &Principal,
    id: &str,
) -> Result<(), CaError> {
    let visible = match node.agent_organizations.of(&node.store, id).await? {
        Some(_) if p.role == Role::Agent => p.is_agent(id),
        Some(org) => p.sees(&org),
        None => false,
    };
    if visible {
        Ok(())
    } else {
        Err(CaError::NotFound(format!("agent {id}")))
    }
}

/// The agent `id` with its organization's certificate limits, if `p` has one of `roles` or is
/// that agent's own key, and may see it (one read).
pub async fn agent_or_own_with_limits(
    store: &Store,
    p: &Principal,
    roles: &[Role],
    id: &str,
) -> Result<(AgentRow, mandate_store::CertificateLimits), CaError> {
    p.require_or_own_agent(roles, id)?;
    match store.agent_with_limits(id).await? {
        Some((a, l)) if agent_visible(p, &a) => Ok((a, l)),
        _ => Err(CaError::NotFound(format!("agent {id}"))),
    }
}

/// The agent `id` if `p` may see it (no role check).
pub async fn visible_agent(store: &Store, p: &Principal, id: &str) -> Result<AgentRow, CaError> {
    match store.agent(id).await? {
        Some(a) if agent_visible(p, &a) => Ok(a),
        _ => Err(CaError::NotFound(format!("agent {id}"))),
    }
}

/// Whether `p` may see agent `a`: its own key, or a principal of its organization, or CA staff.
pub fn agent_visible(p: &Principal, a: &AgentRow) -> bool {
    if p.role == Role::Agent {
        return p.is_agent(&a.id);
    }
    p.sees(&a.organization)
}

/// The certificate `serial` (lowercase hex), if `p` may see its agent. Role checks are the
/// caller's (they differ between reading and revoking).
pub async fn certificate(
    store: &Store,
    p: &Principal,
    serial: &str,
) -> Result<CertificateRow, CaError> {
    let not_found = || CaError::NotFound(format!("certificate {serial}"));
    let row = store.certificate(serial).await?.ok_or_else(not_found)?;
    match store.agent(&row.agent_id).await? {
        Some(a) if agent_visible(p, &a) => Ok(row),
        _ => Err(not_found()),
    }
}

/// The incident `id`, if `p` may see its agent.
pub async fn incident(store: &Store, p: &Principal, id: i64) -> Result<IncidentRow, CaError> {
    let not_found = || CaError::NotFound(format!("incident {id}"));
    let row = store.incident(id).await?.ok_or_else(not_found)?;
    match store.agent(&row.agent_id).await? {
        Some(a) if agent_visible(p, &a) => Ok(row),
        _ => Err(not_found()),
    }
}

/// The webhook endpoint `id`, if it belongs to `p`'s organization (CA staff: any).
pub async fn webhook(store: &Store, p: &Principal, id: &str) -> Result<WebhookRow, CaError> {
    match store.webhook(id).await? {
        Some(w) if webhook_visible(p, &w) => Ok(w),
        _ => Err(CaError::NotFound(format!("webhook {id}"))),
    }
}

/// Whether `p` may see webhook `w`: CA staff see all; an organization sees its own.
pub fn webhook_visible(p: &Principal, w: &WebhookRow) -> bool {
    p.is_ca_staff()
        || (p.organization.is_some() && w.operator.as_deref() == p.organization.as_deref())
}

/// The organization `org` for an operation on all its agents (the kill switch), if `p` may
/// see it.
pub async fn organization(
    store: &Store,
    p: &Principal,
    org: &str,
) -> Result<mandate_store::OrganizationRow, CaError> {
    match store.organization(org).await? {
        Some(o) if p.sees(&o.id) => Ok(o),
        _ => Err(CaError::NotFound(format!("organization {org}"))),
    }
}

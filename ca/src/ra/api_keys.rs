//! API keys: each acts for one person (with one of that person's roles) or one agent.

use mandate_store::{ApiKeyRow, AuditEvent, NewApiKey, Role, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Principal;
use crate::{CaError, api_key};

/// A key to create: for a person, with one of that person's roles, or for an agent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewApiKey)]
pub struct NewKey {
    /// The role: one of the person's, or `agent`.
    pub role: Role,
    /// A name for people, e.g. `desk 1`.
    #[schema(min_length = 1, max_length = 128)]
    pub label: String,
    /// The person the key acts for: required for every role but agent, refused for agent; the
    /// role must be one of theirs.
    #[serde(default)]
    pub person: Option<String>,
    /// The agent it belongs to: required for role agent, refused otherwise.
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// The new key: `api_key` is shown here once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CreatedApiKey)]
pub struct CreatedKey {
    /// Public id.
    pub id: String,
    /// The whole key, `mk_<id>_<secret>`; only in this answer.
    pub api_key: String,
    /// Its role.
    pub role: Role,
    /// The person it acts for; null for an agent key.
    #[schema(required = true)]
    pub person: Option<String>,
    /// The agent it belongs to; null for a person's key.
    #[schema(required = true)]
    pub agent_id: Option<String>,
    /// Its label.
    pub label: String,
}

/// Creates a key (CA staff, admin; the CLI).
pub async fn create(store: &Store, p: &Principal, req: NewKey) -> Result<CreatedKey, CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    let label =
        super::organizations::check_text("label", &req.label, 128, mandate_policy::TextKind::Line)?;
    match (req.role, &req.agent_id, &req.person) {
        (Role::Agent, None, _) => {
            return Err(CaError::InvalidRequest(
                "an agent key needs agent_id".into(),
            ));
        }
        (Role::Agent, Some(_), Some(_)) => {
            return Err(CaError::InvalidRequest(
                "an agent key belongs to its agent, not to a person: leave out person".into(),
            ));
        }
        (Role::Agent, Some(_), None) => {}
        (_, Some(_), _) => {
            return Err(CaError::InvalidRequest(
                "agent_id is only for role agent".into(),
            ));
        }
        (role, None, None) => {
            return Err(CaError::InvalidRequest(format!(
                "a {role} key belongs to a person: give person (POST /v1/people creates one)"
            )));
        }
        (_, None, Some(_)) => {}
    }
    if let Some(person) = &req.person {
        let row = store
            .person(person)
            .await?
            .ok_or_else(|| CaError::NotFound(format!("person {person}")))?;
        if row.disabled_at.is_some() {
            return Err(CaError::Store(mandate_store::StoreError::WrongState(
                format!("person {person} is disabled"),
            )));
        }
        if !row.roles.contains(&req.role) {
            let held: Vec<&str> = row.roles.iter().map(|r| r.as_str()).collect();
            return Err(CaError::InvalidRequest(format!(
                "person {person} does not hold the role {}; they hold: {}",
                req.role,
                held.join(", ")
            )));
        }
    }
    let key = api_key::generate()?;
    let mut details = json!({"role": req.role, "label": label, "agent_id": req.agent_id,
                             "person": req.person});
    details["by"] = p.audit_details();
    store
        .insert_api_key(
            &NewApiKey {
                id: key.id.clone(),
                secret_hash: key.secret_hash,
                role: req.role,
                agent_id: req.agent_id.clone(),
                person_id: req.person.clone(),
                label: label.clone(),
                created_by: Some(p.key_id.clone()),
            },
            &AuditEvent::new(&p.key_id, "api_key.created", &key.id, details),
        )
        .await?;
    Ok(CreatedKey {
        id: key.id,
        api_key: key.text,
        role: req.role,
        person: req.person,
        agent_id: req.agent_id,
        label,
    })
}

/// Keys by id (admin), revoked ones included.
pub async fn list(
    store: &Store,
    p: &Principal,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>, CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    Ok(store.api_keys(after, limit).await?)
}

/// Revokes a key (admin): it stops at once. Returns the row and whether this call revoked it.
pub async fn revoke(store: &Store, p: &Principal, id: &str) -> Result<(ApiKeyRow, bool), CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    let mut details = json!({});
    details["by"] = p.audit_details();
    Ok(store
        .revoke_api_key(
            id,
            &AuditEvent::new(&p.key_id, "api_key.revoked", id, details),
        )
        .await?)
}

//! `Authorization: Bearer <API key>` → the caller's identity and role.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mandate_store::Role;

use super::{ApiError, AppState};
use crate::api_key;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// API key id: the identity recorded in the audit log.
    pub key_id: String,
    /// What the key may do.
    pub role: Role,
    /// For agent keys, the agent.
    pub agent_id: Option<String>,
}

impl Caller {
    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(forbidden_role(self.role, roles))
        }
    }

    /// Like [`Caller::require`], but an agent key is also let through for its own agent.
    pub fn require_or_own_agent(&self, roles: &[Role], agent_id: &str) -> Result<(), ApiError> {
        if self.role == Role::Agent && self.agent_id.as_deref() == Some(agent_id) {
            return Ok(());
        }
        self.require(roles)
    }
}

fn forbidden_role(role: Role, roles: &[Role]) -> ApiError {
    let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "role {role} may not do this; it needs one of: {}",
            wanted.join(", ")
        ),
    )
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer <API key>"))?;
        let text = header
            .to_str()
            .map_err(|_| unauthorized("malformed Authorization header"))?;
        let token = text
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("Authorization must use the Bearer scheme"))?
            .trim();
        let (id, secret) = api_key::parse(token).ok_or_else(|| unauthorized("invalid API key"))?;
        let row = state
            .node
            .store
            .api_key(id)
            .await
            .map_err(|e| ApiError::from(crate::CaError::from(e)))?;
        // One answer for unknown, wrong and revoked keys: no oracle for which ids exist.
        match row {
            Some(row) if row.revoked_at.is_none() && api_key::matches(&row.secret_hash, secret) => {
                state
                    .node
                    .rate_limits
                    .check(&row.id)
                    .map_err(ApiError::rate_limited)?;
                Ok(Caller {
                    key_id: row.id,
                    role: row.role,
                    agent_id: row.agent_id,
                })
            }
            _ => {
                // The id is public (it only finds the row); the secret is never logged.
                tracing::warn!(key_id = id, "authentication failed");
                Err(unauthorized("invalid API key"))
            }
        }
    }
}

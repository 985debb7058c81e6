//! `Authorization: Bearer <API key>` → the caller's identity and role.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mandate_store::Role;

use super::{ApiError, AppState};
use crate::api_key;

/// How long a key's row is trusted without reading it again: a key revoked by another process
/// (the CLI) stops working within this; one revoked through this daemon's API at once.
const KEY_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Most rows kept; the cache starts over beyond it.
const KEY_CACHE_MAX: usize = 10_000;

/// Recently read API key rows, so a busy client costs no database read per request. The secret
/// is still checked against the stored hash on every request.
#[derive(Debug, Default)]
pub struct KeyCache {
    rows: std::sync::Mutex<
        std::collections::HashMap<String, (mandate_store::ApiKeyRow, std::time::Instant)>,
    >,
}

impl KeyCache {
    fn get(&self, id: &str) -> Option<mandate_store::ApiKeyRow> {
        let rows = self.rows.lock().ok()?;
        rows.get(id)
            .filter(|(_, at)| at.elapsed() < KEY_TTL)
            .map(|(row, _)| row.clone())
    }

    fn put(&self, row: mandate_store::ApiKeyRow) {
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() >= KEY_CACHE_MAX {
                rows.clear();
            }
            rows.insert(row.id.clone(), (row, std::time::Instant::now()));
        }
    }

    /// Drops a key's row (after revoking it).
    pub fn forget(&self, id: &str) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.remove(id);
        }
    }
}

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
        authenticate(state, token)
            .await?
            .ok_or_else(|| unauthorized("invalid API key"))
    }
}

/// The caller presenting the API key `text`, or `None` for an unknown, wrong or revoked key
/// (one answer for all three: no oracle for which ids exist). Counts against the key's rate
/// limit.
pub(crate) async fn authenticate(state: &AppState, text: &str) -> Result<Option<Caller>, ApiError> {
    let Some((id, secret)) = api_key::parse(text) else {
        return Ok(None);
    };
    match key_row(state, id).await? {
        Some(row) if row.revoked_at.is_none() && api_key::matches(&row.secret_hash, secret) => {
            Ok(Some(caller_of(state, row)?))
        }
        _ => {
            // The id is public (it only finds the row); the secret is never logged.
            tracing::warn!(key_id = id, "authentication failed");
            Ok(None)
        }
    }
}

/// The caller acting with the key `id`, already authenticated another way (a dashboard
/// session opened with it); `None` if the key was revoked since.
pub(crate) async fn caller_by_key_id(
    state: &AppState,
    id: &str,
) -> Result<Option<Caller>, ApiError> {
    match key_row(state, id).await? {
        Some(row) if row.revoked_at.is_none() => Ok(Some(caller_of(state, row)?)),
        _ => Ok(None),
    }
}

fn caller_of(state: &AppState, row: mandate_store::ApiKeyRow) -> Result<Caller, ApiError> {
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

/// A key's row, from the cache when fresh.
async fn key_row(state: &AppState, id: &str) -> Result<Option<mandate_store::ApiKeyRow>, ApiError> {
    let cache = &state.node.api_key_cache;
    if let Some(row) = cache.get(id) {
        return Ok(Some(row));
    }
    let row = state
        .node
        .store
        .api_key(id)
        .await
        .map_err(|e| ApiError::from(crate::CaError::from(e)))?;
    if let Some(r) = &row {
        cache.put(r.clone());
    }
    Ok(row)
}

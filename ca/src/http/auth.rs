//! `Authorization: Bearer <API key>` → the caller: the person (or agent) the key acts for, with
//! the key's role and the person's organization.

use super::{ApiError, AppState};
use crate::api_key;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// An authenticated caller: the registration authority's principal.
pub use crate::ra::Principal as Caller;

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
        Some(h) if h.key.revoked_at.is_none() && api_key::matches(&h.key.secret_hash, secret) => {
            caller_of(state, h)
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
        Some(h) if h.key.revoked_at.is_none() => caller_of(state, h),
        _ => Ok(None),
    }
}

/// The principal of a valid key; `None` when its person is disabled (all their keys stop).
fn caller_of(
    state: &AppState,
    holder: mandate_store::KeyHolder,
) -> Result<Option<Caller>, ApiError> {
    let Some(caller) = Caller::of_key(holder) else {
        return Ok(None);
    };
    state
        .node
        .rate_limits
        .check(&caller.key_id)
        .map_err(ApiError::rate_limited)?;
    Ok(Some(caller))
}

/// A key with its holder, from the cache when fresh.
async fn key_row(state: &AppState, id: &str) -> Result<Option<mandate_store::KeyHolder>, ApiError> {
    let cache = &state.node.api_key_cache;
    if let Some(row) = cache.get(id) {
        return Ok(Some(row));
    }
    let row = state
        .node
        .store
        .key_holder(id)
        .await
        .map_err(|e| ApiError::from(crate::CaError::from(e)))?;
    if let Some(r) = &row {
        cache.put(r.clone());
    }
    Ok(row)
}

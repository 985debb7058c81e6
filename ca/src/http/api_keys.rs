//! `/v1/api-keys`: keys of people and agents (admin, CA staff).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_store::Role;
use serde::Serialize;

use super::{ApiError, ApiJson, AppState, Caller};
use crate::ra;
use crate::ra::api_keys::{CreatedKey, NewKey};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// `POST /v1/api-keys` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let created = ra::api_keys::create(&state.node.store, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// An API key as listed: never its secret or hash.
#[derive(Serialize)]
pub struct KeyView {
    id: String,
    role: Role,
    person: Option<String>,
    agent_id: Option<String>,
    label: String,
    created_by: Option<String>,
    created_at: String,
    revoked_at: Option<String>,
}

impl From<mandate_store::ApiKeyRow> for KeyView {
    fn from(r: mandate_store::ApiKeyRow) -> Self {
        KeyView {
            id: r.id,
            role: r.role,
            person: r.person_id,
            agent_id: r.agent_id,
            label: r.label,
            created_by: r.created_by,
            created_at: crate::rfc3339(r.created_at),
            revoked_at: r.revoked_at.map(crate::rfc3339),
        }
    }
}

/// `GET /v1/api-keys?cursor=&limit=` (admin): every key, revoked ones included, by id.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    super::ApiQuery(q): super::ApiQuery<super::PageQuery>,
) -> Result<Json<super::Page<KeyView>>, ApiError> {
    let limit = super::page_limit(q.limit)?;
    let rows = ra::api_keys::list(&state.node.store, &caller, q.cursor.as_deref(), limit).await?;
    let next_cursor = super::next_cursor(&rows, limit, |r| &r.id);
    Ok(Json(super::Page {
        items: rows.into_iter().map(KeyView::from).collect(),
        next_cursor,
    }))
}

/// What a revocation did.
#[derive(Serialize)]
pub struct RevokedKey {
    api_key: KeyView,
    newly_revoked: bool,
}

/// `POST /v1/api-keys/{id}/revoke` (admin): the key stops working at once. Idempotent; the
/// last admin key cannot be revoked (`409 wrong-state`).
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<RevokedKey>, ApiError> {
    let (row, newly_revoked) = ra::api_keys::revoke(&state.node.store, &caller, &id).await?;
    if newly_revoked {
        tracing::info!(key_id = %id, by = %caller.key_id, "API key revoked");
    }
    Ok(Json(RevokedKey {
        api_key: row.into(),
        newly_revoked,
    }))
}

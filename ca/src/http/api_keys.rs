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
#[openapi(paths(create, list, revoke))]
pub struct Doc;

/// An example key, as listed.
fn example_key() -> serde_json::Value {
    serde_json::json!({
        "id": "3f0c9a41d2b7e865", "role": "operator", "person": "olga", "agent_id": null,
        "label": "desk 1", "created_by": "71d1b803154531d9",
        "created_at": "2026-12-07T09:32:00Z", "revoked_at": null
    })
}

/// The example key, revoked.
fn revoked_key() -> serde_json::Value {
    let mut key = example_key();
    key["revoked_at"] = serde_json::json!("2026-12-08T16:05:00Z");
    key
}

/// `POST /v1/api-keys` (admin).
#[utoipa::path(post, path = "/v1/api-keys", operation_id = "createApiKey", tag = "keys",
    summary = "Create an API key (shown once)",
    description = "Roles: admin, CA staff only. A key acts for a person, with one of that \
        person's roles (person), or for an agent (role agent, agent_id).",
    security(("apiKey" = [])), request_body = NewKey,
    responses((status = 201, description = "created; api_key is shown only here",
        body = CreatedKey, example = json!({
            "id": "3f0c9a41d2b7e865",
            "api_key": "mk_3f0c9a41d2b7e865_q8ZC2nVfXw1tLr5aYbK0sPjHd7uE4mNoR3vW9xT6kLp",
            "role": "operator", "person": "olga", "agent_id": null, "label": "desk 1"
        }))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let created = ra::api_keys::create(&state.node.store, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// An API key as listed: never its secret or hash.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyView {
    /// Public id (the `<id>` of `mk_<id>_<secret>`).
    id: String,
    /// Its role.
    role: Role,
    /// The person it acts for; null for agent keys.
    #[schema(required = true)]
    person: Option<String>,
    /// The agent it belongs to; null for a person's key.
    #[schema(required = true)]
    agent_id: Option<String>,
    /// Its label.
    label: String,
    /// Id of the key that created it; null for the bootstrap key.
    #[schema(required = true)]
    created_by: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    /// Set once revoked: the key is refused (401) from then on.
    #[schema(format = DateTime, required = true)]
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
#[utoipa::path(get, path = "/v1/api-keys", operation_id = "listApiKeys", tag = "keys",
    summary = "List API keys (no secrets)",
    description = "Roles: admin, CA staff only. Every key, revoked ones included, with the person \
        it acts for.",
    security(("apiKey" = [])), params(super::PageQuery),
    responses((status = 200, description = "page", body = super::Page<KeyView>,
        example = json!({"items": [example_key()], "next_cursor": null}))))]
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevokedKey {
    /// The key, as it is now.
    api_key: KeyView,
    /// False when it had been revoked before.
    newly_revoked: bool,
}

/// `POST /v1/api-keys/{id}/revoke` (admin): the key stops working at once. Idempotent; the
/// last admin key cannot be revoked (`409 wrong-state`).
#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", operation_id = "revokeApiKey",
    tag = "keys", summary = "Revoke an API key (idempotent; never the last admin key)",
    description = "Roles: admin, CA staff only.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "key id")),
    responses((status = 200, description = "revoked", body = RevokedKey,
        example = json!({"api_key": revoked_key(), "newly_revoked": true}))))]
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

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_store::{AuditEvent, NewApiKey, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiJson, AppState, Caller};
use crate::{CaError, api_key};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    role: Role,
    label: String,
    #[serde(default)]
    agent_id: Option<String>,
}

/// The new key: `api_key` is shown here once and never again.
#[derive(Serialize)]
pub struct CreatedKey {
    id: String,
    api_key: String,
    role: Role,
    agent_id: Option<String>,
    label: String,
}

/// `POST /v1/api-keys` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(&[Role::Admin])?;
    let created = create_key(
        &state.node.store,
        req.role,
        &req.label,
        req.agent_id,
        &caller.key_id,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Checks and stores a new key; shared by the API and `mandate api-keys create`.
pub async fn create_key(
    store: &mandate_store::Store,
    role: Role,
    label: &str,
    agent_id: Option<String>,
    actor: &str,
) -> Result<CreatedKey, CaError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 128 || label.chars().any(char::is_control) {
        return Err(CaError::InvalidRequest(
            "label must be 1 to 128 printable characters".into(),
        ));
    }
    match (role, &agent_id) {
        (Role::Agent, None) => {
            return Err(CaError::InvalidRequest(
                "an agent key needs agent_id".into(),
            ));
        }
        (Role::Agent, Some(_)) => {}
        (_, Some(_)) => {
            return Err(CaError::InvalidRequest(
                "agent_id is only for role agent".into(),
            ));
        }
        (_, None) => {}
    }
    let key = api_key::generate()?;
    store
        .insert_api_key(
            &NewApiKey {
                id: key.id.clone(),
                secret_hash: key.secret_hash,
                role,
                agent_id: agent_id.clone(),
                label: label.to_owned(),
                created_by: Some(actor.to_owned()),
            },
            &AuditEvent::new(
                actor,
                "api_key.created",
                &key.id,
                json!({"role": role, "label": label, "agent_id": agent_id}),
            ),
        )
        .await?;
    Ok(CreatedKey {
        id: key.id,
        api_key: key.text,
        role,
        agent_id,
        label: label.to_owned(),
    })
}

/// An API key as listed: never its secret or hash.
#[derive(Serialize)]
pub struct KeyView {
    id: String,
    role: Role,
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
            agent_id: r.agent_id,
            label: r.label,
            created_by: r.created_by,
            created_at: crate::rfc3339(r.created_at),
            revoked_at: r.revoked_at.map(crate::rfc3339),
        }
    }
}

/// A page of keys.
#[derive(Serialize)]
pub struct KeyList {
    api_keys: Vec<KeyView>,
    next_after: Option<String>,
}

/// `GET /v1/api-keys?after=&limit=` (admin): every key, revoked ones included, by id.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    super::ApiQuery(q): super::ApiQuery<super::PageQuery>,
) -> Result<Json<KeyList>, ApiError> {
    caller.require(&[Role::Admin])?;
    let limit = super::page_limit(q.limit)?;
    let rows = state
        .node
        .store
        .api_keys(q.after.as_deref(), limit)
        .await
        .map_err(CaError::from)?;
    let next_after = super::next_cursor(&rows, limit, |r| &r.id);
    Ok(Json(KeyList {
        api_keys: rows.into_iter().map(KeyView::from).collect(),
        next_after,
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
    caller.require(&[Role::Admin])?;
    let (row, newly_revoked) = state
        .node
        .store
        .revoke_api_key(
            &id,
            &AuditEvent::new(&caller.key_id, "api_key.revoked", &id, json!({})),
        )
        .await
        .map_err(CaError::from)?;
    state.node.api_key_cache.forget(&id);
    if newly_revoked {
        tracing::info!(key_id = %id, by = %caller.key_id, "API key revoked");
    }
    Ok(Json(RevokedKey {
        api_key: row.into(),
        newly_revoked,
    }))
}

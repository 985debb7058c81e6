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

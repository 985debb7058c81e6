//! `POST /v1/agents/{id}/eab`: ACME external account binding credentials for one agent.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiPath, AppState, Caller};
use crate::ra;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// Creates single-use credentials (operator or admin). The HMAC key is in this answer only,
/// which no cache may keep.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let node = &state.node;
    let creds = ra::credentials::eab(&node.hsm, &node.store, &caller, &agent_id).await?;
    tracing::info!(agent = %agent_id, key_id = %creds.key_id, "EAB credentials created");
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(creds),
    )
        .into_response())
}

//! `POST /v1/agents/{id}/eab`: ACME external account binding credentials for one agent.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiPath, AppState, Caller};
use crate::ra;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create))]
pub struct Doc;

/// Creates single-use credentials (operator or admin). The HMAC key is in this answer only,
/// which no cache may keep.
#[utoipa::path(post, path = "/v1/agents/{id}/eab", operation_id = "createEab", tag = "acme",
    summary = "ACME external account binding credentials (single use, this agent only; HMAC key \
        shown once)",
    description = "Roles: operator, admin. Another organization's object answers 404, as an \
        unknown one. No body.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 201, description = "credentials", body = crate::eab::EabCredentials,
            headers(("Cache-Control" = String, description = "no-store: the HMAC key is shown \
                once")),
            example = json!({
                "key_id": "eab_Vh3kQ9xZr2LmT0pN8sYcAw",
                "hmac_key": "J2tqYw5v0XbZ8mKf3rTn6QhL1sUe9aPd4GcIo7VyBxE",
                "agent_id": "trading-bot-v2",
                "expires_at": "2026-12-14T09:40:00Z"
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::{ApiError, AppState};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz))]
pub struct Doc;

/// `GET /healthz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    status: Alive,
}

/// A probe that answered.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = HealthOk)]
enum Alive {
    /// Up.
    Ok,
}

/// `GET /readyz`'s answer when both probes answered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ready` (a probe that fails answers 503 `not-ready`).
    status: Ready,
    /// The HSM answered.
    hsm: Alive,
    /// The database answered.
    database: Alive,
}

/// Both probes answered.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = HealthReady)]
enum Ready {
    /// Ready.
    Ready,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops", summary = "Liveness",
    description = "No key. Answers as long as the process serves HTTP; checks nothing else \
        (GET /readyz does).",
    security(),
    responses(
        (status = 200, description = "ok", body = Liveness, example = json!({"status": "ok"})),
        (status = "4XX", description = "RFC 9457 problem: a request the listener refuses (a \
            header too large or too slow, a URI too long)", body = super::problem::Body<'static>,
            content_type = "application/problem+json"),
        (status = "5XX", description = "RFC 9457 problem: 503 `overloaded` when the daemon \
            holds as many connections as it serves", body = super::problem::Body<'static>,
            content_type = "application/problem+json")))]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: Alive::Ok })
}

/// `GET /readyz`: the HSM and the database both answer within two seconds.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops",
    summary = "Readiness: database and HSM",
    description = "No key. Ready when the HSM and the database both answer within 2 seconds; \
        otherwise 503 `not-ready`, naming which did not.",
    security(),
    responses(
        (status = 200, description = "ready", body = Readiness,
            example = json!({"status": "ready", "hsm": "ok", "database": "ok"})),
        (status = "4XX", description = "RFC 9457 problem: a request the listener refuses (a \
            header too large or too slow, a URI too long)", body = super::problem::Body<'static>,
            content_type = "application/problem+json"),
        (status = "5XX", description = "RFC 9457 problem: 503 `not-ready` (the HSM or the \
            database did not answer within 2 seconds; `detail` says which and why), or \
            `overloaded`", body = super::problem::Body<'static>, content_type = "application/problem+json",
            example = json!({"type": "urn:mandate:problem:not-ready", "title": "Service Unavailable",
                "status": 503, "detail": "database: timed out"}))))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let node = &state.node;
    let hsm = match tokio::time::timeout(PROBE_TIMEOUT, node.hsm.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let db = match tokio::time::timeout(PROBE_TIMEOUT, node.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    match (&hsm, &db) {
        (Ok(()), Ok(())) => Ok(Json(Readiness {
            status: Ready::Ready,
            hsm: Alive::Ok,
            database: Alive::Ok,
        })),
        _ => {
            let detail = [("HSM", &hsm), ("database", &db)]
                .iter()
                .filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e}")))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(%detail, "not ready");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                detail,
            ))
        }
    }
}

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the HSM and the database both answer within two seconds.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
        (Ok(()), Ok(())) => Ok(Json(
            json!({"status": "ready", "hsm": "ok", "database": "ok"}),
        )),
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

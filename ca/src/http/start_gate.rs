//! What the port answers before the node is up: the listener opens at once, and until the HSM
//! and the database can be reached `/healthz` says the process lives while `/readyz` and every
//! other route answer 503 problem+json with the reason. Once the node starts, every request
//! goes to its router.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::http::ApiError;

/// Shared between the server and the start-up loop.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gate {
    app: Arc<OnceLock<Router>>,
    reason: Arc<Mutex<String>>,
    /// Set when a running node finds its database rolled back: every route but `/healthz`
    /// answers 503 with it from then on.
    refused: Arc<Mutex<Option<String>>>,
}

impl Gate {
    /// The router to serve: the gate itself, which forwards once opened.
    pub(crate) fn router(&self) -> Router {
        Router::new().fallback(forward).with_state(self.clone())
    }

    /// Why the node is not up yet (shown by `/readyz`).
    pub(crate) fn set_reason(&self, reason: String) {
        if let Ok(mut r) = self.reason.lock() {
            *r = reason;
        }
    }

    /// From now on every request but `/healthz` is refused with `reason` (503), for good.
    pub(crate) fn refuse(&self, reason: String) {
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(reason);
        }
    }

    /// From now on every request goes to `app`.
    pub(crate) fn open(&self, app: Router) {
        let _ = self.app.set(app);
    }
}

async fn forward(State(gate): State<Gate>, req: Request) -> Response {
    let refused = gate.refused.lock().ok().and_then(|r| r.clone());
    if let Some(reason) = refused
        && req.uri().path() != "/healthz"
    {
        let mut problem = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", reason);
        problem.retry_after = Some(60);
        return problem.into_response();
    }
    if let Some(app) = gate.app.get() {
        return match app.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
    }
    if req.uri().path() == "/healthz" {
        return axum::Json(serde_json::json!({"status": "ok"})).into_response();
    }
    let reason = gate.reason.lock().map(|r| r.clone()).unwrap_or_default();
    let detail = if reason.is_empty() {
        "starting".to_owned()
    } else {
        format!("starting: {reason}")
    };
    let mut problem = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", detail);
    problem.retry_after = Some(5);
    problem.into_response()
}

//! `GET /v1/reports/agents/{id}`: the compliance report of one agent over a period, as the
//! signed JSON bundle or as the PDF.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiPath, ApiQuery, AppState, Caller};
use crate::audit_proof::ProofSubject;
use crate::report::{Period, ReportOptions, build_report, render_pdf};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// `?from=&to=&format=`: dates (YYYY-MM-DD) or RFC 3339 instants; `json` (default) or `pdf`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    from: String,
    to: String,
    format: Option<String>,
}

/// `GET /v1/reports/agents/{id}` (compliance, auditor).
pub async fn agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    crate::ra::tenant::agent(&state.node.store, &caller, super::roles::REPORTERS, &id).await?;
    respond(&state, &caller, ProofSubject::Agent(id), q).await
}

/// `GET /v1/reports/organizations/{org}` (compliance, auditor): every agent of the
/// organization; another organization is not found.
pub async fn organization(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(super::roles::REPORTERS)?;
    crate::ra::tenant::organization(&state.node.store, &caller, &org).await?;
    respond(&state, &caller, ProofSubject::Organization(org), q).await
}

/// Builds the report the caller may have, as JSON or PDF.
async fn respond(
    state: &AppState,
    caller: &Caller,
    subject: ProofSubject,
    q: ReportQuery,
) -> Result<Response, ApiError> {
    let pdf = match q.format.as_deref() {
        None | Some("json") => false,
        Some("pdf") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or pdf (got {other:?})"
            )));
        }
    };
    if q.from.len() > 64 || q.to.len() > 64 {
        return Err(ApiError::bad_request(
            "from and to are dates or RFC 3339 times",
        ));
    }
    let opts = ReportOptions {
        subject,
        period: Period::parse(&q.from, &q.to)?,
        actor: caller.key_id.clone(),
    };
    let node = &state.node;
    let bundle = build_report(&node.hsm, &node.store, &node.cfg, &opts, &|_, _| {}).await?;
    if !pdf {
        return Ok(([(header::CONTENT_TYPE, "application/json")], bundle).into_response());
    }
    let value: serde_json::Value = serde_json::from_slice(&bundle)
        .map_err(|e| ApiError::from(crate::CaError::Internal(e.to_string())))?;
    let body = tokio::task::spawn_blocking(move || render_pdf(&value))
        .await
        .map_err(|e| ApiError::from(crate::CaError::Internal(e.to_string())))?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], body).into_response())
}

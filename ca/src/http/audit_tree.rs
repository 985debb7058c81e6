//! `GET /v1/audit/checkpoint` and `GET /v1/audit/consistency`: what witnesses of the audit log
//! read. Public, like the CRL: a checkpoint names a tree size and a root, a consistency proof
//! hashes of salted subtrees; neither says anything about a record. And
//! `GET /v1/audit/export`: one organization's or agent's records with their proofs.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiQuery, AppState, Caller};
use crate::audit_proof::ProofSubject;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// `GET /v1/audit/checkpoint`: the newest signed checkpoint, as its C2SP signed note
/// (`text/plain`), or, asked for `application/json`, with its signer's certificates.
pub async fn checkpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cp = crate::ra::audit::latest_checkpoint(&state.node.store).await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut response = if wants_json {
        Json(cp).into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            cp.signed.note,
        )
            .into_response()
    };
    // A checkpoint is replaced every `audit.checkpoint_secs` at most: never cached long.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `?from=&to=`: tree sizes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /v1/audit/consistency?from=&to=`: the RFC 6962 consistency proof between two tree sizes.
pub async fn consistency(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = crate::ra::audit::consistency(&state.node.store, q.from, q.to).await?;
    let proof: Vec<String> = proof.iter().map(crate::audit_note::b64).collect();
    Ok(Json(
        serde_json::json!({"from": q.from, "to": q.to, "proof": proof}),
    ))
}

/// `?organization=` or `?agent=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    organization: Option<String>,
    agent: Option<String>,
}

/// `GET /v1/audit/export?organization=|agent=` (auditor, compliance, admin): the subject's
/// records, each with its inclusion proof to a checkpoint signed for the export, as JSON lines
/// (`mandate audit verify --file` checks them offline).
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let subject = match (q.organization, q.agent) {
        (Some(o), None) => ProofSubject::Organization(o),
        (None, Some(a)) => ProofSubject::Agent(a),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of organization and agent",
            ));
        }
    };
    let node = &state.node;
    let body =
        crate::ra::audit::export(&node.hsm, &node.store, &node.cfg, &caller, subject).await?;
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], body).into_response())
}

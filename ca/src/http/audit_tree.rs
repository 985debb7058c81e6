//! `GET /v1/audit/checkpoint` and `GET /v1/audit/consistency`: what witnesses of the audit log
//! read. Public, like the CRL: a checkpoint names a tree size and a root, a consistency proof
//! hashes of salted subtrees; neither says anything about a record. And
//! `GET /v1/audit/export`: one organization's or agent's records with their proofs.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiQuery, AppState, Caller};
use crate::audit_proof::ProofSubject;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(checkpoint, consistency, export))]
pub struct Doc;

/// An example export: the header line and one record.
const EXAMPLE_EXPORT: &str = concat!(
    r#"{"format":"mandate-audit-proofs-v1","subject":{"organization":"acme"},"#,
    r#""checkpoint":{"note":"ca.example.com/audit\n1042\nq3Uj0mVgGxQ0iN8ke1S5Vd3CzWb7yQ8b9cJk2JXl3fA=\n\n\u2014 ca.example.com/audit Gis8TTBFAiDWqQL2rugrc/C6LzXxn6fvdVBW0S0f/6VLnRyNPQQDAwIhALyeVhNBQ3d4a12UDXblAwTsfp8q1HfUxYGg/rTGguk5\n","#,
    r#""signed_at":"2026-12-07T09:30:00Z","signer_certificate":"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3m0...\n-----END CERTIFICATE-----\n","signer_issuer_id":2},"#,
    r#""ca_certificates":[{"id":2,"pem":"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3m0...\n-----END CERTIFICATE-----\n"}],"#,
    r#""cross_certificates":[],"records":1}"#,
    "\n",
    r#"{"seq":41,"at":"2026-12-07T09:29:58.125Z","actor":"key_7f3a9c2e","action":"agent.approved","#,
    r#""subject":"bot-1","details":"{\"agent_id\":\"bot-1\",\"version\":1}","organization":"acme","#,
    r#""person":"carol","salt":"Yb3kQ9wXz1pL7mN2vR8tCw==","#,
    r#""proof":["7Zq1b0Ck3mJ8xYw2vR5tN9pL4sH6gF1dE0aC7uB3iO8=","Kx4Nf2Qm8Rj1Tz6Vb9Wc3Yd5Ae7Bg0Ch2Di4Ej6Fk8G="]}"#,
    "\n"
);

/// A PEM certificate, shortened, for the examples.
const EXAMPLE_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3m0...\n-----END CERTIFICATE-----\n";

/// An example checkpoint note (C2SP tlog-checkpoint).
const EXAMPLE_NOTE: &str = "ca.example.com/audit\n1042\nq3Uj0mVgGxQ0iN8ke1S5Vd3CzWb7yQ8b9cJk2JXl3fA=\n\n\
    \u{2014} ca.example.com/audit Gis8TTBFAiDWqQL2rugrc/C6LzXxn6fvdVBW0S0f/6VLnRyNPQQDAwIhALyeVhNBQ3d4a12UDXblAwTsfp8q1HfUxYGg/rTGguk5\n";

/// The newest signed checkpoint with what a witness needs to check it from the root
/// certificate alone.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditCheckpoint)]
pub struct CheckpointView {
    /// The log's origin (audit.origin): first line of the note and its key name.
    origin: String,
    /// Records in the tree.
    #[schema(minimum = 1)]
    tree_size: u64,
    /// The tree's RFC 6962 root hash, base64.
    root_hash: String,
    /// The C2SP tlog-checkpoint signed note (ECDSA P-256, signature type 0x02).
    note: String,
    /// When it was signed, RFC 3339 UTC.
    #[schema(format = DateTime)]
    signed_at: String,
    /// PEM of the audit signer.
    signer_certificate: String,
    /// The intermediate that issued the signer (an id among the CA's certificates).
    signer_issuer_id: i64,
    /// PEM of the intermediate that issued the signer.
    issuer_certificate: String,
}

impl From<crate::audit_proof::PublishedCheckpoint> for CheckpointView {
    fn from(cp: crate::audit_proof::PublishedCheckpoint) -> Self {
        CheckpointView {
            origin: cp.origin,
            tree_size: cp.tree_size,
            root_hash: cp.root_hash,
            note: cp.signed.note,
            signed_at: cp.signed.signed_at,
            signer_certificate: cp.signed.signer_certificate,
            signer_issuer_id: cp.signed.signer_issuer_id,
            issuer_certificate: cp.issuer_certificate,
        }
    }
}

/// `GET /v1/audit/checkpoint`: the newest signed checkpoint, as its C2SP signed note
/// (`text/plain`), or, asked for `application/json`, with its signer's certificates.
#[utoipa::path(get, path = "/v1/audit/checkpoint", operation_id = "getAuditCheckpoint",
    tag = "audit", summary = "The newest signed checkpoint of the audit tree (public)",
    description = "No key. A C2SP signed note over the audit tree's size and RFC 6962 root, \
        signed in the HSM by the audit signer: text/plain by default; with Accept: \
        application/json, the note with its signer and issuer certificates, for witnesses \
        (`mandate audit witness`). Names no record. 404 until the first checkpoint.",
    security(),
    responses((status = 200, description = "checkpoint",
        headers(("Cache-Control" = String, description = "no-cache")),
        content(
            (String = "text/plain", example = json!(EXAMPLE_NOTE)),
            (CheckpointView = "application/json", example = json!({
                "origin": "ca.example.com/audit", "tree_size": 1042,
                "root_hash": "q3Uj0mVgGxQ0iN8ke1S5Vd3CzWb7yQ8b9cJk2JXl3fA=",
                "note": EXAMPLE_NOTE, "signed_at": "2026-12-07T09:30:00Z",
                "signer_certificate": EXAMPLE_PEM, "signer_issuer_id": 2,
                "issuer_certificate": EXAMPLE_PEM}))))))]
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
        Json(CheckpointView::from(cp)).into_response()
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
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree's size.
    #[param(minimum = 1)]
    from: u64,
    /// The newer tree's size, at most the newest signed checkpoint's.
    #[param(minimum = 1)]
    to: u64,
}

/// An RFC 6962 consistency proof between two sizes of the audit tree.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditConsistencyProof)]
pub struct ConsistencyProof {
    /// The older tree's size.
    #[schema(minimum = 1)]
    from: u64,
    /// The newer tree's size.
    #[schema(minimum = 1)]
    to: u64,
    /// The proof's hashes, base64 (none when the sizes are equal).
    proof: Vec<String>,
}

/// `GET /v1/audit/consistency?from=&to=`: the RFC 6962 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/audit/consistency", operation_id = "getAuditConsistencyProof",
    tag = "audit",
    summary = "RFC 6962 consistency proof between two sizes of the audit tree (public)",
    description = "No key. Proves that the tree of `to` records extends the tree of `from` \
        records: 1 <= from <= to <= the newest signed checkpoint's size, else 400. Hashes of \
        salted subtrees only.",
    security(), params(ConsistencyQuery),
    responses((status = 200, description = "proof", body = ConsistencyProof,
        example = json!({"from": 1000, "to": 1042, "proof": [
            "7Zq1b0Ck3mJ8xYw2vR5tN9pL4sH6gF1dE0aC7uB3iO8=",
            "Kx4Nf2Qm8Rj1Tz6Vb9Wc3Yd5Ae7Bg0Ch2Di4Ej6Fk8G=",
            "pL0oK9iJ8uH7yG6tF5rE4dC3sX2aZ1qW0eR9tY8uI7o="]}))))]
pub async fn consistency(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let proof = crate::ra::audit::consistency(&state.node.store, q.from, q.to).await?;
    let proof: Vec<String> = proof.iter().map(crate::audit_note::b64).collect();
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        proof,
    }))
}

/// `?organization=` or `?agent=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Every record of this organization (not with `agent`).
    organization: Option<String>,
    /// Every record about this agent or its certificates (not with `organization`).
    agent: Option<String>,
}

/// `GET /v1/audit/export?organization=|agent=` (auditor, compliance, admin): the subject's
/// records, each with its inclusion proof to a checkpoint signed for the export, as JSON lines
/// (`mandate audit verify --file` checks them offline).
#[utoipa::path(get, path = "/v1/audit/export", operation_id = "exportAudit", tag = "audit",
    summary = "One organization's or agent's audit records, each with its inclusion proof",
    description = "Roles: auditor, compliance, admin. Exactly one of `organization` and \
        `agent`; an organization's people only their own (another's is 404). Records the export \
        (audit `audit.exported`), signs a checkpoint covering it, and answers JSON lines: a \
        header (format mandate-audit-proofs-v1, subject, the signed checkpoint, the CA \
        certificates) and one record per line with its leaf salt and RFC 6962 inclusion proof. \
        Holds no record of anyone else; `mandate audit verify --file F --root root.pem` checks \
        it offline. At most 200,000 records (400 beyond: use `mandate audit export`).",
    security(("apiKey" = [])), params(ExportQuery),
    responses((status = 200, description = "JSON lines", body = String,
        content_type = "application/jsonl", example = json!(EXAMPLE_EXPORT))))]
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

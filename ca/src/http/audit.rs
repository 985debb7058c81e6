//! `GET /v1/audit`: the audit log, oldest first, with each record's hashes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{ApiError, ApiQuery, AppState, Caller, page_limit};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

/// An example record, as CA staff read it.
fn example_record() -> serde_json::Value {
    serde_json::json!({
        "seq": 42, "at": "2026-12-07T09:30:00.125Z", "actor": "key_7f3a9c2e",
        "action": "certificate.issued", "subject": "4f1c9a0b7d2e63a85b10c4e9f2d7a631",
        "organization": "acme", "person": "olivia", "person_name": "Olivia Operator",
        "cert_fingerprint": "9b2e4c1d7a3f60b58e21d4c7a9f03e6b1c5d8a2f7e4b9c0d3a6f1e8b5c2d7a94",
        "risk_score": null,
        "details": {"agent_id": "bot-1", "mandate_version": 1, "profile": "agent",
            "by": {"person": "olivia", "person_name": "Olivia Operator", "agent": null,
                "organization": "acme"}},
        "prev_hash": "1d0f6b5e3c9a27f48e1b6d0c5a3f92e7b4c8d1a6f0e3b9c2d5a8f7e1b4c6d0a3",
        "hash": "6a3f0e9b2c7d14e85f0a3b6c9d2e7f1a4b8c5d0e3f6a9b2c7d1e4f8a0b5c3d6e"
    })
}

/// One record of the hash-chained audit log.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditRecord)]
pub struct AuditRecordView {
    /// Its position in the log, from 1.
    #[schema(minimum = 1)]
    seq: i64,
    /// When, RFC 3339 UTC with milliseconds (covered by the hash to the millisecond).
    #[schema(format = DateTime)]
    at: String,
    /// Who acted: an API key id, `system`, `cli:<command>`, `acme:<account>`, ...
    actor: String,
    /// What was done, e.g. `certificate.issued`.
    action: String,
    /// On what: an agent id, a certificate serial, an organization, ...
    subject: String,
    /// The organization it concerns (null: CA-wide, or written before organizations).
    #[schema(required = true)]
    organization: Option<String>,
    /// The person who acted, if a person did.
    #[schema(required = true)]
    person: Option<String>,
    /// The person's name, for reading; not covered by the hash.
    #[schema(required = true)]
    person_name: Option<String>,
    /// SHA-256 fingerprint of the certificate concerned, hex.
    #[schema(required = true)]
    cert_fingerprint: Option<String>,
    /// The risk score behind the decision, if any.
    #[schema(required = true)]
    risk_score: Option<f64>,
    /// Further facts; records of the registration authority's operations carry `by`
    /// (person, person_name, agent, organization).
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// The previous record's hash (zeros before the first), hex; CA staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    prev_hash: Option<String>,
    /// SHA-256 of this record's canonical encoding and `prev_hash`, hex (see
    /// docs/OPERATIONS.md#audit-log); CA staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    hash: Option<String>,
}

/// `GET /v1/audit` (auditor, compliance, admin): CA staff read the whole log, an
/// organization's people the records that concern their organization.
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAuditRecords", tag = "audit",
    summary = "Page through the hash-chained audit log, oldest first",
    description = "Roles: auditor, compliance, admin. CA staff read the whole log; an \
        organization's people read the records of their organization. Each record names its \
        organization and the acting person (both covered by its hash), and, for CA staff, \
        carries `prev_hash` and `hash` (SHA-256 over its canonical encoding and the previous \
        hash; see docs/OPERATIONS.md#audit-log); an organization's people get neither (they \
        link to other organizations' records) and prove their records with GET \
        /v1/audit/export. `mandate audit verify` checks the whole chain. Records of the \
        registration authority's operations carry details.by: person, person_name, agent, \
        organization.",
    security(("apiKey" = [])), params(super::PageQuery),
    responses((status = 200, description = "page", body = super::Page<AuditRecordView>,
        example = json!({"items": [example_record()], "next_cursor": "42"}))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<super::PageQuery>,
) -> Result<Json<super::Page<AuditRecordView>>, ApiError> {
    let limit = page_limit(q.limit)?;
    let (rows, names) = crate::ra::audit::list(
        &state.node.store,
        &caller,
        super::number_cursor(q.cursor.as_deref(), 0, 0)?,
        limit,
    )
    .await?;
    let next_cursor = super::next_number_cursor(&rows, limit, |r| r.seq);
    // The chain's hashes link each record to the one before it, often another organization's:
    // with both, a reader could test guesses of that record. An organization's people get their
    // records without them, and prove them with `GET /v1/audit/export` instead.
    let chained = caller.org_filter().is_none();
    let items = rows
        .into_iter()
        .map(|r| AuditRecordView {
            seq: r.seq,
            at: crate::rfc3339_ms(r.at_ms),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            person_name: r.person.as_ref().and_then(|p| names.get(p)).cloned(),
            organization: r.organization,
            person: r.person,
            cert_fingerprint: r.cert_fingerprint,
            risk_score: r.risk_score.map(crate::score4),
            details: r.details,
            prev_hash: chained.then_some(r.prev_hash),
            hash: chained.then_some(r.hash),
        })
        .collect();
    Ok(Json(super::Page { items, next_cursor }))
}

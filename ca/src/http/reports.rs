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
#[openapi(paths(agent, organization), components(schemas(ReportFormat)))]
pub struct Doc;

/// `?from=&to=&format=`: dates (YYYY-MM-DD) or RFC 3339 instants; `json` (default) or `pdf`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// YYYY-MM-DD (from 00:00 UTC) or RFC 3339.
    #[param(max_length = 64, example = "2026-12-01")]
    from: String,
    /// YYYY-MM-DD (up to 24:00 UTC) or RFC 3339.
    #[param(max_length = 64, example = "2026-12-07")]
    to: String,
    /// The signed JSON bundle (default) or its PDF rendering.
    #[param(value_type = Option<ReportFormat>, default = "json")]
    format: Option<String>,
}

/// What a report comes as.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "a type for the document's sake; read as text")]
enum ReportFormat {
    /// The signed JSON bundle.
    Json,
    /// Its PDF rendering.
    Pdf,
}

/// A PDF document, for the API document.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
struct Pdf(Vec<u8>);

/// An example bundle: one agent's report, or its organization's, over a week (most sections
/// empty).
fn example_bundle(organization_report: bool) -> serde_json::Value {
    let pem =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3m0...\n-----END CERTIFICATE-----\n";
    let section = serde_json::json!({
        "agent": {"id": "bot-1", "name": "Momentum bot", "organization": "acme",
            "status": "active", "registered_by": "key_7f3a9c2e",
            "registered_at": "2026-11-02T10:00:00Z", "updated_at": "2026-11-03T08:15:00Z"},
        "mandates": [], "certificates": [], "revocations": [], "baselines": [],
        "incidents": [], "kill_switches": [], "overrides": [],
        "events": {"count": 0, "by_kind": [], "markets": [], "records": []},
        "pretrade": {"decisions": 0, "denied": 0, "denials_by_reason": []},
        "webhook_deliveries": [], "orders": []
    });
    let subject = if organization_report {
        serde_json::json!({"organization": "acme"})
    } else {
        serde_json::json!({"agent": "bot-1"})
    };
    let mut report = serde_json::json!({
        "id": "rep_5c0e1a9b7d3f2468", "subject": subject,
        "period": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-08T00:00:00Z"},
        "organization": {"id": "acme", "legal_name": "Acme Capital Ltd"},
        "generated_at": "2026-12-08T09:00:00Z", "generated_by": "key_c0ffee12",
        "people": {"key_c0ffee12": {"person": "carol", "name": "Carol Compliance",
            "organization": "acme"}},
        "root": {"subject": "CN=Mandate Root CA", "sha256": "3f1e9a0c5b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f"},
        "sign_off": {"prepared_by": "key_c0ffee12", "prepared_by_name": "Carol Compliance",
            "reviewed_by": null},
        "ca_certificates": [{"id": 2, "role": "intermediate", "subject": "CN=Mandate Issuing CA 1",
            "sha256": "8d2c4e6f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d",
            "active": true, "pem": pem}],
        "cross_certificates": [],
        "audit": {"records": [], "checkpoint": {
            "note": "ca.example.com/audit\n1042\nq3Uj0mVgGxQ0iN8ke1S5Vd3CzWb7yQ8b9cJk2JXl3fA=\n\n\u{2014} ca.example.com/audit Gis8TTBFAiDWqQL2rugrc/C6LzXxn6fvdVBW0S0f/6VLnRyNPQQDAwIhALyeVhNBQ3d4a12UDXblAwTsfp8q1HfUxYGg/rTGguk5\n",
            "signed_at": "2026-12-08T09:00:00Z", "signer_certificate": pem,
            "signer_issuer_id": 2}}
    });
    if organization_report {
        report["agents"] = serde_json::json!([section]);
    } else if let (Some(r), Some(s)) = (report.as_object_mut(), section.as_object()) {
        r.extend(s.clone());
    }
    serde_json::json!({
        "format": "mandate-compliance-report-v2",
        "report": report,
        "signature": {"algorithm": "ecdsa-with-SHA256", "signed_at": "2026-12-08T09:00:01Z",
            "signer_certificate": pem, "signer_issuer_id": 2,
            "value": "MEUCIQDkTq3b0u1Xw9Zp6yq2mJvR8sH4nF7cA1eB5dG0kL2oPQIgQ3vR7tY9uW1xZ5aC8bD0eF2gH4iJ6kL8mN0pQ2rS4tU="}
    })
}

/// `GET /v1/reports/agents/{id}` (compliance, auditor).
#[utoipa::path(get, path = "/v1/reports/agents/{id}", operation_id = "getAgentReport",
    tag = "reports",
    summary = "Compliance report of one agent over a period: signed JSON bundle or PDF \
        (compliance, auditor)",
    description = "Roles: compliance, auditor. Records the report in the audit log, signs a \
        checkpoint covering it, and returns the bundle (canonical JSON: keys sorted, no \
        whitespace; check it offline with `mandate report verify`) or its PDF rendering. \
        Another organization's object answers 404, as an unknown one. The audit proof holds, \
        in full, every audit record between the agent's first one in the period and the \
        checkpoint, other organizations' included.",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "agent id"), ReportQuery),
    responses(
        (status = 200, description = "The bundle or the PDF", content(
            (crate::report::Bundle = "application/json", example = json!(example_bundle(false))),
            (inline(Pdf) = "application/pdf"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(get, path = "/v1/reports/organizations/{org}", operation_id = "getOrganizationReport",
    tag = "reports",
    summary = "Compliance report of every agent of an organization over a period (signed JSON \
        bundle or PDF)",
    description = "Roles: compliance, auditor. An organization's people: their own \
        organization only (another is 404); CA staff: any. The bundle \
        (mandate-compliance-report-v2) has a section per agent (`agents`) and the \
        organization's audit records in the period, each with its inclusion proof to a \
        checkpoint signed for the report. Making it writes report.generated to the audit log.",
    security(("apiKey" = [])),
    params(("org" = String, Path, description = "organization id"), ReportQuery),
    responses(
        (status = 200, description = "The bundle or the PDF", content(
            (crate::report::Bundle = "application/json", example = json!(example_bundle(true))),
            (inline(Pdf) = "application/pdf"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

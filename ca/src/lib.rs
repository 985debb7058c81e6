//! The mandate daemon: key ceremony, issuance of mandate-carrying agent certificates, and the
//! REST API; composed from the config, hsm, store and policy crates.

mod acme;
mod api_key;
mod audit_anchor;
mod audit_checkpoint;
mod audit_log;
mod audit_note;
mod audit_proof;
mod audit_witness;
mod behaviour;
mod ca_reload;
mod ceremony;
mod change_listener;
mod crl_publisher;
mod csr;
mod decision;
mod delegated;
mod eab;
mod error;
mod hsm_inventory;
mod hsm_secret;
mod http;
mod issuance;
mod metrics;
mod names;
mod node;
mod ocsp_cache;
mod ocsp_presigner;
mod ocsp_signer;
mod ra;
mod rate_limit;
mod recovery;
mod reference_prices;
mod report;
mod retirement;
mod revocation;
mod rotation;
mod schema_refs;
mod tls;
mod webhooks;
mod x509;

pub use audit_log::{
    AuditReport, export as export_audit, verify_file as verify_audit_file,
    verify_store as verify_audit,
};
pub use audit_proof::{
    ProofSubject, ProofsReport, export_now as export_audit_proofs, is_proofs_file,
    verify_file as verify_audit_proofs,
};
pub use audit_witness::{WitnessReport, witness as witness_audit};
pub use ceremony::{CaCertSummary, CeremonyReport, init_ca};
pub use error::CaError;
pub use hsm_inventory::{InventoryRow, inventory as hsm_inventory};
/// The OpenAPI document of the HTTP API (`GET /v1/openapi.json`), generated from the code.
pub use http::openapi::document as openapi_document;
pub use node::{
    connect_hsm, ensure_dev_token, init_logging, init_logging_at, open_existing_store, open_store,
    prepare_dev_token, require_database, serve, shutdown_signal,
};
pub use recovery::{RecoveryReport, recover};
pub use report::{
    Period, ReportCheck, ReportOptions, build_report, events_csv as report_events_csv,
    render_pdf as render_report_pdf, verify_report,
};
pub use rotation::{CrossSummary, RotationReport, rollover_root, rotate_intermediate};
pub use webhooks::signature as webhook_signature;

use node::Node;

/// Creates an API key from the command line (same checks as `POST /v1/api-keys`): for a
/// person (`person`, with one of their roles) or an agent (`agent_id`, role agent).
pub async fn create_api_key(
    store: &mandate_store::Store,
    role: mandate_store::Role,
    label: &str,
    person: Option<String>,
    agent_id: Option<String>,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    let created = ra::api_keys::create(
        store,
        &ra::Principal::cli(actor),
        ra::api_keys::NewKey {
            role,
            label: label.to_owned(),
            person,
            agent_id,
        },
    )
    .await?;
    to_json(created)
}

/// Creates an organization from the command line (same checks as `POST /v1/organizations`);
/// `req` is that request's JSON body.
pub async fn create_organization(
    store: &mandate_store::Store,
    ca: &mandate_config::CaConfig,
    req: serde_json::Value,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    let req = serde_json::from_value(req).map_err(|e| CaError::InvalidRequest(e.to_string()))?;
    to_json(ra::organizations::create(store, ca, &ra::Principal::cli(actor), req).await?)
}

/// Every organization, 100 by id from `cursor`, as `GET /v1/organizations` answers:
/// `{"items", "next_cursor"}`.
pub async fn list_organizations(
    store: &mandate_store::Store,
    cursor: Option<&str>,
) -> Result<serde_json::Value, CaError> {
    let p = ra::Principal::cli("cli:orgs-list");
    let rows = ra::organizations::list(store, &p, cursor, 100).await?;
    let next_cursor = http::next_cursor(&rows, 100, |r| &r.id);
    to_json(http::Page {
        items: rows
            .into_iter()
            .map(http::organizations::OrganizationView::from)
            .collect(),
        next_cursor,
    })
}

/// Creates a person from the command line (same checks as `POST /v1/people`); `req` is that
/// request's JSON body.
pub async fn create_person(
    store: &mandate_store::Store,
    req: serde_json::Value,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    let req = serde_json::from_value(req).map_err(|e| CaError::InvalidRequest(e.to_string()))?;
    to_json(ra::organizations::create_person(store, &ra::Principal::cli(actor), req).await?)
}

/// People, 100 by id from `cursor`, of one organization if given, as `GET /v1/people`
/// answers: `{"items", "next_cursor"}`.
pub async fn list_people(
    store: &mandate_store::Store,
    organization: Option<&str>,
    cursor: Option<&str>,
) -> Result<serde_json::Value, CaError> {
    let p = ra::Principal::cli("cli:people-list");
    let rows = ra::organizations::list_people(store, &p, organization, cursor, 100).await?;
    let next_cursor = http::next_cursor(&rows, 100, |r| &r.id);
    to_json(http::Page {
        items: rows
            .into_iter()
            .map(http::organizations::PersonView::from)
            .collect(),
        next_cursor,
    })
}

/// Disables a person from the command line: every key of theirs stops (a running daemon
/// notices within seconds).
pub async fn disable_person(
    store: &mandate_store::Store,
    id: &str,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    let (row, newly) =
        ra::organizations::disable_person(store, &ra::Principal::cli(actor), id).await?;
    Ok(serde_json::json!({"person": to_json(row)?, "newly_disabled": newly}))
}

fn to_json(v: impl serde::Serialize) -> Result<serde_json::Value, CaError> {
    serde_json::to_value(v).map_err(|e| CaError::Internal(e.to_string()))
}

/// Makes ACME external account binding credentials for an agent from the command line (same
/// checks as `POST /v1/agents/{id}/eab`).
pub async fn create_eab(
    hsm: &mandate_hsm::Hsm,
    store: &mandate_store::Store,
    agent_id: &str,
    actor: &str,
) -> Result<eab::EabCredentials, CaError> {
    ra::credentials::eab(hsm, store, &ra::Principal::cli(actor), agent_id).await
}

/// Revokes a certificate from the command line: idempotent, like the API.
pub async fn revoke_certificate(
    store: &mandate_store::Store,
    serial: &str,
    reason: &str,
    comment: Option<&str>,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    let reason: revocation::RevocationReason = reason.parse()?;
    let serial = x509::parse_serial(serial)?;
    let (row, newly_revoked) = ra::revocation::revoke_certificate(
        store,
        &ra::Principal::cli(actor),
        &serial,
        reason,
        comment,
        "cli",
    )
    .await?;
    Ok(serde_json::json!({
        "serial_number": row.serial,
        "agent_id": row.agent_id,
        "status": row.status,
        "revocation_reason": row.revocation_reason
            .and_then(revocation::RevocationReason::from_code)
            .map(|r| r.name()),
        "revoked_at": row.revoked_at.map(rfc3339),
        "newly_revoked": newly_revoked,
    }))
}

/// Pulls the kill switch from the command line (`mandate revoke agent|operator`).
pub async fn pull_kill_switch(
    store: &mandate_store::Store,
    scope: mandate_store::KillScope,
    target: &str,
    reason: &str,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    if reason.trim().is_empty() {
        return Err(CaError::InvalidRequest(
            "--reason is required (1 to 500 characters)".into(),
        ));
    }
    let k = ra::revocation::kill(store, &ra::Principal::cli(actor), scope, target, reason).await?;
    to_json(k)
}

/// `text` percent-encoded as one URL path segment or query value: everything but the
/// unreserved characters (RFC 3986 §2.3) is escaped, so an id, cursor or search text can end
/// neither the segment nor the parameter.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3339 UTC text for unix seconds.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// RFC 3339 UTC text with milliseconds for unix milliseconds.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            let f = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            t.format(&f).ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Now, unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Entry points for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::acme::jws::parse as parse_jws;
    pub use crate::acme::jws::{Jwk, Jws, KeyRef, verify_eab};
    pub use crate::csr::validate as validate_csr;
    pub use crate::csr::{CsrError, MAX_CSR_BYTES, ValidCsr};
}

/// A score or share as the API shows it: rounded to 4 decimals, and never `-0` (the sum of
/// shares can land a hair below zero). Stored values keep their full precision.
pub(crate) fn score4(x: f64) -> f64 {
    let r = (x * 10_000.0).round() / 10_000.0;
    if r == 0.0 { 0.0 } else { r }
}

/// Serializes a score with [`score4`] (`#[serde(serialize_with = ...)]`).
pub(crate) fn ser_score<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(score4(*x))
}

/// Serializes an optional score with [`score4`].
pub(crate) fn ser_opt_score<S: serde::Serializer>(
    x: &Option<f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => s.serialize_some(&score4(*x)),
        None => s.serialize_none(),
    }
}

/// Every fractional number in `v` (scores, shares, contributions) with [`score4`].
pub(crate) fn round_scores(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => n
            .as_f64()
            .and_then(|f| serde_json::Number::from_f64(score4(f)))
            .map_or(Value::Number(n), Value::Number),
        Value::Array(items) => Value::Array(items.into_iter().map(round_scores).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, round_scores(v))).collect())
        }
        other => other,
    }
}

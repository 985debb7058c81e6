use axum::Json;
use axum::extract::State;
use mandate_store::KillScope;

use crate::revocation::{KillSwitchView, RevocationReason};
use serde::{Deserialize, Serialize};

use super::certificates::{CertificateView, view};
use super::{ApiError, ApiJson, ApiPath, AppState, Caller};
use crate::revocation::ReasonInput;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(revoke_certificate, kill_agent, kill_operator))]
pub struct Doc;

/// Body of `POST /v1/certificates/{serial}/revoke`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificate {
    /// The RFC 5280 reason, by name (any case) or CRLReason code. An agent key may give
    /// unspecified, keyCompromise, superseded or cessationOfOperation.
    #[schema(schema_with = reason_schema)]
    reason: ReasonInput,
    /// For the record: at most 500 characters.
    #[schema(max_length = 500)]
    comment: Option<String>,
}

/// The reasons an agent certificate may be revoked with: each by name or by code.
fn reason_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let reasons: Vec<RevocationReason> = (0..=10).filter_map(RevocationReason::from_code).collect();
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(reasons.iter().map(|r| r.name()))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some(reasons.iter().map(|r| r.code()))),
        )
        .description(Some(
            "The RFC 5280 reason, by name (any case) or CRLReason code. An agent key may give \
             unspecified, keyCompromise, superseded or cessationOfOperation.",
        ))
        .build()
        .into()
}

/// Body of the kill switches.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullKillSwitch {
    /// Why, for the record: 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// The answer to a revocation: the certificate, and whether this call changed it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RevokedCertificate)]
pub struct Revoked {
    #[serde(flatten)]
    #[schema(inline)]
    certificate: CertificateView,
    /// False when it had been revoked before (the first revocation's time and reason stand).
    newly_revoked: bool,
}

/// An example answer to a revocation.
fn example_revoked() -> serde_json::Value {
    let mut c = super::certificates::example_certificate();
    c["status"] = "revoked".into();
    c["revoked_at"] = "2026-12-08T11:02:13Z".into();
    c["revocation_reason"] = "keyCompromise".into();
    c["revocation_reason_code"] = 1.into();
    c["revoked_by"] = "3f0c9a41d2b7e865".into();
    c["newly_revoked"] = true.into();
    c
}

/// What a kill switch acts on.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KillSwitchScope {
    /// One agent.
    Agent,
    /// Every agent of an organization.
    Operator,
}

/// What pulling a kill switch did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = KillSwitch)]
pub struct Killed {
    /// Its id.
    kill_switch_id: i64,
    /// agent or operator (a whole organization).
    scope: KillSwitchScope,
    /// The agent or organization.
    target: String,
    /// Agents suspended.
    agents_suspended: Vec<String>,
    /// Certificates revoked (serials, lowercase hex).
    certificates_revoked: Vec<String>,
}

/// An example answer to a kill switch.
fn example_kill(scope: &str, target: &str, agents: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "kill_switch_id": 7, "scope": scope, "target": target, "agents_suspended": agents,
        "certificates_revoked": ["1eadf0f6590c3b0e7f2d4a91c5e83b7d2a6f0c11", "4c02"]
    })
}

/// `POST /v1/certificates/{serial}/revoke` (operator, compliance, admin; an agent key for its
/// own certificate, with the reasons open to agents).
#[utoipa::path(post, path = "/v1/certificates/{serial}/revoke", operation_id = "revokeCertificate",
    tag = "revocation", summary = "Revoke a certificate (RFC 5280 reason; idempotent)",
    description = "Roles: operator, admin, compliance; an agent key for its own certificate. \
        Another organization's object answers 404, as an unknown one.",
    security(("apiKey" = [])), params(super::certificates::SerialParam),
    request_body = RevokeCertificate,
    responses(
        (status = 200, description = "revoked", body = Revoked,
            example = json!(example_revoked())),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn revoke_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<String>,
    ApiJson(req): ApiJson<RevokeCertificate>,
) -> Result<Json<Revoked>, ApiError> {
    let serial = super::certificates::parse_serial(&serial)?;
    let reason = req.reason.resolve()?;
    let (row, newly_revoked) = crate::ra::revocation::revoke_certificate(
        &state.node.store,
        &caller,
        &serial,
        reason,
        req.comment.as_deref(),
        "api",
    )
    .await?;
    Ok(Json(Revoked {
        certificate: view(row)?,
        newly_revoked,
    }))
}

/// `POST /v1/agents/{id}/revoke`: the kill switch for one agent.
#[utoipa::path(post, path = "/v1/agents/{id}/revoke", operation_id = "killAgent",
    tag = "revocation", summary = "Kill switch: suspend the agent and revoke all its certificates",
    description = "Roles: operator, admin, compliance. Another organization's object answers 404, \
        as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = PullKillSwitch,
    responses(
        (status = 200, description = "done", body = Killed,
            example = json!(example_kill("agent", "trading-bot-v2", &["trading-bot-v2"]))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn kill_agent(
    state: State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    req: ApiJson<PullKillSwitch>,
) -> Result<Json<Killed>, ApiError> {
    kill(state, caller, KillScope::Agent, id, req).await
}

/// `POST /v1/operators/{org}/revoke`: the kill switch for every agent of an operator.
#[utoipa::path(post, path = "/v1/operators/{org}/revoke", operation_id = "killOrganization",
    tag = "revocation", summary = "Kill switch for every agent of an operator organization",
    description = "Roles: operator, admin, compliance. A person of an organization only for their \
        own organization; another (or an unknown one) answers 404.",
    security(("apiKey" = [])), params(("org" = String, Path, description = "organization id")),
    request_body = PullKillSwitch,
    responses(
        (status = 200, description = "done", body = Killed, example = json!(example_kill(
            "operator", "acme-trading", &["hedging-bot", "trading-bot-v2"]))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn kill_operator(
    state: State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    req: ApiJson<PullKillSwitch>,
) -> Result<Json<Killed>, ApiError> {
    kill(state, caller, KillScope::Operator, org, req).await
}

async fn kill(
    State(state): State<AppState>,
    caller: Caller,
    scope: KillScope,
    target: String,
    ApiJson(req): ApiJson<PullKillSwitch>,
) -> Result<Json<Killed>, ApiError> {
    let KillSwitchView {
        kill_switch_id,
        scope: _,
        target,
        agents_suspended,
        certificates_revoked,
    } = crate::ra::revocation::kill(&state.node.store, &caller, scope, &target, &req.reason)
        .await?;
    Ok(Json(Killed {
        kill_switch_id,
        scope: match scope {
            KillScope::Agent => KillSwitchScope::Agent,
            KillScope::Operator => KillSwitchScope::Operator,
        },
        target,
        agents_suspended,
        certificates_revoked,
    }))
}

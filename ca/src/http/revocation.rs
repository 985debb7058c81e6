use axum::Json;
use axum::extract::State;
use mandate_store::KillScope;

use crate::revocation::KillSwitchView;
use serde::{Deserialize, Serialize};

use super::certificates::{CertificateView, view};
use super::{ApiError, ApiJson, ApiPath, AppState, Caller};
use crate::revocation::ReasonInput;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificate {
    reason: ReasonInput,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullKillSwitch {
    /// Why, for the record: 1 to 500 characters.
    reason: String,
}

/// The answer to a revocation: the certificate, and whether this call changed it.
#[derive(Serialize)]
pub struct Revoked {
    #[serde(flatten)]
    certificate: CertificateView,
    /// False when it had been revoked before (the first revocation's time and reason stand).
    newly_revoked: bool,
}

/// `POST /v1/certificates/{serial}/revoke` (operator, compliance, admin; an agent key for its
/// own certificate, with the reasons open to agents).
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
pub async fn kill_agent(
    state: State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    req: ApiJson<PullKillSwitch>,
) -> Result<Json<KillSwitchView>, ApiError> {
    kill(state, caller, KillScope::Agent, id, req).await
}

/// `POST /v1/operators/{org}/revoke`: the kill switch for every agent of an operator.
pub async fn kill_operator(
    state: State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    req: ApiJson<PullKillSwitch>,
) -> Result<Json<KillSwitchView>, ApiError> {
    kill(state, caller, KillScope::Operator, org, req).await
}

async fn kill(
    State(state): State<AppState>,
    caller: Caller,
    scope: KillScope,
    target: String,
    ApiJson(req): ApiJson<PullKillSwitch>,
) -> Result<Json<KillSwitchView>, ApiError> {
    let k = crate::ra::revocation::kill(&state.node.store, &caller, scope, &target, &req.reason)
        .await?;
    Ok(Json(k))
}

use axum::Json;
use axum::extract::{Path, State};
use mandate_store::{KillScope, Revocation, Role};

use crate::revocation::KillSwitchView;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::certificates::{CertificateView, view};
use super::{ApiError, ApiJson, AppState, Caller};
use crate::CaError;
use crate::revocation::ReasonInput;

use super::roles::REVOKERS;

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

fn check_comment(comment: Option<&str>, max: usize) -> Result<(), ApiError> {
    match comment {
        Some(c) if c.chars().count() > max || c.chars().any(char::is_control) => Err(
            ApiError::bad_request(format!("at most {max} printable characters")),
        ),
        _ => Ok(()),
    }
}

/// `POST /v1/certificates/{serial}/revoke` (operator, compliance, admin; an agent key for its
/// own certificate, with the reasons open to agents).
pub async fn revoke_certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(serial): Path<String>,
    ApiJson(req): ApiJson<RevokeCertificate>,
) -> Result<Json<Revoked>, ApiError> {
    if caller.role != Role::Agent {
        caller.require(REVOKERS)?;
    }
    let serial = super::certificates::parse_serial(&serial)?;
    let reason = req.reason.resolve()?;
    check_comment(req.comment.as_deref(), 500)?;
    let store = &state.node.store;
    // Another organization's (or agent's) certificate answers as a missing one.
    crate::ra::tenant::certificate(store, &caller, &serial).await?;
    if caller.role == Role::Agent && !reason.open_to_agents() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "an agent may not revoke with reason {}; ask its operator",
                reason.name()
            ),
        ));
    }
    let outcome = store
        .revoke_certificate(
            &serial,
            reason.code(),
            &caller.key_id,
            json!({"reason": reason.code(), "reason_name": reason.name(), "comment": req.comment}),
        )
        .await
        .map_err(CaError::from)?;
    let (row, newly_revoked) = match outcome {
        Revocation::Revoked(row) => (row, true),
        Revocation::AlreadyRevoked(row) => (row, false),
    };
    if newly_revoked {
        crate::metrics::METRICS.revocations.inc(&["api"]);
        tracing::info!(serial = %serial, reason = reason.name(), "certificate revoked");
    }
    Ok(Json(Revoked {
        certificate: view(row)?,
        newly_revoked,
    }))
}

/// `POST /v1/agents/{id}/revoke`: the kill switch for one agent.
pub async fn kill_agent(
    state: State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: ApiJson<PullKillSwitch>,
) -> Result<Json<KillSwitchView>, ApiError> {
    kill(state, caller, KillScope::Agent, id, req).await
}

/// `POST /v1/operators/{org}/revoke`: the kill switch for every agent of an operator.
pub async fn kill_operator(
    state: State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
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
    caller.require(REVOKERS)?;
    match scope {
        KillScope::Agent => {
            crate::ra::tenant::visible_agent(&state.node.store, &caller, &target).await?;
        }
        KillScope::Operator => {
            crate::ra::tenant::organization(&state.node.store, &caller, &target).await?;
        }
    }
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "reason is required: say why the kill switch is pulled",
        ));
    }
    check_comment(Some(reason), 500)?;
    let k = crate::revocation::pull(
        &state.node.store,
        scope,
        &target,
        &caller.key_id,
        reason,
        None,
    )
    .await?;
    Ok(Json(k))
}

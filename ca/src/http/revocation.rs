use axum::Json;
use axum::extract::{Path, State};
use mandate_store::{KillScope, KillSwitch, Revocation, Role};
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

/// The answer to a kill switch.
#[derive(Serialize)]
pub struct KillSwitchView {
    kill_switch_id: i64,
    scope: &'static str,
    target: String,
    agents_suspended: Vec<String>,
    pub(crate) certificates_revoked: Vec<String>,
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
    let not_found = || ApiError::from(CaError::NotFound(format!("certificate {serial}")));
    if caller.role == Role::Agent {
        let row = store
            .certificate(&serial)
            .await
            .map_err(CaError::from)?
            .ok_or_else(not_found)?;
        if caller.agent_id.as_deref() != Some(row.agent_id.as_str()) {
            return Err(not_found());
        }
        if !reason.open_to_agents() {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "an agent may not revoke with reason {}; ask its operator",
                    reason.name()
                ),
            ));
        }
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
        state.node.revoked();
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
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "reason is required: say why the kill switch is pulled",
        ));
    }
    check_comment(Some(reason), 500)?;
    let k = pull(
        &state.node.store,
        scope,
        &target,
        &caller.key_id,
        reason,
        None,
    )
    .await?;
    state.node.revoked();
    Ok(Json(k))
}

/// Pulls the kill switch; shared by the API and `mandate revoke agent|operator`.
pub async fn pull(
    store: &mandate_store::Store,
    scope: KillScope,
    target: &str,
    actor: &str,
    reason: &str,
    incident: Option<i64>,
) -> Result<KillSwitchView, CaError> {
    let KillSwitch {
        id,
        agents,
        certificates_revoked,
    } = store
        .pull_kill_switch(scope, target, actor, reason, incident)
        .await?;
    crate::metrics::METRICS.revocations.add(
        &[if incident.is_some() {
            "auto"
        } else {
            "kill_switch"
        }],
        u64::try_from(certificates_revoked.len()).unwrap_or(u64::MAX),
    );
    tracing::warn!(
        kill_switch = id,
        target,
        agents = agents.len(),
        certificates = certificates_revoked.len(),
        "kill switch pulled"
    );
    Ok(KillSwitchView {
        kill_switch_id: id,
        scope: match scope {
            KillScope::Agent => "agent",
            KillScope::Operator => "operator",
        },
        target: target.to_owned(),
        agents_suspended: agents,
        certificates_revoked,
    })
}

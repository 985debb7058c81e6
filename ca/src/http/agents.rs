use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_store::{AgentOverview, MandateStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ApiError, ApiJson, ApiPath, ApiQuery, AppState, Caller, OptionalJson, next_cursor, page_limit,
};
use crate::{CaError, ra};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    agent_id: String,
    name: String,
    /// Defaults to the caller's organization.
    #[serde(default)]
    organization: Option<String>,
    mandate: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitMandate {
    mandate: Value,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The version being decided: required, so nobody decides on a version they did not
    /// read (or one replaced after they read it).
    version: Option<i64>,
    comment: Option<String>,
}

/// Body of `POST /v1/agents/{id}/reinstate`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reinstatement {
    /// For the record.
    comment: Option<String>,
}

/// An agent as the API shows it.
#[derive(Serialize)]
pub struct AgentView {
    agent_id: String,
    name: String,
    organization: String,
    status: mandate_store::AgentStatus,
    dns_name: String,
    /// The newest mandate version (pending or approved).
    mandate: Value,
    mandate_version: i64,
    mandate_status: MandateStatus,
    /// The version certificates are issued with, if any.
    approved_mandate_version: Option<i64>,
    registered_by: String,
    created_at: String,
    updated_at: String,
    /// After an approval that awaits another person's (`approvals_required = 2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals: Option<Approvals>,
}

/// Approvals of the pending version so far.
#[derive(Serialize)]
pub struct Approvals {
    recorded: i64,
    required: i64,
}

/// `POST /v1/agents` (operator): registers an agent of the caller's organization with its
/// requested mandate.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterAgent>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    let issuer = &state.node.issuer;
    let row = ra::agents::register(
        &state.node.store,
        |id, org| issuer.dns_name(id, org),
        &caller,
        ra::agents::Registration {
            agent_id: req.agent_id,
            name: req.name,
            organization: req.organization,
            mandate: req.mandate,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, &row.id).await?)))
}

/// `POST /v1/agents/{id}/mandate` (operator): submits a changed mandate as a new version.
pub async fn submit_mandate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SubmitMandate>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    ra::agents::submit_mandate(&state.node.store, &caller, &id, req.mandate).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &id).await?)))
}

/// `POST /v1/agents/{id}/approve` (compliance; another person than the requester).
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: ApiPath<String>,
    body: OptionalJson<Decision>,
) -> Result<Json<AgentView>, ApiError> {
    decide(state, caller, id, body, true).await
}

/// `POST /v1/agents/{id}/reject` (compliance; another person than the requester).
pub async fn reject(
    state: State<AppState>,
    caller: Caller,
    id: ApiPath<String>,
    body: OptionalJson<Decision>,
) -> Result<Json<AgentView>, ApiError> {
    decide(state, caller, id, body, false).await
}

async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<Decision>,
    approve: bool,
) -> Result<Json<AgentView>, ApiError> {
    let outcome = ra::agents::decide(
        &state.node.store,
        &caller,
        &id,
        ra::agents::Decision {
            version: req.version,
            comment: req.comment,
            supersede_grace_secs: state.node.cfg.ca.supersede_grace_secs,
        },
        approve,
    )
    .await?;
    let mut v = view(&state, &id).await?;
    if let Some((recorded, required)) = outcome.awaiting() {
        v.approvals = Some(Approvals { recorded, required });
    }
    Ok(Json(v))
}

/// `POST /v1/agents/{id}/reinstate` (compliance; four eyes): lifts a suspension; a pending
/// mandate version stays pending.
pub async fn reinstate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<Reinstatement>,
) -> Result<Json<AgentView>, ApiError> {
    let outcome = ra::agents::reinstate(&state.node.store, &caller, &id, req.comment).await?;
    let mut v = view(&state, &id).await?;
    if let Some((recorded, required)) = outcome.awaiting() {
        v.approvals = Some(Approvals { recorded, required });
    }
    Ok(Json(v))
}

/// One mandate version as the API shows it.
#[derive(Serialize)]
pub struct MandateVersionView {
    version: i64,
    status: mandate_store::MandateStatus,
    mandate: Value,
    requested_by: String,
    requested_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    /// A pending version's changes against the approved one.
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<mandate_policy::FieldChange>>,
}

/// `GET /v1/agents/{id}/mandates`: every version, newest first; the pending one with its
/// field-by-field changes against the approved one.
pub async fn mandates(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = ra::agents::mandates(&state.node.store, &caller, &id).await?;
    let items: Vec<MandateVersionView> = versions
        .into_iter()
        .map(|v| MandateVersionView {
            version: v.row.version,
            status: v.row.status,
            mandate: serde_json::to_value(&v.mandate).unwrap_or_default(),
            requested_by: v.row.created_by,
            requested_at: crate::rfc3339(v.row.created_at),
            decided_by: v.row.decided_by,
            decided_at: v.row.decided_at.map(crate::rfc3339),
            changes: v.changes,
        })
        .collect();
    Ok(Json(
        serde_json::json!({"agent_id": id, "items": items, "next_cursor": null}),
    ))
}

/// `GET /v1/agents/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentView>, ApiError> {
    let o = ra::agents::get(&state.node.store, &caller, &id).await?;
    Ok(Json(view_of(&state, o)?))
}

/// The filters and page of `GET /v1/agents`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentQuery {
    /// Page size (default 50, at most 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only agents in this state: pending_approval, active, suspended.
    pub status: Option<String>,
    /// Only agents whose latest mandate version is in this state: pending_approval (what waits
    /// for compliance), approved, rejected, superseded, withdrawn.
    pub mandate_status: Option<String>,
    /// Only agents whose id or name contains this text (case-insensitive).
    pub q: Option<String>,
}

/// A state named in a query, case-insensitive; an unknown one is `400` naming the parameter.
fn parse_filter<T: std::str::FromStr>(
    name: &str,
    text: Option<&str>,
) -> Result<Option<T>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .to_ascii_lowercase()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name}: unknown state {t:?}"))),
    }
}

/// `GET /v1/agents?limit=&cursor=&status=&mandate_status=&q=`: the caller's organization's
/// agents (CA staff: all), by id.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AgentQuery>,
) -> Result<Json<super::Page<AgentView>>, ApiError> {
    let limit = page_limit(q.limit)?;
    let filter = mandate_store::AgentFilter {
        organization: None,
        status: parse_filter("status", q.status.as_deref())?,
        mandate_status: parse_filter("mandate_status", q.mandate_status.as_deref())?,
        search: q.q.as_deref().filter(|q| !q.trim().is_empty()),
    };
    let rows = ra::agents::list(
        &state.node.store,
        &caller,
        filter,
        q.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = next_cursor(&rows, limit, |r| &r.agent.id);
    let items = rows
        .into_iter()
        .map(|o| view_of(&state, o))
        .collect::<Result<_, _>>()?;
    Ok(Json(super::Page { items, next_cursor }))
}

async fn view(state: &AppState, id: &str) -> Result<AgentView, ApiError> {
    let overview = state
        .node
        .store
        .agent_overview(id)
        .await
        .map_err(CaError::from)?
        .ok_or_else(|| ApiError::from(CaError::NotFound(format!("agent {id}"))))?;
    view_of(state, overview)
}

fn view_of(state: &AppState, o: AgentOverview) -> Result<AgentView, ApiError> {
    let mandate: Value = serde_json::from_str(&o.latest.mandate_json)
        .map_err(|e| CaError::Internal(format!("stored mandate: {e}")))?;
    let row = o.agent;
    Ok(AgentView {
        dns_name: state.node.issuer.dns_name(&row.id, &row.organization),
        agent_id: row.id,
        name: row.name,
        organization: row.organization,
        status: row.status,
        mandate,
        mandate_version: o.latest.version,
        mandate_status: o.latest.status,
        approved_mandate_version: o.approved_version,
        registered_by: row.created_by,
        created_at: crate::rfc3339(row.created_at),
        updated_at: crate::rfc3339(row.updated_at),
        approvals: None,
    })
}

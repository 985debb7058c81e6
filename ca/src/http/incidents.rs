//! Incidents the scoring loop opened, and their human sign-off.

use axum::Json;
use axum::extract::State;
use mandate_store::IncidentRow;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Caller, OptionalJson, page_limit};
use crate::{CaError, ra};

use super::roles::READERS;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// An incident as the API shows it.
#[derive(Serialize)]
pub struct IncidentView {
    id: i64,
    agent_id: String,
    kind: String,
    status: String,
    #[serde(serialize_with = "crate::ser_score")]
    risk_score: f64,
    threshold: f64,
    contributions: serde_json::Value,
    event_id: Option<i64>,
    kill_switch_id: Option<i64>,
    created_at: String,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<String>,
    resolution: Option<String>,
    /// A mandate breach's reasons: `[{code, limit, requested}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<serde_json::Value>,
    /// Whether its response is the kill switch (it must be resolved before the agent is
    /// reinstated).
    revokes: bool,
    /// While a second compliance person's approval of the resolution is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals: Option<serde_json::Value>,
}

fn view(r: IncidentRow) -> IncidentView {
    IncidentView {
        id: r.id,
        agent_id: r.agent_id,
        kind: r.kind,
        status: r.status,
        risk_score: r.score,
        threshold: r.threshold,
        contributions: crate::round_scores(r.contributions),
        event_id: r.event_id,
        kill_switch_id: r.kill_switch_id,
        created_at: crate::rfc3339(r.created_at_ms / 1000),
        acknowledged_by: r.acknowledged_by,
        acknowledged_at: r.acknowledged_at.map(crate::rfc3339),
        resolved_by: r.resolved_by,
        resolved_at: r.resolved_at.map(crate::rfc3339),
        resolution: r.resolution,
        reasons: r.reasons,
        revokes: r.revokes,
        approvals: None,
    }
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::bad_request("an incident id is a positive integer"))
}

/// `?agent_id=&status=&limit=&cursor=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    agent_id: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/incidents`: newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(READERS)?;
    if let Some(s) = &q.status
        && !["open", "acknowledged", "resolved"].contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "status must be open, acknowledged or resolved",
        ));
    }
    let limit = page_limit(q.limit)?;
    let rows = state
        .node
        .store
        .incidents(
            caller.org_filter(),
            q.agent_id.as_deref(),
            q.status.as_deref(),
            super::number_cursor(q.cursor.as_deref(), 0, 1)?,
            limit,
        )
        .await
        .map_err(CaError::from)?;
    let next_cursor = super::next_number_cursor(&rows, limit, |r| r.id);
    let items: Vec<IncidentView> = rows.into_iter().map(view).collect();
    Ok(Json(serde_json::json!(super::Page { items, next_cursor })))
}

/// `GET /v1/incidents/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IncidentView>, ApiError> {
    caller.require(READERS)?;
    let id = parse_id(&id)?;
    let row = ra::tenant::incident(&state.node.store, &caller, id).await?;
    Ok(Json(view(row)))
}

/// Body of acknowledge.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Acknowledge {}

/// `POST /v1/incidents/{id}/acknowledge` (operator, compliance, admin).
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(_): OptionalJson<Acknowledge>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_id(&id)?;
    let row = ra::oversight::acknowledge(&state.node, &caller, id).await?;
    Ok(Json(view(row)))
}

/// Body of resolve: the sign-off note.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// What was found and why the agent may go on (1 to 1000 characters).
    resolution: String,
}

/// `POST /v1/incidents/{id}/resolve` (compliance): the human sign-off. An agent revoked
/// automatically can be reinstated, and certified again, only after it.
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Resolve>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_id(&id)?;
    let (row, awaiting) =
        ra::oversight::resolve(&state.node, &caller, id, &body.resolution).await?;
    let mut v = view(row);
    v.approvals = awaiting.map(
        |(recorded, required)| serde_json::json!({"recorded": recorded, "required": required}),
    );
    Ok(Json(v))
}

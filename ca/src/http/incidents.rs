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
#[openapi(
    paths(list, get_one, acknowledge, resolve),
    components(schemas(Acknowledge))
)]
pub struct Doc;

/// The kind of an incident ([`mandate_store::IncidentKind`]).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the kind is text at run time"
)]
pub(crate) enum IncidentKindDoc {
    /// The score passed the warning (circuit breaker) threshold.
    RiskWarning,
    /// The score passed the auto-revoke threshold: the agent's certificates are revoked.
    AutoRevocation,
    /// A reported event broke the approved mandate.
    MandateBreach,
}

/// Where an incident stands.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the status is text at run time"
)]
enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

/// How the event broke the mandate (as the breach stored it: incidents opened before soft
/// limits existed carry no enforcement).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the reasons are JSON at run time"
)]
struct BreachReason {
    #[schema(value_type = crate::behaviour::ReasonCode, inline)]
    code: String,
    /// The limit, as text.
    limit: String,
    /// What the event did, as text.
    requested: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(value_type = crate::behaviour::EnforcementDoc, inline)]
    enforcement: String,
}

/// An example incident, as answered.
fn example_incident(status: &str) -> serde_json::Value {
    let acknowledged = status != "open";
    let resolved = status == "resolved";
    let some = |b: bool, v: serde_json::Value| if b { v } else { serde_json::Value::Null };
    serde_json::json!({
        "id": 17, "agent_id": "bot-1", "kind": "mandate_breach", "status": status,
        "risk_score": 0.91, "threshold": 0.9,
        "contributions": [{"feature": "size", "value": 1.0, "weight": 0.5, "contribution": 0.5,
                           "observed": "60000", "expected": "p99 48000"}],
        "event_id": 1042, "kill_switch_id": 3, "created_at": "2026-12-07T10:00:01Z",
        "acknowledged_by": some(acknowledged, "key_7f3a9c".into()),
        "acknowledged_at": some(acknowledged, "2026-12-07T10:02:00Z".into()),
        "resolved_by": some(resolved, "key_c0ffee".into()),
        "resolved_at": some(resolved, "2026-12-07T11:00:00Z".into()),
        "resolution": some(resolved, "fat-finger size; limit confirmed with the desk".into()),
        "reasons": [{"code": "exceeds_scope_size", "limit": "50000 EUR",
                     "requested": "60000 EUR", "enforcement": "hard"}],
        "revokes": true
    })
}

/// An incident as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Incident)]
pub struct IncidentView {
    id: i64,
    agent_id: String,
    #[schema(value_type = IncidentKindDoc, inline)]
    kind: String,
    #[schema(value_type = IncidentStatus, inline)]
    status: String,
    /// The score that opened it.
    #[serde(serialize_with = "crate::ser_score")]
    risk_score: f64,
    /// The threshold it passed.
    threshold: f64,
    /// Why: each feature's part in the score.
    #[schema(schema_with = crate::behaviour::contributions)]
    contributions: serde_json::Value,
    /// The event that opened it.
    #[schema(required = true)]
    event_id: Option<i64>,
    /// The kill switch that revoked the agent.
    #[schema(required = true)]
    kill_switch_id: Option<i64>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true)]
    acknowledged_by: Option<String>,
    #[schema(format = DateTime, required = true)]
    acknowledged_at: Option<String>,
    #[schema(required = true)]
    resolved_by: Option<String>,
    #[schema(format = DateTime, required = true)]
    resolved_at: Option<String>,
    /// The sign-off's note.
    #[schema(required = true)]
    resolution: Option<String>,
    /// mandate_breach only: how the event broke the mandate.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<BreachReason>, inline)]
    reasons: Option<serde_json::Value>,
    /// Whether its response is the kill switch (auto_revocation; mandate_breach with onBreach
    /// revoke): resolve it before reinstating.
    revokes: bool,
    /// Only while a second compliance person's approval is missing (approvals_required = 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema_refs::approvals)]
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
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// Only this agent's incidents.
    agent_id: Option<String>,
    /// Only incidents in this status.
    #[param(value_type = Option<IncidentStatus>, inline)]
    status: Option<String>,
    /// Page size (default 50, at most 100).
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/incidents`: newest first.
#[utoipa::path(get, path = "/v1/incidents", operation_id = "listIncidents", tag = "incidents",
    summary = "List incidents, newest first",
    description = "Roles: operator, compliance, auditor, admin. Only incidents of the caller's \
        organization's agents (CA staff: all).",
    security(("apiKey" = [])), params(IncidentQuery),
    responses((status = 200, description = "page", body = super::Page<IncidentView>,
        example = json!({"items": [example_incident("acknowledged")], "next_cursor": "17"}))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Json<super::Page<IncidentView>>, ApiError> {
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
    Ok(Json(super::Page { items, next_cursor }))
}

/// `GET /v1/incidents/{id}`.
#[utoipa::path(get, path = "/v1/incidents/{id}", operation_id = "getIncident", tag = "incidents",
    summary = "One incident",
    description = "Roles: operator, compliance, auditor, admin. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = i64, Path, description = "incident id")),
    responses(
        (status = 200, description = "incident", body = IncidentView,
            example = json!(example_incident("open"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

/// The body of an acknowledgement: empty, or {}.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AcknowledgeIncident)]
pub struct Acknowledge {}

/// `POST /v1/incidents/{id}/acknowledge` (operator, compliance, admin).
#[utoipa::path(post, path = "/v1/incidents/{id}/acknowledge", operation_id = "acknowledgeIncident",
    tag = "incidents", summary = "Acknowledge an open incident",
    description = "Roles: operator, compliance, admin. Another organization's object answers \
        404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = i64, Path, description = "incident id")),
    request_body = ref("#/components/schemas/AcknowledgeIncident"),
    responses(
        (status = 200, description = "acknowledged", body = IncidentView,
            example = json!(example_incident("acknowledged"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// What was found and why the agent may go on: 1 to 1000 characters after trimming.
    #[schema(min_length = 1, max_length = 1000)]
    resolution: String,
}

/// `POST /v1/incidents/{id}/resolve` (compliance): the human sign-off. An agent revoked
/// automatically can be reinstated, and certified again, only after it.
#[utoipa::path(post, path = "/v1/incidents/{id}/resolve", operation_id = "resolveIncident",
    tag = "incidents",
    summary = "Resolve an incident: the human sign-off (an auto-revocation only once its \
        revocation happened)",
    description = "Roles: compliance. Another organization's object answers 404, as an unknown \
        one.",
    security(("apiKey" = [])), params(("id" = i64, Path, description = "incident id")),
    request_body = inline(Resolve),
    responses(
        (status = 200, description = "resolved", body = IncidentView,
            example = json!(example_incident("resolved"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

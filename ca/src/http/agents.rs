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
#[openapi(
    paths(
        register,
        list,
        get_one,
        submit_mandate,
        approve,
        reject,
        reinstate,
        mandates
    ),
    components(schemas(Decision, Reinstatement))
)]
pub struct Doc;

/// An example mandate, as stored and answered (canonical: defaults filled in).
fn example_mandate() -> Value {
    serde_json::json!({
        "agentId": "trading-bot-v2",
        "allowedCounterparties": ["exchange_a"],
        "allowedMarkets": ["EUR_USD", "BTC_EUR"],
        "allowedRegions": ["eu-west-1"],
        "autoRevokeThreshold": 0.85,
        "circuitBreakerThreshold": 0.75,
        "maxConsecutiveFailures": 3,
        "maxDailyVolume": {"amount": "1000000", "currency": "EUR"},
        "maxTransactionSize": {"amount": "50000", "currency": "EUR"},
        "operator": "Acme Trading GmbH",
        "operatorRegulatorId": "ESMA-001234",
        "permittedActions": ["trade_execution", "data_access"],
        "revocationTimeout": 15
    })
}

/// An example agent, as answered: its status, newest mandate version and that version's
/// status, and its approved version.
fn example_agent(status: &str, version: i64, mandate_status: &str, approved: Option<i64>) -> Value {
    serde_json::json!({
        "agent_id": "trading-bot-v2",
        "name": "Trading Bot v2",
        "organization": "acme-trading",
        "status": status,
        "dns_name": "trading-bot-v2.acme-trading.agents.example",
        "mandate": example_mandate(),
        "mandate_version": version,
        "mandate_status": mandate_status,
        "approved_mandate_version": approved,
        "registered_by": "71d1b803154531d9",
        "created_at": "2026-11-21T23:44:47Z",
        "updated_at": "2026-11-21T23:50:02Z"
    })
}

/// The example mandate's version 2: a larger transaction, one market.
fn example_mandate_v2() -> Value {
    let mut m = example_mandate();
    m["maxTransactionSize"] = serde_json::json!({"amount": "90000", "currency": "EUR"});
    m["allowedMarkets"] = serde_json::json!(["EUR_USD"]);
    m
}

/// An example answer to the first of two approvals.
fn awaiting(mut agent: Value) -> Value {
    agent["approvals"] = serde_json::json!({"recorded": 1, "required": 2});
    agent
}

/// Body of `POST /v1/agents`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// A DNS label: names the agent (`<agent>.<organization>.<agent domain>`).
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    agent_id: String,
    /// Display name.
    #[schema(min_length = 1, max_length = 128)]
    name: String,
    /// Defaults to the caller's organization (another one answers 404).
    #[serde(default)]
    organization: Option<String>,
    /// The requested mandate; its `operator` must be the organization's legal name or one of
    /// its legal entities (left out: the legal name).
    #[schema(schema_with = crate::schema_refs::mandate)]
    mandate: Value,
}

/// Body of `POST /v1/agents/{id}/mandate`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitMandate {
    /// The changed mandate (`agentId` may be left out and must equal the agent's if given).
    #[schema(schema_with = crate::schema_refs::mandate)]
    mandate: Value,
}

/// Body of `POST /v1/agents/{id}/approve` and `/reject`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MandateDecision)]
pub struct Decision {
    /// The version being decided: required while a version is pending, so nobody decides on
    /// a version they did not read (or one replaced after they read it).
    version: Option<i64>,
    /// For the record: at most 1000 characters.
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

/// Body of `POST /v1/agents/{id}/reinstate`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reinstatement {
    /// For the record: at most 1000 characters.
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

/// The agent view: the same shape from every agent endpoint.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Agent)]
pub struct AgentView {
    /// A DNS label.
    agent_id: String,
    /// Display name.
    name: String,
    /// The organization it belongs to.
    organization: String,
    /// pending_approval: no version approved yet; active: has an approved version;
    /// suspended: kill switch pulled, no issuance until reinstated.
    status: mandate_store::AgentStatus,
    /// `<agent>.<organization>.<agent domain>`: the name its certificates carry.
    dns_name: String,
    /// The newest mandate version (pending or approved).
    #[schema(schema_with = crate::schema_refs::mandate)]
    mandate: Value,
    /// The newest version's number.
    mandate_version: i64,
    /// The newest version's state.
    mandate_status: MandateStatus,
    /// The version certificates are issued with; null before one is approved.
    #[schema(required = true)]
    approved_mandate_version: Option<i64>,
    /// API key id of the registrant.
    registered_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Only in the answer to an approval that awaits another person's
    /// (`approvals_required = 2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Approvals, required = false)]
    approvals: Option<Approvals>,
}

/// Approvals of the pending mandate version (or reinstatement) so far
/// (`approvals_required = 2`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Approvals {
    /// Approvals recorded.
    recorded: i64,
    /// Approvals needed.
    required: i64,
}

/// `POST /v1/agents` (operator): registers an agent of the caller's organization with its
/// requested mandate.
#[utoipa::path(post, path = "/v1/agents", operation_id = "registerAgent", tag = "agents",
    summary = "Register an agent with its requested mandate",
    description = "Roles: operator (a person of an organization). organization defaults to the \
        caller's; naming another answers 404. The mandate's operator must be the organization's \
        legal_name or one of its legal_entities (422 invalid-mandate); left out, it is the legal \
        name.",
    security(("apiKey" = [])), request_body = RegisterAgent,
    responses(
        (status = 201, description = "registered", body = AgentView,
            example = json!(example_agent("pending_approval", 1, "pending_approval", None))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(post, path = "/v1/agents/{id}/mandate", operation_id = "submitMandate",
    tag = "agents", summary = "Submit a changed mandate (pending approval)",
    description = "Roles: operator. The mandate's operator must be the organization's legal_name \
        or one of its legal_entities (left out: the legal name). Another organization's agent \
        answers 404.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = SubmitMandate,
    responses(
        (status = 201, description = "submitted: the new version is pending approval",
            body = AgentView,
            example = json!(example_agent("active", 2, "pending_approval", Some(1)))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(post, path = "/v1/agents/{id}/approve", operation_id = "approveMandate",
    tag = "agents",
    summary = "Approve the pending mandate version, which the body names (four eyes between \
        people; one or two approvers)",
    description = "Roles: compliance, a named person who neither registered the agent nor \
        requested the pending version (403 segregation-of-duties, compared by person). Body \
        {version, comment}: version is required while a version is pending (400 invalid-request \
        naming it otherwise; read GET /v1/agents/{id}/mandates first); another version than the \
        pending one is 409 wrong-state. With approvals_required = 2 the first approval leaves the \
        version pending_approval and the answer carries approvals {recorded: 1, required: 2}; the \
        same person again: 409 conflict. Approving never lifts a suspension (POST \
        /v1/agents/{id}/reinstate does); with nothing pending: 409 wrong-state. Another \
        organization's agent answers 404.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body(content = ref("#/components/schemas/MandateDecision"),
        description = "the version decided on, and a comment for the record (optional: an \
            empty body is none)"),
    responses(
        (status = 200, description = "decided (or an approval recorded)", body = AgentView,
            example = json!(example_agent("active", 1, "approved", Some(1)))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: ApiPath<String>,
    body: OptionalJson<Decision>,
) -> Result<Json<AgentView>, ApiError> {
    decide(state, caller, id, body, true).await
}

/// `POST /v1/agents/{id}/reject` (compliance; another person than the requester).
#[utoipa::path(post, path = "/v1/agents/{id}/reject", operation_id = "rejectMandate",
    tag = "agents", summary = "Reject the pending mandate",
    description = "Roles: compliance, as for approve. Body {version, comment}: version required. \
        One rejection is enough.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body(content = ref("#/components/schemas/MandateDecision"),
        description = "the version decided on, and a comment for the record (optional: an \
            empty body is none)"),
    responses(
        (status = 200, description = "rejected", body = AgentView,
            example = json!(example_agent("active", 2, "rejected", Some(1)))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(post, path = "/v1/agents/{id}/reinstate", operation_id = "reinstateAgent",
    tag = "agents",
    summary = "Lift a suspension (kill switch, or an automatic revocation once its incident is \
        resolved); a pending mandate version stays pending",
    description = "Roles: compliance, a named person other than the one who registered the agent \
        (403 segregation-of-duties); with approvals_required = 2, two different people (the \
        first answer carries approvals {recorded: 1, required: 2}). Optional body {comment}. 409 \
        wrong-state: not suspended, no approved mandate, or an auto-revocation incident not yet \
        resolved. Another organization's agent answers 404.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body(content = ref("#/components/schemas/Reinstatement"),
        description = "a comment for the record (optional: an empty body is none)"),
    responses(
        (status = 200, description = "reinstated (or an approval recorded)", body = AgentView,
            example = json!(awaiting(example_agent("suspended", 1, "approved", Some(1))))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = MandateVersion)]
pub struct MandateVersionView {
    /// 1, 2, ...
    version: i64,
    /// Its state.
    status: mandate_store::MandateStatus,
    /// The mandate of this version.
    #[schema(schema_with = crate::schema_refs::mandate)]
    mandate: Value,
    /// API key id of the requester.
    requested_by: String,
    #[schema(format = DateTime)]
    requested_at: String,
    /// API key id that approved or rejected it; null until decided.
    #[schema(required = true)]
    decided_by: Option<String>,
    #[schema(format = DateTime, required = true)]
    decided_at: Option<String>,
    /// Only for the pending version: its changes against the approved one (empty when none is
    /// approved).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = mandate_changes)]
    changes: Option<Vec<mandate_policy::FieldChange>>,
}

/// An array of `MandateChange`s (`mandate_policy::FieldChange`, whose schema is written).
fn mandate_changes() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema_refs::mandate_change())
        .description(Some(
            "Only for the pending version: its changes against the approved one (empty when \
             none is approved).",
        ))
        .build()
}

/// The answer of `GET /v1/agents/{id}/mandates`: one page, always the whole list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MandateVersions {
    /// The agent.
    agent_id: String,
    /// Newest first.
    items: Vec<MandateVersionView>,
    /// Always null: this list is never paged.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `GET /v1/agents/{id}/mandates`: every version, newest first; the pending one with its
/// field-by-field changes against the approved one.
#[utoipa::path(get, path = "/v1/agents/{id}/mandates", operation_id = "listMandateVersions",
    tag = "agents",
    summary = "The agent's mandate versions, newest first; a pending one with its field-by-field \
        changes against the approved one",
    description = "Roles: readers, or the agent's own key. Another organization's object answers \
        404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 200, description = "versions", body = inline(MandateVersions),
            example = json!({"agent_id": "trading-bot-v2", "next_cursor": null, "items": [
                {"version": 2, "status": "pending_approval",
                 "mandate": example_mandate_v2(),
                 "requested_by": "71d1b803154531d9", "requested_at": "2026-12-07T09:00:00Z",
                 "decided_by": null, "decided_at": null,
                 "changes": [
                    {"field": "maxTransactionSize", "before": "50000 EUR", "after": "90000 EUR",
                     "direction": "widened"},
                    {"field": "allowedMarkets", "before": "EUR_USD,BTC_EUR", "after": "EUR_USD",
                     "direction": "narrowed"}]},
                {"version": 1, "status": "approved", "mandate": example_mandate(),
                 "requested_by": "71d1b803154531d9", "requested_at": "2026-11-21T23:44:47Z",
                 "decided_by": "c0a4e1f2b3d49876", "decided_at": "2026-11-21T23:50:02Z"}]})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn mandates(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MandateVersions>, ApiError> {
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
    Ok(Json(MandateVersions {
        agent_id: id,
        items,
        next_cursor: None,
    }))
}

/// `GET /v1/agents/{id}`.
#[utoipa::path(get, path = "/v1/agents/{id}", operation_id = "getAgent", tag = "agents",
    summary = "One agent",
    description = "Roles: readers, or the agent's own key. Another organization's object answers \
        404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 200, description = "agent", body = AgentView,
            example = json!(example_agent("active", 1, "approved", Some(1)))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentView>, ApiError> {
    let o = ra::agents::get(&state.node.store, &caller, &id).await?;
    Ok(Json(view_of(&state, o)?))
}

/// The filters and page of `GET /v1/agents`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// Page size (default 50, at most 100).
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only agents in this state (case-insensitive).
    #[param(value_type = Option<mandate_store::AgentStatus>)]
    pub status: Option<String>,
    /// Only agents whose latest mandate version is in this state (case-insensitive);
    /// pending_approval lists what waits for compliance.
    #[param(value_type = Option<MandateStatus>)]
    pub mandate_status: Option<String>,
    /// Only agents whose id or name contains this text (case-insensitive).
    #[param(max_length = 100)]
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
#[utoipa::path(get, path = "/v1/agents", operation_id = "listAgents", tag = "agents",
    summary = "List agents",
    description = "Roles: operator, compliance, auditor, admin. The caller's organization's \
        agents (CA staff: all).",
    security(("apiKey" = [])), params(AgentQuery),
    responses((status = 200, description = "page", body = super::Page<AgentView>,
        example = json!({"items": [example_agent("active", 1, "approved", Some(1))],
            "next_cursor": null}))))]
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

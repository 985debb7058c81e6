use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mandate_policy::{Mandate, is_dns_label};
use mandate_store::{
    AgentOverview, AgentRow, AgentStatus, AuditEvent, MandateStatus, NewAgent, Role,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiQuery, AppState, Caller, OptionalJson, next_cursor, page_limit};
use crate::CaError;

use super::roles::READERS;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    agent_id: String,
    name: String,
    organization: String,
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
    /// The version being decided; defaults to the pending one. Naming it guards against
    /// approving a version that was replaced after the officer read it.
    version: Option<i64>,
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
}

#[derive(Serialize)]
pub struct AgentList {
    agents: Vec<AgentView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

/// `POST /v1/agents` (operator): registers an agent with its requested mandate.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterAgent>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    caller.require(&[Role::Operator])?;
    if !is_dns_label(&req.agent_id) {
        return Err(ApiError::bad_request(
            "agent_id must be a DNS label: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'",
        ));
    }
    if !is_dns_label(&req.organization) {
        return Err(ApiError::bad_request(
            "organization must be a DNS label (it names the agent under the agent domain)",
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must be 1 to 128 printable characters",
        ));
    }
    let mandate = parse_mandate(req.mandate, &req.agent_id)?;
    let dns = state.node.issuer.dns_name(&req.agent_id, &req.organization);
    if dns.len() > 253 {
        return Err(ApiError::bad_request(
            "agent_id.organization.agent_domain is longer than a DNS name may be",
        ));
    }
    let mandate_json = canonical(&mandate)?;
    let store = &state.node.store;
    store
        .create_agent(
            &NewAgent {
                id: req.agent_id.clone(),
                name: name.to_owned(),
                organization: req.organization.clone(),
                created_by: caller.key_id.clone(),
                mandate_json,
            },
            &AuditEvent::new(
                &caller.key_id,
                "agent.registered",
                &req.agent_id,
                json!({"organization": req.organization, "mandate_version": 1}),
            ),
        )
        .await
        .map_err(CaError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &req.agent_id).await?),
    ))
}

/// `POST /v1/agents/{id}/mandate` (operator): submits a changed mandate as a new version.
pub async fn submit_mandate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SubmitMandate>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    caller.require(&[Role::Operator])?;
    find_agent(&state, &id).await?;
    let mandate = parse_mandate(req.mandate, &id)?;
    let json = canonical(&mandate)?;
    state
        .node
        .store
        .submit_mandate(&id, &json, &caller.key_id)
        .await
        .map_err(CaError::from)?;
    Ok((StatusCode::CREATED, Json(view(&state, &id).await?)))
}

/// `POST /v1/agents/{id}/approve` (compliance; not the registrant).
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: OptionalJson<Decision>,
) -> Result<Json<AgentView>, ApiError> {
    decide(state, caller, id, body, true).await
}

/// `POST /v1/agents/{id}/reject` (compliance; not the registrant).
pub async fn reject(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: OptionalJson<Decision>,
) -> Result<Json<AgentView>, ApiError> {
    decide(state, caller, id, body, false).await
}

async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<Decision>,
    approve: bool,
) -> Result<Json<AgentView>, ApiError> {
    caller.require(super::roles::DECIDERS)?;
    if let Some(c) = &req.comment
        && c.chars().count() > 1000
    {
        return Err(ApiError::bad_request(
            "comment is longer than 1000 characters",
        ));
    }
    let store = &state.node.store;
    let agent = find_agent(&state, &id).await?;
    let mandates = store.mandates(&id).await.map_err(CaError::from)?;
    let pending = mandates
        .iter()
        .find(|m| m.status == MandateStatus::PendingApproval);
    let Some(pending) = pending else {
        // A suspended agent (kill switch) with nothing pending: approving reinstates it with
        // its approved mandate. This is the compliance officer's re-approval.
        if approve && agent.status == AgentStatus::Suspended && req.version.is_none() {
            store
                .reinstate_agent(
                    &id,
                    &AuditEvent::new(
                        &caller.key_id,
                        "agent.reinstated",
                        &id,
                        json!({"comment": req.comment}),
                    ),
                )
                .await
                .map_err(CaError::from)?;
            state.node.agent_changed(&id);
            return Ok(Json(view(&state, &id).await?));
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong-state",
            format!("agent {id} has no mandate pending approval"),
        ));
    };
    if let Some(v) = req.version
        && v != pending.version
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong-state",
            format!(
                "mandate version {v} is not pending; the pending version is {}",
                pending.version
            ),
        ));
    }
    // Segregation of duties: whoever registered the agent or submitted this version may not
    // also approve it.
    if caller.key_id == pending.created_by || caller.key_id == agent.created_by {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "segregation-of-duties",
            "the key that registered this agent or submitted this mandate may not decide on it",
        ));
    }
    let action = if approve {
        "mandate.approved"
    } else {
        "mandate.rejected"
    };
    store
        .decide_mandate(
            &id,
            pending.version,
            approve,
            &caller.key_id,
            req.comment.as_deref(),
            &AuditEvent::new(
                &caller.key_id,
                action,
                &id,
                json!({"version": pending.version, "comment": req.comment}),
            ),
        )
        .await
        .map_err(CaError::from)?;
    state.node.agent_changed(&id);
    Ok(Json(view(&state, &id).await?))
}

/// `GET /v1/agents/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    caller.require_or_own_agent(READERS, &id)?;
    Ok(Json(view(&state, &id).await?))
}

/// `GET /v1/agents?limit=&after=`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<super::PageQuery>,
) -> Result<Json<AgentList>, ApiError> {
    caller.require(READERS)?;
    let limit = page_limit(q.limit)?;
    let rows = state
        .node
        .store
        .list_agent_overviews(q.after.as_deref(), limit)
        .await
        .map_err(CaError::from)?;
    let next_after = next_cursor(&rows, limit, |r| &r.agent.id);
    let agents = rows
        .into_iter()
        .map(|o| view_of(&state, o))
        .collect::<Result<_, _>>()?;
    Ok(Json(AgentList { agents, next_after }))
}

fn parse_mandate(mut value: Value, agent_id: &str) -> Result<Mandate, ApiError> {
    let Value::Object(map) = &mut value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-mandate",
            "mandate must be a JSON object (see docs/MANDATE.md)",
        ));
    };
    // The agent id is already in the request; the mandate may leave it out.
    map.entry("agentId")
        .or_insert_with(|| Value::String(agent_id.to_owned()));
    let mandate: Mandate = serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-mandate", e.to_string()))?;
    if mandate.agent_id != agent_id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-mandate",
            format!(
                "mandate.agentId {:?} differs from agent_id {agent_id:?}",
                mandate.agent_id
            ),
        ));
    }
    // X.520 bounds organizationName at 64 characters, and the operator becomes the subject's O.
    if mandate.operator.chars().count() > 64 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-mandate",
            "mandate.operator must be at most 64 characters (it is the certificate's O)",
        ));
    }
    Ok(mandate)
}

fn canonical(mandate: &Mandate) -> Result<String, ApiError> {
    serde_json::to_string(mandate)
        .map_err(|e| ApiError::from(CaError::Internal(format!("mandate to JSON: {e}"))))
}

async fn find_agent(state: &AppState, id: &str) -> Result<AgentRow, ApiError> {
    state
        .node
        .store
        .agent(id)
        .await
        .map_err(CaError::from)?
        .ok_or_else(|| ApiError::from(CaError::NotFound(format!("agent {id}"))))
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
    })
}

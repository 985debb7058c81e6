//! Events, pre-trade checks, risk scores and baselines.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_policy::{Denial, OrderJson};
use mandate_store::{BaselineRow, Role};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, AppState, Caller, OptionalJson};
use crate::behaviour::{EventInput, IngestOutcome, RiskView};
use crate::{CaError, ra};

use super::roles::READERS;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;
/// Who may report events or ask for a pre-trade check for any agent.
const TRADING: &[Role] = &[Role::Operator, Role::Compliance, Role::Admin];

/// One event, or an array of them.
pub enum Events {
    /// `[{...}, ...]`.
    Batch(Vec<EventInput>),
    /// `{...}`.
    One(Box<EventInput>),
}

/// Told apart by the first token, not `#[serde(untagged)]`: that would try both and answer
/// "did not match any variant" instead of what is wrong, and where.
impl<'de> Deserialize<'de> for Events {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Events, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Events;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event object, or an array of them")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Events, A::Error> {
                Vec::<EventInput>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Events::Batch)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Events, A::Error> {
                EventInput::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|e| Events::One(Box::new(e)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `POST /v1/events`: one event or a batch (at most 1000), all stored or none.
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Events>,
) -> Result<(StatusCode, Json<IngestOutcome>), ApiError> {
    let events = match body {
        Events::Batch(v) => v,
        Events::One(e) => vec![*e],
    };
    let outcome = ra::oversight::report_events(&state.node, &caller, events).await?;
    Ok((StatusCode::CREATED, Json(outcome)))
}

/// A refusal reason.
#[derive(Serialize)]
pub struct Reason {
    code: &'static str,
    limit: String,
    requested: String,
}

/// The answer to a pre-trade check.
#[derive(Serialize)]
pub struct Decision {
    /// The decision's name, for the order's events (`metadata.decision_id`) and the audit.
    decision_id: String,
    allowed: bool,
    /// A what-if for another time than now: never a permission to act.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hypothetical: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<Reason>,
    /// Soft limits the order breaks: allowed, flagged (an incident opens when it is reported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    soft_breaches: Vec<Reason>,
}

/// Splits denials into refusals (hard) and soft breaches.
pub(crate) fn split(denials: Vec<Denial>) -> (Vec<Denial>, Vec<Denial>) {
    denials.into_iter().partition(Denial::is_hard)
}

pub(crate) fn reasons(denials: Vec<Denial>) -> Vec<Reason> {
    denials
        .into_iter()
        .map(|d| Reason {
            code: d.code,
            limit: d.limit,
            requested: d.requested,
        })
        .collect()
}

pub(crate) use crate::behaviour::When;

/// Runs the pre-trade check of `order` for `agent_id`, asked by `caller`.
pub(crate) async fn check(
    state: &AppState,
    caller: &Caller,
    agent_id: &str,
    order: &OrderJson,
    when: When,
) -> Result<crate::behaviour::Decided, ApiError> {
    Ok(state
        .node
        .behaviour
        .pretrade(agent_id, order, when, &caller.key_id)
        .await?)
}

/// `POST /v1/agents/{id}/preflight`: may the agent place this order now? With a `timestamp`
/// further from the daemon's clock than `policy.max_clock_skew_secs`, the answer is a what-if
/// for that time, marked `"hypothetical": true` (the volume of that trading day, the hours at
/// that time); `sign` never accepts such an order. Every answer names its decision, which the
/// order's events refer to.
pub async fn preflight(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(order): ApiJson<OrderJson>,
) -> Result<Json<Decision>, ApiError> {
    ra::tenant::check_agent_or_own(&state.node, &caller, TRADING, &id).await?;
    let decided = check(&state, &caller, &id, &order, When::NowOrWhatIf).await?;
    let (hard, soft) = split(decided.denials);
    Ok(Json(Decision {
        decision_id: decided.record.id,
        allowed: hard.is_empty(),
        hypothetical: decided.hypothetical,
        reasons: reasons(hard),
        soft_breaches: reasons(soft),
    }))
}

/// `GET /v1/decisions/{id}`: a pre-trade decision and the events that followed it.
pub async fn decision(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ra::oversight::DecisionView>, ApiError> {
    Ok(Json(
        ra::oversight::decision(&state.node, &caller, &id).await?,
    ))
}

/// `GET /v1/agents/{id}/risk-score`.
pub async fn risk_score(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RiskView>, ApiError> {
    ra::tenant::agent_or_own(&state.node.store, &caller, READERS, &id).await?;
    Ok(Json(state.node.behaviour.risk(&id).await?))
}

/// `GET /v1/agents/{id}/usage`: what the agent has used of its stateful limits today (daily
/// volume, daily loss, messages in the last second, failures in a row), beside the limits.
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<crate::behaviour::UsageView>, ApiError> {
    ra::tenant::agent_or_own(&state.node.store, &caller, READERS, &id).await?;
    Ok(Json(state.node.behaviour.usage(&id).await?))
}

/// A baseline version.
#[derive(Serialize)]
pub struct BaselineView {
    agent_id: String,
    version: i64,
    status: String,
    baseline: serde_json::Value,
    learnt_by: String,
    created_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    /// While a second compliance person's approval is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals: Option<serde_json::Value>,
}

fn baseline_view(b: BaselineRow) -> BaselineView {
    BaselineView {
        agent_id: b.agent_id,
        version: b.version,
        status: b.status,
        baseline: b.baseline,
        learnt_by: b.learnt_by,
        created_at: crate::rfc3339(b.created_at),
        decided_by: b.decided_by,
        decided_at: b.decided_at.map(crate::rfc3339),
        approvals: None,
    }
}

/// `GET /v1/agents/{id}/baseline`: every version, newest first.
pub async fn list_baselines(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = &state.node.store;
    ra::tenant::agent_or_own(store, &caller, READERS, &id).await?;
    let rows = store.baselines(&id).await.map_err(CaError::from)?;
    let versions: Vec<BaselineView> = rows.into_iter().map(baseline_view).collect();
    Ok(Json(
        serde_json::json!({ "agent_id": id, "items": versions, "next_cursor": null }),
    ))
}

/// `POST /v1/agents/{id}/baseline`: learn a baseline now from the observation window.
pub async fn learn(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<BaselineView>), ApiError> {
    let row = ra::oversight::learn(&state.node, &caller, &id).await?;
    Ok((StatusCode::CREATED, Json(baseline_view(row))))
}

/// Body of approve/reject: which version (default: the pending one).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BaselineDecision {
    version: Option<i64>,
}

/// `POST /v1/agents/{id}/baseline/approve` (compliance).
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: ApiPath<String>,
    body: OptionalJson<BaselineDecision>,
) -> Result<Json<BaselineView>, ApiError> {
    decide_baseline(state, caller, id, body, true).await
}

/// `POST /v1/agents/{id}/baseline/reject` (compliance).
pub async fn reject(
    state: State<AppState>,
    caller: Caller,
    id: ApiPath<String>,
    body: OptionalJson<BaselineDecision>,
) -> Result<Json<BaselineView>, ApiError> {
    decide_baseline(state, caller, id, body, false).await
}

async fn decide_baseline(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<BaselineDecision>,
    approve: bool,
) -> Result<Json<BaselineView>, ApiError> {
    let (row, awaiting) =
        ra::oversight::decide_baseline(&state.node, &caller, &id, body.version, approve).await?;
    let mut v = baseline_view(row);
    v.approvals = awaiting.map(
        |(recorded, required)| serde_json::json!({"recorded": recorded, "required": required}),
    );
    Ok(Json(v))
}

/// `POST /v1/agents/{id}/overrides` (compliance; four eyes per the organization's rule): `201`
/// with the override in force, or `202` with the approvals so far when another compliance
/// person must make the same request.
pub async fn grant_override(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ra::overrides::OverrideRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    match ra::overrides::grant(&state.node.store, &caller, &id, req).await? {
        ra::overrides::Granted::InForce(row) => {
            state.node.behaviour.touched.touch(&id);
            let v = serde_json::to_value(crate::behaviour::OverrideView::from(&row))
                .map_err(|e| CaError::Internal(e.to_string()))?;
            Ok((StatusCode::CREATED, Json(v)))
        }
        ra::overrides::Granted::Awaiting { recorded, required } => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"status": "awaiting_approval",
                                    "approvals": {"recorded": recorded, "required": required}})),
        )),
    }
}

/// `GET /v1/agents/{id}/overrides` (readers, or the agent's own key): newest first.
pub async fn overrides(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = ra::overrides::list(&state.node.store, &caller, &id).await?;
    let items: Vec<crate::behaviour::OverrideView> = rows
        .iter()
        .map(crate::behaviour::OverrideView::from)
        .collect();
    Ok(Json(serde_json::json!(super::Page::whole(items))))
}

/// `POST /v1/agents/{id}/overrides/{oid}/end` (compliance): ends an override before its time.
pub async fn end_override(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, oid)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    ra::overrides::end(&state.node.store, &caller, &id, oid).await?;
    state.node.behaviour.touched.touch(&id);
    Ok(StatusCode::NO_CONTENT)
}

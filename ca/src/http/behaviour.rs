//! Events, pre-trade checks, risk scores and baselines.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_policy::{Denial, OrderJson};
use mandate_store::{BaselineRow, Role};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, AppState, Caller, OptionalJson};
use crate::behaviour::{
    DecidedReason, EventInput, IngestOutcome, ReasonCode, RiskView, limit_overrides,
};
use crate::schema_refs as refs;
use crate::{CaError, ra};

use super::roles::READERS;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        ingest,
        preflight,
        risk_score,
        usage,
        decision,
        list_baselines,
        learn,
        approve,
        reject,
        grant_override,
        overrides,
        end_override
    ),
    components(schemas(BaselineDecision))
)]
pub struct Doc;

/// The body of a pre-trade check and of custodial signing: `#/components/schemas/Order` (the
/// schema of [`OrderJson`]), named so, and required (a bare `ref(..)` body would not be).
pub(crate) struct OrderBody;

impl utoipa::PartialSchema for OrderBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        refs::order().into()
    }
}

impl utoipa::ToSchema for OrderBody {}

/// An example decision id.
pub(crate) const EXAMPLE_DECISION: &str = "dec_0193a4b2c3d4e5f60718293a4b5c6d7e";

/// An example refusal reason, as answered.
fn example_reason() -> serde_json::Value {
    serde_json::json!({"code": "exceeds_scope_size", "limit": "50000 EUR", "requested": "60000 EUR"})
}

/// An example order, as a pre-trade check reads it.
fn example_order() -> serde_json::Value {
    serde_json::json!({"action": "trade_execution", "market": "BTC_EUR", "size": "60000",
                       "currency": "EUR", "side": "buy", "timestamp": 1796630400})
}

/// An example baseline version, as answered.
fn example_baseline_version(status: &str) -> serde_json::Value {
    let decided = status != "pending_approval";
    serde_json::json!({
        "agent_id": "bot-1", "version": 2, "status": status,
        "baseline": {
            "events": 1840, "window_start": "2026-11-30T00:00:00Z",
            "window_end": "2026-12-07T00:00:00Z", "size_p50": 1200.0, "size_p99": 48000.0,
            "hourly_mean": 21.5, "hourly_stddev": 6.2, "markets": {"BTC_EUR": 0.8, "ETH_EUR": 0.2},
            "active_hours": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.02, 0.06, 0.1, 0.1, 0.1, 0.1,
                             0.1, 0.1, 0.1, 0.1, 0.06, 0.04, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0],
            "regions": {"eu-west-1": 1.0}
        },
        "learnt_by": "key_7f3a9c", "created_at": "2026-12-07T09:40:00Z",
        "decided_by": if decided { serde_json::json!("key_c0ffee") } else { serde_json::Value::Null },
        "decided_at": if decided { serde_json::json!("2026-12-07T10:05:00Z") } else { serde_json::Value::Null }
    })
}

/// An example limit override, as answered.
fn example_override() -> serde_json::Value {
    serde_json::json!({
        "id": 7, "agent_id": "bot-1", "limit": "maxOrderQuantity", "market": "BTC_EUR",
        "value": "20", "reason": "index rebalance at the close",
        "granted_by": ["key_c0ffee", "key_d00d1e"], "starts_at": "2026-12-07T15:30:00Z",
        "expires_at": "2026-12-07T16:00:00Z", "ended_at": null, "ended_by": null, "in_force": true
    })
}

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

/// The body's schema: an `Event`, or an array of 1 to [`mandate_store::MAX_EVENTS_PER_BATCH`]
/// of them (`Event` is the schema of [`EventInput`]).
impl utoipa::PartialSchema for Events {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        OneOfBuilder::new()
            .item(refs::event())
            .item(
                ArrayBuilder::new()
                    .items(refs::event())
                    .min_items(Some(1))
                    .max_items(Some(mandate_store::MAX_EVENTS_PER_BATCH)),
            )
            .into()
    }
}

impl utoipa::ToSchema for Events {}

/// What `POST /v1/events` answers: the schema of [`IngestOutcome`] (serialized in
/// `behaviour/ingest.rs`), for the API document.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a type for the document's sake; the answer is an IngestOutcome"
)]
struct Reported {
    /// Events stored.
    accepted: usize,
    /// Each event's id and score, in the order sent.
    #[schema(inline)]
    events: Vec<ReportedEvent>,
    /// Incidents opened.
    #[schema(inline)]
    incidents: Vec<OpenedIncident>,
}

/// One stored event (`EventResult`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "a type for the document's sake")]
struct ReportedEvent {
    /// Its id.
    id: i64,
    /// Its anomaly score, 0 to 1; null before a baseline is approved (not monitored).
    #[schema(required = true)]
    score: Option<f64>,
    /// Present when the event broke the approved mandate: the pre-trade check's reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(inline)]
    breach: Vec<DecidedReason>,
}

/// An incident the report opened (`IncidentOpened`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "a type for the document's sake")]
struct OpenedIncident {
    /// Its id.
    id: i64,
    /// The agent.
    agent_id: String,
    #[schema(inline)]
    kind: super::incidents::IncidentKindDoc,
}

/// `POST /v1/events`: one event or a batch (at most 1000), all stored or none.
#[utoipa::path(post, path = "/v1/events", operation_id = "reportEvents", tag = "behaviour",
    summary = "Report agent events (one object or an array of 1 to 1000; all stored or none); \
        scores them against the approved baseline and opens incidents",
    description = "Roles: operator, compliance, admin; an agent key for its own events only. \
        Every agent named must be the caller's organization's: one that is not refuses the \
        whole request with 404, as an unknown one.",
    security(("apiKey" = [])), request_body = inline(Events),
    responses(
        (status = 201, description = "stored", body = inline(Reported),
            example = json!({
                "accepted": 2,
                "events": [
                    {"id": 1041, "score": 0.12},
                    {"id": 1042, "score": 0.91, "breach": [{"code": "exceeds_scope_size",
                        "limit": "50000 EUR", "requested": "60000 EUR", "enforcement": "hard"}]}
                ],
                "incidents": [{"id": 17, "agent_id": "bot-1", "kind": "mandate_breach"}]
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

/// Why the pre-trade check refuses an order (or, among soft breaches, flags it).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PreflightReason)]
pub struct Reason {
    #[schema(value_type = ReasonCode, inline)]
    code: &'static str,
    /// The limit, as text, e.g. 50000 EUR.
    limit: String,
    /// What was asked, as text.
    requested: String,
}

/// The answer to a pre-trade check (reasons left out when allowed).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// The decision's name: events of the order refer to it (`metadata.decision_id`);
    /// `GET /v1/decisions/{id}` shows it.
    #[schema(pattern = "^dec_[0-9a-f]{32}$")]
    decision_id: String,
    allowed: bool,
    /// Present (true) when the order's timestamp is further than
    /// `policy.max_clock_skew_secs` from the daemon's clock: a what-if for that time, never a
    /// permission.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hypothetical: bool,
    /// Every reason the order is refused (hard limits it breaks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<Reason>,
    /// Soft (version-2) limits the order breaks: allowed, flagged (an incident opens when it is
    /// reported).
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
#[utoipa::path(post, path = "/v1/agents/{id}/preflight", operation_id = "preflightOrder",
    tag = "behaviour",
    summary = "Pre-trade check: may the agent place this order now? Every reason for a refusal",
    description = "Roles: operator, compliance, admin, or the agent's own key. Another \
        organization's object answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = inline(OrderBody),
    responses(
        (status = 200, description = "decision (reasons left out when allowed)",
            body = inline(Decision),
            example = json!({"decision_id": EXAMPLE_DECISION, "allowed": false,
                             "reasons": [example_reason()]})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(get, path = "/v1/decisions/{id}", operation_id = "getDecision", tag = "behaviour",
    summary = "A pre-trade decision (preflight or sign) and the events that followed it: the \
        order naming it, and that order's fills and cancellation",
    description = "Roles: readers, or the agent's own key. Another organization's decision (or \
        another agent's, for an agent key) answers 404, as an unknown one.",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "decision id, dec_ and 32 hex digits")),
    responses(
        (status = 200, description = "the decision", body = inline(ra::oversight::DecisionView),
            example = json!({
                "decision_id": EXAMPLE_DECISION, "agent_id": "bot-1",
                "decided_at": "2026-12-07T10:00:00.123Z", "via": "preflight", "allowed": true,
                "hypothetical": false, "order": example_order(),
                "reasons": [{"code": "exceeds_order_quantity", "limit": "10",
                             "requested": "12", "enforcement": "soft"}],
                "decided_by": "key_7f3a9c",
                "events": [{"id": 1042, "at": 1796630401, "order_state": "new",
                            "client_order_id": "o-1", "market": "BTC_EUR", "side": "buy",
                            "quantity": "12", "price": "5000", "fill_quantity": null,
                            "fill_price": null, "decision_id": EXAMPLE_DECISION,
                            "realised_pnl": null}]
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(get, path = "/v1/agents/{id}/risk-score", operation_id = "getRiskScore",
    tag = "behaviour", summary = "The agent's risk score now, with its explanation",
    description = "Roles: readers, or the agent's own key. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 200, description = "risk score", body = RiskView,
            example = json!({
                "agent_id": "bot-1", "risk_score": 0.31, "risk_band": "low",
                "contributions": [{"feature": "size", "value": 0.62, "weight": 0.5,
                                   "contribution": 0.31, "observed": "48000",
                                   "expected": "p99 48000"}],
                "computed_at": "2026-12-07T10:00:00Z", "baseline_version": 2,
                "warning_threshold": 0.7, "auto_revoke_threshold": 0.9
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(get, path = "/v1/agents/{id}/usage", operation_id = "getUsage", tag = "behaviour",
    summary = "What the agent has used of its stateful limits (daily volume and loss, messages \
        in the last second, failures in a row, open orders, net positions, order-to-trade \
        flow), beside the limits",
    description = "Roles: readers, or the agent's own key. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 200, description = "usage", body = inline(crate::behaviour::UsageView),
            example = json!({
                "agent_id": "bot-1", "trading_day_start": "2026-12-07T00:00:00Z",
                "daily_volume": "125000", "max_daily_volume": "1000000",
                "daily_loss": "0", "max_daily_loss": "20000",
                "messages_last_second": 3, "max_messages_per_second": 50,
                "consecutive_failures": 0, "open_orders": 2, "max_open_orders": 20,
                "net_positions": {"BTC_EUR": "1.5"},
                "order_to_trade": {"orders": 40, "trades": 8, "window_secs": 60,
                                   "max_ratio": 10},
                "overrides": [example_override()]
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<crate::behaviour::UsageView>, ApiError> {
    ra::tenant::agent_or_own(&state.node.store, &caller, READERS, &id).await?;
    Ok(Json(state.node.behaviour.usage(&id).await?))
}

/// The status of a baseline version.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the status is text at run time"
)]
enum BaselineStatus {
    PendingApproval,
    Approved,
    Superseded,
    Rejected,
}

/// A baseline version.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = BaselineVersion)]
pub struct BaselineView {
    agent_id: String,
    version: i64,
    #[schema(value_type = BaselineStatus, inline)]
    status: String,
    #[schema(schema_with = refs::baseline)]
    baseline: serde_json::Value,
    /// API key id, or system:learner.
    learnt_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true)]
    decided_by: Option<String>,
    #[schema(format = DateTime, required = true)]
    decided_at: Option<String>,
    /// Only while a second compliance person's approval is missing (approvals_required = 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = refs::approvals)]
    approvals: Option<serde_json::Value>,
}

/// The baseline versions of an agent (never paged: newest first, at most 100).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Baselines {
    agent_id: String,
    items: Vec<BaselineView>,
    /// Always null: this list is never paged.
    #[schema(required = true)]
    next_cursor: Option<String>,
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
#[utoipa::path(get, path = "/v1/agents/{id}/baseline", operation_id = "listBaselines",
    tag = "behaviour", summary = "The agent's baseline versions, newest first (at most 100)",
    description = "Roles: readers, or the agent's own key. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 200, description = "versions", body = inline(Baselines),
            example = json!({"agent_id": "bot-1",
                             "items": [example_baseline_version("pending_approval")],
                             "next_cursor": null})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn list_baselines(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Baselines>, ApiError> {
    let store = &state.node.store;
    ra::tenant::agent_or_own(store, &caller, READERS, &id).await?;
    let rows = store.baselines(&id).await.map_err(CaError::from)?;
    let items: Vec<BaselineView> = rows.into_iter().map(baseline_view).collect();
    Ok(Json(Baselines {
        agent_id: id,
        items,
        next_cursor: None,
    }))
}

/// `POST /v1/agents/{id}/baseline`: learn a baseline now from the observation window.
#[utoipa::path(post, path = "/v1/agents/{id}/baseline", operation_id = "learnBaseline",
    tag = "behaviour",
    summary = "Learn a baseline now from the observation window (next version, pending approval)",
    description = "Roles: operator, compliance, admin. No body. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 201, description = "learnt", body = BaselineView,
            example = json!(example_baseline_version("pending_approval"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn learn(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<BaselineView>), ApiError> {
    let row = ra::oversight::learn(&state.node, &caller, &id).await?;
    Ok((StatusCode::CREATED, Json(baseline_view(row))))
}

/// Body of approve/reject: which version (default: the pending one). Optional: no body, or
/// `{}`, decides the pending one.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineDecision {
    /// The version being decided; 409 wrong-state if it is not the pending one.
    version: Option<i64>,
}

/// `POST /v1/agents/{id}/baseline/approve` (compliance).
#[utoipa::path(post, path = "/v1/agents/{id}/baseline/approve", operation_id = "approveBaseline",
    tag = "behaviour",
    summary = "Approve the pending baseline (segregation of duties); it supersedes the approved \
        one",
    description = "Roles: compliance; not the person who had the baseline learnt (403 \
        segregation-of-duties). Another organization's agent answers 404.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = ref("#/components/schemas/BaselineDecision"),
    responses(
        (status = 200, description = "approved", body = BaselineView,
            example = json!(example_baseline_version("approved"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: ApiPath<String>,
    body: OptionalJson<BaselineDecision>,
) -> Result<Json<BaselineView>, ApiError> {
    decide_baseline(state, caller, id, body, true).await
}

/// `POST /v1/agents/{id}/baseline/reject` (compliance).
#[utoipa::path(post, path = "/v1/agents/{id}/baseline/reject", operation_id = "rejectBaseline",
    tag = "behaviour", summary = "Reject the pending baseline",
    description = "Roles: compliance. Another organization's object answers 404, as an unknown \
        one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = ref("#/components/schemas/BaselineDecision"),
    responses(
        (status = 200, description = "rejected", body = BaselineView,
            example = json!(example_baseline_version("rejected"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

/// `awaiting_approval`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AwaitingStatus {
    /// Another compliance person must make the same request.
    AwaitingApproval,
}

/// A grant recorded that waits for a second compliance person.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AwaitingOverride {
    #[schema(inline)]
    status: AwaitingStatus,
    #[schema(schema_with = refs::approvals)]
    approvals: serde_json::Value,
}

/// The limit overrides of an agent (never paged: newest first, at most 100).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the answer is a Page"
)]
struct Overrides {
    #[schema(schema_with = limit_overrides)]
    items: Vec<crate::behaviour::OverrideView>,
    /// Always null: this list is never paged.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `POST /v1/agents/{id}/overrides` (compliance; four eyes per the organization's rule): `201`
/// with the override in force, or `202` with the approvals so far when another compliance
/// person must make the same request.
#[utoipa::path(post, path = "/v1/agents/{id}/overrides", operation_id = "grantOverride",
    tag = "behaviour",
    summary = "Grant a controlled override of one version-2 limit for a while (compliance; four \
        eyes per the organization's rule)",
    description = "Roles: compliance (a named person). With approvals_required = 2 the first \
        request answers 202 and a second compliance person must make the same request; the \
        override starts with it (201). 409 while an override of the same limit and market is \
        in force, or 16 are. Another organization's object answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = inline(ra::overrides::OverrideRequest),
    responses(
        (status = 201, description = "in force",
            body = ref("#/components/schemas/LimitOverride"), example = json!(example_override())),
        (status = 202, description = "recorded; another compliance person must make the same \
            request", body = inline(AwaitingOverride),
            example = json!({"status": "awaiting_approval",
                             "approvals": {"recorded": 1, "required": 2}})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
        ra::overrides::Granted::Awaiting { recorded, required } => {
            let v = serde_json::to_value(AwaitingOverride {
                status: AwaitingStatus::AwaitingApproval,
                approvals: serde_json::json!({"recorded": recorded, "required": required}),
            })
            .map_err(|e| CaError::Internal(e.to_string()))?;
            Ok((StatusCode::ACCEPTED, Json(v)))
        }
    }
}

/// `GET /v1/agents/{id}/overrides` (readers, or the agent's own key): newest first.
#[utoipa::path(get, path = "/v1/agents/{id}/overrides", operation_id = "listOverrides",
    tag = "behaviour",
    summary = "The agent's limit overrides (RTS 6 Art. 15(6)), newest first (at most 100)",
    description = "Roles: readers, or the agent's own key. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    responses(
        (status = 200, description = "overrides", body = inline(Overrides),
            example = json!({"items": [example_override()], "next_cursor": null})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(post, path = "/v1/agents/{id}/overrides/{oid}/end", operation_id = "endOverride",
    tag = "behaviour", summary = "End a limit override before its time (compliance)",
    description = "Roles: compliance. 404 when it is not in force (ended, expired, unknown) or \
        of another organization.",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "agent id"),
        ("oid" = i64, Path, description = "override id")),
    responses(
        (status = 204, description = "ended"),
        (status = 404, description = "not-found: not in force (ended, expired, unknown), or \
            another organization's (the tenant rule: a principal outside CA staff gets exactly \
            the answer of a missing object)",
            body = super::problem::Body<'static>, content_type = "application/problem+json",
            example = json!({"type": "urn:mandate:problem:not-found", "title": "Not Found",
                "status": 404, "detail": "override 7 of agent bot-1 in force not found"}))))]
pub async fn end_override(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, oid)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    ra::overrides::end(&state.node.store, &caller, &id, oid).await?;
    state.node.behaviour.touched.touch(&id);
    Ok(StatusCode::NO_CONTENT)
}

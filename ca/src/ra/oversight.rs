//! Oversight of running agents: behavioural baselines (learnt, then approved by compliance,
//! four eyes between people) and incidents (acknowledged, then resolved by a compliance
//! person: the human sign-off after an automatic revocation).

use mandate_store::{BaselineRow, IncidentRow, Role};

use super::four_eyes::{self, Quorum};
use super::roles::{ACKNOWLEDGERS, DECIDERS, RESOLVERS};
use super::{Principal, tenant};
use crate::CaError;
use crate::node::Node;

/// Who may report events for any agent of their organization (an agent key: its own).
pub const REPORTERS: &[Role] = &[Role::Operator, Role::Compliance, Role::Admin];

/// Stores reported events (all or none) and scores them; a score past the auto-revoke
/// threshold pulls the kill switch before the answer goes back. An agent key reports only its
/// own events; a person only their organization's agents' (another's is `not found`).
pub async fn report_events(
    node: &std::sync::Arc<Node>,
    p: &Principal,
    events: Vec<crate::behaviour::EventInput>,
) -> Result<crate::behaviour::IngestOutcome, CaError> {
    if p.role == Role::Agent {
        if let Some(other) = events.iter().find(|e| !p.is_agent(&e.agent_id)) {
            return Err(CaError::Forbidden(format!(
                "an agent key may report only its own events, not {}'s",
                other.agent_id
            )));
        }
    } else {
        p.require(REPORTERS)?;
        let mut seen = std::collections::BTreeSet::new();
        for e in &events {
            if seen.insert(e.agent_id.as_str()) {
                tenant::check_visible_agent(node, p, &e.agent_id).await?;
            }
        }
    }
    let (outcome, auto) = node.behaviour.ingest(&p.key_id, events).await?;
    if !outcome.incidents.is_empty() {
        node.webhooks.wake();
    }
    if !auto.is_empty() {
        crate::behaviour::auto_revoke(node, &auto).await;
    }
    Ok(outcome)
}

/// Who may have a baseline learnt now (besides the learner's own schedule).
pub const LEARNERS: &[Role] = &[Role::Operator, Role::Compliance, Role::Admin];

/// Learns a baseline for the agent now, from its observation window.
pub async fn learn(node: &Node, p: &Principal, agent_id: &str) -> Result<BaselineRow, CaError> {
    tenant::agent(&node.store, p, LEARNERS, agent_id).await?;
    crate::behaviour::learn_baseline(node, agent_id, &p.key_id).await
}

/// A compliance person's decision on the agent's pending baseline (`version`: the one read,
/// default the pending one). Four eyes: never the person who had it learnt; with
/// `approvals_required = 2`, two people approve. Returns the baseline and, while a second
/// approval is missing, `(recorded, required)`.
pub async fn decide_baseline(
    node: &Node,
    p: &Principal,
    agent_id: &str,
    version: Option<i64>,
    approve: bool,
) -> Result<(BaselineRow, Option<(i64, i64)>), CaError> {
    let store = &node.store;
    let agent = tenant::agent(store, p, DECIDERS, agent_id).await?;
    let wrong = |d: String| CaError::Store(mandate_store::StoreError::WrongState(d));
    let pending = store
        .baselines(agent_id)
        .await?
        .into_iter()
        .find(|b| b.status == "pending_approval")
        .ok_or_else(|| wrong(format!("agent {agent_id} has no baseline pending approval")))?;
    if let Some(v) = version
        && v != pending.version
    {
        return Err(wrong(format!(
            "baseline version {v} is not pending; the pending version is {}",
            pending.version
        )));
    }
    let requester = store.person_of_key(&pending.learnt_by).await?;
    if pending.learnt_by == p.key_id
        || (requester.is_some() && requester.as_deref() == p.person_id())
    {
        return Err(CaError::SegregationOfDuties(
            "the person who had this baseline learnt may not decide on it".into(),
        ));
    }
    if approve {
        let org = super::agents::organization_of(store, &agent).await?;
        let reference = format!("{agent_id}:{}", pending.version);
        if let Quorum::Awaiting { recorded, required } =
            four_eyes::approve(store, p, &org, "baseline", &reference, agent_id, None).await?
        {
            return Ok((pending, Some((recorded, required))));
        }
    }
    Ok((
        store
            .decide_baseline(agent_id, pending.version, approve, &p.key_id)
            .await?,
        None,
    ))
}

/// Acknowledges an incident of the caller's organization.
pub async fn acknowledge(node: &Node, p: &Principal, id: i64) -> Result<IncidentRow, CaError> {
    p.require(ACKNOWLEDGERS)?;
    tenant::incident(&node.store, p, id).await?;
    Ok(node
        .store
        .update_incident(id, "acknowledged", &p.key_id, None)
        .await?)
}

/// Resolves an incident (a compliance person; the sign-off note is 1 to 1000 characters;
/// with `approvals_required = 2`, the second of two different people resolves it, and the
/// answer to the first carries `(recorded, required)`). The risk score is cleared in the
/// store and in the agent's live state together, with the agent held so no ingestion writes
/// the old score back.
pub async fn resolve(
    node: &Node,
    p: &Principal,
    id: i64,
    note: &str,
) -> Result<(IncidentRow, Option<(i64, i64)>), CaError> {
    p.require(RESOLVERS)?;
    if note.trim().is_empty() {
        return Err(CaError::InvalidRequest(
            "resolution is required: 1 to 1000 characters".into(),
        ));
    }
    let note =
        super::organizations::check_text("resolution", note, 1000, mandate_policy::TextKind::Note)?;
    let note = note.as_str();
    let incident = tenant::incident(&node.store, p, id).await?;
    if incident.status == "resolved" {
        return Err(CaError::Store(mandate_store::StoreError::WrongState(
            format!("incident {id} is resolved already"),
        )));
    }
    let agent = incident.agent_id.clone();
    if let Some(row) = node.store.agent(&agent).await? {
        let org = super::agents::organization_of(&node.store, &row).await?;
        if let Quorum::Awaiting { recorded, required } = four_eyes::approve(
            &node.store,
            p,
            &org,
            "incident",
            &id.to_string(),
            &agent,
            Some(note),
        )
        .await?
        {
            return Ok((incident, Some((recorded, required))));
        }
    }
    let entry = node.behaviour.live(&agent).await?;
    let mut live = entry.lock().await;
    let row = node
        .store
        .update_incident(id, "resolved", &p.key_id, Some(note))
        .await?;
    if let Some(c) = live.counters.as_mut() {
        c.risk = None;
    }
    Ok((row, None))
}

/// A pre-trade decision with the events that followed it: the order it let through (events
/// naming it), and that order's fills and cancellation (events with its `client_order_id`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// `dec_` and 32 hex digits.
    #[schema(pattern = "^dec_[0-9a-f]{32}$")]
    pub decision_id: String,
    /// The agent.
    pub agent_id: String,
    /// When it was decided (RFC 3339, milliseconds).
    #[schema(format = DateTime)]
    pub decided_at: String,
    /// `preflight` or `sign`.
    #[schema(schema_with = <DecidedVia as utoipa::PartialSchema>::schema)]
    pub via: String,
    /// Whether the order was allowed.
    pub allowed: bool,
    /// A what-if for another time: never a permission.
    pub hypothetical: bool,
    /// The order as asked (for `sign`: the signed payload).
    #[schema(schema_with = crate::schema_refs::order)]
    pub order: serde_json::Value,
    /// Every reason, hard and soft, with its enforcement.
    #[schema(value_type = Vec<crate::behaviour::DecidedReason>, inline)]
    pub reasons: serde_json::Value,
    /// The API key that asked.
    pub decided_by: String,
    /// The events that refer to it, oldest first.
    #[schema(inline)]
    pub events: Vec<mandate_store::LinkedEvent>,
}

/// How the decision was asked for: `POST /v1/agents/{id}/preflight` or `.../sign`.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: `via` is text at run time"
)]
enum DecidedVia {
    /// `POST /v1/agents/{id}/preflight`.
    Preflight,
    /// `POST /v1/agents/{id}/sign`.
    Sign,
}

/// The decision `id`, if `p` may see its agent (readers, or the agent's own key); another
/// organization's is `not found`, as an unknown one.
pub async fn decision(node: &Node, p: &Principal, id: &str) -> Result<DecisionView, CaError> {
    let not_found = || CaError::NotFound(format!("decision {id}"));
    if !crate::decision::is_decision_id(id) {
        return Err(not_found());
    }
    let d = match node.store.decision(id).await? {
        Some(d) => d,
        None => {
            // Perhaps answered a moment ago and still queued: let the queue be stored.
            node.behaviour.decisions.flush().await?;
            node.store.decision(id).await?.ok_or_else(not_found)?
        }
    };
    // Another agent's decision is an object this key cannot see: not found, not forbidden.
    if p.role == Role::Agent && !p.is_agent(&d.agent_id) {
        return Err(not_found());
    }
    tenant::agent_or_own(&node.store, p, super::roles::READERS, &d.agent_id)
        .await
        .map_err(|e| match e {
            CaError::NotFound(_) => not_found(),
            other => other,
        })?;
    let order: serde_json::Value =
        serde_json::from_str(&d.order_json).unwrap_or(serde_json::Value::Null);
    let client_order_id = order["client_order_id"].as_str();
    let events = node
        .store
        .decision_events(&d.agent_id, &d.id, client_order_id, d.at_ms / 1000 - 60)
        .await?;
    Ok(DecisionView {
        decided_at: crate::rfc3339_ms(d.at_ms),
        decision_id: d.id,
        agent_id: d.agent_id,
        via: d.via,
        allowed: d.allowed,
        hypothetical: d.hypothetical,
        order,
        reasons: d.reasons,
        decided_by: d.decided_by,
        events,
    })
}

//! Agents and their mandates: registration, new versions, the compliance decision (four eyes
//! between people, one or two approvers) and reinstatement after a kill switch.

use mandate_policy::{Mandate, is_dns_label};
use mandate_store::{
    AgentOverview, AgentRow, AgentStatus, AuditEvent, Decider, MandateDecision, MandateStatus,
    NewAgent, OrganizationRow, Retirement, Role, Store,
};
use serde_json::{Value, json};

use super::{Principal, tenant};
use crate::CaError;

use super::roles::{DECIDERS, READERS};

/// An agent to register.
#[derive(Debug)]
pub struct Registration {
    /// A DNS label.
    pub agent_id: String,
    /// Display name.
    pub name: String,
    /// The organization; defaults to the registrant's own.
    pub organization: Option<String>,
    /// The requested mandate, JSON.
    pub mandate: Value,
}

/// A decision on the pending mandate version.
#[derive(Debug, Default)]
pub struct Decision {
    /// `ca.supersede_grace_secs`: how long certificates of older versions stay valid after an
    /// approval that only widens.
    pub supersede_grace_secs: u32,
    /// The version decided on; defaults to the pending one.
    pub version: Option<i64>,
    /// For the record.
    pub comment: Option<String>,
}

/// Registers an agent with its requested mandate (an operator of the agent's organization).
pub async fn register(
    store: &Store,
    dns_name: impl Fn(&str, &str) -> String,
    p: &Principal,
    req: Registration,
) -> Result<AgentRow, CaError> {
    p.require(&[Role::Operator])?;
    let Some(own) = p.organization.clone() else {
        return Err(CaError::Forbidden(
            "only a person of an organization registers agents".into(),
        ));
    };
    if !is_dns_label(&req.agent_id) {
        return Err(CaError::InvalidRequest(
            "agent_id must be a DNS label: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'".into(),
        ));
    }
    let org_id = req.organization.unwrap_or_else(|| own.clone());
    if org_id != own {
        // Another organization, existing or not: one answer.
        return Err(CaError::NotFound(format!("organization {org_id}")));
    }
    let org = tenant::organization(store, p, &org_id).await?;
    let name =
        super::organizations::check_text("name", &req.name, 128, mandate_policy::TextKind::Line)?;
    let mandate = parse_mandate(req.mandate, &req.agent_id, &org)?;
    if dns_name(&req.agent_id, &org.id).len() > 253 {
        return Err(CaError::InvalidRequest(
            "agent_id.organization.agent_domain is longer than a DNS name may be".into(),
        ));
    }
    let mut details = json!({"organization": org.id, "mandate_version": 1});
    details["by"] = p.audit_details();
    Ok(store
        .create_agent(
            &NewAgent {
                id: req.agent_id.clone(),
                name,
                organization: org.id.clone(),
                created_by: p.key_id.clone(),
                mandate_json: canonical(&mandate)?,
            },
            &AuditEvent::new(&p.key_id, "agent.registered", &req.agent_id, details),
        )
        .await?)
}

/// Submits a changed mandate as a new version (an operator of the agent's organization).
pub async fn submit_mandate(
    store: &Store,
    p: &Principal,
    id: &str,
    mandate: Value,
) -> Result<(), CaError> {
    let agent = tenant::agent(store, p, &[Role::Operator], id).await?;
    let org = organization_of(store, &agent).await?;
    let mandate = parse_mandate(mandate, id, &org)?;
    store
        .submit_mandate(id, &canonical(&mandate)?, &p.key_id)
        .await?;
    Ok(())
}

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The mandate version was approved, rejected, or awaits another approval.
    Mandate(MandateDecision),
    /// A suspended agent was reinstated with its approved mandate.
    Reinstated,
    /// The lifting of a suspension is recorded; another person must approve it too.
    ReinstatementAwaiting {
        /// Approvals so far.
        recorded: i64,
        /// Approvals needed.
        required: i64,
    },
}

impl Decided {
    /// `(recorded, required)` when the decision waits for another person's approval.
    pub fn awaiting(self) -> Option<(i64, i64)> {
        match self {
            Decided::Mandate(MandateDecision::AwaitingApproval {
                approvals,
                required,
            }) => Some((approvals, required)),
            Decided::ReinstatementAwaiting { recorded, required } => Some((recorded, required)),
            _ => None,
        }
    }
}

/// A decision's comment, by the one rule for notes (at most 1000 characters); an empty one is
/// no comment.
fn check_comment(comment: Option<&str>) -> Result<Option<String>, CaError> {
    match comment {
        Some(c) if c.trim().is_empty() => Ok(None),
        c => super::organizations::check_note("comment", c, 1000),
    }
}

/// The person behind a decision: decisions are taken by named people.
fn decider(p: &Principal) -> Result<&str, CaError> {
    p.person_id().ok_or_else(|| {
        CaError::Forbidden("decisions are taken by a named compliance person".into())
    })
}

/// A compliance person's decision on the agent's pending mandate version, which the request
/// must name (`{"version": N}`): nobody approves a version they did not look at. Four eyes: the
/// decider is never the person who registered the agent or requested the version; with
/// `approvals_required = 2`, two different people must approve. Approving never lifts a
/// suspension: that is [`reinstate`].
pub async fn decide(
    store: &Store,
    p: &Principal,
    id: &str,
    req: Decision,
    approve: bool,
) -> Result<Decided, CaError> {
    let agent = tenant::agent(store, p, DECIDERS, id).await?;
    let comment = check_comment(req.comment.as_deref())?;
    let req = Decision { comment, ..req };
    let person = decider(p)?;
    let org = organization_of(store, &agent).await?;
    let mandates = store.mandates(id).await?;
    let Some(pending) = mandates
        .iter()
        .find(|m| m.status == MandateStatus::PendingApproval)
    else {
        let hint = if agent.status == AgentStatus::Suspended {
            format!("; to lift its suspension, POST /v1/agents/{id}/reinstate")
        } else {
            String::new()
        };
        return Err(wrong_state(format!(
            "agent {id} has no mandate pending approval{hint}"
        )));
    };
    let verb = if approve { "approve" } else { "reject" };
    let Some(version) = req.version else {
        return Err(CaError::InvalidRequest(format!(
            "name the version to {verb}: {{\"version\": {}}} is pending (GET /v1/agents/{id}/mandates shows it beside the approved one)",
            pending.version
        )));
    };
    if version != pending.version {
        return Err(wrong_state(format!(
            "mandate version {version} is not pending; the pending version is {}",
            pending.version
        )));
    }
    four_eyes(
        store,
        person,
        &[&agent.created_by, &pending.created_by],
        "registered this agent or requested this mandate version",
    )
    .await?;
    let action = if approve {
        "mandate.approved"
    } else {
        "mandate.rejected"
    };
    // How the certificates of older versions retire: at once if the new version takes any
    // authority away from what they carry, after the grace if it only widens.
    let approved = mandates
        .iter()
        .find(|m| m.status == MandateStatus::Approved)
        .map(|m| serde_json::from_str::<Mandate>(&m.mandate_json))
        .transpose()
        .map_err(|e| CaError::Internal(format!("stored mandate of {id}: {e}")))?;
    let requested = serde_json::from_str::<Mandate>(&pending.mandate_json)
        .map_err(|e| CaError::Internal(format!("stored mandate of {id}: {e}")))?;
    let changes = approved
        .as_ref()
        .map(|a| mandate_policy::compare(a, &requested))
        .unwrap_or_default();
    let retirement = if mandate_policy::narrows(&changes) {
        Retirement::AtOnce
    } else {
        Retirement::After(i64::from(req.supersede_grace_secs))
    };
    let mut details = json!({"version": pending.version, "comment": req.comment,
    "approvals_required": org.approvals_required,
    "changes": changes,
    "older_certificates": match retirement {
        Retirement::AtOnce => json!("revoked (the version narrows the mandate)"),
        Retirement::After(s) => json!(format!("retire after {s} s (the version only widens)")),
    }});
    details["by"] = p.audit_details();
    let outcome = store
        .decide_mandate(
            id,
            pending.version,
            approve,
            &Decider {
                key_id: &p.key_id,
                person_id: Some(person),
                approvals_required: org.approvals_required,
                retirement,
            },
            req.comment.as_deref(),
            &AuditEvent::new(&p.key_id, action, id, details),
        )
        .await
        .map_err(|e| match e {
            mandate_store::StoreError::Conflict(_) => CaError::Conflict(format!(
                "{person} already decided on mandate version {} of agent {id}; another compliance person must approve it",
                pending.version
            )),
            other => other.into(),
        })?;
    Ok(Decided::Mandate(outcome))
}

/// Lifts a suspension (kill switch or automatic revocation): the agent is active again with
/// its approved mandate, and may be certified. A mandate version pending approval stays
/// pending: reinstating approves nothing. Compliance, four eyes as for a mandate (never the
/// person who registered the agent; with `approvals_required = 2`, two people); after an
/// automatic revocation, only once its incident is resolved.
pub async fn reinstate(
    store: &Store,
    p: &Principal,
    id: &str,
    comment: Option<String>,
) -> Result<Decided, CaError> {
    let agent = tenant::agent(store, p, DECIDERS, id).await?;
    let comment = check_comment(comment.as_deref())?;
    let person = decider(p)?;
    if agent.status != AgentStatus::Suspended {
        return Err(wrong_state(format!(
            "agent {id} is not suspended (it is {})",
            agent.status.as_str()
        )));
    }
    four_eyes(store, person, &[&agent.created_by], "registered this agent").await?;
    let org = organization_of(store, &agent).await?;
    // What the store would refuse, refused before a first approval is recorded.
    if !store
        .mandates(id)
        .await?
        .iter()
        .any(|m| m.status == MandateStatus::Approved)
    {
        return Err(wrong_state(format!(
            "agent {id} has no approved mandate to be reinstated with; approve a version first"
        )));
    }
    if let Some(i) = store
        .incidents(None, Some(id), None, 0, 100)
        .await?
        .iter()
        .find(|i| i.revokes && i.status != "resolved")
    {
        return Err(wrong_state(format!(
            "agent {id} has {} incident {} not yet resolved; a compliance officer must resolve it first",
            i.kind.replace('_', "-"),
            i.id
        )));
    }
    // One suspension, one pair of approvals: the agent's last change names it.
    let suspension = format!("{id}:{}", agent.updated_at);
    if let super::four_eyes::Quorum::Awaiting { recorded, required } = super::four_eyes::approve(
        store,
        p,
        &org,
        "reinstatement",
        &suspension,
        id,
        comment.as_deref(),
    )
    .await?
    {
        return Ok(Decided::ReinstatementAwaiting { recorded, required });
    }
    let mut details = json!({"comment": comment});
    details["by"] = p.audit_details();
    store
        .reinstate_agent(
            id,
            &AuditEvent::new(&p.key_id, "agent.reinstated", id, details),
        )
        .await?;
    Ok(Decided::Reinstated)
}

/// Refuses when `person` holds (or held) any of the keys that made the request.
async fn four_eyes(
    store: &Store,
    person: &str,
    requested_by: &[&str],
    what: &str,
) -> Result<(), CaError> {
    for key in requested_by {
        if store.person_of_key(key).await?.as_deref() == Some(person) {
            return Err(CaError::SegregationOfDuties(format!(
                "{person} {what}; another compliance person must decide"
            )));
        }
    }
    Ok(())
}

/// One mandate version, with how it differs from the approved one.
#[derive(Debug, Clone)]
pub struct MandateVersion {
    /// The stored version.
    pub row: mandate_store::MandateRow,
    /// The mandate.
    pub mandate: Mandate,
    /// For a version pending approval: every field in which it differs from the approved
    /// version (none approved yet: empty), and which way.
    pub changes: Option<Vec<mandate_policy::FieldChange>>,
}

/// Every mandate version of an agent, newest first; a pending one comes with its changes
/// against the approved one, widened limits marked, for the decider to read first.
pub async fn mandates(
    store: &Store,
    p: &Principal,
    id: &str,
) -> Result<Vec<MandateVersion>, CaError> {
    tenant::agent_or_own(store, p, READERS, id).await?;
    let rows = store.mandates(id).await?;
    let parse = |r: &mandate_store::MandateRow| {
        serde_json::from_str::<Mandate>(&r.mandate_json)
            .map_err(|e| CaError::Internal(format!("stored mandate {} of {id}: {e}", r.version)))
    };
    let approved = rows
        .iter()
        .find(|r| r.status == MandateStatus::Approved)
        .map(parse)
        .transpose()?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mandate = parse(&row)?;
        let changes = (row.status == MandateStatus::PendingApproval).then(|| {
            approved
                .as_ref()
                .map(|a| mandate_policy::compare(a, &mandate))
                .unwrap_or_default()
        });
        out.push(MandateVersion {
            row,
            mandate,
            changes,
        });
    }
    out.sort_by_key(|v| std::cmp::Reverse(v.row.version));
    Ok(out)
}

/// One agent, if `p` may read it.
pub async fn get(store: &Store, p: &Principal, id: &str) -> Result<AgentOverview, CaError> {
    tenant::agent_or_own(store, p, READERS, id).await?;
    store
        .agent_overview(id)
        .await?
        .ok_or_else(|| CaError::NotFound(format!("agent {id}")))
}

/// A page of the agents `p` may see, by id.
pub async fn list(
    store: &Store,
    p: &Principal,
    filter: mandate_store::AgentFilter<'_>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AgentOverview>, CaError> {
    p.require(READERS)?;
    // The caller's organization bounds the listing whatever the request asked.
    let filter = mandate_store::AgentFilter {
        organization: p.org_filter(),
        ..filter
    };
    if filter.search.is_some_and(|q| q.chars().count() > 100) {
        return Err(CaError::InvalidRequest("q: at most 100 characters".into()));
    }
    Ok(store.find_agent_overviews(&filter, after, limit).await?)
}

/// The organization an agent belongs to.
pub async fn organization_of(store: &Store, agent: &AgentRow) -> Result<OrganizationRow, CaError> {
    store
        .organization(&agent.organization)
        .await?
        .ok_or_else(|| {
            CaError::Internal(format!(
                "agent {} names organization {} which does not exist",
                agent.id, agent.organization
            ))
        })
}

/// `409 wrong-state`.
fn wrong_state(detail: String) -> CaError {
    CaError::Store(mandate_store::StoreError::WrongState(detail))
}

fn invalid(detail: impl Into<String>) -> CaError {
    CaError::InvalidMandate(detail.into())
}

/// Parses and checks a requested mandate: its agent id, and its operator, which must be the
/// organization's legal name or one of its legal entities (no desk puts another firm's name
/// in a certificate).
pub fn parse_mandate(
    mut value: Value,
    agent_id: &str,
    org: &OrganizationRow,
) -> Result<Mandate, CaError> {
    let Value::Object(map) = &mut value else {
        return Err(invalid(
            "mandate must be a JSON object (see docs/MANDATE.md)",
        ));
    };
    // The agent id is already in the request; the mandate may leave it out.
    map.entry("agentId")
        .or_insert_with(|| Value::String(agent_id.to_owned()));
    // So may the operator: it is the organization's legal name.
    map.entry("operator")
        .or_insert_with(|| Value::String(org.legal_name.clone()));
    let mandate: Mandate = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            invalid(inner.to_string())
        } else {
            invalid(format!("{path}: {inner}"))
        }
    })?;
    if mandate.agent_id != agent_id {
        return Err(invalid(format!(
            "mandate.agentId {:?} differs from agent_id {agent_id:?}",
            mandate.agent_id
        )));
    }
    if let Some(hours) = &mandate.trading_hours {
        hours
            .check_time_zone_exists()
            .map_err(|e| invalid(e.to_string()))?;
    }
    if !org.allows_operator(&mandate.operator) {
        let mut names = vec![org.legal_name.as_str()];
        names.extend(org.legal_entities.iter().map(String::as_str));
        return Err(invalid(format!(
            "mandate.operator {:?} is not a legal entity of organization {}: use one of {:?}",
            mandate.operator, org.id, names
        )));
    }
    Ok(mandate)
}

fn canonical(mandate: &Mandate) -> Result<String, CaError> {
    serde_json::to_string(mandate).map_err(|e| CaError::Internal(format!("mandate to JSON: {e}")))
}

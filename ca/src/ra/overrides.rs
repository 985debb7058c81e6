//! Controlled overrides of a limit (MiFID II RTS 6 Art. 15(6)): a compliance person widens (or
//! narrows) one version-2 limit of one agent for a while — e.g. `maxOrderQuantity` to twice its
//! value for 30 minutes — with a reason, four eyes per the organization's rule, audited, shown on
//! the agent's page, and over by itself at its end. The certificate keeps the approved limits:
//! an override changes what the daemon's own checks allow (preflight, signing, events), not
//! what a relying party reads in the certificate.

use mandate_policy::{LimitOverride, Mandate};
use mandate_store::{AuditEvent, MandateStatus, OverrideRow, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use super::four_eyes::{self, Quorum};
use super::roles::{DECIDERS, READERS};
use super::{Principal, tenant};
use crate::CaError;

/// Shortest override, seconds.
pub const MIN_DURATION_SECS: u32 = 1;
/// Longest override, seconds: a day; longer is a mandate change.
pub const MAX_DURATION_SECS: u32 = 86_400;

/// The limit, by its JSON name: one of the numeric version-2 controls
/// ([`mandate_policy::OVERRIDABLE`]).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the limit is text at run time"
)]
enum OverridableLimit {
    MaxOrderQuantity,
    PriceCollar,
    ReferencePriceMaxAge,
    MaxOpenOrders,
    MaxNetPosition,
    MaxDailyLoss,
    MaxMessagesPerSecond,
    MaxOrderToTradeRatio,
}

/// `POST /v1/agents/{id}/overrides`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// The limit's JSON name, e.g. `maxOrderQuantity`.
    #[schema(schema_with = <OverridableLimit as utoipa::PartialSchema>::schema)]
    pub limit: String,
    /// The market whose own value it sets; absent: the default.
    #[serde(default)]
    pub market: Option<String>,
    /// The value meanwhile, as the mandate writes the limit (e.g. `"20"`, or `{"value": "20",
    /// "enforcement": "soft"}`).
    pub value: Value,
    /// For how long, seconds (1 to 86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub duration_secs: u32,
    /// Why (1 to 1000 printable characters): the record a supervisor reads.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// What a grant did.
#[derive(Debug)]
pub enum Granted {
    /// In force now.
    InForce(OverrideRow),
    /// Recorded; another compliance person must ask for the same override.
    Awaiting {
        /// Approvals so far.
        recorded: i64,
        /// Approvals needed.
        required: i64,
    },
}

/// The agent's approved mandate, or `409` without one.
async fn approved(store: &Store, id: &str) -> Result<Mandate, CaError> {
    let m = store
        .mandates(id)
        .await?
        .into_iter()
        .rev()
        .find(|m| m.status == MandateStatus::Approved)
        .ok_or_else(|| {
            CaError::NotApproved(format!(
                "agent {id} has no approved mandate: there is no limit to override"
            ))
        })?;
    serde_json::from_str(&m.mandate_json)
        .map_err(|e| CaError::Internal(format!("stored mandate of {id}: {e}")))
}

/// Grants an override of one limit of agent `id` (compliance). With the organization's
/// `approvals_required = 2`, the first person's request is recorded and a second person must
/// make the same request; the override starts with the second.
pub async fn grant(
    store: &Store,
    p: &Principal,
    id: &str,
    req: OverrideRequest,
) -> Result<Granted, CaError> {
    let agent = tenant::agent(store, p, DECIDERS, id).await?;
    let Some(person) = p.person_id() else {
        return Err(CaError::Forbidden(
            "overrides are granted by a named compliance person".into(),
        ));
    };
    let invalid = |m: String| CaError::InvalidRequest(m);
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&req.duration_secs) {
        return Err(invalid(format!(
            "duration_secs: {MIN_DURATION_SECS} to {MAX_DURATION_SECS} (longer is a mandate change)"
        )));
    }
    let reason = super::organizations::check_text(
        "reason",
        &req.reason,
        1000,
        mandate_policy::TextKind::Note,
    )
    .map_err(|e| invalid(format!("{e}: the record a supervisor reads")))?;
    let reason = reason.as_str();
    let o = LimitOverride {
        limit: req.limit.clone(),
        market: req.market.clone(),
        value: req.value.clone(),
    };
    let mandate = approved(store, id).await?;
    mandate
        .with_override(&o)
        .map_err(|e| invalid(format!("override: {e}")))?;
    // The same request, by another person, is the second pair of eyes.
    let reference = format!(
        "{id}:{}:{}:{}:{}:{}",
        req.limit,
        req.market
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        req.value,
        req.duration_secs,
        reason
    );
    let org = super::agents::organization_of(store, &agent).await?;
    if let Quorum::Awaiting { recorded, required } =
        four_eyes::approve(store, p, &org, "override", &reference, id, Some(reason)).await?
    {
        return Ok(Granted::Awaiting { recorded, required });
    }
    let mut people = store.approvals_of("override", &reference).await?;
    people.push(person.to_owned());
    let now = mandate_store::now_unix();
    let row = OverrideRow {
        id: 0,
        agent_id: id.to_owned(),
        limit_name: req.limit.clone(),
        market: req.market.clone(),
        value_json: req.value.to_string(),
        reason: reason.to_owned(),
        granted_by: people.join(","),
        starts_at: now,
        expires_at: now + i64::from(req.duration_secs),
        ended_at: None,
        ended_by: None,
    };
    let mut details = json!({"limit": req.limit, "market": req.market, "value": req.value,
                             "duration_secs": req.duration_secs, "reason": reason,
                             "expires_at": crate::rfc3339(row.expires_at),
                             "granted_by": people});
    details["by"] = p.audit_details();
    let event = AuditEvent::new(&p.key_id, "override.granted", id, details);
    let oid = store.grant_override(row.clone(), &event).await?;
    tracing::warn!(agent = id, override_id = oid, limit = %req.limit, "limit override granted");
    Ok(Granted::InForce(OverrideRow { id: oid, ..row }))
}

/// Ends override `oid` of agent `id` before its time (compliance; one person is enough:
/// ending narrows back to the approved limit).
pub async fn end(store: &Store, p: &Principal, id: &str, oid: i64) -> Result<(), CaError> {
    tenant::agent(store, p, DECIDERS, id).await?;
    let mut details = json!({"override_id": oid});
    details["by"] = p.audit_details();
    let event = AuditEvent::new(&p.key_id, "override.ended", id, details);
    let by = p.person_id().unwrap_or(&p.key_id).to_owned();
    store.end_override(id, oid, &by, &event).await?;
    Ok(())
}

/// The agent's overrides, newest first (readers, or the agent's own key).
pub async fn list(store: &Store, p: &Principal, id: &str) -> Result<Vec<OverrideRow>, CaError> {
    tenant::agent_or_own(store, p, READERS, id).await?;
    Ok(store.overrides(id, 100).await?)
}

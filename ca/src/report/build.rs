//! Gathering and signing a report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mandate_config::Config;
use mandate_hsm::{Hsm, SignatureAlgorithm};
use mandate_store::{AgentRow, AuditEvent, AuditRow, OrganizationRow, Store};

use crate::audit_proof::ProofSubject;
use serde_json::{Value, json};

use crate::x509::cert_pem;
use crate::{CaError, rfc3339};

/// Records read per page from the audit log.
const PAGE: i64 = 2000;
/// At most this many audit records go into one report (the extract and its proof).
pub(crate) const MAX_AUDIT_RECORDS: usize = 200_000;
/// At most this many webhook deliveries.
const MAX_DELIVERIES: i64 = 10_000;

/// A half-open time range, unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    /// First second included.
    pub from: i64,
    /// First second not included.
    pub to: i64,
}

impl Period {
    /// From `YYYY-MM-DD` (a whole day: `to` includes that day) or RFC 3339 texts.
    pub fn parse(from: &str, to: &str) -> Result<Period, CaError> {
        let from = parse_time(from, false)?;
        let to = parse_time(to, true)?;
        if to <= from {
            return Err(CaError::InvalidRequest(format!(
                "the period is empty: --to ({}) must be after --from ({})",
                rfc3339(to),
                rfc3339(from)
            )));
        }
        Ok(Period { from, to })
    }

    fn contains_ms(&self, ms: i64) -> bool {
        ms >= self.from * 1000 && ms < self.to * 1000
    }
}

fn parse_time(text: &str, end_of_day: bool) -> Result<i64, CaError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(text, &fmt).map_err(|_| {
        CaError::InvalidRequest(format!(
            "{text:?} is not a date: use YYYY-MM-DD or RFC 3339 (2026-11-22T08:00:00Z)"
        ))
    })?;
    let start = day.midnight().assume_utc().unix_timestamp();
    Ok(if end_of_day { start + 86_400 } else { start })
}

/// What to report on, and who asks.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// One agent, or every agent of an organization.
    pub subject: ProofSubject,
    /// The period.
    pub period: Period,
    /// Who asks (kept in the audit log and in the report).
    pub actor: String,
}

/// Whether an audit record is about the agent (or one of its certificates).
fn about(r: &AuditRow, agent_id: &str, serials: &[String]) -> bool {
    crate::audit_proof::belongs(r, &ProofSubject::Agent(agent_id.to_owned()), serials)
}

/// The agents a report covers, and their organization.
async fn agents_of(
    store: &Store,
    subject: &ProofSubject,
) -> Result<(OrganizationRow, Vec<AgentRow>), CaError> {
    let (org, agents) = match subject {
        ProofSubject::Agent(id) => {
            let agent = store
                .agent(id)
                .await?
                .ok_or_else(|| CaError::NotFound(format!("agent {id}")))?;
            (agent.organization.clone(), vec![agent])
        }
        ProofSubject::Organization(org) => {
            let mut agents = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .list_agent_overviews(Some(org), after.as_deref(), 500)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.agent.id.clone());
                let done = page.len() < 500;
                agents.extend(page.into_iter().map(|o| o.agent));
                if done {
                    break;
                }
            }
            (org.clone(), agents)
        }
    };
    let org = store
        .organization(&org)
        .await?
        .ok_or_else(|| CaError::NotFound(format!("organization {org}")))?;
    Ok((org, agents))
}

/// Gathers the evidence, records the report in the audit log, signs a checkpoint covering it
/// and signs the bundle. `progress` is told how far the audit walk got (records read, of
/// about how many).
pub async fn build(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    opts: &ReportOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<u8>, CaError> {
    let period = opts.period;
    let (organization, agents) = agents_of(store, &opts.subject).await?;

    let cas = store.ca_certificates().await?;
    let root = cas
        .iter()
        .filter(|c| c.role == mandate_store::CaRole::Root && c.active)
        .max_by_key(|c| c.id)
        .ok_or(CaError::NotInitialised)?;
    let mut sections = Vec::with_capacity(agents.len());
    let mut all_serials = Vec::new();
    let mut events = 0;
    for agent in &agents {
        let (section, serials) = agent_sections(store, agent, period, &cas, root).await?;
        events += section["events"]["count"].as_u64().unwrap_or(0);
        if events > super::sections::MAX_EVENTS as u64 {
            return Err(CaError::InvalidRequest(format!(
                "the report would hold more than {} events: ask for a shorter period",
                super::sections::MAX_EVENTS
            )));
        }
        all_serials.push((agent.id.clone(), serials));
        sections.push(section);
    }
    let ca_certificates = cas
        .iter()
        .map(|c| {
            Ok(
                json!({"id": c.id, "role": c.role, "subject": c.subject, "sha256": c.sha256,
                   "active": c.active, "pem": cert_pem(&c.der)?}),
            )
        })
        .collect::<Result<Vec<Value>, CaError>>()?;
    let cross_certificates = store
        .cross_certificates()
        .await?
        .iter()
        .map(|c| {
            Ok(json!({"subject_id": c.subject_id, "issuer_id": c.issuer_id,
                   "sha256": c.sha256, "pem": cert_pem(&c.der)?}))
        })
        .collect::<Result<Vec<Value>, CaError>>()?;

    // The audit records of the subject in the period, each with its inclusion proof to the
    // checkpoint: nothing of any other agent or organization. Read up to now first, so a report
    // that is refused for its size is refused before anything is recorded.
    let tip = store.audit_tip().await?.map_or(0, |(seq, _)| seq);
    let mut kept = audit_records(store, opts, &all_serials, (0, tip), progress).await?;

    // The report is itself an audited act, and the checkpoint below covers it.
    let mut event = match &opts.subject {
        ProofSubject::Agent(id) => AuditEvent::new(
            &opts.actor,
            "report.generated",
            id,
            json!({"agent_id": id, "from": rfc3339(period.from), "to": rfc3339(period.to)}),
        ),
        ProofSubject::Organization(org) => AuditEvent::new(
            &opts.actor,
            "report.generated",
            org,
            json!({"organization": org, "from": rfc3339(period.from), "to": rfc3339(period.to)}),
        ),
    };
    event.organization = Some(organization.id.clone());
    store.record_audit_event(&event).await?;
    let checkpoint = match crate::audit_checkpoint::checkpoint_now(hsm, store, cfg).await? {
        Some(c) => c,
        None => store
            .last_tree_checkpoint()
            .await?
            .ok_or_else(|| CaError::Internal("no audit checkpoint after signing one".into()))?,
    };

    // Then the records since, the report's own among them, up to the checkpoint.
    kept.retain(|r| r.seq <= checkpoint.seq);
    kept.extend(audit_records(store, opts, &all_serials, (tip, checkpoint.seq), progress).await?);
    if kept.len() > MAX_AUDIT_RECORDS {
        return Err(CaError::InvalidRequest(format!(
            "the report would hold more than {MAX_AUDIT_RECORDS} audit records: ask for a shorter period"
        )));
    }
    let segment = crate::audit_proof::prove(store, &checkpoint, &kept).await?;
    let signers = store.audit_signers().await?;
    let signed_checkpoint = crate::audit_proof::SignedCheckpoint::of(store, &checkpoint).await?;

    // Who acted, by key: read in place (these can be large: no copies).
    let mut keys = std::collections::BTreeSet::from([opts.actor.clone()]);
    for v in &sections {
        crate::names::acting_keys(v, &mut keys);
    }
    keys.extend(kept.iter().map(|r| r.actor.clone()));
    let mut people = crate::names::people_of(store, keys).await?;
    // Approvals, overrides and records name people by id as well as by key.
    let mut ids: Vec<String> = Vec::new();
    for section in &sections {
        ids.extend(
            section["mandates"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["approvals"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a["person"].as_str().map(str::to_owned)),
        );
        ids.extend(
            section["overrides"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|o| o["granted_by"].as_array().cloned().unwrap_or_default())
                .filter_map(|g| g.as_str().map(str::to_owned)),
        );
    }
    ids.extend(kept.iter().filter_map(|r| r.person.clone()));
    drop(kept);
    for pid in ids {
        if !people.contains_key(&pid)
            && let Some(p) = store.person(&pid).await?
        {
            people.insert(
                pid,
                crate::names::KeyPerson {
                    person: p.id,
                    name: p.name,
                    organization: p.organization,
                },
            );
        }
    }
    let mut report_id = [0u8; 8];
    getrandom::fill(&mut report_id)
        .map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    let prepared_by = people.get(&opts.actor).map(|p| p.name.clone());
    let mut report = json!({
        "id": format!("rep_{}", hex::encode(report_id)),
        "subject": opts.subject,
        "people": people,
        "generated_at": rfc3339(mandate_store::now_unix()),
        "generated_by": opts.actor,
        "period": {"from": rfc3339(period.from), "to": rfc3339(period.to)},
        "root": {"subject": root.subject, "sha256": root.sha256},
        "organization": {"id": organization.id, "legal_name": organization.legal_name},
        "sign_off": {"prepared_by": opts.actor, "prepared_by_name": prepared_by,
                     "reviewed_by": null},
        "ca_certificates": ca_certificates,
        "cross_certificates": cross_certificates,
        "audit": {
            "records": [],
            "checkpoint": signed_checkpoint,
        },
    });
    // Moved in, not copied: the records are most of the report.
    report["audit"]["records"] =
        serde_json::to_value(segment).map_err(|e| CaError::Internal(e.to_string()))?;
    match &opts.subject {
        // One agent: its sections at the top level.
        ProofSubject::Agent(_) => {
            if let (Some(obj), Some(Value::Object(section))) =
                (report.as_object_mut(), sections.into_iter().next())
            {
                obj.extend(section);
            }
        }
        ProofSubject::Organization(_) => report["agents"] = Value::Array(sections),
    }

    // The bundle is signed by the current audit signer (the one that just signed the
    // checkpoint, or its successor).
    let signer = signers
        .last()
        .ok_or_else(|| CaError::Internal("no audit signer".into()))?;
    let key_id = signer
        .key_id
        .parse()
        .map_err(|_| CaError::Internal(format!("stored key id {:?}", signer.key_id)))?;
    let signed_at = mandate_store::now_unix();
    let signature = hsm
        .sign(
            &key_id,
            SignatureAlgorithm::EcdsaSha256,
            &super::signed_message(&report)?,
        )
        .await?;
    let bundle = Bundle {
        format: super::FORMAT,
        report,
        signature: BundleSignature {
            algorithm: "ecdsa-with-SHA256",
            signed_at: rfc3339(signed_at),
            signer_certificate: cert_pem(&signer.der)?,
            signer_issuer_id: signer.issuer_id,
            value: B64.encode(&signature),
        },
    };
    serde_json::to_vec(&bundle).map_err(|e| CaError::Internal(e.to_string()))
}

/// A compliance report and its signature: one JSON document in canonical form (keys sorted,
/// no whitespace; so the fields below are in that order), checked offline with
/// `mandate report verify` and the root certificate alone.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportBundle)]
pub struct Bundle {
    /// `mandate-compliance-report-v2`.
    #[schema(value_type = String, pattern = "^mandate-compliance-report-v2$")]
    format: &'static str,
    /// The report: `id`, `subject`, `period`, `organization`, `generated_at`, `generated_by`,
    /// `people` (by key and id), `root`, `sign_off`, `ca_certificates`, `cross_certificates`
    /// and `audit` (the records in the period, each with its inclusion proof, and the
    /// checkpoint signed for the report); for one agent its sections at the top level
    /// (`agent`, `mandates`, `certificates`, `revocations`, `baselines`, `incidents`,
    /// `kill_switches`, `overrides`, `events`, `pretrade`, `webhook_deliveries`, `orders`), for
    /// an organization one such section per agent in `agents`.
    #[schema(value_type = Object)]
    report: Value,
    /// The audit signer's signature over the report.
    signature: BundleSignature,
}

/// The signature of a report: ECDSA P-256 over a domain tag and the SHA-256 of the canonical
/// report, by the audit signer (a key in the HSM, certified for audit signing).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportSignature)]
pub struct BundleSignature {
    /// `ecdsa-with-SHA256`.
    #[schema(value_type = String, pattern = "^ecdsa-with-SHA256$")]
    algorithm: &'static str,
    /// When, RFC 3339 UTC.
    #[schema(format = DateTime)]
    signed_at: String,
    /// The audit signer's certificate, PEM.
    signer_certificate: String,
    /// The intermediate that issued the signer (an id among `ca_certificates`).
    signer_issuer_id: i64,
    /// The signature, base64.
    value: String,
}

/// Everything about one agent in the period: registration, mandate versions, certificates,
/// revocations, baselines, incidents, kill switches, overrides, events, pre-trade decisions,
/// webhook deliveries and orders; and the serials of its certificates.
async fn agent_sections(
    store: &Store,
    agent: &AgentRow,
    period: Period,
    cas: &[mandate_store::CaCertRow],
    root: &mandate_store::CaCertRow,
) -> Result<(Value, Vec<String>), CaError> {
    let id = agent.id.as_str();
    let mandates = super::sections::mandates(store, id).await?;
    let mut certs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.agent_certificates(id, after.as_deref(), 100).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.serial.clone());
        let done = page.len() < 100;
        certs.extend(page);
        if done {
            break;
        }
    }
    certs.sort_by_key(|c| c.created_at);
    let serials: Vec<String> = certs.iter().map(|c| c.serial.clone()).collect();
    let chain_of = |issuer_id: i64| -> Vec<Value> {
        let mut chain = Vec::new();
        if let Some(i) = cas.iter().find(|c| c.id == issuer_id) {
            chain.push(json!({"role": "intermediate", "subject": i.subject, "sha256": i.sha256}));
        }
        chain.push(json!({"role": "root", "subject": root.subject, "sha256": root.sha256}));
        chain
    };
    let certificates = certs
        .iter()
        .map(|c| {
            Ok(
                json!({"serial_number": c.serial, "status": c.status, "mandate_version": c.mandate_version,
                   "profile": c.profile, "issuer_id": c.issuer_id, "sha256": c.sha256,
                   "chain": chain_of(c.issuer_id),
                   "not_before": rfc3339(c.not_before), "not_after": rfc3339(c.not_after),
                   "requested_by": c.requested_by, "issued_at": c.issued_at.map(rfc3339),
                   "revoked_at": c.revoked_at.map(rfc3339),
                   "revocation_reason": c.revocation_reason.map(super::sections::reason_name),
                   "revocation_reason_code": c.revocation_reason, "revoked_by": c.revoked_by,
                   "pem": c.der.as_deref().map(cert_pem).transpose()?}),
            )
        })
        .collect::<Result<Vec<Value>, CaError>>()?;
    let revocations: Vec<Value> = certs
        .iter()
        .filter(|c| c.revoked_at.is_some())
        .map(|c| {
            json!({"serial_number": c.serial, "revoked_at": c.revoked_at.map(rfc3339),
                   "revocation_reason": c.revocation_reason.map(super::sections::reason_name),
                   "revocation_reason_code": c.revocation_reason, "revoked_by": c.revoked_by})
        })
        .collect();
    let baselines: Vec<Value> = store
        .baselines(id)
        .await?
        .into_iter()
        .map(|b| {
            json!({"version": b.version, "status": b.status, "baseline": b.baseline,
                   "learnt_by": b.learnt_by, "created_at": rfc3339(b.created_at),
                   "decided_by": b.decided_by, "decided_at": b.decided_at.map(rfc3339)})
        })
        .collect();
    let mut incidents = Vec::new();
    let mut before = 0;
    loop {
        let page = store.incidents(None, Some(id), None, before, 100).await?;
        let Some(last) = page.last() else { break };
        before = last.id;
        let done = page.len() < 100;
        incidents.extend(
            page.into_iter()
                .filter(|i| period.contains_ms(i.created_at_ms)),
        );
        if done {
            break;
        }
    }
    incidents.reverse();
    let kills = super::sections::kill_switches(store, agent, period).await?;
    let incidents: Vec<Value> = incidents
        .iter()
        .map(|i| {
            let kill = i
                .kill_switch_id
                .and_then(|k| kills.iter().find(|x| x.id == k));
            super::sections::incident_json(i, kill)
        })
        .collect();
    let kill_switches: Vec<Value> = kills
        .iter()
        .map(super::sections::kill_switch_json)
        .collect();
    let overrides = super::sections::overrides(store, id, period).await?;
    let events = super::sections::events(store, id, period).await?;
    let pretrade = super::sections::pretrade(store, id, period).await?;
    let deliveries: Vec<Value> = store
        .agent_deliveries(id, (period.from * 1000, period.to * 1000), MAX_DELIVERIES)
        .await?
        .into_iter()
        .map(|d| {
            json!({"id": d.id, "webhook_id": d.webhook_id, "event_id": d.event_id,
                   "event_type": d.event_type, "status": d.status, "attempts": d.attempts,
                   "last_status_code": d.last_status_code, "last_error": d.last_error,
                   "delivered_at": d.delivered_at_ms.map(|t| rfc3339(t / 1000))})
        })
        .collect();
    let orders = super::orders::orders(store, id, period).await?;
    Ok((
        json!({"agent": {"id": agent.id, "name": agent.name,
                         "organization": agent.organization, "status": agent.status,
                         "registered_by": agent.created_by,
                         "registered_at": rfc3339(agent.created_at),
                         "updated_at": rfc3339(agent.updated_at)},
               "mandates": mandates, "certificates": certificates,
               "revocations": revocations, "baselines": baselines, "incidents": incidents,
               "kill_switches": kill_switches, "overrides": overrides, "events": events,
               "pretrade": pretrade, "webhook_deliveries": deliveries, "orders": orders}),
        serials,
    ))
}

/// The subject's audit records in the period up to the checkpoint: an agent's (and its
/// certificates'), or an organization's, read through their indexes.
async fn audit_records(
    store: &Store,
    opts: &ReportOptions,
    serials: &[(String, Vec<String>)],
    (after, up_to): (i64, i64),
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<AuditRow>, CaError> {
    let period = opts.period;
    let mut kept: Vec<AuditRow> = Vec::new();
    let Some(start) = store.audit_seq_since(period.from * 1000).await? else {
        return Ok(kept);
    };
    let total = u64::try_from((up_to - start + 1).max(0)).unwrap_or(0);
    let mut subjects: Vec<String> = Vec::new();
    for (agent, s) in serials {
        subjects.push(agent.clone());
        subjects.extend(s.iter().cloned());
    }
    let mut cursor = (start - 1).max(after);
    loop {
        let rows = match &opts.subject {
            ProofSubject::Agent(_) => store.subject_audit_events(&subjects, cursor, PAGE).await?,
            ProofSubject::Organization(org) => {
                store.organization_audit_events(org, cursor, PAGE).await?
            }
        };
        let Some(last) = rows.last() else { break };
        cursor = last.seq;
        for r in rows {
            if r.seq > up_to {
                return Ok(kept);
            }
            let about = match &opts.subject {
                ProofSubject::Agent(id) => serials.first().is_some_and(|(_, s)| about(&r, id, s)),
                ProofSubject::Organization(_) => true,
            };
            if period.contains_ms(r.at_ms) && about {
                kept.push(r);
            }
            if kept.len() > MAX_AUDIT_RECORDS {
                return Err(CaError::InvalidRequest(format!(
                    "the report would hold more than {MAX_AUDIT_RECORDS} audit records: ask for a shorter period"
                )));
            }
        }
        progress(u64::try_from(cursor - start + 1).unwrap_or(0), total);
    }
    Ok(kept)
}

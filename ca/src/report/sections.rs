//! The parts of a report a supervisor reads that are assembled rather than copied: a mandate as
//! rows with what each version changed and who approved it, the kill switches, overrides,
//! events and pre-trade denials of the period, and each incident's timeline.

use std::collections::BTreeMap;

use mandate_store::{AgentRow, IncidentRow, KillSwitchRow, Store};
use serde_json::{Value, json};

use super::build::Period;
use crate::revocation::RevocationReason;
use crate::{CaError, rfc3339};

/// At most this many events go into one report (every one in the JSON and the CSV).
pub(crate) const MAX_EVENTS: usize = 200_000;
/// At most this many pre-trade decisions are read for the tally.
const MAX_DECISIONS: usize = 1_000_000;
const PAGE: i64 = 5000;

/// A mandate (JSON) as `(field, value)` rows: nested objects by dotted path, lists joined.
pub(crate) fn mandate_fields(m: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, x, out);
                }
            }
            Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
                let text: Vec<String> = items.iter().map(scalar).collect();
                out.push((prefix.to_owned(), text.join(", ")));
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out);
                }
            }
            other => out.push((prefix.to_owned(), scalar(other))),
        }
    }
    let mut out = Vec::new();
    walk("", m, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// What changed from one version's rows to the next: `{field, before, after}` (a missing side
/// is "not set").
pub(crate) fn mandate_changes(
    before: &[(String, String)],
    after: &[(String, String)],
) -> Vec<Value> {
    let old: BTreeMap<&str, &str> = before
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let new: BTreeMap<&str, &str> = after
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut keys: Vec<&str> = old.keys().chain(new.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(k) != new.get(k))
        .map(|k| {
            json!({"field": k, "before": old.get(k).copied().unwrap_or("not set"),
                   "after": new.get(k).copied().unwrap_or("not set")})
        })
        .collect()
}

/// Every mandate version: its rows, what it changed from the one before, and each person's
/// decision on it (name, role, time, words).
pub(crate) async fn mandates(store: &Store, agent_id: &str) -> Result<Vec<Value>, CaError> {
    let approvals = store.mandate_approvals(agent_id).await?;
    // The role each decision was taken in: that of the key used.
    let mut roles = BTreeMap::new();
    for a in &approvals {
        if !roles.contains_key(&a.decided_by)
            && let Some(h) = store.key_holder(&a.decided_by).await?
        {
            roles.insert(a.decided_by.clone(), h.key.role.to_string());
        }
    }
    let mut out = Vec::new();
    let mut previous: Option<Vec<(String, String)>> = None;
    let mut rows = store.mandates(agent_id).await?;
    rows.sort_by_key(|m| m.version);
    for m in rows {
        let mandate: Value = serde_json::from_str(&m.mandate_json).unwrap_or(Value::Null);
        let fields = mandate_fields(&mandate);
        let changes = previous
            .as_ref()
            .map(|p| mandate_changes(p, &fields))
            .unwrap_or_default();
        let decisions: Vec<Value> = approvals
            .iter()
            .filter(|a| a.version == m.version)
            .map(|a| {
                json!({"decision": a.decision, "decided_by": a.decided_by, "person": a.person,
                       "role": roles.get(&a.decided_by), "at": rfc3339(a.at),
                       "comment": a.comment})
            })
            .collect();
        out.push(json!({
            "version": m.version, "status": m.status, "mandate": mandate,
            "fields": fields.iter().map(|(k, v)| json!({"field": k, "value": v})).collect::<Vec<_>>(),
            "changes": changes, "approvals": decisions,
            "submitted_by": m.created_by, "submitted_at": rfc3339(m.created_at),
            "decided_by": m.decided_by, "decided_at": m.decided_at.map(rfc3339),
        }));
        previous = Some(fields);
    }
    Ok(out)
}

/// The name of an RFC 5280 reason code (the code itself if unknown).
pub(crate) fn reason_name(code: i64) -> String {
    RevocationReason::from_code(code).map_or_else(|| format!("code {code}"), |r| r.name().into())
}

/// The kill switches that reached the agent in the period (on it, or on its whole
/// organization): who, why, what they did.
pub(crate) async fn kill_switches(
    store: &Store,
    agent: &AgentRow,
    period: Period,
) -> Result<Vec<KillSwitchRow>, CaError> {
    let mut all = store
        .kill_switches(Some(&agent.organization), 10_000)
        .await?;
    all.retain(|k| {
        (k.scope == "agent" && k.target == agent.id
            || k.scope == "operator" && k.target == agent.organization)
            && k.created_at >= period.from
            && k.created_at < period.to
    });
    all.reverse();
    Ok(all)
}

/// A kill switch as the report writes it.
pub(crate) fn kill_switch_json(k: &KillSwitchRow) -> Value {
    json!({"id": k.id, "at": rfc3339(k.created_at), "pulled_by": k.pulled_by, "reason": k.reason,
           "scope": if k.scope == "operator" { "organization" } else { "agent" },
           "target": k.target, "agents_suspended": k.agents_suspended,
           "certificates_revoked": k.certificates_revoked})
}

/// The overrides of a limit in force at some time in the period.
pub(crate) async fn overrides(
    store: &Store,
    agent_id: &str,
    period: Period,
) -> Result<Vec<Value>, CaError> {
    let mut rows = store.overrides(agent_id, 10_000).await?;
    rows.retain(|o| {
        let end = o.ended_at.unwrap_or(o.expires_at).min(o.expires_at);
        o.starts_at < period.to && end > period.from
    });
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|o| {
            let value: Value = serde_json::from_str(&o.value_json).unwrap_or(Value::Null);
            json!({"id": o.id, "limit": o.limit_name, "market": o.market, "value": value,
                   "reason": o.reason, "granted_by": o.granted_by.split(',').map(str::trim).collect::<Vec<_>>(),
                   "from": rfc3339(o.starts_at), "until": rfc3339(o.expires_at),
                   "ended_at": o.ended_at.map(rfc3339), "ended_by": o.ended_by})
        })
        .collect())
}

/// The events of the period (every one) and their tally by kind.
pub(crate) async fn events(
    store: &Store,
    agent_id: &str,
    period: Period,
) -> Result<Value, CaError> {
    let mut records = Vec::new();
    let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut markets: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store
            .agent_events_between(agent_id, (period.from, period.to), after, PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in page {
            let t = by_kind.entry(e.action_type.clone()).or_default();
            t.0 += 1;
            if !e.success {
                t.1 += 1;
            }
            if let Some(m) = &e.market {
                *markets.entry(m.clone()).or_default() += 1;
            }
            records.push(
                json!({"id": e.id, "at": rfc3339(e.at), "action": e.action_type,
                "market": e.market, "side": e.side, "size": e.size, "currency": e.currency,
                "region": e.region, "success": e.success, "score": e.score}),
            );
            if records.len() > MAX_EVENTS {
                return Err(CaError::InvalidRequest(format!(
                    "the report would hold more than {MAX_EVENTS} events: ask for a shorter period"
                )));
            }
        }
    }
    Ok(json!({
        "count": records.len(),
        "by_kind": by_kind.iter().map(|(k, (n, failed))| json!({"action": k, "count": n, "failed": failed})).collect::<Vec<_>>(),
        "markets": markets.iter().map(|(m, n)| json!({"market": m, "count": n})).collect::<Vec<_>>(),
        "records": records,
    }))
}

/// Every event of a report bundle as CSV (RFC 4180, a header line, CRLF line ends).
pub fn events_csv(bundle: &Value) -> String {
    const COLUMNS: [&str; 11] = [
        "agent_id", "id", "at", "action", "market", "side", "size", "currency", "region",
        "success", "score",
    ];
    fn field(v: &Value) -> String {
        let t = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if t.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", t.replace('"', "\"\""))
        } else {
            t
        }
    }
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    let r = &bundle["report"];
    // An organization's report has a section per agent; an agent's, its own at the top.
    let sections: Vec<&Value> = match r["agents"].as_array() {
        Some(agents) => agents.iter().collect(),
        None => vec![r],
    };
    for a in sections {
        for e in a["events"]["records"].as_array().into_iter().flatten() {
            let row: Vec<String> = COLUMNS
                .iter()
                .map(|c| match *c {
                    "agent_id" => field(&a["agent"]["id"]),
                    c => field(&e[c]),
                })
                .collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// The pre-trade decisions of the period: how many, how many denied, and the denials by reason.
pub(crate) async fn pretrade(
    store: &Store,
    agent_id: &str,
    period: Period,
) -> Result<Value, CaError> {
    let (mut total, mut denied) = (0u64, 0u64);
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let page = store
            .agent_decisions_between(
                agent_id,
                (period.from * 1000, period.to * 1000),
                &after,
                PAGE,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        for (_, _, _, allowed, reasons) in page {
            total += 1;
            if allowed {
                continue;
            }
            denied += 1;
            for r in reasons.as_array().into_iter().flatten() {
                if r["enforcement"] == "soft" {
                    continue;
                }
                let code = r["code"].as_str().unwrap_or("unknown");
                *by_reason.entry(code.to_owned()).or_default() += 1;
            }
        }
        if total as usize >= MAX_DECISIONS {
            break;
        }
    }
    let mut by_reason: Vec<(String, u64)> = by_reason.into_iter().collect();
    by_reason.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(json!({
        "decisions": total, "denied": denied,
        "denials_by_reason": by_reason.iter().map(|(r, n)| json!({"reason": r, "count": n})).collect::<Vec<_>>(),
    }))
}

/// An incident and what happened to it, in order: raised (the score over the threshold, or the
/// breach), the kill switch it pulled, acknowledged, resolved (with the resolving person's
/// words).
pub(crate) fn incident_json(i: &IncidentRow, kill: Option<&KillSwitchRow>) -> Value {
    let detail = match &i.reasons {
        // A breach names what it broke; a score incident, the score against the threshold.
        Some(reasons) => {
            let broke: Vec<String> = reasons
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r["code"].as_str().unwrap_or("unknown").to_owned())
                .collect();
            format!("{}: {}", i.kind, broke.join(", "))
        }
        None => format!(
            "{} (score {:.4} against threshold {:.4})",
            i.kind, i.score, i.threshold
        ),
    };
    let mut timeline = vec![
        json!({"at": rfc3339(i.created_at_ms / 1000), "what": "raised",
        "detail": detail, "by": "system"}),
    ];
    if let Some(k) = kill {
        timeline.push(json!({"at": rfc3339(k.created_at), "what": "kill switch",
            "detail": format!("{} ({} certificates revoked)", k.reason, k.certificates_revoked),
            "by": k.pulled_by}));
    }
    if let (Some(by), Some(at)) = (&i.acknowledged_by, i.acknowledged_at) {
        timeline.push(json!({"at": rfc3339(at), "what": "acknowledged", "detail": null, "by": by}));
    }
    if let (Some(by), Some(at)) = (&i.resolved_by, i.resolved_at) {
        timeline.push(
            json!({"at": rfc3339(at), "what": "resolved", "detail": i.resolution,
                             "by": by}),
        );
    }
    json!({"id": i.id, "kind": i.kind, "status": i.status, "score": i.score,
           "threshold": i.threshold, "contributions": i.contributions, "reasons": i.reasons,
           "created_at": rfc3339(i.created_at_ms / 1000),
           "acknowledged_by": i.acknowledged_by, "resolved_by": i.resolved_by,
           "resolved_at": i.resolved_at.map(rfc3339), "resolution": i.resolution,
           "kill_switch_id": i.kill_switch_id, "timeline": timeline})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mandate_reads_as_rows_and_versions_as_changes() {
        let v1 = json!({"operator": "Acme", "allowedMarkets": ["BTC_EUR", "ETH_EUR"],
                        "limits": {"maxOrderQuantity": "10"}});
        let v2 = json!({"operator": "Acme", "allowedMarkets": ["BTC_EUR"],
                        "limits": {"maxOrderQuantity": "5", "maxOrdersPerSecond": 3}});
        let (a, b) = (mandate_fields(&v1), mandate_fields(&v2));
        assert!(a.contains(&("allowedMarkets".into(), "BTC_EUR, ETH_EUR".into())));
        assert!(a.contains(&("limits.maxOrderQuantity".into(), "10".into())));
        let changes = mandate_changes(&a, &b);
        assert_eq!(
            changes,
            vec![
                json!({"field": "allowedMarkets", "before": "BTC_EUR, ETH_EUR", "after": "BTC_EUR"}),
                json!({"field": "limits.maxOrderQuantity", "before": "10", "after": "5"}),
                json!({"field": "limits.maxOrdersPerSecond", "before": "not set", "after": "3"}),
            ]
        );
        assert_eq!(reason_name(9), "privilegeWithdrawn");
    }
}

//! The report's orders: each order the agent reported in the period, its lifecycle, and the
//! pre-trade decision that let it through (RTS 6: every order attributed to the algorithm and
//! the decision behind it).

use std::collections::HashMap;

use mandate_store::{DecisionRow, LinkedEvent, Store};
use serde_json::{Value, json};

use super::build::Period;
use crate::{CaError, rfc3339};

/// At most this many order events go into one report.
pub(crate) const MAX_ORDER_EVENTS: usize = 100_000;

/// The orders of `agent_id` in `period`, oldest first, each with its events and decision.
/// Events of one order share its client order id; an event without one is an order of its own.
pub(crate) async fn orders(
    store: &Store,
    agent_id: &str,
    period: Period,
) -> Result<Value, CaError> {
    let (events, decisions) = store
        .orders_with_decisions(agent_id, period.from, period.to - 1, MAX_ORDER_EVENTS + 1)
        .await?;
    if events.len() > MAX_ORDER_EVENTS {
        return Err(CaError::InvalidRequest(format!(
            "the report would list more than {MAX_ORDER_EVENTS} order events: ask for a shorter period"
        )));
    }
    let decisions: HashMap<&str, &DecisionRow> =
        decisions.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut order_of: HashMap<String, usize> = HashMap::new();
    let mut grouped: Vec<Vec<&LinkedEvent>> = Vec::new();
    for e in &events {
        let key = match &e.client_order_id {
            Some(c) => format!("c:{c}"),
            None => format!("e:{}", e.id),
        };
        let i = *order_of.entry(key).or_insert_with(|| {
            grouped.push(Vec::new());
            grouped.len() - 1
        });
        grouped[i].push(e);
    }
    let list: Vec<Value> = grouped
        .iter()
        .map(|evs| order_json(evs, &decisions))
        .collect();
    Ok(Value::Array(list))
}

/// One order: what it was (from its first event that says), where it ended, and its decision.
fn order_json(evs: &[&LinkedEvent], decisions: &HashMap<&str, &DecisionRow>) -> Value {
    let first = |f: fn(&LinkedEvent) -> Option<&String>| evs.iter().find_map(|e| f(e)).cloned();
    let decision_id = first(|e| e.decision_id.as_ref());
    let decision = decision_id
        .as_deref()
        .and_then(|id| decisions.get(id))
        .map(|d| {
            json!({"id": d.id, "via": d.via, "at": rfc3339(d.at_ms / 1000),
                   "allowed": d.allowed, "hypothetical": d.hypothetical,
                   "soft_breaches": soft(&d.reasons), "decided_by": d.decided_by})
        });
    json!({
        "client_order_id": first(|e| e.client_order_id.as_ref()),
        "market": first(|e| e.market.as_ref()),
        "side": first(|e| e.side.as_ref()),
        "quantity": first(|e| e.quantity.as_ref()),
        "price": first(|e| e.price.as_ref()),
        "state": evs.iter().rev().find_map(|e| e.order_state.clone()),
        "decision_id": decision_id,
        // A decision the events name but the store does not hold (named wrongly, or lost
        // with the daemon's last moments) shows as null beside the id it was named by.
        "decision": decision,
        "events": evs.iter().map(|e| json!({
            "id": e.id, "at": rfc3339(e.at), "state": e.order_state,
            "fill_quantity": e.fill_quantity, "fill_price": e.fill_price,
            "realised_pnl": e.realised_pnl,
        })).collect::<Vec<_>>(),
    })
}

/// The codes of a decision's reasons (an allowed decision's reasons are its soft breaches).
fn soft(reasons: &Value) -> Vec<Value> {
    reasons
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["enforcement"] == "soft")
        .map(|r| json!({"code": r["code"], "limit": r["limit"], "requested": r["requested"]}))
        .collect()
}

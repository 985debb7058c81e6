//! Learning baselines (on request, or by itself once an agent has a whole observation window of
//! events), and the scoring loop's housekeeping: finishing auto-revocations a stop interrupted.

use std::sync::Arc;
use std::time::Duration;

use mandate_policy::{Baseline, Observation};
use mandate_store::BaselineRow;

use crate::CaError;
use crate::node::Node;

/// Most events a baseline is learnt from (the newest of the window are dropped beyond it).
const MAX_BASELINE_EVENTS: i64 = 200_000;

/// Learns a baseline for `agent_id` from its events of the last observation window and stores
/// it as the next version, pending a compliance officer's approval.
pub async fn learn_baseline(
    node: &Node,
    agent_id: &str,
    actor: &str,
) -> Result<BaselineRow, CaError> {
    let store = &node.store;
    store
        .agent(agent_id)
        .await?
        .ok_or_else(|| CaError::NotFound(format!("agent {agent_id}")))?;
    let end = mandate_store::now_unix() + 1;
    let window = i64::try_from(node.cfg.scoring.observation_window_secs).unwrap_or(i64::MAX);
    let start = end.saturating_sub(window);
    let rows = store
        .observations(agent_id, start, end, MAX_BASELINE_EVENTS)
        .await?;
    let observations: Vec<Observation> = rows
        .into_iter()
        .map(|r| Observation {
            at: r.at,
            size: r
                .size
                .as_deref()
                .and_then(|s| s.parse::<mandate_policy::Amount>().ok())
                .map(|a| a.as_minor_units() as f64 / 1e8),
            market: r.market,
            region: r.region,
        })
        .collect();
    let min = usize::try_from(node.cfg.scoring.min_baseline_events).unwrap_or(usize::MAX);
    let baseline = Baseline::learn(&observations, start, end, min).map_err(|e| {
        CaError::NotApproved(format!("cannot learn a baseline for {agent_id} yet: {e}"))
    })?;
    let value =
        serde_json::to_value(&baseline).map_err(|e| CaError::Internal(format!("baseline: {e}")))?;
    let version = store.insert_baseline(agent_id, &value, actor).await?;
    tracing::info!(
        agent = agent_id,
        version,
        events = baseline.events,
        "baseline learnt"
    );
    store
        .baselines(agent_id)
        .await?
        .into_iter()
        .find(|b| b.version == version)
        .ok_or_else(|| CaError::Internal("baseline vanished".into()))
}

/// The scoring loop's background task: at start and every `scoring.learn_interval_secs`, it
/// finishes auto-revocations left unfinished and (with `scoring.auto_learn`) learns baselines
/// for agents that have been observed for a whole window.
pub fn start_learner(node: Arc<Node>) {
    let every = Duration::from_secs(node.cfg.scoring.learn_interval_secs);
    tokio::spawn(async move {
        loop {
            if let Err(e) = round(&node).await {
                tracing::warn!(error = %e, "scoring loop round failed; retrying next round");
            }
            tokio::time::sleep(every).await;
        }
    });
}

async fn round(node: &Arc<Node>) -> Result<(), CaError> {
    let unfinished: Vec<(i64, String)> = node
        .store
        .unfinished_auto_revocations()
        .await?
        .into_iter()
        .map(|i| (i.id, i.agent_id))
        .collect();
    if !unfinished.is_empty() {
        tracing::warn!(
            count = unfinished.len(),
            "finishing interrupted automatic revocations"
        );
        super::ingest::auto_revoke(node, &unfinished).await;
    }
    if node.cfg.scoring.auto_learn {
        let window = i64::try_from(node.cfg.scoring.observation_window_secs).unwrap_or(i64::MAX);
        let due = mandate_store::now_unix().saturating_sub(window);
        for agent in node.store.agents_without_baseline(due, 100).await? {
            match learn_baseline(node, &agent, "system:learner").await {
                Ok(b) => {
                    tracing::info!(agent = %agent, version = b.version, "baseline learnt by itself; awaiting approval")
                }
                Err(e) => tracing::debug!(agent = %agent, error = %e, "no baseline yet"),
            }
        }
    }
    Ok(())
}

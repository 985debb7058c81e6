//! Certificates of older mandate versions whose grace ran out (an approval that only widened
//! the mandate) are revoked `superseded` here, within about a second of their `retire_at`.
//! Approvals that narrow the mandate revoke them at once, in the approving transaction.

use std::sync::Arc;
use std::time::Duration;

use crate::node::Node;

/// How often due retirements are looked for: an indexed query over the few certificates that
/// have a `retire_at`.
const EVERY: Duration = Duration::from_secs(1);

/// Starts the retirement task.
pub fn start(node: Arc<Node>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match node.store.retire_due(mandate_store::now_unix()).await {
                Ok(serials) if !serials.is_empty() => {
                    tracing::info!(count = serials.len(), serials = ?serials, "certificates of superseded mandate versions revoked after their grace");
                    node.webhooks.wake();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "retiring superseded certificates failed; retrying")
                }
            }
        }
    });
}

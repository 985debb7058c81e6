//! One path for every committed change (`mandate_store::Change`) to reach what caches or
//! serves it: the OCSP cache and pre-signer, the CRL publisher, the agents' live state, the
//! API key cache and the webhook worker. This node's own commits arrive from the store right
//! after each COMMIT (`Store::subscribe`), before the request that made them is answered; what
//! another node (or the CLI) commits arrives through LISTEN/NOTIFY on PostgreSQL within
//! milliseconds. The pollers each component already runs (revocation count, CA generation,
//! webhook outbox) stay as the reconciliation that catches anything a lost connection missed;
//! on SQLite, another process's commits reach this one through them alone.

use std::sync::Arc;
use std::time::Duration;

use mandate_store::Change;

use crate::node::Node;

/// Pause before listening again after the database could not be reached.
const RETRY: Duration = Duration::from_secs(1);

/// Subscribes the node to its store's commits and starts the listener for other processes'
/// (PostgreSQL only).
pub(crate) fn start(node: Arc<Node>) {
    let weak = Arc::downgrade(&node);
    node.store.subscribe(Arc::new(move |c: &Change| {
        if let Some(node) = weak.upgrade() {
            apply(&node, c.clone());
        }
    }));
    tokio::spawn(async move {
        let store = node.store.clone();
        store.for_each_change(RETRY, |c| apply(&node, c)).await;
    });
}

fn apply(node: &Node, change: Change) {
    match change {
        // The CRL publisher compares the revocation count with what it published: on a change
        // it drops cached OCSP answers and reloads agents' live states, then re-signs the CRL.
        Change::Revocation => node.revoked(),
        Change::Agent(id) => node.agent_changed(&id),
        Change::Ca => node.ca_changes.notify_one(),
        Change::Keys => node.api_key_cache.clear(),
        // Pre-signed responses: this node answers OCSP from its own signer and cache.
        Change::Ocsp | Change::Unknown(_) => {}
        Change::Missed => {
            node.revoked();
            node.api_key_cache.clear();
            node.ca_changes.notify_one();
        }
    }
}

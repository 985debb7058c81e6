//! Several nodes on one PostgreSQL database: what another node (or the CLI) commits reaches
//! this one through LISTEN/NOTIFY (see `mandate_store::Change`) within milliseconds. The
//! pollers each component already runs (revocation count, CA generation, webhook outbox) stay
//! as the reconciliation that catches anything a lost connection missed. On SQLite there is
//! no channel and only the pollers run.

use std::sync::Arc;
use std::time::Duration;

use mandate_store::Change;

use crate::node::Node;

/// Pause before listening again after the database could not be reached.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the listener (PostgreSQL only).
pub(crate) fn start(node: Arc<Node>) {
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
        // Pre-signed responses: this node answers OCSP from its own signer and cache.
        Change::Ocsp | Change::Unknown(_) => {}
        Change::Missed => {
            node.revoked();
            node.ca_changes.notify_one();
        }
    }
}

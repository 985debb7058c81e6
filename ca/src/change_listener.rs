//! One path for every committed change (`mandate_store::Change`) to reach what caches or
//! serves it: the OCSP cache and pre-signer, the CRL publisher, the agents' live state, the
//! API key cache and the webhook worker. This node's own commits arrive from the store right
//! after each COMMIT (`Store::subscribe`), before the request that made them is answered; what
//! another node (or the CLI) commits arrives through LISTEN/NOTIFY on PostgreSQL within
//! milliseconds, and through the CRL publisher's poll of the revocation count, once a second
//! (on SQLite, which has no such channel, the only way). The pollers the other components run
//! (CA generation, webhook outbox) stay as the reconciliation that catches anything missed.

use std::sync::Arc;
use std::time::Duration;

use mandate_store::Change;

use crate::node::Node;

/// Pause before listening again after the database could not be reached.
const RETRY: Duration = Duration::from_secs(1);

/// Where a change came from (the `source` label of `mandate_changes_total`).
#[derive(Clone, Copy, Debug)]
enum Source {
    /// This node's own commit.
    Commit,
    /// PostgreSQL's NOTIFY (another node, the CLI, or this node again).
    Notify,
    /// The CRL publisher's poll of the revocation count (another process's revocation: on
    /// SQLite the only way to learn of it; elsewhere a reconciliation).
    Poll,
}

/// Subscribes the node to its store's commits and follows other processes' commits: through
/// LISTEN/NOTIFY on PostgreSQL, and through the CRL publisher's poll of the revocation count
/// (once a second; on SQLite the only way). Every change, from wherever it comes, goes
/// through [`apply`].
pub(crate) fn start(node: Arc<Node>) {
    let weak = Arc::downgrade(&node);
    node.store.subscribe(Arc::new(move |c: &Change| {
        if let Some(node) = weak.upgrade() {
            apply(&node, Source::Commit, c.clone());
        }
    }));
    let weak = Arc::downgrade(&node);
    node.crls.on_count_change(Box::new(move || {
        if let Some(node) = weak.upgrade() {
            apply(&node, Source::Poll, Change::Revocation);
        }
    }));
    tokio::spawn(async move {
        let store = node.store.clone();
        store
            .for_each_change(RETRY, |c| apply(&node, Source::Notify, c))
            .await;
    });
}

/// What a change does to this node.
fn apply(node: &Node, source: Source, change: Change) {
    let kind = match &change {
        Change::Revocation => "revocation",
        Change::Ocsp => "ocsp",
        Change::Ca => "ca",
        Change::Agent(_) => "agent",
        Change::Keys => "keys",
        Change::Missed => "missed",
        Change::Unknown(_) => "unknown",
    };
    let source_label = match source {
        Source::Commit => "commit",
        Source::Notify => "notify",
        Source::Poll => "poll",
    };
    crate::metrics::METRICS.changes.inc(&[source_label, kind]);
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

//! One path for every committed change (`mandate_store::Change`) to reach what caches or
//! serves it: the OCSP cache and pre-signer, the CRL publisher, the agents' live state, the
//! API key cache and the webhook worker. This node's own commits arrive from the store right
//! after each COMMIT (`Store::subscribe`), before the request that made them is answered; what
//! another node (or the CLI) commits arrives through LISTEN/NOTIFY on PostgreSQL within
//! milliseconds, and on SQLite, which has no such channel, through a poll of the revocation
//! count every 250 ms. The pollers each component already runs (revocation count, CA
//! generation, webhook outbox) stay as the reconciliation that catches anything missed.

use std::sync::Arc;
use std::time::Duration;

use mandate_store::Change;

use crate::node::Node;

/// Pause before listening again after the database could not be reached.
const RETRY: Duration = Duration::from_secs(1);
/// How often, without a notification channel (SQLite), the store is asked whether another
/// process (the CLI) revoked something.
const POLL: Duration = Duration::from_millis(250);

/// Where a change came from (the `source` label of `mandate_changes_total`).
#[derive(Clone, Copy, Debug)]
enum Source {
    /// This node's own commit.
    Commit,
    /// PostgreSQL's NOTIFY (another node, the CLI, or this node again).
    Notify,
    /// The store polled (another process, on SQLite).
    Poll,
}

/// Subscribes the node to its store's commits and follows other processes' commits: through
/// LISTEN/NOTIFY on PostgreSQL, by polling the revocation count on SQLite. Every change, from
/// wherever it comes, goes through [`apply`].
pub(crate) fn start(node: Arc<Node>) {
    let weak = Arc::downgrade(&node);
    node.store.subscribe(Arc::new(move |c: &Change| {
        if let Some(node) = weak.upgrade() {
            apply(&node, Source::Commit, c.clone());
        }
    }));
    tokio::spawn(async move {
        let store = node.store.clone();
        if store.backend() == mandate_store::Backend::Sqlite {
            poll(&node).await;
        } else {
            store
                .for_each_change(RETRY, |c| apply(&node, Source::Notify, c))
                .await;
        }
    });
}

/// SQLite: another process's revocations (the CLI's) show as a changed revocation count.
async fn poll(node: &Node) {
    let mut seen = node.store.revocation_count().await.ok();
    loop {
        tokio::time::sleep(POLL).await;
        match node.store.revocation_count().await {
            Ok(n) if Some(n) != seen => {
                // Not on the first reading. A count this node's own commit moved is applied a
                // second time: harmless (caches are dropped again), and it cannot hide another
                // process's revocation made in the same instant.
                if seen.is_some() {
                    apply(node, Source::Poll, Change::Revocation);
                }
                seen = Some(n);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot poll the store for revocations"),
        }
    }
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

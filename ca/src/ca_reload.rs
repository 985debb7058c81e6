//! Loads a key rotation made by this or another process (`mandate ca rotate-intermediate` runs
//! beside the daemon): new issuance switches to the new intermediate, which also gets a CRL, an
//! OCSP identity and a delegated OCSP signer, while the retired one keeps answering for what it
//! issued. No restart, no pause in issuance.

use std::sync::Arc;
use std::time::Duration;

use crate::CaError;
use crate::node::Node;

/// How often the store is asked whether the CA hierarchy changed.
const POLL: Duration = Duration::from_secs(1);

/// Starts the watcher.
pub(crate) fn start(node: Arc<Node>) {
    tokio::spawn(async move {
        let mut seen = node.store.ca_generation().await.unwrap_or(0);
        loop {
            tokio::select! {
                () = node.ca_changes.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            match node.store.ca_generation().await {
                Ok(g) if g != seen => match load(&node).await {
                    Ok(()) => seen = g,
                    Err(e) => tracing::error!(error = %e, "key rotation not loaded yet; retrying"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "CA generation not read"),
            }
        }
    });
}

/// Every step is idempotent: a failed one is simply run again at the next poll.
async fn load(node: &Node) -> Result<(), CaError> {
    node.ocsp_issuers.refresh(&node.store).await?;
    node.crls.reload_issuers().await?;
    crate::ocsp_signer::renew_all(&node.hsm, &node.store, &node.cfg, &node.ocsp_issuers).await?;
    // Last: the first certificate of the new intermediate must find OCSP and CRL ready.
    node.issuer.reload().await?;
    if let Some(p) = &node.presigner {
        p.wake();
    }
    Ok(())
}

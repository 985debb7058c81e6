//! Change notifications between processes sharing a PostgreSQL database (LISTEN/NOTIFY on the
//! channel `mandate_changes`, sent by the triggers of migration 0013). SQLite has no such
//! channel: there, [`Store::listen`] returns `None` and readers rely on their polling alone.

use sqlx::postgres::PgListener;

use crate::db::Backend;
use crate::{Store, StoreError, redact_url};

/// The channel the triggers notify on.
const CHANNEL: &str = "mandate_changes";

/// What another process (or this one) committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A certificate was revoked.
    Revocation,
    /// Pre-signed OCSP responses were written.
    Ocsp,
    /// CA certificates were added or retired (a key rotation).
    Ca,
    /// This agent's status, mandate, certificates or baseline changed.
    Agent(String),
    /// API keys were revoked or people disabled: cached keys must be read again.
    Keys,
    /// The listening connection was lost and re-made: notifications may have been missed, so
    /// everything cached should be checked against the store.
    Missed,
    /// A payload this version does not know (a newer node's): ignored.
    Unknown(String),
}

impl Change {
    fn parse(payload: &str) -> Change {
        match payload {
            "revocation" => Change::Revocation,
            "ocsp" => Change::Ocsp,
            "ca" => Change::Ca,
            "keys" => Change::Keys,
            other => match other.strip_prefix("agent:") {
                Some(id) => Change::Agent(id.to_owned()),
                None => Change::Unknown(other.to_owned()),
            },
        }
    }
}

/// Who hears of this process's own commits: called right after each COMMIT, in the
/// committing task, before the write's caller gets its answer (so an API answer about a
/// revocation is sent only after the OCSP cache forgot the old status). Subscribers must be
/// quick and must not block: they drop caches and wake tasks.
pub type Subscriber = std::sync::Arc<dyn Fn(&Change) + Send + Sync>;

/// The subscribers of a store (shared by its clones).
#[derive(Clone, Default)]
pub(crate) struct Subscribers(std::sync::Arc<std::sync::RwLock<Vec<Subscriber>>>);

impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map_or(0, |v| v.len());
        write!(f, "Subscribers({n})")
    }
}

impl Store {
    /// Calls `subscriber` with every [`Change`] this process commits through this store (or
    /// its clones), right after the commit. Other processes' commits arrive through
    /// [`Store::for_each_change`] (PostgreSQL) or the components' own polling (SQLite).
    pub fn subscribe(&self, subscriber: Subscriber) {
        if let Ok(mut subs) = self.subscribers.0.write() {
            subs.push(subscriber);
        }
    }

    /// Tells the subscribers what was just committed.
    pub(crate) fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        let Ok(subs) = self.subscribers.0.read() else {
            return;
        };
        if subs.is_empty() {
            return;
        }
        for change in changes {
            for s in subs.iter() {
                s(&change);
            }
        }
    }
}

/// A connection listening for [`Change`]s. It reconnects by itself after a database restart,
/// and then reports [`Change::Missed`] once.
#[derive(Debug)]
pub struct ChangeListener {
    listener: PgListener,
}

impl ChangeListener {
    /// Waits for the next change. An error means the database cannot be reached now; calling
    /// again retries (the caller should pause first).
    pub async fn recv(&mut self) -> Result<Change, StoreError> {
        match self.listener.try_recv().await? {
            Some(n) => Ok(Change::parse(n.payload())),
            None => Ok(Change::Missed),
        }
    }
}

impl Store {
    /// Starts listening for changes committed by any process on this database; `None` on
    /// SQLite, which has no notification channel.
    pub async fn listen(&self) -> Result<Option<ChangeListener>, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(self.url()).await.map_err(|e| {
            tracing::warn!(url = %redact_url(self.url()), error = %e, "LISTEN connection failed");
            StoreError::Database(e)
        })?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener { listener }))
    }
}

impl Store {
    /// Calls `on_change` for every change any process commits, for as long as it runs
    /// (PostgreSQL; returns at once on SQLite). After a lost connection it pauses `retry`,
    /// listens again and reports [`Change::Missed`], as it does once when it first listens:
    /// whatever was committed while nobody listened must be looked up in the store.
    pub async fn for_each_change(
        &self,
        retry: std::time::Duration,
        mut on_change: impl FnMut(Change) + Send,
    ) {
        loop {
            let mut listener = match self.listen().await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for changes; retrying");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            };
            tracing::info!("listening for changes committed by other processes");
            on_change(Change::Missed);
            loop {
                match listener.recv().await {
                    Ok(change) => on_change(change),
                    Err(e) => {
                        tracing::warn!(error = %e, "change notifications interrupted; reconnecting");
                        tokio::time::sleep(retry).await;
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(Change::parse("revocation"), Change::Revocation);
        assert_eq!(Change::parse("ocsp"), Change::Ocsp);
        assert_eq!(Change::parse("ca"), Change::Ca);
        assert_eq!(Change::parse("keys"), Change::Keys);
        assert_eq!(Change::parse("agent:a-1"), Change::Agent("a-1".into()));
        assert_eq!(Change::parse("later"), Change::Unknown("later".into()));
    }
}

//! The stand-alone responder's memory of pre-signed responses, keyed by (serial, CertID hash).
//!
//! Two writers race: the feed follower (every change, in commit order) and request handlers
//! (a row read from the store on a miss). A row read on a miss may be older than what the feed
//! brought meanwhile, so every entry keeps its feed position and an older one never replaces a
//! newer one. Clearing the cache (to bound memory) forgets those positions, so a row read before
//! a clear is dropped rather than kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mandate_store::PresignedResponse;

use crate::CertIdHash;
use crate::http::ReadyResponse;

/// Beyond this many entries the cache starts over (bounded memory; a miss costs one read).
const MAX_ENTRIES: usize = 200_000;

/// A cached response and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The issuing intermediate (checked against the issuer the CertID names).
    pub(crate) issuer_id: i64,
    /// Feed position of the row.
    seq: i64,
    /// What to send.
    pub(crate) response: Arc<ReadyResponse>,
}

#[derive(Debug, Default)]
struct State {
    /// How many times the cache was cleared.
    epoch: u64,
    entries: HashMap<(String, CertIdHash), Entry>,
}

/// Handle on the cache; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct PresignedCache {
    state: Arc<Mutex<State>>,
}

fn hash_of(name: &str) -> Option<CertIdHash> {
    CertIdHash::ALL.into_iter().find(|h| h.as_str() == name)
}

impl PresignedCache {
    /// The response for this certificate and hash, if held and not past its nextUpdate.
    pub(crate) fn get(&self, serial: &str, hash: CertIdHash, now: i64) -> Option<Entry> {
        let state = self.state.lock().ok()?;
        state
            .entries
            .get(&(serial.to_owned(), hash))
            .filter(|e| now < e.response.next_update)
            .cloned()
    }

    /// The current epoch: read it *before* reading a row from the store on a miss, and pass it
    /// to [`PresignedCache::offer`].
    pub(crate) fn epoch(&self) -> u64 {
        self.state.lock().map(|s| s.epoch).unwrap_or(u64::MAX)
    }

    /// Keeps a row unless a newer one for the same key is held. `read_in_epoch` is `None` for
    /// rows from the feed (always current) and the epoch read before the store read otherwise.
    /// Returns the entry to serve for that key now.
    pub(crate) fn offer(
        &self,
        row: PresignedResponse,
        read_in_epoch: Option<u64>,
    ) -> Option<Entry> {
        let hash = hash_of(&row.hash)?;
        let entry = Entry {
            issuer_id: row.issuer_id,
            seq: row.seq,
            response: Arc::new(ReadyResponse::new(
                row.der,
                row.this_update,
                row.next_update,
            )),
        };
        let Ok(mut state) = self.state.lock() else {
            return Some(entry);
        };
        if read_in_epoch.is_some_and(|e| e != state.epoch) {
            return Some(entry);
        }
        let key = (row.serial, hash);
        if let Some(held) = state.entries.get(&key)
            && held.seq > entry.seq
        {
            return Some(held.clone());
        }
        if state.entries.len() >= MAX_ENTRIES && !state.entries.contains_key(&key) {
            state.entries.clear();
            state.epoch += 1;
        }
        state.entries.insert(key, entry.clone());
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mandate_store::CertStatus;

    fn row(seq: i64, status: CertStatus) -> PresignedResponse {
        PresignedResponse {
            serial: "0a".into(),
            hash: "sha1".into(),
            issuer_id: 2,
            status,
            der: vec![u8::try_from(seq).unwrap_or(0)],
            this_update: 100,
            next_update: 200,
            seq,
        }
    }

    #[test]
    fn an_older_read_never_replaces_what_the_feed_brought() {
        let c = PresignedCache::default();
        let epoch = c.epoch();
        // The feed delivers the revocation (seq 7) while a miss was reading the good row (seq 3).
        c.offer(row(7, CertStatus::Revoked), None);
        let served = c.offer(row(3, CertStatus::Issued), Some(epoch));
        assert_eq!(served.map(|e| e.response.der.to_vec()), Some(vec![7]));
        let held = c.get("0a", CertIdHash::Sha1, 150);
        assert_eq!(held.map(|e| e.response.der.to_vec()), Some(vec![7]));
        assert!(
            c.get("0a", CertIdHash::Sha1, 200).is_none(),
            "past nextUpdate"
        );
        assert!(c.get("0a", CertIdHash::Sha256, 150).is_none());
    }

    #[test]
    fn a_read_from_before_a_clear_is_served_but_not_kept() {
        let c = PresignedCache::default();
        let epoch = c.epoch();
        if let Ok(mut s) = c.state.lock() {
            s.epoch += 1;
        }
        assert!(c.offer(row(3, CertStatus::Issued), Some(epoch)).is_some());
        assert!(c.get("0a", CertIdHash::Sha1, 150).is_none());
        assert!(
            c.offer(row(4, CertStatus::Issued), Some(c.epoch()))
                .is_some()
        );
        assert!(c.get("0a", CertIdHash::Sha1, 150).is_some());
    }
}

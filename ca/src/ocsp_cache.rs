//! Signed OCSP responses kept per CertID, so a repeated question costs a map lookup instead of a
//! database read and an HSM signature. Any revocation, here or in another process, drops them
//! all at once: a cached answer can never outlive the revocation it would contradict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mandate_ocsp::http::ReadyResponse;

/// Beyond this many entries the cache starts over (bounded memory under a flood of serials).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    generation: u64,
    entries: HashMap<Vec<u8>, Arc<ReadyResponse>>,
}

/// Handle on the cache; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OcspCache {
    state: Arc<Mutex<State>>,
}

impl OcspCache {
    /// The cached response for this CertID (DER), if it is still in the first half of its
    /// validity: after that a fresh one is signed, well before nextUpdate.
    pub fn get(&self, cert_id: &[u8], now: i64) -> Option<Arc<ReadyResponse>> {
        let state = self.state.lock().ok()?;
        state
            .entries
            .get(cert_id)
            .filter(|r| now < r.this_update + (r.next_update - r.this_update) / 2)
            .cloned()
    }

    /// The current generation: read it *before* looking up the status a response is built
    /// from, and pass it to [`OcspCache::insert`].
    pub fn generation(&self) -> u64 {
        self.state.lock().map(|s| s.generation).unwrap_or(u64::MAX)
    }

    /// Keeps a response, unless a revocation happened since `generation` was read (the status
    /// it was built from may be stale then).
    pub fn insert(&self, cert_id: Vec<u8>, response: Arc<ReadyResponse>, generation: u64) {
        if let Ok(mut state) = self.state.lock()
            && state.generation == generation
        {
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.clear();
            }
            state.entries.insert(cert_id, response);
        }
    }

    /// Drops every response: a certificate was revoked.
    pub fn invalidate(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.generation += 1;
            state.entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(this_update: i64) -> Arc<ReadyResponse> {
        Arc::new(ReadyResponse::new(vec![1], this_update, this_update + 100))
    }

    #[test]
    fn fresh_hits_stale_misses_and_revocation_wins_races() {
        let c = OcspCache::default();
        let g = c.generation();
        c.insert(b"id".to_vec(), resp(1000), g);
        assert!(c.get(b"id", 1049).is_some());
        assert!(c.get(b"id", 1050).is_none(), "past half its validity");
        // A revocation between reading the status and caching the answer: not cached.
        let g = c.generation();
        c.invalidate();
        c.insert(b"id2".to_vec(), resp(1000), g);
        assert!(c.get(b"id2", 1001).is_none());
        assert!(c.get(b"id", 1001).is_none(), "invalidate drops everything");
    }
}

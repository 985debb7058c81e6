//! Anti-replay nonces (RFC 8555 §6.5): random, single use, expiring, bounded in number. Kept in
//! this process: with several daemons behind one name (issue 7) they move to the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// How long a nonce can be used.
const LIFETIME: Duration = Duration::from_secs(600);
/// Most nonces outstanding; past this, expired ones are dropped and then the oldest half.
const MAX_OUTSTANDING: usize = 100_000;

/// The outstanding nonces.
#[derive(Debug, Default)]
pub struct NonceStore {
    issued: Mutex<HashMap<String, Instant>>,
}

impl NonceStore {
    /// A fresh nonce, or `None` if the OS has no randomness to give.
    pub fn issue(&self) -> Option<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        let nonce = B64.encode(bytes);
        let now = Instant::now();
        let mut issued = self.issued.lock().ok()?;
        if issued.len() >= MAX_OUTSTANDING {
            issued.retain(|_, at| now.duration_since(*at) < LIFETIME);
        }
        if issued.len() >= MAX_OUTSTANDING {
            let mut ages: Vec<Instant> = issued.values().copied().collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            issued.retain(|_, at| *at > cutoff);
        }
        issued.insert(nonce.clone(), now);
        Some(nonce)
    }

    /// Uses up a nonce: true if it was issued here, unused and unexpired.
    pub fn consume(&self, nonce: &str) -> bool {
        let Ok(mut issued) = self.issued.lock() else {
            return false;
        };
        issued
            .remove(nonce)
            .is_some_and(|at| at.elapsed() < LIFETIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_unknown_refused() {
        let store = NonceStore::default();
        let a = store.issue().unwrap_or_default();
        let b = store.issue().unwrap_or_default();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(store.consume(&a));
        assert!(!store.consume(&a), "replayed");
        assert!(!store.consume("made-up"));
        assert!(store.consume(&b));
    }
}

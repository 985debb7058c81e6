//! API keys: `mk_<id>_<secret>`. The id finds the row; only SHA-256 of the secret is stored.
//! The secret has 256 random bits, so a plain hash (no slow KDF) cannot be brute-forced.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::CaError;

/// A newly made key: the text is shown once and never stored.
pub struct NewKey {
    /// Public id.
    pub id: String,
    /// The whole key, as the client sends it.
    pub text: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
}

/// Makes a fresh key.
pub fn generate() -> Result<NewKey, CaError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    getrandom::fill(&mut secret).map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    let id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(NewKey {
        text: format!("mk_{id}_{secret}"),
        secret_hash: hash(&secret),
        id,
    })
}

/// Splits a presented key into id and secret; `None` if it is not of our shape.
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("mk_")?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && (32..=64).contains(&secret.len())).then_some((id, secret))
}

/// SHA-256 of the secret part.
pub fn hash(secret: &str) -> Vec<u8> {
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` matches the stored hash, in constant time.
pub fn matches(stored_hash: &[u8], secret: &str) -> bool {
    bool::from(stored_hash.ct_eq(&hash(secret)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let k = super::generate().unwrap();
        let (id, secret) = super::parse(&k.text).unwrap();
        assert_eq!(id, k.id);
        assert!(super::matches(&k.secret_hash, secret));
        assert!(!super::matches(&k.secret_hash, "x"));
        assert!(super::parse("mk_short_abc").is_none());
        assert!(super::parse("Bearer x").is_none());
    }
}

/// How long a key's holder is trusted without reading it again: a key revoked or a person
/// disabled by another process (the CLI, another node) stops working within this; through this
/// daemon, at once.
const KEY_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Most entries kept; the cache starts over beyond it.
const KEY_CACHE_MAX: usize = 10_000;

type CachedHolder = (mandate_store::KeyHolder, std::time::Instant);

/// Recently read API keys with their person or agent, so a busy client costs no database read
/// per request. The secret is still checked against the stored hash on every request.
#[derive(Debug, Default)]
pub struct KeyCache {
    rows: std::sync::Mutex<std::collections::HashMap<String, CachedHolder>>,
}

impl KeyCache {
    /// A fresh entry for key `id`.
    pub fn get(&self, id: &str) -> Option<mandate_store::KeyHolder> {
        let rows = self.rows.lock().ok()?;
        rows.get(id)
            .filter(|(_, at)| at.elapsed() < KEY_TTL)
            .map(|(row, _)| row.clone())
    }

    /// Remembers a key's holder.
    pub fn put(&self, holder: mandate_store::KeyHolder) {
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() >= KEY_CACHE_MAX {
                rows.clear();
            }
            rows.insert(holder.key.id.clone(), (holder, std::time::Instant::now()));
        }
    }

    /// Drops every entry (a key was revoked or a person disabled: `Change::Keys`).
    pub fn clear(&self) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.clear();
        }
    }
}

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

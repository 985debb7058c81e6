//! The only crate of mandate that talks PKCS#11.
//!
//! It finds a token by its label (never by slot id: SoftHSM and real HSMs renumber slots),
//! logs in, keeps a small pool of authenticated sessions, generates non-extractable key pairs
//! inside the token and signs with them. Every PKCS#11 call runs on a blocking thread, so an
//! [`Hsm`] can be shared freely between async tasks.
//!
//! Lost sessions are the most common failure of HSM-backed CAs, so every operation that hits a
//! session-level error (session handle invalid, user not logged in, device error, token removed)
//! re-finds the token, opens and logs in a fresh session and retries once before giving up.
//! Errors say whether waiting might help: see [`HsmError::is_temporary`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mandate_hsm::HsmError> {
//! use mandate_hsm::{Hsm, HsmConfig, KeyKind, Pin};
//! let hsm = Hsm::connect(HsmConfig {
//!     module_path: "/usr/lib/softhsm/libsofthsm2.so".into(),
//!     token_label: "mandate-dev".into(),
//!     pin: Pin::from_env("MANDATE_HSM_PIN")?,
//!     pool_size: 2,
//! })
//! .await?;
//! let key = hsm.generate_key(KeyKind::EcP256, "issuing-2025").await?;
//! let alg = key.kind.default_signature_algorithm();
//! let signature = hsm.sign(&key.id, alg, b"to be signed").await?;
//! # let _ = signature; Ok(()) }
//! ```

mod client;
mod data;
mod encoding;
mod error;
mod keys;
mod module;
mod pin;
pub mod softhsm;
#[cfg(feature = "test-harness")]
pub mod testing;
mod types;

pub use client::{Hsm, Observer};
pub use data::MAX_DATA_LEN;
pub use error::HsmError;
pub use pin::Pin;
pub use types::{HsmConfig, KeyId, KeyInfo, KeyKind, SignatureAlgorithm};

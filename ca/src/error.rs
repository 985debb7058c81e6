use mandate_config::ConfigError;
use mandate_hsm::HsmError;
use mandate_policy::PolicyError;
use mandate_store::StoreError;

use crate::csr::CsrError;

/// Why a CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The HSM refused or failed an operation.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The store refused or failed an operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A mandate is invalid.
    #[error(transparent)]
    Mandate(#[from] PolicyError),
    /// A CSR was refused.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// DER encoding or decoding failed on our own data.
    #[error(transparent)]
    Der(#[from] der::Error),
    /// An OCSP response could not be produced.
    #[error(transparent)]
    Ocsp(#[from] mandate_ocsp::OcspError),
    /// The key ceremony ran already on this store.
    #[error(
        "the CA is already initialised: a root and intermediate exist in this store; refusing to create another hierarchy"
    )]
    AlreadyInitialised,
    /// The token holds CA keys but the database has no CA: refuse to make a second hierarchy.
    #[error(
        "the HSM token already holds CA keys ({0}) but the database has no CA: restore the database that belongs to this token, or use a new token; refusing to run a second key ceremony"
    )]
    TokenHasCaKeys(String),
    /// No CA hierarchy exists yet.
    #[error("the CA is not initialised: run `mandate init` (or start `mandate serve` once)")]
    NotInitialised,
    /// The agent has no approved mandate, or is not active.
    #[error("{0}")]
    NotApproved(String),
    /// The request is well-formed JSON but asks for something invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// A requested mandate is not acceptable (422 `invalid-mandate`).
    #[error("{0}")]
    InvalidMandate(String),
    /// An order is out of bounds (422 `invalid-order`).
    #[error("{0}")]
    InvalidOrder(String),
    /// The caller's role may not do this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The same person would both request and approve (403 `segregation-of-duties`).
    #[error("{0}")]
    SegregationOfDuties(String),
    /// The request names something that does not exist, or that the caller's organization
    /// may not see (the same answer for both).
    #[error("{0} not found")]
    NotFound(String),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another change got there first (e.g. two rotations at once); nothing was changed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A bug or an impossible state; logged, answered with 500.
    #[error("internal error: {0}")]
    Internal(String),
    /// The database is an older copy (or another history) than the audit checkpoint the HSM
    /// anchors: the node refuses to serve until `mandate recover`.
    #[error("{0}")]
    RolledBack(String),
    /// A witness of the audit log could not read it, or found its history rewritten.
    #[error("{0}")]
    Witness(String),
}

impl CaError {
    /// A short, stable name of what went wrong, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            CaError::Hsm(_) => "hsm",
            CaError::Store(e) if e.is_unavailable() => "database_unavailable",
            CaError::Store(_) => "store",
            CaError::Config(_) => "config",
            CaError::Mandate(_) => "invalid_mandate",
            CaError::Csr(_) => "bad_csr",
            CaError::Der(_) => "der",
            CaError::Ocsp(_) => "ocsp",
            CaError::AlreadyInitialised => "already_initialised",
            CaError::TokenHasCaKeys(_) => "token_has_ca_keys",
            CaError::NotInitialised => "not_initialised",
            CaError::NotApproved(_) => "not_approved",
            CaError::InvalidRequest(_) => "invalid_request",
            CaError::NotFound(_) => "not_found",
            CaError::Forbidden(_) => "forbidden",
            CaError::InvalidMandate(_) => "invalid_mandate",
            CaError::InvalidOrder(_) => "invalid_order",
            CaError::SegregationOfDuties(_) => "segregation_of_duties",
            CaError::Io { .. } => "io",
            CaError::Conflict(_) => "conflict",
            CaError::Internal(_) => "internal",
            CaError::Witness(_) => "witness",
            CaError::RolledBack(_) => "rolled_back",
        }
    }

    /// True when waiting may cure it: the HSM or the database cannot be reached right now.
    pub fn is_temporary(&self) -> bool {
        match self {
            CaError::Hsm(e) => e.is_temporary(),
            CaError::Store(e) => e.is_unavailable(),
            _ => false,
        }
    }

    /// An I/O error with its context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CaError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<mandate_listener::ListenerError> for CaError {
    fn from(e: mandate_listener::ListenerError) -> CaError {
        match e {
            mandate_listener::ListenerError::Io { context, source } => {
                CaError::Io { context, source }
            }
        }
    }
}

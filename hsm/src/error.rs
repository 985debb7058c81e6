use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

use crate::types::{KeyId, KeyKind, SignatureAlgorithm};

/// Everything that can go wrong between mandate and its HSM.
///
/// Callers mostly need one bit: may it work later? [`HsmError::is_temporary`] answers it, so a
/// daemon can report "not ready" and retry instead of refusing to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The PKCS#11 library could not be loaded or initialised (temporary: it may be installed
    /// or its configuration fixed while we wait).
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    ModuleUnavailable {
        /// Path of the module that was tried.
        path: PathBuf,
        /// What the loader or C_Initialize said.
        reason: String,
    },
    /// No initialised token with this label is in any slot (temporary: a token can be inserted
    /// or created later).
    #[error("no token labelled {label:?} in any slot (tokens present: {present:?})")]
    TokenNotFound {
        /// The label that was looked for.
        label: String,
        /// Labels of the tokens that are present, to spot a typo.
        present: Vec<String>,
    },
    /// The HSM failed in a way that may pass (device error, token removed, sessions lost and
    /// not recovered by one retry); temporary.
    #[error("HSM unavailable during {operation}: {reason}")]
    Unavailable {
        /// The operation that failed.
        operation: &'static str,
        /// The PKCS#11 return value or other cause.
        reason: String,
    },
    /// The token rejected the PIN (permanent: retrying would only lock the PIN).
    #[error("the token rejected the PIN")]
    PinIncorrect,
    /// The PIN is locked after too many failed logins (permanent until an officer unlocks it).
    #[error("the token's user PIN is locked")]
    PinLocked,
    /// No private key with this CKA_ID is on the token (permanent).
    #[error("no private key with id {id} on the token")]
    KeyNotFound {
        /// The id that was looked for.
        id: KeyId,
    },
    /// The signature algorithm cannot be used with this kind of key (permanent).
    #[error("signature algorithm {algorithm:?} cannot be used with a {kind} key")]
    AlgorithmMismatch {
        /// The kind of the key that was asked to sign.
        kind: KeyKind,
        /// The algorithm that was asked for.
        algorithm: SignatureAlgorithm,
    },
    /// The token or this crate does not support a key type, curve, size or mechanism
    /// (permanent).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The caller passed something unusable: bad hex, an empty PIN, a zero pool size
    /// (permanent).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },
    /// A local file could not be read or written (PIN file, SoftHSM configuration); permanent.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any other PKCS#11 failure (permanent: the same call would fail the same way).
    #[error("PKCS#11 {function} failed: {rv}")]
    Pkcs11 {
        /// The PKCS#11 function, e.g. `C_Sign`.
        function: String,
        /// The return value, e.g. `KeyTypeInconsistent`.
        rv: String,
    },
    /// This handle was shut down with [`crate::Hsm::shutdown`] (permanent).
    #[error("the HSM handle has been shut down")]
    ShutDown,
    /// A bug or an OS failure outside the HSM: a blocking task panicked, the OS RNG failed, the
    /// token returned malformed data (permanent).
    #[error("internal error: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

impl HsmError {
    /// A short, stable name of the variant, for metrics labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            HsmError::ModuleUnavailable { .. } => "module_unavailable",
            HsmError::TokenNotFound { .. } => "token_not_found",
            HsmError::Unavailable { .. } => "unavailable",
            HsmError::PinIncorrect => "pin_incorrect",
            HsmError::PinLocked => "pin_locked",
            HsmError::KeyNotFound { .. } => "key_not_found",
            HsmError::AlgorithmMismatch { .. } => "algorithm_mismatch",
            HsmError::Unsupported { .. } => "unsupported",
            HsmError::InvalidInput { .. } => "invalid_input",
            HsmError::Io { .. } => "io",
            HsmError::Pkcs11 { .. } => "pkcs11",
            HsmError::ShutDown => "shut_down",
            HsmError::Internal { .. } => "internal",
        }
    }

    /// True if the same call may succeed later without anyone changing configuration or keys:
    /// the module could not be loaded, the token is missing, or the device failed.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            HsmError::ModuleUnavailable { .. }
                | HsmError::TokenNotFound { .. }
                | HsmError::Unavailable { .. }
        )
    }
}

/// Return values after which the session (or the login on it) cannot be trusted any more:
/// the cure is a fresh session, not a different request. GENERAL_ERROR is here because SoftHSM
/// answers C_SignInit with it when the login was dropped while the call ran (seen under load),
/// and Kryoptic answers C_SignInit with it for every private key once the token is logged out
/// (where SoftHSM says OBJECT_HANDLE_INVALID); the retry is a single one, so a device that keeps
/// failing still fails.
pub(crate) fn is_session_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::GeneralError
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::DeviceError
            | RvError::TokenNotPresent
            | RvError::DeviceRemoved
    )
}

/// Return values that mean "the device or slot is in trouble", which may pass.
fn is_device_trouble(rv: RvError) -> bool {
    is_session_lost(rv)
        || matches!(
            rv,
            RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::DeviceMemory
                | RvError::SessionCount
                | RvError::FunctionFailed
                | RvError::CryptokiNotInitialized
        )
}

pub(crate) fn function_name(function: cryptoki::context::Function) -> String {
    format!("C_{function:?}")
}

/// Maps a cryptoki error to the crate's error, given what we were doing.
pub(crate) fn from_cryptoki(operation: &'static str, err: CkError) -> HsmError {
    match err {
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _) => {
            HsmError::PinIncorrect
        }
        CkError::Pkcs11(RvError::PinLocked, _) => HsmError::PinLocked,
        CkError::Pkcs11(rv, function) if is_device_trouble(rv) => HsmError::Unavailable {
            operation,
            reason: format!("{} returned {rv:?}", function_name(function)),
        },
        CkError::Pkcs11(
            rv @ (RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::FunctionNotSupported
            | RvError::KeyTypeInconsistent
            | RvError::KeyFunctionNotPermitted
            | RvError::CurveNotSupported
            | RvError::KeySizeRange
            | RvError::DomainParamsInvalid),
            function,
        ) => HsmError::Unsupported {
            what: format!(
                "{} returned {rv:?} during {operation}",
                function_name(function)
            ),
        },
        CkError::Pkcs11(rv, function) => HsmError::Pkcs11 {
            function: function_name(function),
            rv: format!("{rv:?}"),
        },
        CkError::LibraryLoading(e) => HsmError::ModuleUnavailable {
            path: PathBuf::new(),
            reason: e.to_string(),
        },
        CkError::NullFunctionPointer | CkError::MissingSymbol(_) | CkError::NotSupported => {
            HsmError::Unsupported {
                what: format!("{operation}: {err}"),
            }
        }
        other => HsmError::Internal {
            reason: format!("{operation}: {other}"),
        },
    }
}

/// The outcome of one attempt at an operation on a pooled session.
pub(crate) enum OpError {
    /// The session or its login is gone; a fresh session may succeed.
    SessionLost(String),
    /// A real answer: retrying on another session would not change it.
    Fail(HsmError),
}

impl From<HsmError> for OpError {
    fn from(e: HsmError) -> OpError {
        OpError::Fail(e)
    }
}

impl OpError {
    pub(crate) fn from_cryptoki(operation: &'static str, err: CkError) -> OpError {
        match err {
            CkError::Pkcs11(rv, function) if is_session_lost(rv) => {
                OpError::SessionLost(format!("{} returned {rv:?}", function_name(function)))
            }
            other => OpError::Fail(from_cryptoki(operation, other)),
        }
    }

    /// Final form once no retry is left.
    pub(crate) fn into_hsm_error(self, operation: &'static str) -> HsmError {
        match self {
            OpError::SessionLost(reason) => HsmError::Unavailable { operation, reason },
            OpError::Fail(e) => e,
        }
    }
}

/// `map_err` adaptor: `.map_err(ck("sign"))?`.
pub(crate) fn ck(operation: &'static str) -> impl Fn(CkError) -> OpError {
    move |e| OpError::from_cryptoki(operation, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn classification() {
        let lost = from_cryptoki(
            "sign",
            CkError::Pkcs11(RvError::DeviceError, Function::Sign),
        );
        assert!(lost.is_temporary());
        let pin = from_cryptoki(
            "login",
            CkError::Pkcs11(RvError::PinIncorrect, Function::Login),
        );
        assert!(matches!(pin, HsmError::PinIncorrect));
        assert!(!pin.is_temporary());
        let other = from_cryptoki(
            "sign",
            CkError::Pkcs11(RvError::DataLenRange, Function::Sign),
        );
        assert_eq!(other.to_string(), "PKCS#11 C_Sign failed: DataLenRange");
        assert!(is_session_lost(RvError::UserNotLoggedIn));
        assert!(!is_session_lost(RvError::ObjectHandleInvalid));
    }
}

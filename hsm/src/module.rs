//! One initialised PKCS#11 context per module per process.
//!
//! C_Initialize and C_Finalize act on the whole process, not on a `Pkcs11` value: a second
//! C_Initialize returns CKR_CRYPTOKI_ALREADY_INITIALIZED, and a C_Finalize from one user closes
//! the sessions of every other user of the same library. So every user here (each `Hsm`,
//! `softhsm::ensure_token`) takes a counted reference from this registry, and the library is
//! finalised only when the last one lets go. Re-initialising after that works (SoftHSM 2.6
//! re-reads its configuration and renumbers its slots).
//!
//! Each module also carries a login gate (see [`Module::gate`]): C_Login and C_Logout run alone,
//! every other call of this crate shares it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use tracing::{debug, warn};

use crate::error::HsmError;

struct Entry {
    pkcs11: Pkcs11,
    gate: Arc<RwLock<()>>,
    users: usize,
    /// False when someone outside this registry initialised the library first: then it is
    /// theirs to finalise.
    owns_init: bool,
}

static REGISTRY: Mutex<Option<HashMap<PathBuf, Entry>>> = Mutex::new(None);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves plain data behind, never a half-done
    // PKCS#11 call, so the data is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A counted reference to an initialised PKCS#11 library.
pub(crate) struct Module {
    pkcs11: Pkcs11,
    gate: Arc<RwLock<()>>,
    key: PathBuf,
}

impl Module {
    /// Loads and initialises the module at `path`, or shares the context already open.
    pub(crate) fn acquire(path: &Path) -> Result<Module, HsmError> {
        let unavailable = |reason: String| HsmError::ModuleUnavailable {
            path: path.to_path_buf(),
            reason,
        };
        // The canonical path is the key so that a symlink and its target share one context.
        let key = std::fs::canonicalize(path).map_err(|e| unavailable(e.to_string()))?;
        let mut registry = lock(&REGISTRY);
        let map = registry.get_or_insert_with(HashMap::new);
        if let Some(entry) = map.get_mut(&key) {
            entry.users += 1;
            return Ok(Module {
                pkcs11: entry.pkcs11.clone(),
                gate: Arc::clone(&entry.gate),
                key,
            });
        }
        let pkcs11 = Pkcs11::new(&key).map_err(|e| unavailable(e.to_string()))?;
        // OS locking: sessions of the pool are used from several threads at once.
        let args = CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
        let owns_init = match pkcs11.initialize(args) {
            Ok(()) => true,
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
                debug!(module = %key.display(), "PKCS#11 module already initialised elsewhere in this process");
                false
            }
            Err(e) => return Err(unavailable(format!("C_Initialize: {e}"))),
        };
        debug!(module = %key.display(), "PKCS#11 module initialised");
        let gate = Arc::new(RwLock::new(()));
        map.insert(
            key.clone(),
            Entry {
                pkcs11: pkcs11.clone(),
                gate: Arc::clone(&gate),
                users: 1,
                owns_init,
            },
        );
        Ok(Module { pkcs11, gate, key })
    }

    pub(crate) fn pkcs11(&self) -> &Pkcs11 {
        &self.pkcs11
    }

    /// The module's login gate, shared by every user in this process: C_Login and C_Logout
    /// take it exclusively ([`Gate::exclusive`]), every other PKCS#11 call of this crate shared
    /// ([`Gate::shared`]).
    ///
    /// PKCS#11 lets C_Login and C_Logout run beside calls on other sessions (they change the
    /// state of every session of the token), and SoftHSM copes. Kryoptic 1.5 deadlocks: C_Login
    /// and C_Logout hold the token and then lock each session, while C_SignInit (and the other
    /// operations) hold their session and then lock the token. Logins are rare (a new session,
    /// a recovery, SIGUSR1), so running them alone costs nothing that matters.
    pub(crate) fn gate(&self) -> Gate {
        Gate(Arc::clone(&self.gate))
    }
}

/// See [`Module::gate`].
#[derive(Clone)]
pub(crate) struct Gate(Arc<RwLock<()>>);

impl Gate {
    /// Held around every PKCS#11 call other than C_Login and C_Logout.
    pub(crate) fn shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a poisoned one is as good as a clean one.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held around C_Login and C_Logout: no other call of this process's users of the module
    /// is inside it meanwhile.
    pub(crate) fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // Finalising under the registry lock: an `acquire` racing with us must not see the
        // library as initialised and then have it finalised under its feet.
        let mut registry = lock(&REGISTRY);
        let Some(map) = registry.as_mut() else {
            return;
        };
        let last = match map.get_mut(&self.key) {
            Some(entry) => {
                entry.users = entry.users.saturating_sub(1);
                entry.users == 0
            }
            None => false,
        };
        if !last {
            return;
        }
        if let Some(entry) = map.remove(&self.key)
            && entry.owns_init
        {
            match entry.pkcs11.finalize() {
                Ok(()) => debug!(module = %self.key.display(), "PKCS#11 module finalised"),
                Err(e) => warn!(module = %self.key.display(), error = %e, "C_Finalize failed"),
            }
        }
    }
}

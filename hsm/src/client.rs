//! The `Hsm` handle: slot by label, a pool of logged-in sessions, recovery, operations.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use sha2::{Digest, Sha256, Sha384};
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};

use crate::encoding;
use crate::error::{HsmError, OpError, ck, from_cryptoki};
use crate::keys::{self, PrivateKey};
use crate::module::{Gate, Module, lock};
use crate::pin::Pin;
use crate::types::{HsmConfig, KeyId, KeyInfo, KeyKind, SignatureAlgorithm};

/// Told of what the HSM does, for metrics: implemented by the daemon.
pub trait Observer: Send + Sync {
    /// A signature was made; `elapsed` includes waiting for a session.
    fn signed(&self, elapsed: std::time::Duration);
    /// An operation failed (after its one retry on a lost session).
    fn failed(&self, operation: &'static str, error: &HsmError);
}

/// A connection to one token: cheap to clone, safe to share between tasks.
///
/// Every PKCS#11 call runs on tokio's blocking pool with a session taken from a pool of
/// `pool_size` logged-in sessions, so at most `pool_size` operations reach the token at once
/// and the others wait their turn.
#[derive(Clone)]
pub struct Hsm {
    shared: Arc<Shared>,
}

impl fmt::Debug for Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hsm")
            .field("token_label", &self.shared.token_label)
            .field("pool_size", &self.shared.pool_size)
            .finish_non_exhaustive()
    }
}

struct Pooled {
    session: Session,
    /// Sessions opened before the last `drop_all_sessions` are closed instead of reused.
    epoch: u64,
}

/// State shared by all clones of one `Hsm`.
///
/// Field order matters: fields drop in declaration order, and sessions must be closed before
/// the last reference to the module goes (which may call C_Finalize).
struct Shared {
    idle: std::sync::Mutex<Vec<Pooled>>,
    /// Private-key handles by CKA_ID: a C_FindObjects per signature costs more than the
    /// signature itself with EC keys.
    keys: std::sync::Mutex<HashMap<KeyId, PrivateKey>>,
    slot: std::sync::Mutex<Slot>,
    pkcs11: Pkcs11,
    /// The module's login gate: operations on sessions share it, C_Login and C_Logout take it
    /// alone (Kryoptic deadlocks otherwise; see `Module::gate`).
    gate: Gate,
    module: std::sync::Mutex<Option<Module>>,
    permits: Arc<Semaphore>,
    epoch: AtomicU64,
    recoveries: AtomicU64,
    /// [`PIN_ACCEPTED`] until the token refuses the PIN, then what it said. A refused PIN is
    /// never presented again by this handle: hardware tokens lock the user PIN after a few
    /// wrong tries (Kryoptic after 10; SoftHSM 2.6 never), and every new session of the pool
    /// would otherwise try once more, so a PIN changed under a running daemon would lock the
    /// token within a few requests.
    pin_refused: AtomicU8,
    /// Told of every signature and failure (metrics), once set.
    observer: std::sync::OnceLock<Arc<dyn Observer>>,
    shut_down: AtomicBool,
    pool_size: usize,
    token_label: String,
    module_path: std::path::PathBuf,
    pin: Pin,
}

/// Finds the first slot whose initialised token carries `label`.
pub(crate) fn find_slot(pkcs11: &Pkcs11, label: &str) -> Result<Slot, HsmError> {
    let slots = pkcs11
        .get_slots_with_initialized_token()
        .map_err(|e| from_cryptoki("find token", e))?;
    let mut present = Vec::new();
    let mut found = None;
    for slot in slots {
        // A token can vanish between C_GetSlotList and C_GetTokenInfo: skip it.
        let Ok(info) = pkcs11.get_token_info(slot) else {
            continue;
        };
        if info.label() == label {
            if found.is_some() {
                warn!(
                    token = label,
                    "several tokens carry this label; using the first"
                );
                continue;
            }
            found = Some(slot);
        }
        present.push(info.label().to_owned());
    }
    found.ok_or_else(|| HsmError::TokenNotFound {
        label: label.to_owned(),
        present,
    })
}

/// Logs the user in; "already logged in" (another session of this process did it) is fine.
pub(crate) fn login_user(session: &Session, pin: &Pin) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(&pin.auth_pin())) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(from_cryptoki("login", e)),
    }
}

/// [`Shared::pin_refused`] values.
const PIN_ACCEPTED: u8 = 0;
const PIN_WAS_INCORRECT: u8 = 1;
const PIN_WAS_LOCKED: u8 = 2;

/// Errors of C_OpenSession that mean the slot id we hold is no longer the token's.
fn slot_moved(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SlotIdInvalid
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::DeviceRemoved
                | RvError::DeviceError,
            _
        )
    )
}

impl Shared {
    fn open_session(&self, refind_slot: bool) -> Result<Pooled, HsmError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let slot = if refind_slot {
            let slot = find_slot(&self.pkcs11, &self.token_label)?;
            *lock(&self.slot) = slot;
            slot
        } else {
            *lock(&self.slot)
        };
        let session = match self.pkcs11.open_rw_session(slot) {
            Ok(s) => s,
            Err(e) if !refind_slot && slot_moved(&e) => {
                debug!(token = %self.token_label, error = %e, "slot gone; looking the token up again");
                return self.open_session(true);
            }
            Err(e) => return Err(from_cryptoki("open session", e)),
        };
        self.login(&session)?;
        Ok(Pooled { session, epoch })
    }

    /// Logs `session` in, unless the token has refused this PIN before (then fails at once,
    /// without spending one of the token's tries).
    fn login(&self, session: &Session) -> Result<(), HsmError> {
        match self.pin_refused.load(Ordering::SeqCst) {
            PIN_WAS_INCORRECT => return Err(HsmError::PinIncorrect),
            PIN_WAS_LOCKED => return Err(HsmError::PinLocked),
            _ => {}
        }
        let result = {
            let _alone = self.gate.exclusive();
            login_user(session, &self.pin)
        };
        let refused = match &result {
            Err(HsmError::PinIncorrect) => PIN_WAS_INCORRECT,
            Err(HsmError::PinLocked) => PIN_WAS_LOCKED,
            _ => return result,
        };
        if self.pin_refused.swap(refused, Ordering::SeqCst) == PIN_ACCEPTED {
            error!(
                token = %self.token_label,
                locked = refused == PIN_WAS_LOCKED,
                "the token refused the PIN; this process will not present it again (restart with the right PIN)"
            );
        }
        result
    }

    fn checkout(&self) -> Result<Pooled, HsmError> {
        let idle = lock(&self.idle).pop();
        match idle {
            Some(p) => Ok(p),
            None => self.open_session(false),
        }
    }

    fn checkin(&self, pooled: Pooled) {
        if pooled.epoch == self.epoch.load(Ordering::SeqCst)
            && !self.shut_down.load(Ordering::SeqCst)
        {
            lock(&self.idle).push(pooled);
        }
        // Otherwise dropping it closes the session.
    }

    /// After a lost session: nothing cached can be trusted, so close the idle sessions,
    /// forget the key handles (they are per login on many tokens), and start afresh.
    fn recover(&self) -> Result<Pooled, HsmError> {
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        let stale: Vec<Pooled> = std::mem::take(&mut *lock(&self.idle));
        drop(stale);
        lock(&self.keys).clear();
        self.open_session(true)
    }

    /// Runs `op` on a pooled session; on a lost session, recovers and tries once more.
    fn run<T>(
        &self,
        operation: &'static str,
        op: &dyn Fn(&Shared, &Session) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(HsmError::ShutDown);
        }
        let pooled = self.checkout()?;
        let first = {
            let _shared = self.gate.shared();
            op(self, &pooled.session)
        };
        let reason = match first {
            Ok(v) => {
                self.checkin(pooled);
                return Ok(v);
            }
            Err(OpError::Fail(e)) => {
                self.checkin(pooled);
                return Err(e);
            }
            Err(OpError::SessionLost(reason)) => reason,
        };
        drop(pooled);
        warn!(
            token = %self.token_label,
            operation,
            %reason,
            "HSM session lost; opening a new session and retrying once"
        );
        let pooled = self.recover()?;
        let second = {
            let _shared = self.gate.shared();
            op(self, &pooled.session)
        };
        match second {
            Ok(v) => {
                info!(token = %self.token_label, operation, "HSM session recovered");
                self.checkin(pooled);
                Ok(v)
            }
            Err(e @ OpError::SessionLost(_)) => Err(e.into_hsm_error(operation)),
            Err(OpError::Fail(e)) => {
                self.checkin(pooled);
                Err(e)
            }
        }
    }

    /// The private key for `id`, from the cache or the token.
    fn private_key(
        &self,
        session: &Session,
        id: &KeyId,
        op: &'static str,
    ) -> Result<PrivateKey, OpError> {
        if let Some(key) = lock(&self.keys).get(id).copied() {
            return Ok(key);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let key = match keys::find_private_key(session, id, op) {
            Ok(key) => key,
            // Private objects are invisible while the token is logged out. A reset (ours, or
            // an HSM restart) can log it out just before the search, and another thread's
            // recovery can log it in again just after, so "logged in now" does not prove the
            // search saw the key's login: a reset in between is a lost session, and otherwise
            // the search is repeated once, now that the login is known to hold.
            Err(OpError::Fail(HsmError::KeyNotFound { .. })) => {
                keys::ensure_logged_in(session, op)?;
                if self.epoch.load(Ordering::SeqCst) != epoch {
                    return Err(OpError::SessionLost(
                        "the sessions were reset during the key search".into(),
                    ));
                }
                keys::find_private_key(session, id, op)?
            }
            Err(e) => return Err(e),
        };
        lock(&self.keys).insert(id.clone(), key);
        Ok(key)
    }

    fn sign_blocking(
        &self,
        session: &Session,
        id: &KeyId,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, OpError> {
        const OP: &str = "sign";
        let key = self.private_key(session, id, OP)?;
        if !key.kind.supports(alg) {
            return Err(HsmError::AlgorithmMismatch {
                kind: key.kind,
                algorithm: alg,
            }
            .into());
        }
        // SoftHSM 2.6 has no CKM_ECDSA_SHA256/384: hash here and sign the digest.
        let (mechanism, input): (Mechanism, std::borrow::Cow<'_, [u8]>) = match alg {
            SignatureAlgorithm::RsaPkcs1Sha256 => (Mechanism::Sha256RsaPkcs, message.into()),
            SignatureAlgorithm::RsaPkcs1Sha384 => (Mechanism::Sha384RsaPkcs, message.into()),
            SignatureAlgorithm::EcdsaSha256 => {
                (Mechanism::Ecdsa, Sha256::digest(message).to_vec().into())
            }
            SignatureAlgorithm::EcdsaSha384 => {
                (Mechanism::Ecdsa, Sha384::digest(message).to_vec().into())
            }
        };
        let raw = match session.sign(&mechanism, key.handle, &input) {
            Ok(sig) => sig,
            Err(e) if keys::is_stale_handle(&e) => {
                debug!(key_id = %id, "cached key handle is stale; finding the key again");
                lock(&self.keys).remove(id);
                let key = self.private_key(session, id, OP)?;
                session
                    .sign(&mechanism, key.handle, &input)
                    .map_err(ck(OP))?
            }
            Err(e) => return Err(OpError::from_cryptoki(OP, e)),
        };
        match alg {
            SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384 => {
                Ok(encoding::ecdsa_raw_to_der(key.kind, &raw)?)
            }
            SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPkcs1Sha384 => Ok(raw),
        }
    }
}

impl Hsm {
    /// Loads the module, finds the token by label, opens a session and logs in to check the
    /// PIN.
    ///
    /// PKCS#11 login state is per process and token: if another `Hsm` in this process is
    /// already logged in to the same token, the token answers "already logged in" without
    /// checking this PIN.
    pub async fn connect(cfg: HsmConfig) -> Result<Hsm, HsmError> {
        if cfg.pool_size == 0 {
            return Err(HsmError::InvalidInput {
                reason: "HSM session pool size must be at least 1".into(),
            });
        }
        if cfg.token_label.is_empty() {
            return Err(HsmError::InvalidInput {
                reason: "HSM token label is empty".into(),
            });
        }
        let shared = blocking("connect", move || {
            let module = Module::acquire(&cfg.module_path)?;
            let pkcs11 = module.pkcs11().clone();
            let gate = module.gate();
            let slot = find_slot(&pkcs11, &cfg.token_label)?;
            let shared = Shared {
                idle: Default::default(),
                keys: Default::default(),
                slot: std::sync::Mutex::new(slot),
                pkcs11,
                gate,
                module: std::sync::Mutex::new(Some(module)),
                permits: Arc::new(Semaphore::new(cfg.pool_size)),
                epoch: AtomicU64::new(0),
                recoveries: AtomicU64::new(0),
                pin_refused: AtomicU8::new(PIN_ACCEPTED),
                observer: std::sync::OnceLock::new(),
                shut_down: AtomicBool::new(false),
                pool_size: cfg.pool_size,
                token_label: cfg.token_label,
                module_path: cfg.module_path,
                pin: cfg.pin,
            };
            let first = shared.open_session(false)?;
            shared.checkin(first);
            info!(
                token = %shared.token_label,
                slot = slot.id(),
                module = %shared.module_path.display(),
                pool_size = shared.pool_size,
                "connected to HSM"
            );
            Ok(shared)
        })
        .await?;
        Ok(Hsm {
            shared: Arc::new(shared),
        })
    }

    /// The label of the token this handle signs with.
    pub fn token_label(&self) -> &str {
        &self.shared.token_label
    }

    /// How many times a lost session was replaced since `connect` (for metrics and tests).
    pub fn recovery_count(&self) -> u64 {
        self.shared.recoveries.load(Ordering::Relaxed)
    }

    /// Sets who is told of every signature and every failed operation (the daemon's metrics);
    /// the first call wins.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        let _ = self.shared.observer.set(observer);
    }

    /// Runs `op` with a pooled session on a blocking thread, and tells the observer if it fails.
    async fn run<T, F>(&self, operation: &'static str, op: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: Fn(&Shared, &Session) -> Result<T, OpError> + Send + 'static,
    {
        let result = self.run_unobserved(operation, op).await;
        if let (Err(e), Some(o)) = (&result, self.shared.observer.get()) {
            o.failed(operation, e);
        }
        result
    }

    async fn run_unobserved<T, F>(&self, operation: &'static str, op: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: Fn(&Shared, &Session) -> Result<T, OpError> + Send + 'static,
    {
        // The permit moves into the blocking task, so a caller that gives up waiting cannot
        // let a new operation start while its own is still using a session.
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| HsmError::ShutDown)?;
        let shared = Arc::clone(&self.shared);
        blocking(operation, move || {
            let _permit = permit;
            shared.run(operation, &op)
        })
        .await
    }

    /// Generates a key pair inside the token: the private key is sensitive, never
    /// extractable and may only sign; both halves get `label` and a fresh random 16-byte
    /// CKA_ID.
    pub async fn generate_key(&self, kind: KeyKind, label: &str) -> Result<KeyInfo, HsmError> {
        let label = label.to_owned();
        let info = self
            .run("generate key", move |shared, session| {
                let (info, handle) = keys::generate(session, kind, &label, "generate key")?;
                lock(&shared.keys).insert(info.id.clone(), PrivateKey { handle, kind });
                Ok(info)
            })
            .await?;
        info!(token = %self.shared.token_label, key_id = %info.id, label = %info.label, %kind, "generated key pair in HSM");
        Ok(info)
    }

    /// Reads the key pair with this CKA_ID.
    pub async fn find_key(&self, id: &KeyId) -> Result<KeyInfo, HsmError> {
        let id = id.clone();
        self.run("find key", move |shared, session| {
            // Not from the cache: this path is rare, and a fresh find cannot be stale.
            let key = keys::find_private_key(session, &id, "find key")?;
            lock(&shared.keys).insert(id.clone(), key);
            keys::key_info(session, key.handle, "find key")
        })
        .await
    }

    /// Every usable private key on the token (keys of unknown type or size, or without a
    /// CKA_ID, are skipped with a warning).
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, HsmError> {
        self.run("list keys", |_, session| keys::list(session, "list keys"))
            .await
    }

    /// Signs `message` and returns the signature as X.509 carries it: the raw RSASSA-PKCS1-v1_5
    /// signature, or a DER `SEQUENCE { r INTEGER, s INTEGER }` for ECDSA.
    pub async fn sign(
        &self,
        id: &KeyId,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let id = id.clone();
        let message = message.to_vec();
        let started = std::time::Instant::now();
        let signature = self
            .run("sign", move |shared, session| {
                shared.sign_blocking(session, &id, alg, &message)
            })
            .await?;
        if let Some(o) = self.shared.observer.get() {
            o.signed(started.elapsed());
        }
        Ok(signature)
    }

    /// Generates a 256-bit HMAC-SHA256 secret key inside the token (sensitive, never
    /// extractable) and returns its CKA_ID.
    pub async fn generate_hmac_key(&self, label: &str) -> Result<KeyId, HsmError> {
        let label = label.to_owned();
        let id = self
            .run("generate HMAC key", move |_, session| {
                keys::generate_hmac_key(session, &label, "generate HMAC key")
            })
            .await?;
        info!(token = %self.shared.token_label, key_id = %id, "generated HMAC key in HSM");
        Ok(id)
    }

    /// HMAC-SHA256 of `message` under the secret key with this CKA_ID, computed in the token.
    pub async fn hmac_sha256(&self, id: &KeyId, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        const OP: &str = "HMAC";
        let (id, message) = (id.clone(), message.to_vec());
        self.run(OP, move |_, session| {
            // Found every time: MACs are rare (EAB), and a fresh handle is never stale.
            let key = keys::find_hmac_key(session, &id, OP)?;
            session
                .sign(&Mechanism::Sha256Hmac, key, &message)
                .map_err(|e| OpError::from_cryptoki(OP, e))
        })
        .await
    }

    /// Keeps `value` in a new private data object of `application` labelled `label`.
    pub async fn put_data(
        &self,
        application: &str,
        label: &str,
        value: &[u8],
    ) -> Result<(), HsmError> {
        const OP: &str = "put data object";
        let (application, label, value) =
            (application.to_owned(), label.to_owned(), value.to_vec());
        self.run(OP, move |_, session| {
            crate::data::put(session, &application, &label, &value, OP)
        })
        .await
    }

    /// Every data object of `application`: (label, value).
    pub async fn data_objects(
        &self,
        application: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, HsmError> {
        const OP: &str = "read data objects";
        let application = application.to_owned();
        self.run(OP, move |_, session| {
            crate::data::read(session, &application, OP)
        })
        .await
    }

    /// Destroys the data objects of `application` with these labels; returns how many.
    pub async fn destroy_data(
        &self,
        application: &str,
        labels: &[String],
    ) -> Result<usize, HsmError> {
        const OP: &str = "destroy data objects";
        let (application, labels) = (application.to_owned(), labels.to_vec());
        self.run(OP, move |_, session| {
            crate::data::destroy(session, &application, &labels, OP)
        })
        .await
    }

    /// Cheap liveness check for readiness probes: asks a pooled session for its state, and
    /// replaces the session if it is lost or logged out.
    pub async fn ping(&self) -> Result<(), HsmError> {
        self.run("ping", |_, session| keys::ensure_logged_in(session, "ping"))
            .await
    }

    /// Fault injection: ends the login and every session of this handle, as an HSM restart
    /// would; the following calls recover on their own.
    ///
    /// cryptoki 0.12 has no binding for C_CloseAllSessions, so this logs the token out (which
    /// in PKCS#11 ends the login of every session of the process on that token and, on
    /// SoftHSM, invalidates every private-key handle; Kryoptic keeps them but refuses them
    /// until a new login), closes the idle sessions and marks the ones in use to be closed when
    /// they come back. Other `Hsm` handles on the same token in this process are logged out
    /// too, exactly as with C_CloseAllSessions.
    pub async fn drop_all_sessions(&self) -> Result<(), HsmError> {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| HsmError::ShutDown)?;
        let shared = Arc::clone(&self.shared);
        blocking("drop all sessions", move || {
            let _permit = permit;
            shared.epoch.fetch_add(1, Ordering::SeqCst);
            let idle: Vec<Pooled> = std::mem::take(&mut *lock(&shared.idle));
            // Alone at C_Logout (see `Module::gate`): the operations in flight on other
            // sessions finish first, as they would before an HSM restart that logs out.
            let logged_out = match idle.first() {
                Some(p) => logout(&shared.gate, &p.session),
                None => match shared.open_session(false) {
                    Ok(p) => logout(&shared.gate, &p.session),
                    Err(e) => Err(e),
                },
            };
            let closed = idle.len();
            drop(idle);
            warn!(token = %shared.token_label, closed, "dropped all HSM sessions on request");
            logged_out
        })
        .await
    }

    /// Closes every session and releases the module (C_Finalize once the last user in the
    /// process lets go). Operations started afterwards, on any clone, fail with
    /// [`HsmError::ShutDown`]; operations in flight finish first.
    pub async fn shutdown(&self) {
        if self.shared.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool_size = u32::try_from(self.shared.pool_size).unwrap_or(u32::MAX);
        // Taking every permit waits for the operations in flight.
        let permits = Arc::clone(&self.shared.permits)
            .acquire_many_owned(pool_size)
            .await;
        self.shared.permits.close();
        let shared = Arc::clone(&self.shared);
        let result = blocking("shutdown", move || {
            let _permits = permits;
            let idle: Vec<Pooled> = std::mem::take(&mut *lock(&shared.idle));
            drop(idle); // closes the sessions before the module may be finalised
            lock(&shared.keys).clear();
            let module = lock(&shared.module).take();
            drop(module);
            Ok(())
        })
        .await;
        match result {
            Ok(()) => info!(token = %self.shared.token_label, "HSM handle shut down"),
            Err(e) => warn!(token = %self.shared.token_label, error = %e, "HSM shutdown failed"),
        }
    }
}

fn logout(gate: &Gate, session: &Session) -> Result<(), HsmError> {
    let _alone = gate.exclusive();
    match session.logout() {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
        Err(e) => Err(from_cryptoki("logout", e)),
    }
}

/// Runs a PKCS#11 job on tokio's blocking pool.
async fn blocking<T, F>(operation: &'static str, job: F) -> Result<T, HsmError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, HsmError> + Send + 'static,
{
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| HsmError::Internal {
            reason: format!("{operation}: blocking task failed: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsm_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Hsm>();
    }
}

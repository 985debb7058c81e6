//! SoftHSM2 helpers for the daemon's development mode and for tests.
//!
//! SoftHSM reads its configuration file (named by `SOFTHSM2_CONF`) once, in C_Initialize. Set
//! that variable before anything in the process loads the module.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::session::UserType;
use tracing::info;

use crate::client::{find_slot, login_user};
use crate::error::{HsmError, from_cryptoki};
use crate::module::{Module, lock};
use crate::pin::Pin;

/// Where distributions install SoftHSM2's PKCS#11 module.
const WELL_KNOWN_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

/// Environment variable that overrides the module search.
pub const MODULE_ENV: &str = "MANDATE_PKCS11_MODULE";

/// The SoftHSM2 module: `MANDATE_PKCS11_MODULE` if set, else the first well-known path that
/// exists.
pub fn find_module() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(MODULE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    WELL_KNOWN_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Creates `dir/tokens` and `dir/softhsm2.conf` (file object store, errors-only logging) and
/// returns the path of the configuration file, for the caller to put in `SOFTHSM2_CONF`.
pub fn write_config(dir: &Path) -> Result<PathBuf, HsmError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HsmError::Io { path, source }
    };
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(io(&tokens))?;
    let tokens = std::fs::canonicalize(&tokens).map_err(io(&tokens))?;
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "# Written by mandate: a private SoftHSM2 token store.\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).map_err(io(&conf))?;
    Ok(conf)
}

/// Serialises token creation in this process: two callers picking the same free slot would
/// have the second C_InitToken wipe the first one's token.
static ENSURE_LOCK: Mutex<()> = Mutex::new(());

/// Makes sure a token labelled `label` exists: if not, initialises the first free slot with
/// it and sets its user PIN. Returns true if it created the token.
///
/// Plain PKCS#11 (C_InitToken, C_InitPIN), so it works on any module with a slot holding an
/// uninitialised token: SoftHSM always offers one, Kryoptic only the slots its configuration
/// lists (the test harness declares enough of them).
///
/// The module's context is shared with any `Hsm` of this process and finalised on return if
/// nothing else uses it, so an `Hsm::connect` afterwards works either way.
pub fn ensure_token(
    module: &Path,
    label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<bool, HsmError> {
    // PKCS#11 labels are 32 bytes, blank padded: longer ones would be cut silently and
    // trailing blanks would never match again.
    if label.is_empty() || label.len() > 32 || label.ends_with(' ') {
        return Err(HsmError::InvalidInput {
            reason: format!("token label {label:?} must be 1 to 32 bytes without trailing blanks"),
        });
    }
    let _guard = lock(&ENSURE_LOCK);
    let module_ref = Module::acquire(module)?;
    let pkcs11 = module_ref.pkcs11();
    match find_slot(pkcs11, label) {
        Ok(_) => return Ok(false),
        Err(HsmError::TokenNotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let slots = pkcs11
        .get_slots_with_token()
        .map_err(|e| from_cryptoki("list slots", e))?;
    let free = slots
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .is_ok_and(|t| !t.token_initialized())
        })
        .ok_or_else(|| HsmError::Unavailable {
            operation: "create token",
            reason: "no slot with an uninitialised token".into(),
        })?;
    pkcs11
        .init_token(free, &so_pin.auth_pin(), label)
        .map_err(|e| from_cryptoki("init token", e))?;
    // Look the token up again: SoftHSM may renumber a slot once its token is initialised.
    let slot = find_slot(pkcs11, label)?;
    let session = pkcs11
        .open_rw_session(slot)
        .map_err(|e| from_cryptoki("open session", e))?;
    {
        // Logins run alone beside the process's other users of the module (`Module::gate`).
        let gate = module_ref.gate();
        let _alone = gate.exclusive();
        session
            .login(UserType::So, Some(&so_pin.auth_pin()))
            .map_err(|e| from_cryptoki("SO login", e))?;
        session
            .init_pin(&user_pin.auth_pin())
            .map_err(|e| from_cryptoki("init user PIN", e))?;
        session
            .logout()
            .map_err(|e| from_cryptoki("SO logout", e))?;
    }
    drop(session);
    // Prove the user PIN works before anyone depends on it.
    let session = pkcs11
        .open_rw_session(slot)
        .map_err(|e| from_cryptoki("open session", e))?;
    {
        let gate = module_ref.gate();
        let _alone = gate.exclusive();
        login_user(&session, user_pin)?;
    }
    drop(session);
    info!(token = label, slot = slot.id(), module = %module.display(), "created SoftHSM token");
    Ok(true)
}

//! Real software tokens for tests: SoftHSM2 and Kryoptic, two independent PKCS#11
//! implementations. Each test process gets a private token store and configuration per token
//! kind, and each harness a fresh token (own label, random PINs).
//!
//! SoftHSM2 comes from Debian's `softhsm2`; Kryoptic (a Rust soft token on OpenSSL 3) is built
//! from crates.io by `scripts/deps.sh test`. A test on a token that is not installed fails, unless
//! [`ALLOW_MISSING_TOKEN_ENV`] says skipping is allowed ([`TokenKind::skip_if_missing`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tempfile::TempDir;

use crate::error::HsmError;
use crate::module::lock;
use crate::pin::Pin;
use crate::softhsm;
use crate::types::HsmConfig;

/// Prefix of the per-process SoftHSM directories under the system temp directory.
const DIR_PREFIX: &str = "mandate-softhsm-";
/// Prefix of the per-process Kryoptic directories under the system temp directory.
const KRYOPTIC_DIR_PREFIX: &str = "mandate-kryoptic-";

/// Environment variable naming the Kryoptic module (`libkryoptic_pkcs11.so`) to use instead of
/// the search of [`kryoptic_module`].
pub const KRYOPTIC_MODULE_ENV: &str = "MANDATE_KRYOPTIC_MODULE";

/// Set to `1` to let a test skip a token kind whose module is not installed. The test command
/// never sets it: there, a missing token fails the tests that need it.
pub const ALLOW_MISSING_TOKEN_ENV: &str = "MANDATE_TEST_ALLOW_MISSING_TOKEN";

/// Where `scripts/deps.sh test` puts the Kryoptic module, under `$HOME`.
const KRYOPTIC_CACHE_PATH: &str = ".cache/mandate-tools/kryoptic/libkryoptic_pkcs11.so";

/// Where distributions install Kryoptic's module.
const KRYOPTIC_SYSTEM_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11/libkryoptic_pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/libkryoptic_pkcs11.so",
    "/usr/lib64/pkcs11/libkryoptic_pkcs11.so",
    "/usr/local/lib/libkryoptic_pkcs11.so",
];

/// Slots in each test process's Kryoptic configuration. Kryoptic offers exactly the slots its
/// configuration lists (SoftHSM always adds a fresh one), so the store declares enough for
/// every token one test binary makes, even when `cargo test` runs all its tests in one process.
const KRYOPTIC_SLOTS: u32 = 64;

/// The Kryoptic module: `MANDATE_KRYOPTIC_MODULE` if set, else the one `scripts/deps.sh`
/// built, else the first distribution path that exists.
pub fn kryoptic_module() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(KRYOPTIC_MODULE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let cached = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(KRYOPTIC_CACHE_PATH));
    cached
        .into_iter()
        .chain(KRYOPTIC_SYSTEM_PATHS.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// The PKCS#11 implementations the test harness can make tokens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// SoftHSM2 (C++, Botan or OpenSSL): the dev token's module.
    SoftHsm,
    /// Kryoptic (Rust, OpenSSL 3, SQLite storage): the second, independent implementation.
    Kryoptic,
}

impl TokenKind {
    /// Every kind, in a stable order.
    pub const ALL: [TokenKind; 2] = [TokenKind::SoftHsm, TokenKind::Kryoptic];

    /// A short name for messages and test names.
    pub fn name(&self) -> &'static str {
        match self {
            TokenKind::SoftHsm => "softhsm2",
            TokenKind::Kryoptic => "kryoptic",
        }
    }

    /// This kind's PKCS#11 module, if installed.
    pub fn find_module(&self) -> Option<PathBuf> {
        match self {
            TokenKind::SoftHsm => softhsm::find_module(),
            TokenKind::Kryoptic => kryoptic_module(),
        }
    }

    /// The environment variable that names the token store's configuration file: a process
    /// that loads the module must have it set, with [`TokenHarness::conf_path`] as its value,
    /// before the module's C_Initialize.
    pub fn conf_env(&self) -> &'static str {
        match self {
            TokenKind::SoftHsm => "SOFTHSM2_CONF",
            TokenKind::Kryoptic => "KRYOPTIC_CONF",
        }
    }

    /// True if a test on this kind should be skipped: only when its module is not installed
    /// **and** `MANDATE_TEST_ALLOW_MISSING_TOKEN=1`; says so on stderr. Otherwise the test runs,
    /// and [`TokenHarness::new`] fails on a missing module.
    pub fn skip_if_missing(&self) -> bool {
        if self.find_module().is_some() {
            return false;
        }
        let allowed = std::env::var(ALLOW_MISSING_TOKEN_ENV).is_ok_and(|v| v == "1");
        if allowed {
            eprintln!(
                "skipped: the {} PKCS#11 module is not installed ({ALLOW_MISSING_TOKEN_ENV}=1)",
                self.name()
            );
        }
        allowed
    }
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

struct ProcessStore {
    /// Never dropped (it lives in a static); `remove_stale_dirs` cleans up after dead
    /// processes instead.
    dir: TempDir,
    conf: PathBuf,
}

static STORE: OnceLock<Result<ProcessStore, String>> = OnceLock::new();
static KRYOPTIC_STORE: OnceLock<Result<ProcessStore, String>> = OnceLock::new();
static LABELS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Removes the token directories (named `prefix` + pid + ...) of test processes that have
/// exited, since a directory held in a static is never deleted by its own process.
fn remove_stale_dirs(prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A new per-process directory under the system temp directory, after removing those of dead
/// processes.
fn process_dir(prefix: &str) -> Result<TempDir, String> {
    remove_stale_dirs(prefix);
    tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))
}

/// Points `var` at `conf` for the whole process.
///
/// Only called inside `OnceLock` initialisation, before the harness loads the module whose
/// C_Initialize is the C (or Rust FFI) code that reads the variable.
fn set_conf_env(var: &str, conf: &Path) {
    // SAFETY: set_var is unsound only if another thread reads or writes the environment at
    // the same time without std's lock, i.e. from C. This runs once per process and variable,
    // before the harness loads the PKCS#11 module that reads it; Rust readers go through std's
    // environment lock.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(var, conf);
    }
}

fn process_store() -> Result<&'static ProcessStore, HsmError> {
    let store = STORE.get_or_init(|| {
        let dir = process_dir(DIR_PREFIX)?;
        let conf = softhsm::write_config(dir.path()).map_err(|e| e.to_string())?;
        set_conf_env(TokenKind::SoftHsm.conf_env(), &conf);
        Ok(ProcessStore { dir, conf })
    });
    store.as_ref().map_err(|reason| HsmError::Internal {
        reason: format!("SoftHSM test store: {reason}"),
    })
}

/// Writes a Kryoptic configuration with [`KRYOPTIC_SLOTS`] slots, each its own SQLite file
/// under `dir/tokens` (created by Kryoptic at C_Initialize, initialised by C_InitToken), and
/// returns its path. Nothing else is set: the tests see Kryoptic's defaults.
fn write_kryoptic_config(dir: &Path) -> Result<PathBuf, String> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let tokens =
        std::fs::canonicalize(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let mut text = String::from("# Written by mandate's tests: a private Kryoptic token store.\n");
    for slot in 1..=KRYOPTIC_SLOTS {
        let db = tokens.join(format!("slot-{slot}.sql"));
        // TOML basic strings: a temp path has no quote or backslash to escape, but make sure.
        let db = db.display().to_string();
        if db.contains(['"', '\\']) {
            return Err(format!("token path {db:?} cannot go into TOML unescaped"));
        }
        text.push_str(&format!(
            "\n[[slots]]\nslot = {slot}\ndbtype = \"sqlite\"\ndbargs = \"{db}\"\n"
        ));
    }
    let conf = dir.join("kryoptic.conf");
    std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
    Ok(conf)
}

fn kryoptic_store() -> Result<&'static ProcessStore, HsmError> {
    let store = KRYOPTIC_STORE.get_or_init(|| {
        let dir = process_dir(KRYOPTIC_DIR_PREFIX)?;
        let conf = write_kryoptic_config(dir.path())?;
        set_conf_env(TokenKind::Kryoptic.conf_env(), &conf);
        Ok(ProcessStore { dir, conf })
    });
    store.as_ref().map_err(|reason| HsmError::Internal {
        reason: format!("Kryoptic test store: {reason}"),
    })
}

fn random_pin() -> Result<Pin, HsmError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| HsmError::Internal {
        reason: format!("OS random generator: {e}"),
    })?;
    Ok(Pin::new(hex::encode(bytes)))
}

/// Gives each harness its own token even if two tests ask for the same label.
fn unique_label(wanted: &str) -> String {
    let mut labels = lock(&LABELS);
    let used = labels.get_or_insert_with(HashSet::new);
    let mut label = truncate(wanted, 32);
    let mut n = 2u32;
    while used.contains(&label) {
        let suffix = format!("-{n}");
        label = format!("{}{suffix}", truncate(wanted, 32 - suffix.len()));
        n += 1;
    }
    used.insert(label.clone());
    label
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A freshly created SoftHSM2 token in this process's private token directory.
#[derive(Debug)]
pub struct SoftHsmHarness {
    dir: &'static Path,
    conf: &'static Path,
    module: PathBuf,
    label: String,
    user_pin: Pin,
}

impl SoftHsmHarness {
    /// Creates a token labelled `label` (with `-2`, `-3`… appended if this process already
    /// has one by that name) with random SO and user PINs.
    ///
    /// The first harness of a process creates the token directory and sets `SOFTHSM2_CONF`
    /// for the whole process; that must happen before anything else loads SoftHSM.
    pub fn new(label: &str) -> Result<SoftHsmHarness, HsmError> {
        let store = process_store()?;
        let module = softhsm::find_module().ok_or_else(|| HsmError::ModuleUnavailable {
            path: PathBuf::from("libsofthsm2.so"),
            reason: format!(
                "SoftHSM2 not found; install softhsm2 or set {}",
                softhsm::MODULE_ENV
            ),
        })?;
        let label = unique_label(label);
        let so_pin = random_pin()?;
        let user_pin = random_pin()?;
        softhsm::ensure_token(&module, &label, &so_pin, &user_pin)?;
        Ok(SoftHsmHarness {
            dir: store.dir.path(),
            conf: &store.conf,
            module,
            label,
            user_pin,
        })
    }

    /// A configuration for [`crate::Hsm::connect`] with a pool of two sessions.
    pub fn hsm_config(&self) -> HsmConfig {
        HsmConfig {
            module_path: self.module.clone(),
            token_label: self.label.clone(),
            pin: self.user_pin.clone(),
            pool_size: 2,
        }
    }

    /// The SoftHSM configuration file this process uses.
    pub fn conf_path(&self) -> &Path {
        self.conf
    }

    /// The directory holding the configuration and the tokens.
    pub fn dir(&self) -> &Path {
        self.dir
    }

    /// The token's user PIN (test tokens only: never do this with a real PIN).
    pub fn user_pin(&self) -> String {
        self.user_pin.as_str().to_owned()
    }

    /// The SoftHSM2 module in use.
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// The token's label as created (may carry a `-N` suffix).
    pub fn token_label(&self) -> &str {
        &self.label
    }
}

/// A freshly created token of either kind in this process's private store for that kind: what
/// the suites use to run the same tests on SoftHSM2 and on Kryoptic.
#[derive(Debug)]
pub struct TokenHarness {
    kind: TokenKind,
    conf: &'static Path,
    module: PathBuf,
    label: String,
    user_pin: Pin,
}

impl TokenHarness {
    /// Creates a token of `kind` labelled `label` (with `-2`, `-3`… appended if this process
    /// already has one by that name) with random SO and user PINs.
    ///
    /// The first harness of a kind in a process creates the store and sets the kind's
    /// configuration variable ([`TokenKind::conf_env`]) for the whole process; that must
    /// happen before anything else loads the module. Fails with
    /// [`HsmError::ModuleUnavailable`] if the module is not installed.
    pub fn new(kind: TokenKind, label: &str) -> Result<TokenHarness, HsmError> {
        let store = match kind {
            TokenKind::SoftHsm => process_store()?,
            TokenKind::Kryoptic => kryoptic_store()?,
        };
        let module = kind
            .find_module()
            .ok_or_else(|| HsmError::ModuleUnavailable {
                path: PathBuf::from(match kind {
                    TokenKind::SoftHsm => "libsofthsm2.so",
                    TokenKind::Kryoptic => "libkryoptic_pkcs11.so",
                }),
                reason: match kind {
                    TokenKind::SoftHsm => format!(
                        "SoftHSM2 not found; install softhsm2 or set {}",
                        softhsm::MODULE_ENV
                    ),
                    TokenKind::Kryoptic => format!(
                        "Kryoptic not found; run `scripts/deps.sh test` or set {KRYOPTIC_MODULE_ENV}"
                    ),
                },
            })?;
        let label = unique_label(label);
        let so_pin = random_pin()?;
        let user_pin = random_pin()?;
        // Generic PKCS#11 (C_InitToken on the first uninitialised slot, C_InitPIN): it works
        // on both kinds.
        softhsm::ensure_token(&module, &label, &so_pin, &user_pin)?;
        Ok(TokenHarness {
            kind,
            conf: &store.conf,
            module,
            label,
            user_pin,
        })
    }

    /// The kind of token.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// A configuration for [`crate::Hsm::connect`] with a pool of two sessions.
    pub fn hsm_config(&self) -> HsmConfig {
        HsmConfig {
            module_path: self.module.clone(),
            token_label: self.label.clone(),
            pin: self.user_pin.clone(),
            pool_size: 2,
        }
    }

    /// The token store's configuration file: another process reaches this token with
    /// [`TokenKind::conf_env`] set to it.
    pub fn conf_path(&self) -> &Path {
        self.conf
    }

    /// The token's user PIN (test tokens only: never do this with a real PIN).
    pub fn user_pin(&self) -> String {
        self.user_pin.as_str().to_owned()
    }

    /// The PKCS#11 module in use.
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// The token's label as created (may carry a `-N` suffix).
    pub fn token_label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_short() {
        let a = unique_label("unit-label-test");
        let b = unique_label("unit-label-test");
        assert_eq!(a, "unit-label-test");
        assert_eq!(b, "unit-label-test-2");
        let long = "x".repeat(40);
        let c = unique_label(&long);
        let d = unique_label(&long);
        assert_eq!(c.len(), 32);
        assert_eq!(d.len(), 32);
        assert!(d.ends_with("-2"));
    }
}

//! A real SoftHSM2 token for tests: a private token directory and configuration per test
//! process, and a fresh token (own label, random PINs) per harness.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tempfile::TempDir;

use crate::error::HsmError;
use crate::module::lock;
use crate::pin::Pin;
use crate::softhsm;
use crate::types::HsmConfig;

/// Prefix of the per-process directories under the system temp directory.
const DIR_PREFIX: &str = "mandate-softhsm-";

struct ProcessStore {
    /// Never dropped (it lives in a static); `remove_stale_dirs` cleans up after dead
    /// processes instead.
    dir: TempDir,
    conf: PathBuf,
}

static STORE: OnceLock<Result<ProcessStore, String>> = OnceLock::new();
static LABELS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Removes the token directories of test processes that have exited, since a directory held
/// in a static is never deleted by its own process.
fn remove_stale_dirs() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
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

fn process_store() -> Result<&'static ProcessStore, HsmError> {
    let store = STORE.get_or_init(|| {
        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let conf = softhsm::write_config(dir.path()).map_err(|e| e.to_string())?;
        // SAFETY: set_var is unsound only if another thread reads or writes the environment at
        // the same time without std's lock, i.e. from C. This runs once per process, inside
        // OnceLock initialisation, before the harness loads the PKCS#11 module whose
        // C_Initialize is the C code that reads SOFTHSM2_CONF; Rust readers go through std's
        // environment lock.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
        }
        Ok(ProcessStore { dir, conf })
    });
    store.as_ref().map_err(|reason| HsmError::Internal {
        reason: format!("SoftHSM test store: {reason}"),
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

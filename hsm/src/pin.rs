use std::fmt;
use std::path::Path;

use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::error::HsmError;

/// A token PIN. Wiped from memory on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps a PIN held in memory.
    pub fn new(s: String) -> Pin {
        Pin(Zeroizing::new(s))
    }

    /// Reads the PIN from an environment variable; unset, non-UTF-8 or empty is an error.
    pub fn from_env(var: &str) -> Result<Pin, HsmError> {
        let value = std::env::var(var).map_err(|e| HsmError::InvalidInput {
            // `e` says "not present" or "not unicode": neither reveals the value.
            reason: format!("PIN environment variable {var}: {e}"),
        })?;
        let pin = Pin::new(value);
        if pin.0.is_empty() {
            return Err(HsmError::InvalidInput {
                reason: format!("PIN environment variable {var} is empty"),
            });
        }
        Ok(pin)
    }

    /// Reads the PIN from a file, dropping trailing whitespace (editors and `echo` add a
    /// newline that no token expects).
    pub fn from_file(path: &Path) -> Result<Pin, HsmError> {
        let raw = Zeroizing::new(std::fs::read(path).map_err(|source| HsmError::Io {
            path: path.to_path_buf(),
            source,
        })?);
        let text = std::str::from_utf8(&raw).map_err(|_| HsmError::InvalidInput {
            reason: format!("PIN file {} is not UTF-8", path.display()),
        })?;
        let trimmed = text.trim_end();
        if trimmed.is_empty() {
            return Err(HsmError::InvalidInput {
                reason: format!("PIN file {} is empty", path.display()),
            });
        }
        Ok(Pin::new(trimmed.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// cryptoki wants its own secret type; it zeroizes its copy on drop too.
    pub(crate) fn auth_pin(&self) -> AuthPin {
        AuthPin::from(self.as_str())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_pin() {
        let pin = Pin::new("s3cret-1234".into());
        assert_eq!(format!("{pin:?}"), "Pin(***)");
        assert_eq!(format!("{:#?}", Some(pin)), "Some(\n    Pin(***),\n)");
    }

    #[test]
    fn from_file_trims_trailing_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234 5678\r\n\n").unwrap();
        assert_eq!(Pin::from_file(&path).unwrap().as_str(), "1234 5678");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            Pin::from_file(&path),
            Err(HsmError::InvalidInput { .. })
        ));
        assert!(matches!(
            Pin::from_file(&dir.path().join("missing")),
            Err(HsmError::Io { .. })
        ));
    }

    #[test]
    fn from_env_rejects_missing() {
        let err = Pin::from_env("MANDATE_HSM_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert!(
            err.to_string()
                .contains("MANDATE_HSM_TEST_SURELY_UNSET_VARIABLE")
        );
    }
}

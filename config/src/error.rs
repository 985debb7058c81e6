use std::path::PathBuf;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config` or `MANDATE_CONFIG`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown or mistyped fields.
    #[error("invalid config{}: {message}", path.as_ref().map(|p| format!(" file {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if one was given.
        path: Option<PathBuf>,
        /// The parser's message, naming the field.
        message: String,
    },
    /// An environment override has a value that cannot be used.
    #[error("invalid value in environment variable {name}: {message}")]
    Env {
        /// The variable's name.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A setting is out of range or inconsistent with another.
    #[error("invalid setting {field}: {message}")]
    Invalid {
        /// The dotted name of the setting, as in the TOML file.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

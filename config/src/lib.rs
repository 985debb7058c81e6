//! Typed configuration for the mandate daemon and its admin commands.
//!
//! One TOML file (optional) plus environment overrides, loaded in three steps: parse (unknown
//! fields are refused), apply overrides, then resolve derived defaults and check everything. With
//! no file and no environment the result runs everything on one machine: a SQLite file and a
//! SoftHSM dev token under `./.mandate`, listening on 127.0.0.1:8080.

mod error;
mod model;

pub use error::ConfigError;
pub use model::{
    CaConfig, Config, HsmConfig, HttpConfig, KEY_KINDS, LogFormat, PolicyConfig, ScoringConfig,
    ScoringWeights, WebhookConfig,
};

use std::path::Path;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "MANDATE_CONFIG";

/// Loads the configuration from `file` (if any) and the process environment.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    load_with_env(file, |name| std::env::var(name).ok())
}

/// Loads the configuration from `file` (if any) and the given environment lookup.
///
/// Taking the environment as a function keeps tests free of process-global state.
pub fn load_with_env(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?,
        None => String::new(),
    };
    let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: file.map(Path::to_path_buf),
        message: e.to_string(),
    })?;
    config.apply_env(&env)?;
    config.resolve()?;
    Ok(config)
}

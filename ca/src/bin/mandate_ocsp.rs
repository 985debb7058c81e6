//! `mandate-ocsp`: a stand-alone OCSP responder. It serves the responses the daemon pre-signed
//! into the shared store and holds no key: it never opens the HSM. It reads the same config file
//! and `MANDATE_*` environment overrides as `mandate` (`MANDATE_DATA_DIR`,
//! `MANDATE_DATABASE_URL`, `MANDATE_LISTEN`, `MANDATE_LOG`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "mandate-ocsp",
    version,
    about = "Stand-alone OCSP responder: serves the pre-signed responses of a mandate store"
)]
struct Cli {
    /// TOML config file (the daemon's); without one the embedded defaults apply.
    #[arg(long, env = "MANDATE_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mandate-ocsp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = mandate_config::load(cli.config.as_deref()).context("loading configuration")?;
    mandate_ca::init_logging(&cfg)?;
    mandate_ocsp::standalone::serve(&cfg, mandate_ca::shutdown_signal()).await?;
    Ok(())
}

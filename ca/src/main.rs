//! `mandate`: the CA daemon and its admin commands. Every command reads the same config file and
//! `MANDATE_*` environment overrides, so `MANDATE_DATA_DIR=/x mandate <cmd>` acts on the data the
//! daemon at /x uses.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mandate_config::Config;
use mandate_store::Role;

#[derive(Parser)]
#[command(
    name = "mandate",
    version,
    about = "Certificate authority for autonomous agents"
)]
struct Cli {
    /// TOML config file; without one the embedded defaults apply (./.mandate, SoftHSM dev token).
    #[arg(long, global = true, env = "MANDATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (initialising the CA on first start).
    Serve,
    /// Key ceremony: generate root and intermediate in the HSM and print the first admin API key
    /// once, as JSON. Refuses if the CA exists.
    Init,
    /// Manage API keys.
    #[command(name = "api-keys", subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Show the CA certificates, as JSON.
    #[command(name = "ca", subcommand)]
    Ca(CaCommand),
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Create an API key and print it once, as JSON.
    Create {
        /// admin, operator, compliance, auditor or agent.
        #[arg(long)]
        role: String,
        /// A name for people.
        #[arg(long)]
        label: String,
        /// The agent, for role agent.
        #[arg(long)]
        agent_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// List the CA certificates with fingerprints.
    Show,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = mandate_config::load(cli.config.as_deref()).context("loading configuration")?;
    init_tracing(&cfg);
    if let Some(conf) = mandate_ca::prepare_dev_token(&cfg)? {
        // SoftHSM reads SOFTHSM2_CONF once, when the module initialises. Set here, before the
        // runtime starts any thread, where changing the environment is sound.
        #[allow(unsafe_code)]
        // SAFETY: single-threaded at this point; no other thread reads the environment.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
        }
    }
    mandate_ca::ensure_dev_token(&cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(dispatch(cli.command, cfg))
}

async fn dispatch(command: Command, cfg: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => Ok(mandate_ca::serve(cfg).await?),
        Command::Init => {
            let store = mandate_ca::open_store(&cfg).await?;
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let report = mandate_ca::init_ca(&hsm, &store, &cfg, "cli:init").await?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::ApiKeys(ApiKeysCommand::Create {
            role,
            label,
            agent_id,
        }) => {
            let role: Role = role.parse().map_err(|_| {
                anyhow::anyhow!(
                    "unknown role {role:?}: use admin, operator, compliance, auditor or agent"
                )
            })?;
            let store = mandate_ca::open_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let created =
                mandate_ca::create_api_key(&store, role, &label, agent_id, "cli:api-keys").await?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
        Command::Ca(CaCommand::Show) => {
            let store = mandate_ca::open_store(&cfg).await?;
            let certs = store.ca_certificates().await?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&certs)?);
            Ok(())
        }
    }
}

fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

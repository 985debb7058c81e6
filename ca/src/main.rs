//! `mandate`: the CA daemon and its admin commands. Every command reads the same config file and
//! `MANDATE_*` environment overrides, so `MANDATE_DATA_DIR=/x mandate <cmd>` acts on the data the
//! daemon at /x uses.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[path = "cli/remote.rs"]
mod remote;
#[path = "cli/remote_commands.rs"]
mod remote_commands;
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
    /// Print the result as JSON (one document on stdout) instead of text for people.
    /// MANDATE_JSON takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        global = true,
        env = "MANDATE_JSON",
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false"
    )]
    json: bool,
    /// Act through a running daemon's API at this URL, as the person whose API key is in
    /// MANDATE_API_KEY, instead of on the data directory (agents, approvals, incidents,
    /// webhooks, people, orgs, api-keys, revoke).
    #[arg(long, global = true, env = "MANDATE_URL")]
    url: Option<String>,
    /// A PEM root certificate to trust for an https:// --url (e.g. the CA's own root).
    #[arg(long, global = true, env = "MANDATE_CACERT")]
    cacert: Option<PathBuf>,
    /// Log on stderr: -v info, -vv debug. Commands other than `serve` log only warnings
    /// without it (`serve` follows the `log` setting).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (initialising the CA on first start).
    Serve,
    /// Key ceremony: generate root and intermediate in the HSM and print the first admin API key
    /// once. Refuses if the CA exists.
    Init,
    /// Manage API keys (each acts for one person, or one agent).
    #[command(name = "api-keys", subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Organizations: the firms sharing this CA.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// People: who holds API keys, in which organization, with which roles.
    #[command(subcommand)]
    People(PeopleCommand),
    /// The CA certificates, and key rotation (rotate-intermediate, rollover-root).
    #[command(name = "ca", subcommand)]
    Ca(CaCommand),
    /// Revoke a certificate, or pull the kill switch on an agent or a whole operator.
    #[command(subcommand)]
    Revoke(RevokeCommand),
    /// Agents: list, show, register, submit a mandate change, certificates, ACME credentials.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Mandates waiting for compliance: list them with their changes, approve or reject
    /// (over --url: a decision is a person's).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Incidents: list, show, acknowledge, resolve (over --url).
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// Webhook endpoints: list, show, create, disable, their deliveries, redeliver (over --url).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The audit log: check its hash chain, export it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Recover a restored (older) copy of the database that the daemon refuses to serve: re-apply
    /// the revocations proven by the newest published CRLs and OCSP responses (DER or PEM, signed
    /// by the CA), record the recovery in the audit log and make the HSM's audit anchor follow.
    /// Run it with the daemon stopped. Uses the HSM.
    Recover {
        /// A CRL the CA published (repeat for each issuer; the newest you can find).
        #[arg(long)]
        crl: Vec<PathBuf>,
        /// An OCSP response the CA (or its responder) signed (repeat).
        #[arg(long)]
        ocsp: Vec<PathBuf>,
    },
    /// The HSM: what keys it holds and what they are for.
    #[command(subcommand)]
    Hsm(HsmCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `mandate completions bash > /etc/bash_completion.d/mandate`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the API document (OpenAPI 3.1) the daemon serves at `/v1/openapi.json`, e.g.
    /// `mandate openapi > openapi.json` to generate a client.
    Openapi,
    /// Compliance evidence for one agent over a period: `report --agent ID --from DATE --to DATE
    /// --out DIR` writes a signed JSON bundle (report.json) and a PDF (report.pdf); `report
    /// verify` checks a bundle offline.
    Report(ReportArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ReportArgs {
    #[command(subcommand)]
    command: Option<ReportCommand>,
    /// Agent id.
    #[arg(
        long,
        required_unless_present = "organization",
        conflicts_with = "organization"
    )]
    agent: Option<String>,
    /// Organization id: a report on every agent of the organization.
    #[arg(long)]
    organization: Option<String>,
    /// First day (YYYY-MM-DD, from 00:00 UTC) or instant (RFC 3339) of the period.
    #[arg(long, required = true)]
    from: Option<String>,
    /// Last day (YYYY-MM-DD, up to 24:00 UTC) or end instant (RFC 3339) of the period.
    #[arg(long, required = true)]
    to: Option<String>,
    /// Directory to write report.json, report.pdf and events.csv to (created if missing).
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Replace a report already in --out.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Check a bundle offline: canonical form, report signature, audit checkpoint and the
    /// audit records' hash chain. Exits non-zero if anything is wrong.
    Verify {
        /// The bundle (report.json).
        #[arg(long)]
        file: PathBuf,
        /// The root certificate(s), PEM, the signatures must chain to.
        #[arg(long)]
        root: PathBuf,
    },
}

#[derive(Subcommand)]
enum HsmCommand {
    /// The inventory: label, id, type, role and what uses each key.
    Keys,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain and audit tree (in the database, or in an exported file) and
    /// name the first broken record; or check an organization's or agent's export record by
    /// record against its signed checkpoint. Exits non-zero if anything was tampered with.
    Verify {
        /// An export made by `mandate audit export` to check offline, instead of the database.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The root certificate (PEM) the checkpoint signatures must chain to; required with
        /// --file, by default the database's own root.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Write the whole log with its hashes as JSON lines; or, with --organization or --agent,
    /// only that subject's records, each with its inclusion proof to a checkpoint signed now
    /// (uses the HSM), which shows nothing of anyone else's records.
    Export {
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        /// Only this organization's records.
        #[arg(long, conflicts_with = "agent")]
        organization: Option<String>,
        /// Only the records about this agent and its certificates.
        #[arg(long)]
        agent: Option<String>,
        /// Replace `--out` if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Watch the CA's audit log from outside: fetch its newest signed checkpoint, check it
    /// against the root certificate and that it extends the one seen last time (a consistency
    /// proof), then remember it in --state. Fails loudly, keeping the old state, on a log that
    /// shrank or was rewritten. Needs no database, HSM or data dir: for organizations, auditors
    /// and supervisors. Run it from cron, with --url naming the CA (e.g. https://ca.example.com).
    Witness {
        /// Where the last accepted checkpoint is kept (created on the first run).
        #[arg(long)]
        state: PathBuf,
        /// The root certificate (PEM) the checkpoints must be signed under.
        #[arg(long)]
        root: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Make single-use ACME external account binding credentials for an agent and print them
    /// once (key_id, hmac_key). Uses the HSM (or the daemon's, over --url).
    Eab {
        /// Agent id.
        id: String,
    },
    /// List agents, 100 by id (over --url).
    List {
        /// Only agents in this state: pending_approval, active, suspended.
        #[arg(long)]
        status: Option<String>,
        /// Only agents whose id or name contains this text.
        #[arg(long)]
        search: Option<String>,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One agent: status, mandate, approvals (over --url).
    Show {
        /// Agent id.
        id: String,
    },
    /// Register an agent with its first mandate, which then waits for compliance (operator,
    /// over --url).
    Register {
        /// Agent id (a DNS label).
        id: String,
        /// A name for people.
        #[arg(long)]
        name: String,
        /// The mandate, a JSON file (`-`: standard input).
        #[arg(long)]
        mandate: PathBuf,
        /// The organization (CA staff only; people register for their own).
        #[arg(long)]
        organization: Option<String>,
    },
    /// Submit a new mandate version; it waits for compliance (operator, over --url).
    Submit {
        /// Agent id.
        id: String,
        /// The mandate, a JSON file (`-`: standard input).
        #[arg(long)]
        mandate: PathBuf,
    },
    /// Every mandate version, newest first; a pending one with its changes (over --url).
    Mandates {
        /// Agent id.
        id: String,
    },
    /// The agent's certificates, newest first (over --url).
    Certificates {
        /// Agent id.
        id: String,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// The agents whose latest mandate waits for approval, each with its changes.
    List {
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Approve an agent's pending mandate (compliance).
    Approve {
        /// Agent id.
        id: String,
        /// The version you reviewed (`approvals list` shows it): refused if another one is
        /// pending by now.
        #[arg(long)]
        version: i64,
        /// A note kept with the decision.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject an agent's pending mandate (compliance).
    Reject {
        /// Agent id.
        id: String,
        /// The version you reviewed.
        #[arg(long)]
        version: i64,
        /// Why, kept with the decision.
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand)]
enum IncidentsCommand {
    /// Incidents, newest first.
    List {
        /// open, acknowledged or resolved.
        #[arg(long)]
        status: Option<String>,
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One incident.
    Show {
        /// Incident id.
        id: i64,
    },
    /// Say you are on it (operator, compliance, admin).
    Acknowledge {
        /// Incident id.
        id: i64,
    },
    /// Sign it off with what was found (compliance).
    Resolve {
        /// Incident id.
        id: i64,
        /// What was found and why the agent may go on.
        #[arg(long)]
        resolution: String,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Endpoints.
    List {
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One endpoint.
    Show {
        /// Endpoint id.
        id: String,
    },
    /// Register an endpoint; its signing secret is printed once.
    Create {
        /// Where to POST (https://).
        #[arg(long)]
        endpoint: String,
        /// An event type (repeatable; default: every event).
        #[arg(long = "event")]
        events: Vec<String>,
        /// The organization whose events it receives (CA staff only).
        #[arg(long)]
        organization: Option<String>,
    },
    /// Stop deliveries to an endpoint.
    Disable {
        /// Endpoint id.
        id: String,
    },
    /// Deliver a delivery again now (after the receiver was fixed).
    Redeliver {
        /// Endpoint id.
        id: String,
        /// Delivery id (`webhooks deliveries` lists them).
        delivery: i64,
    },
    /// An endpoint's deliveries, newest first.
    Deliveries {
        /// Endpoint id.
        id: String,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Subcommand)]
enum RevokeCommand {
    /// Revoke one certificate (idempotent).
    Certificate {
        /// Serial number, hex.
        serial: String,
        /// RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded,
        /// cessationOfOperation or privilegeWithdrawn.
        #[arg(long)]
        reason: String,
        /// Free text kept in the audit log.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Kill switch: suspend the agent and revoke all its certificates.
    Agent {
        /// Agent id.
        id: String,
        /// Why (kept with the record of who pulled it).
        #[arg(long)]
        reason: String,
    },
    /// Kill switch for every agent of an operator organization.
    Operator {
        /// Organization slug.
        organization: String,
        /// Why (kept with the record of who pulled it).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Create an API key and print it once.
    Create {
        /// admin, operator, compliance, auditor or agent.
        #[arg(long)]
        role: String,
        /// A name for people.
        #[arg(long)]
        label: String,
        /// The person the key acts for (every role but agent); the role must be theirs.
        #[arg(long)]
        person: Option<String>,
        /// The agent, for role agent.
        #[arg(long)]
        agent_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Create an organization.
    Create {
        /// A DNS label; its agents are named under it.
        #[arg(long)]
        id: String,
        /// The legal entity its mandates name as operator (the certificates' O).
        #[arg(long)]
        legal_name: String,
        /// A further legal entity its mandates may name (repeatable).
        #[arg(long = "legal-entity")]
        legal_entities: Vec<String>,
        /// Its regulator's identifier, e.g. ESMA-001234.
        #[arg(long)]
        regulator_id: Option<String>,
        /// How many different compliance people approve: 1 or 2.
        #[arg(long, default_value_t = 1)]
        approvals_required: i64,
        /// The certificate profile of its agents' requests that name none (agent, shortlived,
        /// extended, or a configured one; default: ca.default_profile).
        #[arg(long)]
        default_profile: Option<String>,
        /// The longest lifetime of its agents' certificates, in seconds (default: the CA's).
        #[arg(long)]
        max_validity_secs: Option<i64>,
    },
    /// List organizations (100 by id; --cursor: the next_cursor of the previous page).
    List {
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Subcommand)]
enum PeopleCommand {
    /// Create a person.
    Create {
        /// Short id, e.g. alice.
        #[arg(long)]
        id: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// The organization; leave out for CA staff.
        #[arg(long)]
        organization: Option<String>,
        /// A role (repeatable): operator, compliance, auditor; CA staff: admin, auditor.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// List people (100 by id; --cursor: the next_cursor of the previous page), of one
    /// organization if given.
    List {
        /// Only this organization's.
        #[arg(long)]
        organization: Option<String>,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Disable a person: every key of theirs stops.
    Disable {
        /// The person's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// List the CA certificates with fingerprints.
    Show,
    /// Generate a new intermediate key in the HSM, certify it with the active root, and make it
    /// the one new issuance uses (a running daemon switches within a second). The old
    /// intermediate keeps signing OCSP responses and CRLs for what it issued.
    #[command(name = "rotate-intermediate")]
    RotateIntermediate,
    /// Generate a new root key in the HSM, cross-certify the old and the new root both ways,
    /// and switch issuance to a new intermediate under the new root. Chains then verify from
    /// either root; distribute the new root to relying parties before the old one expires.
    #[command(name = "rollover-root")]
    RolloverRoot,
}

/// The store of an initialised CA (refusing before the key ceremony).
async fn initialised_store(cfg: &mandate_config::Config) -> anyhow::Result<mandate_store::Store> {
    let store = mandate_ca::open_existing_store(cfg).await?;
    if !store.ca_initialised().await? {
        store.close().await;
        anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
    }
    Ok(store)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once (wrapped errors often repeat their cause's text).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// Where a command runs: on the data directory, through the API, or either.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    Local,
    Api,
    Either,
}

impl Command {
    fn reach(&self) -> Reach {
        match self {
            Command::Approvals(_) | Command::Incidents(_) | Command::Webhooks(_) => Reach::Api,
            Command::Agents(AgentsCommand::Eab { .. })
            | Command::Orgs(_)
            | Command::People(_)
            | Command::ApiKeys(_)
            | Command::Revoke(_) => Reach::Either,
            Command::Agents(_) => Reach::Api,
            _ => Reach::Local,
        }
    }

    /// Its name as typed, for errors.
    fn name(&self) -> &'static str {
        match self {
            Command::Serve => "serve",
            Command::Init => "init",
            Command::ApiKeys(_) => "api-keys",
            Command::Orgs(_) => "orgs",
            Command::People(_) => "people",
            Command::Ca(_) => "ca",
            Command::Revoke(_) => "revoke",
            Command::Agents(_) => "agents",
            Command::Approvals(_) => "approvals",
            Command::Incidents(_) => "incidents",
            Command::Webhooks(_) => "webhooks",
            Command::Audit(_) => "audit",
            Command::Recover { .. } => "recover",
            Command::Hsm(_) => "hsm",
            Command::Completions { .. } => "completions",
            Command::Openapi => "openapi",
            Command::Report(_) => "report",
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    output::set_json(cli.json);
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        // Into memory first: clap_complete panics when stdout fails (`| head` closes it).
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "mandate", &mut script);
        return output::write_stdout(&script);
    }
    if let Command::Openapi = cli.command {
        let mut text = serde_json::to_vec_pretty(mandate_ca::openapi_document())?;
        text.push(b'\n');
        return output::write_stdout(&text);
    }
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
    };
    let witness = matches!(cli.command, Command::Audit(AuditCommand::Witness { .. }));
    match (cli.url.as_deref(), cli.command.reach()) {
        // Over the API the daemon decides: no config, data directory or HSM is used here.
        (Some(url), Reach::Api | Reach::Either) => {
            let api = remote::Api::new(url, cli.cacert.as_deref())?;
            return runtime()?.block_on(remote_commands::dispatch(&api, cli.command));
        }
        (None, Reach::Api) => anyhow::bail!(
            "`mandate {}` works through the daemon's API: give --url (or MANDATE_URL) and set {}",
            cli.command.name(),
            remote::KEY_ENV
        ),
        // The daemon itself is never a client: a MANDATE_URL meant for tools does not stop it.
        (Some(_), Reach::Local) if !witness && !matches!(cli.command, Command::Serve) => {
            anyhow::bail!(
                "`mandate {}` runs on the data directory, not over --url (unset MANDATE_URL)",
                cli.command.name()
            )
        }
        _ => {}
    }
    let cfg = mandate_config::load(cli.config.as_deref()).context("loading configuration")?;
    let filter = match (&cli.command, cli.verbose) {
        (Command::Serve, 0) => cfg.log.clone(),
        (_, 0) => "warn".to_owned(),
        (_, 1) => "info".to_owned(),
        _ => "debug".to_owned(),
    };
    mandate_ca::init_logging_at(&cfg, &filter)?;
    let offline = witness
        || matches!(
            cli.command,
            Command::Report(ReportArgs {
                command: Some(ReportCommand::Verify { .. }),
                ..
            }) | Command::Audit(AuditCommand::Verify { file: Some(_), .. })
        );
    if matches!(cli.command, Command::Serve | Command::Init) {
        create_data_dir(&cfg)?;
    } else if !offline {
        // Only `serve` and `init` make a CA: a mistyped data directory is an error, not a new
        // empty database (or a new dev token).
        mandate_ca::require_database(&cfg)?;
    }
    // Only the commands that use the HSM touch it: reading the store must not create a token.
    if matches!(
        cli.command,
        Command::Serve
            | Command::Init
            | Command::Agents(AgentsCommand::Eab { .. })
            | Command::Hsm(HsmCommand::Keys)
            | Command::Ca(CaCommand::RotateIntermediate | CaCommand::RolloverRoot)
            | Command::Report(ReportArgs { command: None, .. })
            | Command::Audit(AuditCommand::Export {
                organization: Some(_),
                ..
            })
            | Command::Audit(AuditCommand::Export { agent: Some(_), .. })
            | Command::Recover { .. }
    ) {
        prepare_hsm(&cfg)?;
        // `serve` creates the dev token itself, retrying while the HSM cannot be reached.
        if !matches!(cli.command, Command::Serve) {
            mandate_ca::ensure_dev_token(&cfg)?;
        }
    }
    runtime()?.block_on(dispatch(cli.command, cfg, cli.url))
}

/// `mandate audit export --organization/--agent`: into a new file next to `out`, renamed over
/// it once complete, so a failed export leaves nothing behind.
async fn export_proofs(
    hsm: &mandate_hsm::Hsm,
    store: &mandate_store::Store,
    cfg: &Config,
    subject: &mandate_ca::ProofSubject,
    out: &std::path::Path,
) -> anyhow::Result<u64> {
    let tmp = out.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let n =
        mandate_ca::export_audit_proofs(hsm, store, cfg, subject, "cli:audit-export", None, &mut w)
            .await;
    drop(w);
    match n {
        Ok(n) => {
            std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.into())
        }
    }
}

/// The data dir holds the database (API-key hashes, the audit log) and the dev token: owner only.
fn create_data_dir(cfg: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !cfg.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.data_dir)
            .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    }
    Ok(())
}

fn prepare_hsm(cfg: &Config) -> anyhow::Result<()> {
    if let Some(conf) = mandate_ca::prepare_dev_token(cfg)? {
        // SoftHSM reads SOFTHSM2_CONF once, when the module initialises. Set here, before the
        // runtime starts any thread, where changing the environment is sound.
        #[allow(unsafe_code)]
        // SAFETY: single-threaded at this point; no other thread reads the environment.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
        }
    }
    Ok(())
}

async fn dispatch(command: Command, cfg: Config, url: Option<String>) -> anyhow::Result<()> {
    match command {
        Command::Serve => Ok(mandate_ca::serve(cfg).await?),
        Command::Completions { .. } | Command::Openapi => Ok(()),
        Command::Init => {
            let store = mandate_ca::open_store(&cfg).await?;
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let report = mandate_ca::init_ca(&hsm, &store, &cfg, "cli:init").await?;
            store.close().await;
            output::emit(&report)?;
            Ok(())
        }
        Command::ApiKeys(ApiKeysCommand::Create {
            role,
            label,
            person,
            agent_id,
        }) => {
            let role: Role = role.parse().map_err(|_| {
                anyhow::anyhow!(
                    "unknown role {role:?}: use admin, operator, compliance, auditor or agent"
                )
            })?;
            let store = mandate_ca::open_existing_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let created =
                mandate_ca::create_api_key(&store, role, &label, person, agent_id, "cli:api-keys")
                    .await;
            store.close().await;
            output::emit(&created?)?;
            Ok(())
        }
        Command::Orgs(cmd) => {
            let store = initialised_store(&cfg).await?;
            let out = match cmd {
                OrgsCommand::Create {
                    id,
                    legal_name,
                    legal_entities,
                    regulator_id,
                    approvals_required,
                    default_profile,
                    max_validity_secs,
                } => {
                    let req = serde_json::json!({
                        "id": id, "legal_name": legal_name, "legal_entities": legal_entities,
                        "regulator_id": regulator_id, "approvals_required": approvals_required,
                        "default_profile": default_profile, "max_validity_secs": max_validity_secs,
                    });
                    mandate_ca::create_organization(&store, &cfg.ca, req, "cli:orgs-create").await
                }
                OrgsCommand::List { cursor } => {
                    mandate_ca::list_organizations(&store, cursor.as_deref()).await
                }
            };
            store.close().await;
            output::emit(&out?)?;
            Ok(())
        }
        Command::People(cmd) => {
            let store = initialised_store(&cfg).await?;
            let out = match cmd {
                PeopleCommand::Create {
                    id,
                    name,
                    email,
                    organization,
                    roles,
                } => {
                    let req = serde_json::json!({
                        "id": id, "name": name, "email": email, "organization": organization,
                        "roles": roles,
                    });
                    mandate_ca::create_person(&store, req, "cli:people-create").await
                }
                PeopleCommand::List {
                    organization,
                    cursor,
                } => {
                    mandate_ca::list_people(&store, organization.as_deref(), cursor.as_deref())
                        .await
                }
                PeopleCommand::Disable { id } => {
                    mandate_ca::disable_person(&store, &id, "cli:people-disable").await
                }
            };
            store.close().await;
            output::emit(&out?)?;
            Ok(())
        }
        Command::Agents(AgentsCommand::Eab { id }) => {
            let store = mandate_ca::open_existing_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let made = mandate_ca::create_eab(&hsm, &store, &id, "cli:agents-eab").await;
            hsm.shutdown().await;
            store.close().await;
            output::emit(&made?)?;
            Ok(())
        }
        Command::Agents(_)
        | Command::Approvals(_)
        | Command::Incidents(_)
        | Command::Webhooks(_) => {
            anyhow::bail!("this command works through the daemon's API: give --url")
        }
        Command::Revoke(cmd) => {
            let store = mandate_ca::open_existing_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let out = match cmd {
                RevokeCommand::Certificate {
                    serial,
                    reason,
                    comment,
                } => {
                    mandate_ca::revoke_certificate(
                        &store,
                        &serial,
                        &reason,
                        comment.as_deref(),
                        "cli:revoke",
                    )
                    .await
                }
                RevokeCommand::Agent { id, reason } => {
                    mandate_ca::pull_kill_switch(
                        &store,
                        mandate_store::KillScope::Agent,
                        &id,
                        &reason,
                        "cli:revoke",
                    )
                    .await
                }
                RevokeCommand::Operator {
                    organization,
                    reason,
                } => {
                    mandate_ca::pull_kill_switch(
                        &store,
                        mandate_store::KillScope::Operator,
                        &organization,
                        &reason,
                        "cli:revoke",
                    )
                    .await
                }
            };
            store.close().await;
            output::emit(&out?)?;
            Ok(())
        }
        Command::Audit(cmd) => {
            let roots = |root: Option<PathBuf>| -> anyhow::Result<Option<Vec<Vec<u8>>>> {
                let Some(path) = root else { return Ok(None) };
                let pem = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(Some(mandate_verify::pem_to_der_chain(&pem).with_context(
                    || format!("{} holds no PEM certificate", path.display()),
                )?))
            };
            let report = match cmd {
                AuditCommand::Verify {
                    file: Some(file),
                    root,
                } if mandate_ca::is_proofs_file(&file) => {
                    let report =
                        mandate_ca::verify_audit_proofs(&file, roots(root)?.unwrap_or_default())?;
                    output::emit(&report)?;
                    if let Some(first) = report.problems.first() {
                        anyhow::bail!(
                            "the export does not verify ({} problems): {first}",
                            report.problems.len()
                        );
                    }
                    return Ok(());
                }
                AuditCommand::Verify {
                    file: Some(file),
                    root,
                } => mandate_ca::verify_audit_file(&file, roots(root)?.unwrap_or_default())?,
                AuditCommand::Verify { file: None, root } => {
                    let roots = roots(root)?;
                    let store = mandate_ca::open_existing_store(&cfg).await?;
                    let report = mandate_ca::verify_audit(&store, roots).await;
                    store.close().await;
                    report?
                }
                AuditCommand::Witness { state, root } => {
                    let url = url.context("`mandate audit witness` needs --url: the CA's URL")?;
                    let roots = roots(Some(root))?.unwrap_or_default();
                    let report = mandate_ca::witness_audit(&url, &state, &roots).await?;
                    output::emit(&report)?;
                    return Ok(());
                }
                AuditCommand::Export {
                    out,
                    organization,
                    agent,
                    force,
                } => {
                    if out.exists() && !force {
                        anyhow::bail!(
                            "{} exists: give another --out, or --force to replace it",
                            out.display()
                        );
                    }
                    let subject = match (organization, agent) {
                        (Some(o), _) => Some(mandate_ca::ProofSubject::Organization(o)),
                        (None, Some(a)) => Some(mandate_ca::ProofSubject::Agent(a)),
                        (None, None) => None,
                    };
                    let store = mandate_ca::open_existing_store(&cfg).await?;
                    let n = match &subject {
                        None => mandate_ca::export_audit(&store, &out)
                            .await
                            .map(|n| u64::try_from(n).unwrap_or(0))
                            .map_err(anyhow::Error::from),
                        Some(subject) => match mandate_ca::connect_hsm(&cfg).await {
                            Ok(hsm) => {
                                let n = export_proofs(&hsm, &store, &cfg, subject, &out).await;
                                hsm.shutdown().await;
                                n
                            }
                            Err(e) => Err(e.into()),
                        },
                    };
                    store.close().await;
                    let n = n?;
                    output::emit(&serde_json::json!({"records": n, "out": out}))?;
                    return Ok(());
                }
            };
            output::emit(&report)?;
            if let Some(b) = &report.first_broken {
                anyhow::bail!(
                    "the audit log is broken at record {}: {} ({} records before it verified)",
                    b.seq,
                    b.reason,
                    report.records_verified
                );
            }
            Ok(())
        }
        Command::Recover { crl, ocsp } => {
            let mut evidence = Vec::new();
            for path in crl.iter().chain(&ocsp) {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let der = match std::str::from_utf8(&bytes) {
                    Ok(text) if text.trim_start().starts_with("-----BEGIN") => {
                        der::pem::decode_vec(text.trim().as_bytes())
                            .map(|(_, d)| d)
                            .map_err(|e| anyhow::anyhow!("{}: not PEM: {e}", path.display()))?
                    }
                    _ => bytes,
                };
                evidence.push((path.display().to_string(), der));
            }
            let store = mandate_ca::open_existing_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let report = mandate_ca::recover(&hsm, &store, &cfg, &evidence).await;
            hsm.shutdown().await;
            store.close().await;
            output::emit(&report?)?;
            Ok(())
        }
        Command::Hsm(HsmCommand::Keys) => {
            let store = mandate_ca::open_existing_store(&cfg).await?;
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let rows = mandate_ca::hsm_inventory(&hsm, &store).await;
            hsm.shutdown().await;
            store.close().await;
            output::emit(&rows?)?;
            Ok(())
        }
        Command::Ca(cmd @ (CaCommand::RotateIntermediate | CaCommand::RolloverRoot)) => {
            let store = mandate_ca::open_existing_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let report = match cmd {
                CaCommand::RolloverRoot => {
                    mandate_ca::rollover_root(&hsm, &store, &cfg, "cli:ca-rollover-root").await
                }
                _ => {
                    mandate_ca::rotate_intermediate(
                        &hsm,
                        &store,
                        &cfg,
                        "cli:ca-rotate-intermediate",
                    )
                    .await
                }
            };
            hsm.shutdown().await;
            store.close().await;
            output::emit(&report?)?;
            Ok(())
        }
        Command::Report(ReportArgs {
            command: Some(ReportCommand::Verify { file, root }),
            ..
        }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let roots = read_roots(&root)?;
            let check = mandate_ca::verify_report(&bytes, &roots)?;
            output::emit(&check)?;
            if !check.valid {
                anyhow::bail!("the report does not verify: {}", check.problems.join("; "));
            }
            Ok(())
        }
        Command::Report(ReportArgs {
            command: None,
            agent,
            organization,
            from,
            to,
            out,
            force,
        }) => {
            let subject = match (agent, organization) {
                (Some(a), None) => mandate_ca::ProofSubject::Agent(a),
                (None, Some(o)) => mandate_ca::ProofSubject::Organization(o),
                _ => anyhow::bail!("report needs one of --agent and --organization"),
            };
            let (Some(from), Some(to), Some(out)) = (from, to, out) else {
                anyhow::bail!("report needs --from, --to and --out");
            };
            let json_path = out.join("report.json");
            let pdf_path = out.join("report.pdf");
            let csv_path = out.join("events.csv");
            // Before anything is recorded or signed: a refusal changes nothing.
            if !force
                && let Some(there) = [&json_path, &pdf_path, &csv_path]
                    .into_iter()
                    .find(|p| p.exists())
            {
                anyhow::bail!(
                    "{} exists: give another --out, or --force to replace the report there",
                    there.display()
                );
            }
            let period = mandate_ca::Period::parse(&from, &to)?;
            let store = mandate_ca::open_existing_store(&cfg).await?;
            if !store.ca_initialised().await? {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            let hsm = mandate_ca::connect_hsm(&cfg).await?;
            let opts = mandate_ca::ReportOptions {
                subject,
                period,
                actor: "cli:report".into(),
            };
            let bar = progress::Bar::new("reading the audit log");
            let bundle =
                mandate_ca::build_report(&hsm, &store, &cfg, &opts, &|n, of| bar.set(n, of)).await;
            bar.finish();
            hsm.shutdown().await;
            store.close().await;
            let bundle = bundle?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            std::fs::write(&json_path, &bundle)
                .with_context(|| format!("writing {}", json_path.display()))?;
            let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bundle));
            let value: serde_json::Value = serde_json::from_slice(&bundle)?;
            // The bytes are on disk: only the parsed bundle is needed from here on.
            drop(bundle);
            let pdf = mandate_ca::render_report_pdf(&value);
            std::fs::write(&pdf_path, &pdf)
                .with_context(|| format!("writing {}", pdf_path.display()))?;
            std::fs::write(&csv_path, mandate_ca::report_events_csv(&value))
                .with_context(|| format!("writing {}", csv_path.display()))?;
            output::emit(&serde_json::json!({
                "id": value["report"]["id"],
                "report": json_path, "pdf": pdf_path, "events_csv": csv_path,
                "report_sha256": sha256,
                "audit_records": value["report"]["audit"]["records"].as_array().map_or(0, Vec::len),
                "events": value["report"]["events"]["count"],
            }))?;
            Ok(())
        }
        Command::Ca(CaCommand::Show) => {
            let store = mandate_ca::open_existing_store(&cfg).await?;
            let certs = store.ca_certificates().await?;
            store.close().await;
            if certs.is_empty() {
                anyhow::bail!("{}", mandate_ca::CaError::NotInitialised);
            }
            // Times as everywhere else in v1: RFC 3339 UTC.
            let mut shown = serde_json::to_value(&certs)?;
            for cert in shown.as_array_mut().into_iter().flatten() {
                for key in ["not_before", "not_after"] {
                    if let Some(secs) = cert[key].as_i64() {
                        cert[key] = serde_json::Value::String(mandate_ca::rfc3339(secs));
                    }
                }
            }
            output::emit(&shown)?;
            Ok(())
        }
    }
}

fn read_roots(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    mandate_verify::pem_to_der_chain(&pem)
        .with_context(|| format!("{} holds no PEM certificate", path.display()))
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and pipes
/// stay clean).
mod progress {
    use std::io::{IsTerminal, Write};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    pub struct Bar {
        what: &'static str,
        tty: bool,
        last: Mutex<Option<Instant>>,
    }

    impl Bar {
        pub fn new(what: &'static str) -> Bar {
            Bar {
                what,
                tty: std::io::stderr().is_terminal(),
                last: Mutex::new(None),
            }
        }

        /// `done` of `total` (0: unknown), redrawn at most ten times a second.
        pub fn set(&self, done: u64, total: u64) {
            if !self.tty {
                return;
            }
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) && done < total {
                return;
            }
            *last = Some(Instant::now());
            let line = if let Some(pct) = (done.min(total) * 100).checked_div(total) {
                let filled = usize::try_from(pct / 4).unwrap_or(25);
                format!(
                    "\r{} [{}{}] {done}/{total} ({pct}%)",
                    self.what,
                    "#".repeat(filled),
                    " ".repeat(25 - filled.min(25))
                )
            } else {
                format!("\r{} {done}", self.what)
            };
            let _ = std::io::stderr().write_all(line.as_bytes());
        }

        pub fn finish(&self) {
            if self.tty && self.last.lock().is_ok_and(|l| l.is_some()) {
                let _ = std::io::stderr().write_all(b"\n");
            }
        }
    }
}

/// One way to print results: JSON with `--json`, else indented `key: value` text.
mod output {
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde_json::Value;

    static JSON: AtomicBool = AtomicBool::new(false);

    pub fn set_json(on: bool) {
        JSON.store(on, Ordering::Relaxed);
    }

    /// Whether `--json` was asked for.
    pub fn is_json() -> bool {
        JSON.load(Ordering::Relaxed)
    }

    pub fn emit<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
        let value = serde_json::to_value(value)?;
        let out = if JSON.load(Ordering::Relaxed) {
            format!("{}\n", serde_json::to_string_pretty(&value)?)
        } else {
            let mut out = String::new();
            text(&value, 0, &mut out);
            out
        };
        write_stdout(out.as_bytes())
    }

    /// A page of a list: with `--json` the page as the API gave it, else a table of `columns`
    /// (header, member of each item) and the `--cursor` of the next page, if any.
    pub fn page(page: &Value, columns: &[(&str, &str)]) -> anyhow::Result<()> {
        if JSON.load(Ordering::Relaxed) {
            return emit(page);
        }
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let mut rows: Vec<Vec<String>> = vec![columns.iter().map(|(h, _)| h.to_string()).collect()];
        for item in &items {
            rows.push(
                columns
                    .iter()
                    .map(|(_, key)| {
                        let v = item.pointer(key).unwrap_or(&Value::Null);
                        scalar(v)
                            .unwrap_or_else(|| v.to_string())
                            .replace(['\n', '\r', '\t'], " ")
                    })
                    .collect(),
            );
        }
        let mut out = String::new();
        if items.is_empty() {
            out.push_str("(none)\n");
        } else {
            let widths: Vec<usize> = (0..columns.len())
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            for row in &rows {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:w$}"))
                    .collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
        }
        if let Some(next) = page["next_cursor"].as_str() {
            out.push_str(&format!("more: --cursor {next}\n"));
        }
        write_stdout(out.as_bytes())
    }

    /// Writes to stdout; a reader that went away (`| head`) ends the output quietly, not with
    /// a panic or an error.
    pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::Null => Some("-".into()),
            Value::String(s) if !s.contains('\n') => Some(s.clone()),
            Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
            Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => Some(
                a.iter()
                    .map(|x| scalar(x).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        }
    }

    fn text(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(map) => {
                let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
                for (k, v) in map {
                    match scalar(v) {
                        Some(s) => out.push_str(&format!("{pad}{k:width$}  {s}\n")),
                        None => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            text(v, indent + 2, out);
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    text(item, indent, out);
                }
            }
            Value::String(s) => {
                for line in s.lines() {
                    out.push_str(&format!("{pad}{line}\n"));
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
        }
    }
}

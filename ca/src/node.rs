//! A running node: configuration, store, HSM and issuer, and the start-up that wires them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mandate_config::Config;
use mandate_hsm::{Hsm, HsmConfig, Pin, softhsm};
use mandate_store::Store;

use crate::CaError;
use crate::ceremony::{CeremonyReport, init_ca};
use crate::crl_publisher::CrlPublisher;
use crate::issuance::Issuer;
use crate::ocsp_cache::OcspCache;
use crate::ocsp_presigner::Presigner;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Node {
    /// The resolved configuration.
    pub cfg: Arc<Config>,
    /// The database.
    pub store: Store,
    /// The HSM holding the CA keys.
    pub hsm: Hsm,
    /// Issues agent certificates.
    pub issuer: Issuer,
    /// Keeps the CRLs fresh.
    pub crls: CrlPublisher,
    /// The issuers OCSP answers for, each with its current delegated signer.
    pub ocsp_issuers: Arc<mandate_ocsp::IssuerSet>,
    /// Signed OCSP responses, dropped on every revocation.
    pub ocsp_cache: OcspCache,
    /// Keeps pre-signed responses in the store for stand-alone responders (`ca.ocsp_presign`).
    pub presigner: Option<Presigner>,
    /// ACME anti-replay nonces.
    pub acme_nonces: crate::acme::nonce::NonceStore,
    /// Per-API-key request budgets.
    pub rate_limits: crate::rate_limit::RateLimiter,
    /// Recently read API key rows.
    pub api_key_cache: crate::api_key::KeyCache,
    /// Agents' live state, the anomaly score and the thresholds.
    pub behaviour: crate::behaviour::Behaviour,
    /// Webhook delivery.
    pub webhooks: crate::webhooks::Dispatcher,
    /// Wakes the key-rotation watcher (it also polls the store).
    pub ca_changes: tokio::sync::Notify,
    /// Agents' organizations, for the tenant check of the pre-trade and event paths.
    pub agent_organizations: crate::ra::tenant::AgentOrganizations,
}

impl Node {
    /// Says a revocation was committed: cached OCSP answers are dropped, the CRLs rebuilt and
    /// the pre-signed responses replaced, all at once.
    pub fn revoked(&self) {
        self.crls.revoked();
        if let Some(p) = &self.presigner {
            p.wake();
        }
        self.changed();
    }

    /// Says certificates of unknown agents changed (revocations): every live agent state
    /// reloads, and the webhook worker looks at the outbox.
    pub fn changed(&self) {
        self.behaviour.changed();
        self.webhooks.wake();
    }

    /// Says one agent's mandate, status, certificates or baseline changed: its live state
    /// reloads before its next use, and the webhook worker looks at the outbox.
    pub fn agent_changed(&self, agent_id: &str) {
        self.behaviour.touched.touch(agent_id);
        self.webhooks.wake();
    }
}

/// The SoftHSM2 config file of the dev token, written if missing. The caller must export it as
/// `SOFTHSM2_CONF` before anything loads the module (SoftHSM reads it once, at C_Initialize).
pub fn prepare_dev_token(cfg: &Config) -> Result<Option<PathBuf>, CaError> {
    if !cfg.hsm.dev_token {
        return Ok(None);
    }
    Ok(Some(softhsm::write_config(&cfg.softhsm_dir())?))
}

/// Creates the dev token with random PINs on first start; a no-op once it exists.
/// Needs `SOFTHSM2_CONF` exported (see [`prepare_dev_token`]).
pub fn ensure_dev_token(cfg: &Config) -> Result<(), CaError> {
    if !cfg.hsm.dev_token {
        return Ok(());
    }
    let dir = cfg.softhsm_dir();
    let user_pin = read_or_create_secret(&cfg.hsm.pin_file)?;
    let so_pin = read_or_create_secret(&dir.join("so.pin"))?;
    let module = module_path(cfg)?;
    if softhsm::ensure_token(&module, &cfg.hsm.token_label, &so_pin, &user_pin)? {
        tracing::info!(token = %cfg.hsm.token_label, dir = %dir.display(), "created SoftHSM dev token");
    }
    Ok(())
}

fn module_path(cfg: &Config) -> Result<PathBuf, CaError> {
    if !cfg.hsm.module.as_os_str().is_empty() {
        return Ok(cfg.hsm.module.clone());
    }
    softhsm::find_module().ok_or_else(|| {
        CaError::InvalidRequest(
            "no PKCS#11 module configured and SoftHSM2 not found; install softhsm2 or set hsm.module / MANDATE_HSM_MODULE".into(),
        )
    })
}

/// A PIN file's content, creating it (mode 0600, 128 random bits) if missing.
fn read_or_create_secret(path: &Path) -> Result<Pin, CaError> {
    if path.exists() {
        return Ok(Pin::from_file(path)?);
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    let secret = hex::encode(bytes);
    write_private(path, secret.as_bytes())?;
    Ok(Pin::new(secret))
}

/// Writes a file only its owner can read, atomically (temp file + rename).
pub(crate) fn write_private(path: &Path, content: &[u8]) -> Result<(), CaError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CaError::io(format!("create {}", dir.display()), e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| CaError::io(format!("create {}", tmp.display()), e))?;
    f.write_all(content)
        .and_then(|()| f.sync_all())
        .map_err(|e| CaError::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| CaError::io(format!("rename to {}", path.display()), e))
}

/// Opens the store named by the config.
pub async fn open_store(cfg: &Config) -> Result<Store, CaError> {
    Ok(Store::open(&cfg.database_url).await?)
}

/// Opens the store named by the config, which must exist: the commands that only read or act on
/// a CA never create a database (a mistyped data directory is an error, not a new empty CA).
pub async fn open_existing_store(cfg: &Config) -> Result<Store, CaError> {
    require_database(cfg)?;
    Ok(Store::open_existing(&cfg.database_url).await?)
}

/// Refuses, naming the file, when the configured SQLite database does not exist.
pub fn require_database(cfg: &Config) -> Result<(), CaError> {
    match mandate_store::missing_sqlite_file(&cfg.database_url) {
        Some(file) => Err(CaError::InvalidRequest(format!(
            "no CA here: {} does not exist (check --config / MANDATE_DATA_DIR, or run `mandate init`)",
            file.display()
        ))),
        None => Ok(()),
    }
}

/// Connects to the configured token and logs in. The PIN comes from the `hsm.pin_env` variable
/// when it is set, else from `hsm.pin_file`; the dev token always uses the PIN file it made.
pub async fn connect_hsm(cfg: &Config) -> Result<Hsm, CaError> {
    let from_env = if cfg.hsm.dev_token || cfg.hsm.pin_env.is_empty() {
        None
    } else {
        std::env::var(&cfg.hsm.pin_env)
            .ok()
            .filter(|v| !v.is_empty())
    };
    let pin = match from_env {
        Some(v) => Pin::new(v),
        _ if !cfg.hsm.pin_file.as_os_str().is_empty() => Pin::from_file(&cfg.hsm.pin_file)?,
        _ => {
            return Err(CaError::InvalidRequest(format!(
                "no HSM PIN: set {} or hsm.pin_file",
                cfg.hsm.pin_env
            )));
        }
    };
    let hsm = Hsm::connect(HsmConfig {
        module_path: module_path(cfg)?,
        token_label: cfg.hsm.token_label.clone(),
        pin,
        pool_size: cfg.hsm.pool_size,
    })
    .await?;
    hsm.observe(Arc::new(crate::metrics::HsmObserver));
    Ok(hsm)
}

impl Node {
    /// Opens store and HSM, runs the key ceremony on first start (writing the bootstrap admin
    /// key to `<data_dir>/admin.key`), and loads the issuer.
    pub async fn start(cfg: Config) -> Result<Node, CaError> {
        let cfg = Arc::new(cfg);
        let store = open_store(&cfg).await?;
        let hsm = connect_hsm(&cfg).await?;
        if !store.ca_initialised().await? {
            let report = init_ca(&hsm, &store, &cfg, "system:first-start").await?;
            write_admin_key(&cfg, &report)?;
        }
        // Before anything is served or published from it: is this database an older copy?
        let origin = crate::audit_checkpoint::origin(&store, &cfg).await?;
        let standing = crate::audit_anchor::standing(&hsm, &store, &origin).await;
        if let Some(problem) = standing.as_ref().ok().and_then(|s| s.problem()) {
            // Stand-alone responders read this database too: they refuse while it is marked.
            if let Err(e) = store.refuse_serving(&problem).await {
                tracing::error!(error = %e, "the refusal could not be marked for the OCSP responders");
            }
            hsm.shutdown().await;
            store.close().await;
            return Err(CaError::RolledBack(problem));
        }
        standing?;
        if store.serving_refusal().await?.is_some() {
            store.clear_serving_refusal().await?;
        }
        let issuer = Issuer::load(&hsm, &store, cfg.clone()).await?;
        let ocsp_cache = OcspCache::default();
        // Moves when agents' live states must reload (see `behaviour`).
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let crls = CrlPublisher::start(
            &store,
            &hsm,
            cfg.ca.crl_validity_secs,
            ocsp_cache.clone(),
            generation.clone(),
        )
        .await?;
        let ocsp_issuers = Arc::new(mandate_ocsp::IssuerSet::load(&store).await?);
        crate::ocsp_signer::start(&hsm, &store, cfg.clone(), ocsp_issuers.clone()).await?;
        let presigner = cfg.ca.ocsp_presign.then(|| {
            Presigner::start(
                &hsm,
                &store,
                ocsp_issuers.clone(),
                cfg.ca.ocsp_validity_secs,
            )
        });
        let behaviour = crate::behaviour::Behaviour::new(
            store.clone(),
            cfg.clone(),
            generation,
            issuer.issued_to.clone(),
        );
        let webhooks =
            crate::webhooks::Dispatcher::start(store.clone(), hsm.clone(), cfg.webhooks.clone())?;
        Ok(Node {
            behaviour,
            webhooks,
            store,
            hsm,
            issuer,
            crls,
            ocsp_issuers,
            ocsp_cache,
            presigner,
            acme_nonces: Default::default(),
            ca_changes: tokio::sync::Notify::new(),
            api_key_cache: Default::default(),
            agent_organizations: Default::default(),
            rate_limits: crate::rate_limit::RateLimiter::new(
                cfg.http.rate_limit_per_minute,
                cfg.http.rate_limit_burst,
            ),
            cfg,
        })
    }
}

fn write_admin_key(cfg: &Config, report: &CeremonyReport) -> Result<(), CaError> {
    let path = cfg.admin_key_path();
    write_private(&path, format!("{}\n", report.admin_api_key).as_bytes())?;
    tracing::info!(
        path = %path.display(),
        root_sha256 = %report.root.sha256_fingerprint,
        intermediate_sha256 = %report.intermediate.sha256_fingerprint,
        "CA initialised on first start; bootstrap admin API key written (mode 0600)"
    );
    Ok(())
}

/// Serves the HTTP API until SIGINT or SIGTERM: on `listen` (plain HTTP), and on
/// `http.tls_listen` (HTTPS) when set.
///
/// The port opens at once. While the HSM or the database cannot be reached, the node keeps
/// trying to start (backing off to [`START_RETRY_MAX`]); meanwhile `/healthz` answers, and
/// `/readyz` and every other route answer 503 with the reason, so an orchestrator sees a live
/// but unready process instead of a crash loop. A wrong PIN or a bad configuration still ends
/// the process: retrying a PIN would only lock the token.
pub async fn serve(cfg: Config) -> Result<(), CaError> {
    let limits = mandate_listener::Limits::from_config(&cfg.http);
    let acceptor = mandate_listener::Acceptor::plain(cfg.listen).await?;
    let local = acceptor.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let gate = crate::http::start_gate::Gate::default();
    let http = tokio::spawn(mandate_listener::serve(
        acceptor,
        gate.router(),
        limits,
        crate::metrics::METRICS.http_listener.clone(),
        crate::http::refusal::refuser(),
        until_stopped(stopped.clone()),
    ));
    tracing::info!(%local, "mandate listening");
    let Some(node) = start_until_up(cfg, &gate, stopped.clone()).await? else {
        return finish(http, None, None).await;
    };
    let node = Arc::new(node);
    crate::behaviour::start_learner(node.clone());
    crate::retirement::start(node.clone());
    crate::ca_reload::start(node.clone());
    crate::change_listener::start(node.clone());
    let refuse = gate.clone();
    crate::audit_checkpoint::start(
        node.hsm.clone(),
        node.store.clone(),
        node.cfg.clone(),
        Box::new(move |problem| refuse.refuse(problem)),
    );
    reset_hsm_sessions_on_sigusr1(node.hsm.clone());
    let app = crate::http::router(node.clone());
    // HTTPS listens before the node says it is ready, so that ready means every listener.
    let tls = match node.cfg.http.tls_listen {
        Some(addr) => {
            let config = crate::tls::server_config(&node.cfg, &node.issuer).await?;
            let tls = mandate_listener::Acceptor::tls(addr, config).await?;
            let tls_local = tls.local_addr()?;
            tracing::info!(%tls_local, url = %node.cfg.http.tls_public_url, "mandate listening (HTTPS)");
            // The dashboard marks its cookies Secure on this listener.
            let app = app.clone().layer(axum::Extension(crate::http::OverTls));
            Some(tokio::spawn(mandate_listener::serve(
                tls,
                app,
                limits,
                crate::metrics::METRICS.https_listener.clone(),
                crate::http::refusal::refuser(),
                until_stopped(stopped),
            )))
        }
        None => None,
    };
    gate.open(app);
    tracing::info!(%local, "mandate ready");
    finish(http, tls, Some(&node.store)).await
}

/// SIGUSR1 ends every HSM session and login of this process; the pool opens fresh sessions
/// and logs in again for the next operations. For operators after HSM maintenance (a network
/// HSM fail-over leaves sessions that fail), and as a fault drill: issuance carries on.
fn reset_hsm_sessions_on_sigusr1(hsm: Hsm) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut usr1 = match signal(SignalKind::user_defined1()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGUSR1 handler not installed");
            return;
        }
    };
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            match hsm.drop_all_sessions().await {
                Ok(()) => {
                    tracing::warn!("SIGUSR1: every HSM session closed; new ones open on demand")
                }
                Err(e) => tracing::error!(error = %e, "SIGUSR1: closing the HSM sessions failed"),
            }
        }
    });
}

/// Longest pause between two attempts to start while the HSM or database is unreachable.
const START_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the node, retrying while what it needs is temporarily unreachable; `None` if asked
/// to stop first.
async fn start_until_up(
    cfg: Config,
    gate: &crate::http::start_gate::Gate,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Node>, CaError> {
    let mut pause = std::time::Duration::from_millis(500);
    loop {
        let attempt = {
            let cfg = cfg.clone();
            async move {
                let dev = cfg.clone();
                tokio::task::spawn_blocking(move || ensure_dev_token(&dev))
                    .await
                    .map_err(|e| CaError::Internal(format!("dev token task: {e}")))??;
                Node::start(cfg).await
            }
        };
        match attempt.await {
            Ok(node) => return Ok(Some(node)),
            Err(CaError::RolledBack(problem)) => {
                // Not temporary, but cured by `mandate recover` while this process waits.
                tracing::error!(
                    %problem,
                    retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "refusing to serve: the database is behind the audit anchor in the HSM"
                );
                gate.set_reason(problem);
            }
            Err(e) if e.is_temporary() => {
                tracing::error!(
                    error = %e,
                    retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "cannot start: a dependency is unreachable; /readyz fails until it is back"
                );
                gate.set_reason(e.to_string());
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.wait_for(|s| *s) => return Ok(None),
        }
        pause = (pause * 2).min(START_RETRY_MAX);
    }
}

type ServerTask = tokio::task::JoinHandle<Result<(), mandate_listener::ListenerError>>;

/// Waits for the servers to drain after the stop signal, then closes the store.
async fn finish(
    http: ServerTask,
    tls: Option<ServerTask>,
    store: Option<&Store>,
) -> Result<(), CaError> {
    let served = http.await;
    if let Some(task) = tls {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "HTTPS server failed"),
            Err(e) => tracing::error!(error = %e, "HTTPS server task failed"),
        }
    }
    if let Some(store) = store {
        store.close().await;
    }
    match served {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(CaError::Internal(format!("HTTP server task: {e}"))),
    }
    tracing::info!("mandate stopped");
    Ok(())
}

/// Logs to stderr with the configured filter (`log` / `MANDATE_LOG`), as text (colours on a
/// terminal only) or JSON lines (`log_format` / `MANDATE_LOG_FORMAT`).
pub fn init_logging(cfg: &Config) -> Result<(), CaError> {
    init_logging_at(cfg, &cfg.log)
}

/// Installs the logger with the filter `directives` instead of the configured one (the CLI's
/// commands log only warnings unless asked with `-v`).
pub fn init_logging_at(cfg: &Config, directives: &str) -> Result<(), CaError> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(directives).map_err(|e| {
        CaError::InvalidRequest(format!(
            "invalid log filter {directives:?} (log / MANDATE_LOG), e.g. \"info\" or \"mandate_ca=debug,info\": {e}"
        ))
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log_format {
        mandate_config::LogFormat::Text => {
            builder.with_ansi(std::io::stderr().is_terminal()).init()
        }
        // Spans ride along: a line logged while serving a request carries its request id.
        mandate_config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

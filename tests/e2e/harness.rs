//! Starts the real daemon on loopback in a private data dir and talks to it over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_mandate");
pub const OCSP_BIN: &str = env!("CARGO_BIN_EXE_mandate-ocsp");
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A running `mandate serve` with its own data dir (SQLite file and SoftHSM dev token).
pub struct Daemon {
    /// Shared by every node started with [`Daemon::another_node`]: the config, the SoftHSM
    /// token and its PIN, the bootstrap admin key.
    dir: Arc<tempfile::TempDir>,
    /// This node's log.
    log_file: PathBuf,
    /// Extra environment of this node's processes.
    env: Vec<(String, String)>,
    /// The database: a SQLite file in `dir`, or a fresh PostgreSQL database when the suite
    /// runs on PostgreSQL (`MANDATE_TEST_PG_URL`).
    pub db_url: String,
    child: Option<Child>,
    pub base: String,
    port: u16,
    http: reqwest::Client,
}

/// A copy of a database taken by [`Daemon::backup_database`].
pub enum DbBackup {
    /// The SQLite files.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL database on the shared test server.
    Postgres(String),
}

/// The answer to one request.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// Asserts an RFC 9457 problem of this status and type suffix.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(
            self.body["type"],
            format!("urn:mandate:problem:{kind}"),
            "{self:?}"
        );
        assert_eq!(self.body["status"], status, "{self:?}");
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// The organization the suite's agents belong to, and its legal name.
pub const ORG: &str = "acme-trading";
pub const ORG_LEGAL_NAME: &str = "Acme Trading GmbH";

/// Numbers the people the suite makes (ids must be unique per daemon; unique per process is
/// enough).
static PEOPLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The suite's config: `toml` plus, unless it says otherwise, plain HTTP and private addresses
/// for webhook receivers (the suite's receivers listen on `http://127.0.0.1`, which the
/// daemon refuses by default).
pub fn test_config(toml: &str) -> String {
    const WEBHOOKS: &str = "allow_http = true\nallow_private_addresses = true\n";
    if toml.contains("allow_http") || toml.contains("allow_private_addresses") {
        return toml.to_owned();
    }
    match toml.find("[webhooks]\n") {
        // Keys go right under the table's header: appended elsewhere they would belong to
        // whichever table came last.
        Some(at) => {
            let (head, tail) = toml.split_at(at + "[webhooks]\n".len());
            format!("{head}{WEBHOOKS}{tail}")
        }
        None => format!("{toml}\n[webhooks]\n{WEBHOOKS}"),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    /// Starts a daemon on the embedded defaults, in a fresh data dir.
    pub async fn start() -> Daemon {
        Self::start_with_config("").await
    }

    /// Starts a daemon with this TOML as its config file (`--config`), in a fresh data dir
    /// (with the suite's webhook settings, see [`test_config`]).
    pub async fn start_with_config(toml: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mandate.toml"), test_config(toml)).unwrap();
        let db_url = mandate_testkit::database_url(dir.path());
        Self::start_on(Arc::new(dir), db_url, Vec::new()).await
    }

    /// Starts a daemon with this data dir and database (PostgreSQL: several nodes may share
    /// them) and extra environment.
    pub async fn start_on(
        dir: Arc<tempfile::TempDir>,
        db_url: String,
        env: Vec<(String, String)>,
    ) -> Daemon {
        let mut d = Self::unstarted(dir, db_url, env);
        d.spawn().await;
        d
    }

    /// A daemon not started yet ([`Daemon::spawn_unready`] starts it).
    pub fn unstarted(
        dir: Arc<tempfile::TempDir>,
        db_url: String,
        env: Vec<(String, String)>,
    ) -> Daemon {
        let config = dir.path().join("mandate.toml");
        if !config.exists() {
            std::fs::write(&config, test_config("")).unwrap();
        }
        let port = free_port();
        Daemon {
            base: format!("http://127.0.0.1:{port}"),
            log_file: dir.path().join(format!("daemon-{port}.log")),
            env,
            db_url,
            dir,
            child: None,
            port,
            http: reqwest::Client::new(),
        }
    }

    /// Another node on the same data dir (token, config) and database, with its own port and
    /// log.
    pub async fn another_node(&self) -> Daemon {
        Self::start_on(self.dir.clone(), self.db_url.clone(), self.env.clone()).await
    }

    /// A copy of this stopped daemon's whole state (data dir with its token, and database), as
    /// a daemon not started yet: another machine restored from a full backup.
    pub fn copy_stopped(&self) -> Daemon {
        assert!(self.child.is_none(), "stop the daemon first");
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.dir.path().display()))
            .arg(dir.path()));
        let db_url = if self.db_url.starts_with("postgres") {
            mandate_testkit::copy_database(&self.db_url)
        } else {
            format!("sqlite://{}", dir.path().join("mandate.db").display())
        };
        Self::unstarted(Arc::new(dir), db_url, self.env.clone())
    }

    /// A backup of this stopped daemon's database alone (a copy of the SQLite files, or of the
    /// PostgreSQL database), for [`Daemon::restore_database`].
    pub fn backup_database(&self) -> DbBackup {
        assert!(self.child.is_none(), "stop the daemon first");
        if self.db_url.starts_with("postgres") {
            return DbBackup::Postgres(mandate_testkit::copy_database(&self.db_url));
        }
        let dir = tempfile::tempdir().unwrap();
        for f in ["mandate.db", "mandate.db-wal", "mandate.db-shm"] {
            let from = self.dir.path().join(f);
            if from.exists() {
                std::fs::copy(&from, dir.path().join(f)).unwrap();
            }
        }
        DbBackup::Sqlite(dir)
    }

    /// Puts a backup back in place of the database (the HSM token and the rest of the data
    /// dir stay as they are): the restore of an older copy.
    pub fn restore_database(&mut self, backup: &DbBackup) {
        assert!(self.child.is_none(), "stop the daemon first");
        match backup {
            DbBackup::Postgres(url) => self.db_url = mandate_testkit::copy_database(url),
            DbBackup::Sqlite(dir) => {
                for f in ["mandate.db", "mandate.db-wal", "mandate.db-shm"] {
                    let to = self.dir.path().join(f);
                    let _ = std::fs::remove_file(&to);
                    let from = dir.path().join(f);
                    if from.exists() {
                        std::fs::copy(&from, &to).unwrap();
                    }
                }
            }
        }
    }

    /// The shared data dir.
    pub fn shared_dir(&self) -> Arc<tempfile::TempDir> {
        self.dir.clone()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kills the daemon with SIGKILL (no chance to finish anything) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment every `mandate` command of this daemon runs with.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(self.dir.path().join("mandate.toml"))
            .env("MANDATE_DATA_DIR", self.dir.path())
            .env("MANDATE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("MANDATE_LOG", "info")
            .env("MANDATE_JSON", "true")
            .env_remove("MANDATE_CONFIG")
            .env_remove("MANDATE_HSM_PIN");
        // SQLite: the default file in the data dir, which some tests move on purpose.
        if self.db_url.starts_with("postgres") {
            cmd.env("MANDATE_DATABASE_URL", &self.db_url);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub async fn spawn(&mut self) {
        self.spawn_unready();
        self.wait_ready().await;
    }

    /// Starts the process without waiting for `/readyz`.
    pub fn spawn_unready(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap();
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited with {status} before ready:\n{}", self.log());
            }
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready within {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM and waits for it to exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "daemon exit {status}:\n{}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not stop on SIGTERM:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the daemon with SIGKILL and starts it again on the same data.
    pub async fn kill9_and_restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin.key"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn softhsm_conf(&self) -> PathBuf {
        self.dir.path().join("softhsm/softhsm2.conf")
    }

    pub fn user_pin(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("softhsm/user.pin"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = reply(req.send().await.unwrap()).await;
        crate::contract::assert_documented(
            method.as_str(),
            path,
            r.status.as_u16(),
            &r.content_type,
            &r.body,
        );
        r
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> Reply {
        self.request(reqwest::Method::POST, Some(key), path, Some(body))
            .await
    }

    /// POSTs `body` as is, with a content type only if one is given.
    pub async fn post_raw(
        &self,
        key: &str,
        path: &str,
        content_type: Option<&str>,
        body: &'static str,
    ) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = reply(req.send().await.unwrap()).await;
        crate::contract::assert_documented(
            "POST",
            path,
            r.status.as_u16(),
            &r.content_type,
            &r.body,
        );
        r
    }

    pub async fn get(&self, key: &str, path: &str) -> Reply {
        self.request(reqwest::Method::GET, Some(key), path, None)
            .await
    }

    /// Every item of a list, page by page: the one cursor loop of v1 (`items`, `next_cursor`
    /// passed back as `?cursor=`). Asserts each page's shape on the way.
    pub async fn list_all(&self, key: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        for _ in 0..10_000 {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}cursor={}", urlencode(c)),
                None => path.to_owned(),
            };
            let page = self.get(key, &url).await;
            assert_eq!(page.status, StatusCode::OK, "{url}: {page:?}");
            items.extend(
                page.body["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .cloned(),
            );
            let next = &page.body["next_cursor"];
            assert!(next.is_null() || next.is_string(), "{url}: {page:?}");
            match next.as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
        panic!("{path}: the cursor never ended");
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    /// A new API key of `role` (for `agent`, bound to `agent_id`). Every other role's key
    /// belongs to a new person: of the organization `acme-trading` (made on first use) for
    /// operator and compliance, CA staff for admin and auditor.
    pub async fn key(&self, role: &str, agent_id: Option<&str>) -> String {
        match (role, agent_id) {
            ("agent", Some(a)) => {
                let body = json!({"role": role, "label": format!("{role} key"), "agent_id": a});
                let r = self.post(&self.admin_key(), "/v1/api-keys", &body).await;
                assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
                r.body["api_key"].as_str().unwrap().to_owned()
            }
            ("operator" | "compliance", _) => {
                self.ensure_org(ORG, ORG_LEGAL_NAME).await;
                self.person_key(Some(ORG), role).await
            }
            _ => self.person_key(None, role).await,
        }
    }

    /// Makes organization `id` if it does not exist yet (its legal name and the other names
    /// the suite's mandates use as operator).
    pub async fn ensure_org(&self, id: &str, legal_name: &str) {
        let body = json!({"id": id, "legal_name": legal_name,
                          "legal_entities": ["Acme", "B", "acme-trading"]});
        let r = self
            .post(&self.admin_key(), "/v1/organizations", &body)
            .await;
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT,
            "{r:?}"
        );
    }

    /// A new person of `org` (CA staff if `None`) holding `role`, and a key of theirs.
    pub async fn person_key(&self, org: Option<&str>, role: &str) -> String {
        let id = format!(
            "{role}-{}",
            PEOPLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.person(&id, org, &[role]).await;
        self.key_of(&id, role).await
    }

    /// A new person `id` of `org` (CA staff if `None`) holding `roles`.
    pub async fn person(&self, id: &str, org: Option<&str>, roles: &[&str]) {
        let body = json!({"id": id, "name": format!("Person {id}"), "organization": org,
                          "roles": roles});
        let r = self.post(&self.admin_key(), "/v1/people", &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    }

    /// A new key of person `id` with `role`.
    pub async fn key_of(&self, id: &str, role: &str) -> String {
        let body = json!({"role": role, "label": format!("{role} key of {id}"), "person": id});
        let r = self.post(&self.admin_key(), "/v1/api-keys", &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["api_key"].as_str().unwrap().to_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running stand-alone `mandate-ocsp` on a daemon's data dir (same config and env), with its
/// own port and log.
pub struct Responder {
    child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:PORT/ocsp`.
    pub url: String,
}

impl Responder {
    /// The stand-alone responder's command for this daemon's data: its config and data dir,
    /// and an HSM module that does not exist, since the responder must never need one.
    pub fn command(d: &Daemon) -> Command {
        let mut cmd = Command::new(OCSP_BIN);
        cmd.arg("--config")
            .arg(d.dir.path().join("mandate.toml"))
            .env("MANDATE_DATA_DIR", d.dir.path())
            .env("MANDATE_LOG", "info")
            .env("MANDATE_HSM_MODULE", "/nonexistent/libpkcs11.so")
            .env_remove("MANDATE_CONFIG")
            .env_remove("SOFTHSM2_CONF");
        if d.db_url.starts_with("postgres") {
            cmd.env("MANDATE_DATABASE_URL", &d.db_url);
        }
        cmd
    }

    /// Starts one and waits until `/readyz` says so.
    pub async fn start(d: &Daemon) -> Responder {
        let port = free_port();
        let log = d.dir.path().join(format!("ocsp-{port}.log"));
        let child = Self::command(d)
            .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut r = Responder {
            child,
            log,
            url: format!("http://127.0.0.1:{port}/ocsp"),
        };
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = r.child.try_wait().unwrap() {
                panic!("mandate-ocsp exited with {status}:\n{}", r.log());
            }
            if let Ok(resp) = d.http.get(&ready).send().await
                && resp.status() == StatusCode::OK
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "mandate-ocsp not ready:\n{}",
                r.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        content_type,
        body,
    }
}

/// A daemon with an operator and a compliance officer.
pub struct Ca {
    pub d: Daemon,
    pub operator: String,
    pub compliance: String,
}

impl Ca {
    pub async fn start() -> Ca {
        Self::start_with_config("").await
    }

    pub async fn start_with_config(toml: &str) -> Ca {
        Self::on(Daemon::start_with_config(toml).await).await
    }

    /// A running daemon, with an operator and a compliance officer key made on it.
    pub async fn on(d: Daemon) -> Ca {
        let operator = d.key("operator", None).await;
        let compliance = d.key("compliance", None).await;
        Ca {
            d,
            operator,
            compliance,
        }
    }

    pub async fn register(&self, agent_id: &str, mandate: Value) -> Reply {
        self.d
            .post(
                &self.operator,
                "/v1/agents",
                &json!({"agent_id": agent_id, "name": format!("Agent {agent_id}"),
                        "organization": "acme-trading", "mandate": mandate}),
            )
            .await
    }

    /// Registers and approves an agent.
    pub async fn approved_agent(&self, agent_id: &str, mandate: Value) {
        let r = self.register(agent_id, mandate).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        let r = self
            .d
            .post(
                &self.compliance,
                &format!("/v1/agents/{agent_id}/approve"),
                &json!({"version": 1}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.body["status"], "active");
    }

    pub async fn auditor(&self) -> String {
        self.d.key("auditor", None).await
    }

    /// Certifies `agent_id` (as the operator) for a fresh P-256 key made by openssl in `dir`;
    /// the answer must be 201.
    pub async fn certify_new_key(&self, agent_id: &str, dir: &Path) -> Reply {
        let r = self
            .certify(
                &self.operator,
                agent_id,
                &csr(dir, "ec-p256", &format!("/CN={agent_id}"), None),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r
    }

    pub async fn certify(&self, key: &str, agent_id: &str, csr: &str) -> Reply {
        self.d
            .post(
                key,
                &format!("/v1/agents/{agent_id}/certify"),
                &json!({ "csr": csr }),
            )
            .await
    }
}

/// A mandate with every field set.
pub fn full_mandate() -> Value {
    json!({
        "operator": "Acme Trading GmbH",
        "operatorRegulatorId": "ESMA-001234",
        "maxTransactionSize": {"amount": "50000", "currency": "EUR"},
        "maxDailyVolume": {"amount": "1000000.50", "currency": "EUR"},
        "allowedMarkets": ["EUR_USD", "BTC_EUR"],
        "allowedCounterparties": ["exchange_a"],
        "allowedRegions": ["eu-west-1"],
        "tradingHours": {"start": "08:00", "end": "17:00", "timeZone": "Europe/Berlin",
                          "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
        "permittedActions": ["trade_execution", "data_access"],
        "circuitBreakerThreshold": 0.7,
        "autoRevokeThreshold": 0.9,
        "maxConsecutiveFailures": 5,
        "revocationTimeout": 10
    })
}

/// Runs a command, asserting success; returns stdout.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh key and a CSR for it, made by openssl. `kind`: ec-p256, ec-p384, secp256k1, rsa-N.
pub fn csr(dir: &Path, kind: &str, subject: &str, san: Option<&str>) -> String {
    let key = dir.join(format!("{kind}-{}.key", rand_suffix()));
    let csr = key.with_extension("csr");
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-nodes", "-subj", subject, "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr);
    match kind {
        "ec-p256" => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        "ec-p384" => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        "secp256k1" => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"]),
        rsa => {
            let bits = rsa.strip_prefix("rsa-").unwrap();
            cmd.args(["-newkey", &format!("rsa:{bits}")])
        }
    };
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    run(&mut cmd);
    std::fs::read_to_string(csr).unwrap()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs one of pkilint's linters (`lint_pkix_cert`, `lint_crl`, `lint_ocsp_response`) on `file`
/// as a python module (so a fresh pip install works without its scripts on PATH); fails on a
/// missing pkilint and on any ERROR or FATAL finding; returns the findings.
pub fn pkilint(linter: &str, options: &[&str], file: &Path) -> String {
    let out = Command::new("python3")
        .args(["-m", &format!("pkilint.bin.{linter}"), "lint"])
        .args(options)
        .arg(file)
        .output()
        .unwrap();
    let findings = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "pkilint is not installed (pip install pkilint): {stderr}"
    );
    assert!(
        !findings.contains("(ERROR)") && !findings.contains("(FATAL)"),
        "{linter} {}:\n{findings}{stderr}",
        file.display()
    );
    findings
}

/// Path of a file beside these tests.
pub fn here(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e")
        .join(name)
}

/// What `openssl ocsp` says of `cert` (issued by `issuer`) at the daemon's responder `base`, the
/// response verified against `root` with `other` as extra certificates: "good", "revoked", or
/// openssl's whole output. Panics unless the response verifies.
pub fn ocsp_status(base: &str, issuer: &Path, cert: &Path, root: &Path, other: &Path) -> String {
    let out = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(issuer)
        .arg("-cert")
        .arg(cert)
        .args(["-url", &format!("{base}/ocsp"), "-CAfile"])
        .arg(root)
        .arg("-verify_other")
        .arg(other)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Response verify OK"), "{text}");
    if text.contains(": revoked") {
        "revoked".into()
    } else if text.contains(": good") {
        "good".into()
    } else {
        text
    }
}

/// Runs SQL statements straight on the daemon's database, behind its back (as someone with
/// write access to the database could): python's sqlite3 on the SQLite file, or `psql` on
/// PostgreSQL. With `bypass_triggers`, the guards of the append-only tables are off for it
/// (SQLite: dropped; PostgreSQL: `session_replication_role = replica`, as a superuser can).
pub fn exec_sql(d: &Daemon, sql: &str, bypass_triggers: bool) {
    if d.db_url.starts_with("postgres") {
        let sql = if bypass_triggers {
            format!("SET session_replication_role = replica; {sql}")
        } else {
            sql.to_owned()
        };
        mandate_testkit::psql(&d.db_url, &sql);
        return;
    }
    let script = if bypass_triggers {
        "import sqlite3,sys\ndb=sqlite3.connect(sys.argv[1])\nfor (t,) in db.execute(\"SELECT name FROM sqlite_master WHERE type='trigger'\").fetchall():\n    db.execute('DROP TRIGGER '+t)\ndb.executescript(sys.argv[2])\ndb.commit()\n"
    } else {
        "import sqlite3,sys\ndb=sqlite3.connect(sys.argv[1])\ndb.executescript(sys.argv[2])\ndb.commit()\n"
    };
    run(Command::new("python3")
        .args(["-c", script])
        .arg(d.data_dir().join("mandate.db"))
        .arg(sql));
}

/// Tries one SQL statement on the daemon's database with the guards in place; the database's
/// error message if it refused, `None` if it let it through.
pub fn try_sql(d: &Daemon, sql: &str) -> Option<String> {
    let out = if d.db_url.starts_with("postgres") {
        Command::new("psql")
            .args([&d.db_url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap()
    } else {
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\ndb=sqlite3.connect(sys.argv[1])\ndb.execute(sys.argv[2])\ndb.commit()\n",
            ])
            .arg(d.data_dir().join("mandate.db"))
            .arg(sql)
            .output()
            .unwrap()
    };
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The rows of a query on the daemon's database, each as its columns' text (NULL as "").
pub fn query_sql(d: &Daemon, sql: &str) -> Vec<Vec<String>> {
    let (input, script, arg) = if d.db_url.starts_with("postgres") {
        let csv = mandate_testkit::psql(
            &d.db_url,
            &format!("COPY ({sql}) TO STDOUT WITH (FORMAT csv)"),
        );
        (
            csv,
            "import csv,json,sys\nprint(json.dumps(list(csv.reader(sys.stdin))))",
            None,
        )
    } else {
        (
            String::new(),
            "import json,sqlite3,sys\ndb=sqlite3.connect(sys.argv[1])\nprint(json.dumps([['' if v is None else str(v) for v in r] for r in db.execute(sys.argv[2])]))",
            Some(d.data_dir().join("mandate.db")),
        )
    };
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    if let Some(db) = arg {
        cmd.arg(db).arg(sql);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "query {sql:?} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Rows of the tables a refusal must leave alone, and the HSM's key inventory.
pub fn footprint(d: &Daemon) -> (Vec<Vec<String>>, usize) {
    let counts = query_sql(
        d,
        "SELECT (SELECT COUNT(*) FROM agents), (SELECT COUNT(*) FROM mandates),
                (SELECT COUNT(*) FROM approvals), (SELECT COUNT(*) FROM certificates),
                (SELECT COUNT(*) FROM certificates WHERE status = 'revoked'),
                (SELECT COUNT(*) FROM api_keys), (SELECT COUNT(*) FROM audit_events),
                (SELECT COUNT(*) FROM webhooks WHERE disabled_at IS NULL),
                (SELECT COUNT(*) FROM acme_eab), (SELECT COUNT(*) FROM events),
                (SELECT COUNT(*) FROM kill_switches), (SELECT COUNT(*) FROM agent_keys),
                (SELECT COUNT(*) FROM people WHERE disabled_at IS NULL),
                (SELECT COUNT(*) FROM organizations), (SELECT COUNT(*) FROM baselines),
                (SELECT COUNT(*) FROM incidents WHERE status = 'open'),
                (SELECT COUNT(*) FROM dashboard_sessions)",
    );
    let keys: Value = serde_json::from_str(&run(d.command().args(["hsm", "keys"]))).unwrap();
    (counts, keys.as_array().map_or(0, Vec::len))
}

/// A query-string value, percent-encoded (cursors are opaque strings).
pub fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

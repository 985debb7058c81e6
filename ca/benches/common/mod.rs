//! What the benches share: the real `mandate` binary on loopback, with an operator key, one
//! approved agent and a P-256 CSR for it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mandate");

/// A running daemon ready to issue for `agent`.
pub struct Bench {
    _dir: tempfile::TempDir,
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Keep-alive client.
    pub http: reqwest::Client,
    /// An operator key.
    pub operator: String,
    /// A PEM CSR for the agent (CN = agent id).
    pub csr: String,
}

impl Bench {
    /// Starts `mandate serve` with this config file content, registers and approves `agent`.
    pub async fn start(config_toml: &str, agent: &str) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("mandate.toml");
        std::fs::write(&cfg, config_toml).unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("serve")
            .env("MANDATE_DATA_DIR", dir.path())
            .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_ready(&http, &base, "daemon").await;
        let admin = std::fs::read_to_string(dir.path().join("admin.key")).unwrap();
        let csr_path = dir.path().join("bot.csr");
        let made = Command::new("openssl")
            .args(["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:P-256",
                "-subj",
                &format!("/CN={agent}"),
                "-keyout",
            ])
            .arg(dir.path().join("bot.key"))
            .arg("-out")
            .arg(&csr_path)
            .status()
            .unwrap();
        assert!(made.success());
        let mut bench = Bench {
            csr: std::fs::read_to_string(&csr_path).unwrap(),
            _dir: dir,
            child,
            base,
            http,
            operator: String::new(),
        };
        let key = |role: &str| json!({"role": role, "label": role});
        bench.operator = bench
            .post(admin.trim(), "/v1/api-keys", key("operator"))
            .await["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let compliance = bench
            .post(admin.trim(), "/v1/api-keys", key("compliance"))
            .await["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let register = json!({"agent_id": agent, "name": agent, "organization": "bench",
                              "mandate": {"operator": "Bench Ltd", "allowedMarkets": ["EUR_USD"]}});
        bench.post(&bench.operator, "/v1/agents", register).await;
        bench
            .post(
                &compliance,
                &format!("/v1/agents/{agent}/approve"),
                json!({}),
            )
            .await;
        bench
    }

    /// POSTs JSON with a key; the answer must be a success.
    pub async fn post(&self, key: &str, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Starts a stand-alone `mandate-ocsp` on this daemon's data dir; returns it and its
    /// `/ocsp` URL once it is ready.
    #[allow(dead_code)] // only the propagation bench uses it
    pub async fn start_responder(&self) -> (Child, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_mandate-ocsp"))
            .arg("--config")
            .arg(self._dir.path().join("mandate.toml"))
            .env("MANDATE_DATA_DIR", self._dir.path())
            .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&self.http, &base, "mandate-ocsp").await;
        (child, format!("{base}/ocsp"))
    }

    /// Stops the daemon (SIGTERM) and waits for it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Waits (60 s at most) until `{base}/readyz` answers 200.
async fn wait_ready(http: &reqwest::Client, base: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "{what} not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

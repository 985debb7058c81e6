//! What the benches share: the real `mandate` binary on loopback, with an operator key, one
//! approved agent and a P-256 CSR for it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mandate");

/// A running daemon ready to issue for `agent`.
pub struct Bench {
    _dir: std::sync::Arc<tempfile::TempDir>,
    /// Extra environment of the daemon (and its responders), e.g. `MANDATE_DATABASE_URL`.
    env: Vec<(String, String)>,
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Keep-alive client.
    pub http: reqwest::Client,
    /// An operator key (of the organization `bench`).
    pub operator: String,
    /// The bootstrap admin key (CA staff: reads `/metrics`).
    #[allow(dead_code)] // not every bench reads CA-wide figures
    pub admin: String,
    /// A compliance officer's key.
    #[allow(dead_code)] // not every bench approves anything itself
    pub compliance: String,
    /// A PEM CSR for the agent (CN = agent id).
    #[allow(dead_code)] // not every bench issues from a CSR
    pub csr: String,
}

impl Bench {
    /// Starts `mandate serve` with this config file content, registers and approves `agent`.
    #[allow(dead_code)] // the cluster bench starts with an environment
    pub async fn start(config_toml: &str, agent: &str) -> Bench {
        Self::start_with_env(config_toml, agent, Vec::new()).await
    }

    /// Like [`Bench::start`], with extra environment for the daemon.
    pub async fn start_with_env(
        config_toml: &str,
        agent: &str,
        env: Vec<(String, String)>,
    ) -> Bench {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        std::fs::write(dir.path().join("mandate.toml"), config_toml).unwrap();
        let (child, base) = spawn(&dir, &env).await;
        let http = reqwest::Client::new();
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
            env,
            child,
            base,
            http,
            operator: String::new(),
            compliance: String::new(),
            admin: admin.trim().to_owned(),
        };
        // One organization, two people: an operator and a compliance officer.
        bench
            .post(
                admin.trim(),
                "/v1/organizations",
                json!({"id": "bench", "legal_name": "Bench Ltd",
                       "legal_entities": ["Sim Trading Ltd"]}),
            )
            .await;
        for role in ["operator", "compliance"] {
            bench
                .post(
                    admin.trim(),
                    "/v1/people",
                    json!({"id": role, "name": role, "organization": "bench",
                           "roles": [role]}),
                )
                .await;
        }
        let key = |role: &str| json!({"role": role, "label": role, "person": role});
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
        bench.compliance = compliance;
        let mandate = json!({"operator": "Bench Ltd", "allowedMarkets": ["EUR_USD"]});
        bench.approved_agent(agent, "bench", mandate).await;
        bench
    }

    /// Registers an agent of `organization` with `mandate` and has compliance approve it.
    pub async fn approved_agent(&self, id: &str, organization: &str, mandate: Value) {
        let register = json!({"agent_id": id, "name": id, "organization": organization,
                              "mandate": mandate});
        self.post(&self.operator, "/v1/agents", register).await;
        self.post(
            &self.compliance,
            &format!("/v1/agents/{id}/approve"),
            json!({"version": 1}),
        )
        .await;
    }

    /// Another daemon on the same data dir (token) and environment (database), with the same
    /// keys and agent.
    #[allow(dead_code)]
    pub async fn another_node(&self) -> Bench {
        let (child, base) = spawn(&self._dir, &self.env).await;
        Bench {
            _dir: self._dir.clone(),
            env: self.env.clone(),
            child,
            base,
            http: reqwest::Client::new(),
            operator: self.operator.clone(),
            compliance: self.compliance.clone(),
            admin: self.admin.clone(),
            csr: self.csr.clone(),
        }
    }

    /// The data dir of the daemon.
    #[allow(dead_code)]
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
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
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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

impl Drop for Bench {
    /// A bench that panics must not leave its daemon running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mandate serve` on `dir` with `env` on a free port; returns it once ready.
async fn spawn(dir: &tempfile::TempDir, env: &[(String, String)]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("mandate.toml"))
        .arg("serve")
        .env("MANDATE_DATA_DIR", dir.path())
        .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base, "daemon").await;
    (child, base)
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

/// Builds OCSP requests for certificates of the daemon's intermediate (SHA-1 CertIDs, as
/// RFC 5019 clients send).
#[allow(dead_code)]
pub struct OcspProbe {
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

#[allow(dead_code)]
impl OcspProbe {
    /// Reads the intermediate from the daemon.
    pub async fn new(bench: &Bench) -> OcspProbe {
        use der::Decode;
        use sha1::Digest;
        let int_der = bench
            .http
            .get(format!("{}/ca/intermediate.der", bench.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let int = x509_cert::Certificate::from_der(&int_der).unwrap();
        OcspProbe {
            name_hash: sha1::Sha1::digest(
                der::Encode::to_der(&int.tbs_certificate.subject).unwrap(),
            )
            .to_vec(),
            key_hash: sha1::Sha1::digest(
                int.tbs_certificate
                    .subject_public_key_info
                    .subject_public_key
                    .raw_bytes(),
            )
            .to_vec(),
        }
    }

    /// A DER OCSP request for `serial` (lowercase hex).
    pub fn request(&self, serial: &str) -> Vec<u8> {
        use der::Encode;
        use der::asn1::OctetString;
        use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};
        OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: CertId {
                        hash_algorithm: spki::AlgorithmIdentifierOwned {
                            oid: const_oid::db::rfc5912::ID_SHA_1,
                            parameters: None,
                        },
                        issuer_name_hash: OctetString::new(self.name_hash.clone()).unwrap(),
                        issuer_key_hash: OctetString::new(self.key_hash.clone()).unwrap(),
                        serial_number: x509_cert::serial_number::SerialNumber::new(
                            &hex::decode(serial).unwrap(),
                        )
                        .unwrap(),
                    },
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }
}

/// Some(true) if revoked, Some(false) if good, None for no status (not pre-signed yet).
#[allow(dead_code)]
pub async fn ocsp_status(http: &reqwest::Client, url: &str, req: &[u8]) -> Option<bool> {
    use der::Decode;
    use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse};
    let body = http
        .post(url)
        .header("content-type", "application/ocsp-request")
        .body(req.to_vec())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp = OcspResponse::from_der(&body).unwrap();
    let bytes = resp.response_bytes?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    Some(matches!(
        basic.tbs_response_data.responses[0].cert_status,
        CertStatus::Revoked(_)
    ))
}

/// Prints `name: propagation p50=… p99=… max=…` (ms) of these latencies.
#[allow(dead_code)] // the propagation benches only
pub fn print_propagation(name: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let n = latencies.len();
    let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e3;
    println!(
        "{name:>15}: propagation p50={:.2} ms p99={:.2} ms max={:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

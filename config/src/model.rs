use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Key types the HSM can generate for CA keys, as written in the config.
pub const KEY_KINDS: &[&str] = &["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384"];

/// The whole configuration of a mandate node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the node keeps its files (SQLite database, SoftHSM dev token, bootstrap admin key).
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Database URL; empty means a SQLite file `mandate.db` in the data dir.
    pub database_url: String,
    /// `tracing` filter directive, e.g. `info` or `mandate=debug,info`.
    pub log: String,
    /// How log lines look: `text` (for people) or `json` (one JSON object per line, with the
    /// request id of every line logged while serving a request).
    pub log_format: LogFormat,
    /// The PKCS#11 token holding the CA keys.
    pub hsm: HsmConfig,
    /// The CA hierarchy and the certificate profile.
    pub ca: CaConfig,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Behavioural baselines and anomaly scoring.
    pub scoring: ScoringConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// The audit log's signed checkpoints.
    pub audit: AuditConfig,
    /// How orders are checked against mandates.
    pub policy: PolicyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./.mandate"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: String::new(),
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            hsm: HsmConfig::default(),
            ca: CaConfig::default(),
            http: HttpConfig::default(),
            scoring: ScoringConfig::default(),
            webhooks: WebhookConfig::default(),
            audit: AuditConfig::default(),
            policy: PolicyConfig::default(),
        }
    }
}

/// How orders are checked against mandates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Largest distance, in seconds, between an order's `timestamp` and the daemon's clock that
    /// `sign` and `verify` accept (1 to 3600). Orders are always decided at the daemon's clock:
    /// the timestamp only says when the client meant it, and a signed order is good for this
    /// long.
    pub max_clock_skew_secs: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            max_clock_skew_secs: 30,
        }
    }
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// JSON lines, for log shippers.
    Json,
}

/// Which PKCS#11 module and token hold the CA keys, and how to log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module; empty means SoftHSM2 at its usual install paths.
    pub module: PathBuf,
    /// Label of the token (slot numbers move; labels do not).
    pub token_label: String,
    /// Name of an environment variable holding the user PIN; it wins over `pin_file`.
    pub pin_env: String,
    /// File holding the user PIN; empty means `<data_dir>/softhsm/user.pin` when `dev_token` is on.
    pub pin_file: PathBuf,
    /// Create a SoftHSM2 token under `<data_dir>/softhsm` on first start (development only).
    pub dev_token: bool,
    /// Number of PKCS#11 sessions kept open for signing.
    pub pool_size: usize,
}

impl Default for HsmConfig {
    fn default() -> Self {
        HsmConfig {
            module: PathBuf::new(),
            token_label: "mandate-dev".to_owned(),
            pin_env: "MANDATE_HSM_PIN".to_owned(),
            pin_file: PathBuf::new(),
            dev_token: true,
            pool_size: 4,
        }
    }
}

/// The CA hierarchy and the agent certificate profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// Organization (O) of the CA certificates.
    pub organization: String,
    /// Common name of the root certificate.
    pub root_common_name: String,
    /// Common name of the intermediate certificate.
    pub intermediate_common_name: String,
    /// Key type of the root key (one of [`KEY_KINDS`]).
    pub root_key: String,
    /// Key type of the intermediate key (one of [`KEY_KINDS`]).
    pub intermediate_key: String,
    /// Validity of the root certificate, in days.
    pub root_validity_days: u32,
    /// Validity of the intermediate certificate, in days.
    pub intermediate_validity_days: u32,
    /// DNS suffix under which agents are named: `<agent>.<organization>.<agent_domain>`.
    pub agent_domain: String,
    /// Base URL by which relying parties reach this node; used for AIA and CRL URLs.
    pub public_url: String,
    /// OCSP responder URL put in AIA; empty means `<public_url>/ocsp`.
    pub ocsp_url: String,
    /// URL of the issuing CA certificate put in AIA; `{issuer}` is replaced by the issuing CA's
    /// key identifier (hex), so certificates of a rotated intermediate still point at theirs.
    /// Empty means `<public_url>/ca/issuers/{issuer}.der`.
    pub ca_issuers_url: String,
    /// CRL distribution point; `{issuer}` is replaced by the issuing CA's key identifier (hex),
    /// so each intermediate has its own CRL. Empty means `<public_url>/crl/{issuer}.crl`.
    pub crl_url: String,
    /// How long a CRL is valid (nextUpdate − thisUpdate), in seconds; it is re-issued after half
    /// of that at the latest, and at once after every revocation.
    pub crl_validity_secs: u32,
    /// nextUpdate − thisUpdate of OCSP responses, in seconds.
    pub ocsp_validity_secs: u32,
    /// Validity of the delegated OCSP signing certificates, in days; each is replaced when half
    /// of it has passed.
    pub ocsp_signer_validity_days: u32,
    /// Pre-sign OCSP responses into the store for stand-alone `mandate-ocsp` responders (costs
    /// two signatures and a write per certificate and refresh; off when none run).
    pub ocsp_presign: bool,
    /// Replaced by `default_profile`; refused with a pointer to it when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_validity_days: Option<u32>,
    /// Largest validity an agent certificate may have, in days (1 to 365; default 90): the
    /// `extended` profile's lifetime unless configured, and the cap of every request.
    pub max_validity_days: u32,
    /// Certificate profiles by name (draft-ietf-acme-profiles): the built-in `agent` (7 days),
    /// `shortlived` (24 h) and `extended` (`max_validity_days`), plus any configured here; a
    /// configured one with a built-in name replaces it.
    pub profiles: std::collections::BTreeMap<String, ProfileConfig>,
    /// The profile of a request that names none (an organization may name its own).
    pub default_profile: String,
    /// When a new mandate version that only widens limits is approved, how long certificates
    /// of older versions stay valid, in seconds (0 to 30 days; default 1 h): meanwhile ARI
    /// tells their holders to renew now and a `certificate.superseded` webhook says so; then
    /// they are revoked `superseded`. A version that narrows anything retires them at once.
    pub supersede_grace_secs: u32,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            organization: "Mandate Development CA".to_owned(),
            root_common_name: "Mandate Root CA".to_owned(),
            intermediate_common_name: "Mandate Issuing CA 1".to_owned(),
            root_key: "ec-p384".to_owned(),
            intermediate_key: "ec-p256".to_owned(),
            root_validity_days: 7305,
            intermediate_validity_days: 1826,
            agent_domain: "agents.example".to_owned(),
            public_url: String::new(),
            ocsp_url: String::new(),
            ca_issuers_url: String::new(),
            crl_url: String::new(),
            crl_validity_secs: 86_400,
            ocsp_validity_secs: 3_600,
            ocsp_signer_validity_days: 7,
            ocsp_presign: true,
            default_validity_days: None,
            max_validity_days: 90,
            profiles: std::collections::BTreeMap::new(),
            default_profile: "agent".to_owned(),
            supersede_grace_secs: 3600,
        }
    }
}

/// A certificate profile: a named lifetime (and a line for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Lifetime of its certificates, in seconds (at least 10, at most `ca.max_validity_days`).
    pub validity_secs: u64,
    /// What it is for, shown in the ACME directory's `meta.profiles`.
    #[serde(default)]
    pub description: String,
}

impl CaConfig {
    /// Every profile by name: the built-ins, with the configured ones added or replacing them.
    pub fn all_profiles(&self) -> std::collections::BTreeMap<String, ProfileConfig> {
        let mut all = std::collections::BTreeMap::new();
        let day = 86_400;
        all.insert(
            "agent".to_owned(),
            ProfileConfig {
                validity_secs: 7 * day,
                description: "Agent certificate, 7 days (the default)".to_owned(),
            },
        );
        all.insert(
            "shortlived".to_owned(),
            ProfileConfig {
                validity_secs: day,
                description: "Short-lived agent certificate, 24 hours".to_owned(),
            },
        );
        all.insert(
            "extended".to_owned(),
            ProfileConfig {
                validity_secs: u64::from(self.max_validity_days) * day,
                description: format!(
                    "Extended agent certificate, {} days (the configured maximum)",
                    self.max_validity_days
                ),
            },
        );
        for (name, p) in &self.profiles {
            all.insert(name.clone(), p.clone());
        }
        all
    }
}

/// HTTP server limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Address of the HTTPS listener (everything `listen` serves, for ACME clients and the REST
    /// API); none by default. OCSP and CRLs keep being served on `listen` over plain HTTP.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS; empty: the daemon issues itself one from its own CA.
    pub tls_cert_file: PathBuf,
    /// PEM private key (PKCS#8) for `tls_cert_file`.
    pub tls_key_file: PathBuf,
    /// Base URL of the HTTPS listener, for ACME; empty means `https://<tls_listen>`.
    pub tls_public_url: String,
    /// Requests per minute each API key may make on average (0: no limit).
    pub rate_limit_per_minute: u32,
    /// Requests an API key may make at once before the per-minute rate applies.
    pub rate_limit_burst: u32,
    /// Seconds a client has to send a request's whole header, counted from its first byte
    /// (slowly trickled headers are cut off here, with `408`).
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may go without a byte arriving before the request fails with
    /// `408` and the connection is closed.
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may stay idle between requests, and a response may
    /// wait for a client that does not read it, before the connection is closed.
    pub idle_timeout_secs: u64,
    /// Largest request header (start line included), in bytes; larger ones get `431`.
    pub max_header_bytes: usize,
    /// Connections open at once on each listener; one more is answered `503` and closed, never
    /// queued. Keep the process's file limit (`ulimit -n`) well above it.
    pub max_connections: usize,
    /// TLS handshakes in progress at once on the HTTPS listener; one more is closed at once.
    pub max_tls_handshakes: usize,
    /// Seconds a client has to complete its TLS handshake.
    pub tls_handshake_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 64 * 1024,
            tls_listen: None,
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            tls_public_url: String::new(),
            rate_limit_per_minute: 6000,
            rate_limit_burst: 600,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_header_bytes: 32 * 1024,
            max_connections: 512,
            max_tls_handshakes: 64,
            tls_handshake_timeout_secs: 10,
        }
    }
}

/// Behavioural baselines and the anomaly score (see docs/SCORING.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// How far back a baseline looks when it is learnt, in seconds (default 7 days).
    pub observation_window_secs: u64,
    /// Fewest events a baseline is learnt from.
    pub min_baseline_events: u32,
    /// Learn a baseline by itself for an agent whose first event is a whole window old and that
    /// has none yet (it still needs a compliance officer's approval).
    pub auto_learn: bool,
    /// How often the learner looks for such agents, in seconds.
    pub learn_interval_secs: u64,
    /// Half-life of an agent's risk score, in seconds: a score decays towards 0 as time passes
    /// without a higher one.
    pub risk_half_life_secs: u64,
    /// Weight of each feature, 0 to 0.999: the score one fully anomalous feature reaches alone.
    pub weights: ScoringWeights,
}

/// Weights of the anomaly model's five features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringWeights {
    /// Order size against the baseline's p50/p99.
    pub size: f64,
    /// Events in the last hour against the baseline's hourly mean and spread.
    pub frequency: f64,
    /// The market's share in the baseline.
    pub instrument: f64,
    /// The hour of day's share in the baseline.
    pub time_of_day: f64,
    /// The region's share in the baseline.
    pub geography: f64,
}

impl Default for ScoringWeights {
    fn default() -> Self {
        ScoringWeights {
            size: 0.95,
            frequency: 0.9,
            instrument: 0.9,
            time_of_day: 0.8,
            geography: 0.9,
        }
    }
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            observation_window_secs: 7 * 86_400,
            min_baseline_events: 20,
            auto_learn: true,
            learn_interval_secs: 60,
            risk_half_life_secs: 3600,
            weights: ScoringWeights::default(),
        }
    }
}

/// When the audit chain is checkpointed: a signature by the audit key in the HSM over the
/// newest record's hash, after this many new records or this many seconds, whichever comes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// New records that call for a checkpoint.
    pub checkpoint_records: u32,
    /// Seconds after which new records get a checkpoint.
    pub checkpoint_secs: u32,
    /// The audit log's origin: the first line of its checkpoints (C2SP tlog-checkpoint) and the
    /// key name of their signatures, which witnesses know the log by. A schema-less URL such as
    /// `ca.example.com/mandate-audit`; unset, `mandate-audit/` and the first 16 hex digits of
    /// the SHA-256 of the CA's first root certificate (unique to this CA, stable across
    /// rotations). Set it once: a witness treats another origin as another log.
    pub origin: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_records: 1000,
            checkpoint_secs: 60,
            origin: None,
        }
    }
}

/// How webhooks are delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// First retry delay in milliseconds; each later one doubles, with jitter.
    pub retry_base_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// Attempts before a delivery is given up (marked failed).
    pub max_attempts: u32,
    /// Time allowed for one attempt (connect and answer), in milliseconds.
    pub timeout_ms: u64,
    /// Accept `http://` endpoint URLs (else only `https://`, the default: deliveries carry
    /// agents' and incidents' data, which should not cross a network in clear).
    pub allow_http: bool,
    /// Accept receivers on loopback, private, link-local, unique-local and other non-public
    /// addresses (and `localhost` names). Off by default, so an operator key cannot make the
    /// daemon POST into the CA's own network; meant for tests and on-premise receivers.
    pub allow_private_addresses: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            retry_base_ms: 1000,
            retry_max_ms: 3_600_000,
            max_attempts: 20,
            timeout_ms: 10_000,
            allow_http: false,
            allow_private_addresses: false,
        }
    }
}

impl Config {
    /// Applies the `MANDATE_*` environment overrides.
    pub(crate) fn apply_env(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(v) = get("MANDATE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("MANDATE_LISTEN") {
            self.listen = v.parse().map_err(|e| ConfigError::Env {
                name: "MANDATE_LISTEN",
                message: format!("{v:?} is not a socket address ({e})"),
            })?;
        }
        if let Some(v) = get("MANDATE_TLS_LISTEN") {
            self.http.tls_listen = Some(v.parse().map_err(|e| ConfigError::Env {
                name: "MANDATE_TLS_LISTEN",
                message: format!("{v:?} is not a socket address ({e})"),
            })?);
        }
        if let Some(v) = get("MANDATE_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("MANDATE_LOG") {
            self.log = v;
        }
        if let Some(v) = get("MANDATE_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "MANDATE_LOG_FORMAT",
                        message: format!("{v:?} is not text or json"),
                    });
                }
            };
        }
        if let Some(v) = get("MANDATE_PUBLIC_URL") {
            self.ca.public_url = v;
        }
        if let Some(v) = get("MANDATE_HSM_MODULE") {
            self.hsm.module = PathBuf::from(v);
        }
        if let Some(v) = get("MANDATE_HSM_TOKEN_LABEL") {
            self.hsm.token_label = v;
        }
        if let Some(v) = get("MANDATE_HSM_PIN_FILE") {
            self.hsm.pin_file = PathBuf::from(v);
        }
        if let Some(v) = get("MANDATE_HSM_DEV_TOKEN") {
            self.hsm.dev_token = match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(ConfigError::Env {
                        name: "MANDATE_HSM_DEV_TOKEN",
                        message: format!("{v:?} is not a boolean (true/false)"),
                    });
                }
            };
        }
        Ok(())
    }

    /// Fills derived defaults and checks ranges and consistency.
    pub(crate) fn resolve(&mut self) -> Result<(), ConfigError> {
        if self.database_url.is_empty() {
            self.database_url = format!("sqlite://{}", self.data_dir.join("mandate.db").display());
        }
        if self.hsm.dev_token && self.hsm.pin_file.as_os_str().is_empty() {
            self.hsm.pin_file = self.softhsm_dir().join("user.pin");
        }
        let http = &mut self.http;
        if http.tls_cert_file.as_os_str().is_empty() != http.tls_key_file.as_os_str().is_empty() {
            return Err(invalid(
                "http.tls_cert_file",
                "give both tls_cert_file and tls_key_file, or neither (self-issued)",
            ));
        }
        if let Some(tls) = http.tls_listen {
            if http.tls_public_url.is_empty() {
                if tls.ip().is_unspecified() {
                    return Err(invalid(
                        "http.tls_public_url",
                        "must be set when tls_listen is an unspecified address",
                    ));
                }
                http.tls_public_url = format!("https://{tls}");
            }
            http.tls_public_url = http.tls_public_url.trim_end_matches('/').to_owned();
            if !http.tls_public_url.starts_with("https://") || !is_plain_url(&http.tls_public_url) {
                return Err(invalid("http.tls_public_url", "must be an https:// URL"));
            }
        }
        let ca = &mut self.ca;
        if ca.public_url.is_empty() {
            if self.listen.ip().is_unspecified() {
                return Err(invalid(
                    "ca.public_url",
                    "must be set when listening on an unspecified address: it goes into every certificate (AIA, CRL distribution point)",
                ));
            }
            ca.public_url = format!("http://{}", self.listen);
        }
        ca.public_url = ca.public_url.trim_end_matches('/').to_owned();
        if !(ca.public_url.starts_with("http://") || ca.public_url.starts_with("https://")) {
            return Err(invalid(
                "ca.public_url",
                "must start with http:// or https://",
            ));
        }
        for (field, url) in [
            ("ca.public_url", &ca.public_url),
            ("ca.ocsp_url", &ca.ocsp_url),
            ("ca.ca_issuers_url", &ca.ca_issuers_url),
            ("ca.crl_url", &ca.crl_url),
        ] {
            if !url.is_empty() && !is_plain_url(url) {
                return Err(invalid(
                    field,
                    "must be an http:// or https:// URL of printable ASCII without spaces",
                ));
            }
        }
        if ca.ocsp_url.is_empty() {
            ca.ocsp_url = format!("{}/ocsp", ca.public_url);
        }
        if ca.ca_issuers_url.is_empty() {
            ca.ca_issuers_url = format!("{}/ca/issuers/{{issuer}}.der", ca.public_url);
        }
        if ca.crl_url.is_empty() {
            ca.crl_url = format!("{}/crl/{{issuer}}.crl", ca.public_url);
        }
        self.check()
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.hsm.token_label.is_empty() || self.hsm.token_label.len() > 32 {
            return Err(invalid(
                "hsm.token_label",
                "must be 1 to 32 bytes (PKCS#11 label)",
            ));
        }
        if self.hsm.pool_size == 0 || self.hsm.pool_size > 64 {
            return Err(invalid("hsm.pool_size", "must be between 1 and 64"));
        }
        if self.hsm.pin_env.is_empty() && self.hsm.pin_file.as_os_str().is_empty() {
            return Err(invalid(
                "hsm.pin_file",
                "set hsm.pin_file or hsm.pin_env, or enable hsm.dev_token",
            ));
        }
        let w = &self.scoring.weights;
        for (field, v) in [
            ("scoring.weights.size", w.size),
            ("scoring.weights.frequency", w.frequency),
            ("scoring.weights.instrument", w.instrument),
            ("scoring.weights.time_of_day", w.time_of_day),
            ("scoring.weights.geography", w.geography),
        ] {
            if !(0.0..=0.999).contains(&v) {
                return Err(invalid(field, "must be between 0 and 0.999"));
            }
        }
        let sc = &self.scoring;
        if sc.observation_window_secs < 60 || sc.min_baseline_events == 0 {
            return Err(invalid(
                "scoring.observation_window_secs",
                "the window must be at least 60 s and min_baseline_events at least 1",
            ));
        }
        if sc.learn_interval_secs == 0 || sc.risk_half_life_secs == 0 {
            return Err(invalid(
                "scoring.learn_interval_secs",
                "learn_interval_secs and risk_half_life_secs must be positive",
            ));
        }
        let wh = &self.webhooks;
        if wh.retry_base_ms == 0 || wh.retry_max_ms < wh.retry_base_ms || wh.max_attempts == 0 {
            return Err(invalid(
                "webhooks.retry_base_ms",
                "retry_base_ms must be positive and at most retry_max_ms; max_attempts at least 1",
            ));
        }
        if self.audit.checkpoint_records == 0 || self.audit.checkpoint_secs == 0 {
            return Err(invalid(
                "audit.checkpoint_records",
                "checkpoint_records and checkpoint_secs must be positive",
            ));
        }
        if let Some(o) = &self.audit.origin
            && (o.is_empty()
                || o.len() > 200
                || o.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '+'))
        {
            return Err(invalid(
                "audit.origin",
                "the origin must be 1 to 200 characters with no spaces, controls or '+' (e.g. ca.example.com/mandate-audit)",
            ));
        }
        if !(1..=3600).contains(&self.policy.max_clock_skew_secs) {
            return Err(invalid("policy.max_clock_skew_secs", "must be 1 to 3600"));
        }
        if wh.timeout_ms == 0 {
            return Err(invalid("webhooks.timeout_ms", "must be positive"));
        }
        let ca = &self.ca;
        for (field, value) in [
            ("ca.root_key", &ca.root_key),
            ("ca.intermediate_key", &ca.intermediate_key),
        ] {
            if !KEY_KINDS.contains(&value.as_str()) {
                return Err(invalid(
                    field,
                    &format!("{value:?} is not one of {}", KEY_KINDS.join(", ")),
                ));
            }
        }
        for (field, value) in [
            ("ca.organization", &ca.organization),
            ("ca.root_common_name", &ca.root_common_name),
            ("ca.intermediate_common_name", &ca.intermediate_common_name),
        ] {
            if value.trim().is_empty() || value.chars().count() > 64 {
                return Err(invalid(field, "must be 1 to 64 characters"));
            }
        }
        if !(1..=36525).contains(&ca.root_validity_days) {
            return Err(invalid("ca.root_validity_days", "must be 1 to 36525"));
        }
        if !(1..=ca.root_validity_days).contains(&ca.intermediate_validity_days) {
            return Err(invalid(
                "ca.intermediate_validity_days",
                "must be at least 1 and at most the root's validity",
            ));
        }
        if !(60..=7 * 86_400).contains(&ca.crl_validity_secs) {
            return Err(invalid(
                "ca.crl_validity_secs",
                "must be 60 to 604800 (one minute to seven days)",
            ));
        }
        if !(60..=7 * 86_400).contains(&ca.ocsp_validity_secs) {
            return Err(invalid(
                "ca.ocsp_validity_secs",
                "must be 60 to 604800 (one minute to seven days)",
            ));
        }
        if !(1..=30).contains(&ca.ocsp_signer_validity_days) {
            return Err(invalid("ca.ocsp_signer_validity_days", "must be 1 to 30"));
        }
        if i64::from(ca.ocsp_validity_secs) * 2 > i64::from(ca.ocsp_signer_validity_days) * 86_400 {
            return Err(invalid(
                "ca.ocsp_validity_secs",
                "must be at most half of ca.ocsp_signer_validity_days, so no response outlives its signer",
            ));
        }
        if ca.supersede_grace_secs > 30 * 86_400 {
            return Err(invalid(
                "ca.supersede_grace_secs",
                "must be 0 to 2592000 (30 days)",
            ));
        }
        if !(1..=365).contains(&ca.max_validity_days) {
            return Err(invalid("ca.max_validity_days", "must be 1 to 365"));
        }
        if ca.default_validity_days.is_some() {
            return Err(invalid(
                "ca.default_validity_days",
                "was replaced by certificate profiles: set ca.default_profile (agent = 7 days, shortlived = 24 h, extended = ca.max_validity_days, or one under [ca.profiles.NAME]); see docs/OPERATIONS.md",
            ));
        }
        let profiles = ca.all_profiles();
        for (name, p) in &profiles {
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid(
                    "ca.profiles",
                    "a profile name is 1 to 32 of a-z, 0-9 and '-'",
                ));
            }
            if p.validity_secs < 10 || p.validity_secs > u64::from(ca.max_validity_days) * 86_400 {
                return Err(invalid(
                    "ca.profiles",
                    &format!(
                        "profile {name}: validity_secs must be 10 to ca.max_validity_days ({} days)",
                        ca.max_validity_days
                    ),
                ));
            }
        }
        if !profiles.contains_key(&ca.default_profile) {
            return Err(invalid(
                "ca.default_profile",
                &format!(
                    "{:?} is not a profile (known: {})",
                    ca.default_profile,
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let labels_ok = !ca.agent_domain.is_empty()
            && ca.agent_domain.len() <= 200
            && ca.agent_domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !labels_ok {
            return Err(invalid(
                "ca.agent_domain",
                "must be a lowercase DNS name, e.g. agents.example.com",
            ));
        }
        if self.http.max_body_bytes < 1024 || self.http.max_body_bytes > 16 * 1024 * 1024 {
            return Err(invalid("http.max_body_bytes", "must be 1 KiB to 16 MiB"));
        }
        let h = &self.http;
        for (key, secs) in [
            ("http.header_read_timeout_secs", h.header_read_timeout_secs),
            ("http.body_read_timeout_secs", h.body_read_timeout_secs),
            ("http.idle_timeout_secs", h.idle_timeout_secs),
            (
                "http.tls_handshake_timeout_secs",
                h.tls_handshake_timeout_secs,
            ),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(invalid(key, "must be 1 to 3600 seconds"));
            }
        }
        if !(8 * 1024..=1024 * 1024).contains(&h.max_header_bytes) {
            return Err(invalid("http.max_header_bytes", "must be 8 KiB to 1 MiB"));
        }
        if !(1..=1_000_000).contains(&h.max_connections) {
            return Err(invalid("http.max_connections", "must be 1 to 1000000"));
        }
        if !(1..=100_000).contains(&h.max_tls_handshakes) {
            return Err(invalid("http.max_tls_handshakes", "must be 1 to 100000"));
        }
        Ok(())
    }

    /// Directory of the SoftHSM2 dev token (config and token files).
    pub fn softhsm_dir(&self) -> PathBuf {
        self.data_dir.join("softhsm")
    }

    /// File the bootstrap admin API key is written to on first start.
    pub fn admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin.key")
    }
}

/// URLs go into certificates as IA5String: ASCII only, and nothing a parser could split on.
fn is_plain_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 512
        && url.bytes().all(|b| b.is_ascii_graphic())
}

fn invalid(field: &'static str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::{ConfigError, load_with_env};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn embedded_defaults_run_on_one_machine() {
        let c = load_with_env(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./.mandate/mandate.db");
        assert_eq!(c.ca.ocsp_url, "http://127.0.0.1:8080/ocsp");
        assert_eq!(
            c.hsm.pin_file,
            std::path::Path::new("./.mandate/softhsm/user.pin")
        );
        assert!(c.hsm.dev_token);
    }

    #[test]
    fn the_documented_full_example_loads_and_profiles_are_checked() {
        let doc = include_str!("../../docs/OPERATIONS.md");
        let start = doc.find("### Full example").unwrap();
        let block = &doc[start..];
        let block = &block[block.find("```toml\n").unwrap() + 8..];
        let block = &block[..block.find("```").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.toml");
        std::fs::write(&path, block).unwrap();
        let c = load_with_env(Some(&path), env(&[])).unwrap();
        let profiles = c.ca.all_profiles();
        assert_eq!(profiles["agent"].validity_secs, 7 * 86_400);
        assert_eq!(profiles["shortlived"].validity_secs, 86_400);
        assert_eq!(profiles["extended"].validity_secs, 90 * 86_400);
        assert_eq!(profiles["minute"].validity_secs, 60);
        // The old setting points at profiles; bad profiles are refused by name.
        for (toml, field) in [
            (
                "[ca]\ndefault_validity_days = 30\n",
                "ca.default_validity_days",
            ),
            (
                "[ca]\ndefault_profile = \"forever\"\n",
                "ca.default_profile",
            ),
            ("[ca.profiles.x]\nvalidity_secs = 5\n", "ca.profiles"),
            ("[ca.profiles.Big]\nvalidity_secs = 60\n", "ca.profiles"),
            (
                "[ca]\nsupersede_grace_secs = 9999999\n",
                "ca.supersede_grace_secs",
            ),
            (
                "[policy]\nmax_clock_skew_secs = 0\n",
                "policy.max_clock_skew_secs",
            ),
        ] {
            std::fs::write(&path, toml).unwrap();
            let e = load_with_env(Some(&path), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\n[ca]\nagent_domain = \"bots.example.com\"\n",
        )
        .unwrap();
        let c = load_with_env(
            Some(&path),
            env(&[
                ("MANDATE_LISTEN", "127.0.0.1:9100"),
                ("MANDATE_DATA_DIR", "/srv/m"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.ca.agent_domain, "bots.example.com");
        assert_eq!(c.database_url, "sqlite:///srv/m/mandate.db");
        assert_eq!(c.ca.public_url, "http://127.0.0.1:9100");
    }

    #[test]
    fn unknown_field_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "[ca]\nagent_domian = \"x\"\n").unwrap();
        let err = load_with_env(Some(&path), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("agent_domian"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        for (text, field) in [
            ("[ca]\nroot_key = \"dsa-1024\"\n", "ca.root_key"),
            ("[ca]\nmax_validity_days = 400\n", "ca.max_validity_days"),
            ("[ca]\nagent_domain = \"Agents..x\"\n", "ca.agent_domain"),
            ("[hsm]\npool_size = 0\n", "hsm.pool_size"),
            ("listen = \"0.0.0.0:8080\"\n", "ca.public_url"),
            ("[ca]\npublic_url = \"ftp://x\"\n", "ca.public_url"),
            ("[ca]\nocsp_url = \"http://ocsp.exämple\"\n", "ca.ocsp_url"),
        ] {
            std::fs::write(&path, text).unwrap();
            match load_with_env(Some(&path), env(&[])) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{text}: {other:?}"),
            }
        }
        let err = load_with_env(None, env(&[("MANDATE_LISTEN", "nowhere")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                name: "MANDATE_LISTEN",
                ..
            }
        ));
    }
}

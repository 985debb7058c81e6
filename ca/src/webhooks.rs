//! Webhook delivery: fans outbox events out to the subscribed endpoints and POSTs them, signed,
//! at least once, with exponential backoff and jitter. Everything it knows is in the store, so a
//! restart resumes where it stopped.
//!
//! Each delivery is `{"id", "type", "timestamp", "attempt", "sent_at", "organization",
//! "people", "data"}` (`people`: the persons behind the key ids the data names) with headers
//! `X-Mandate-Signature: hex(HMAC-SHA256(secret, raw body))` and `X-Mandate-Timestamp: sent_at`
//! (the same RFC 3339 text as in the signed body, so a receiver can bound replays).
//!
//! Unless `webhooks.allow_private_addresses`, a delivery goes only to a public address: the
//! registration authority refused other receivers already, and this checks again at each
//! attempt, after DNS resolution (a name may point inward later), as defence in depth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mandate_config::WebhookConfig;
use mandate_hsm::Hsm;
use mandate_store::{AttemptOutcome, DueDelivery, Store};
use ring::hmac;
use tokio::sync::Notify;

use crate::CaError;
use crate::ra::webhooks::{HostRefused, check_host, resolve_host};

/// The body of a delivery: what a receiver verifies the signature over and reads.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEvent)]
pub(crate) struct Delivery {
    /// `evt_<n>`; the same on every attempt: deduplicate on it.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    #[schema(value_type = mandate_store::WebhookEventType, inline)]
    pub kind: String,
    /// When the event was written.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// 1 for the first attempt.
    #[schema(minimum = 1)]
    pub attempt: i64,
    /// When this attempt was sent (RFC 3339 UTC); the same text as `X-Mandate-Timestamp`.
    #[schema(format = DateTime)]
    pub sent_at: String,
    /// The organization the event is about; null: the CA's own (e.g. a rotation).
    #[schema(required = true)]
    pub organization: Option<String>,
    /// The people behind the key ids `data` names (`*_by`, `by`), by key id.
    pub people: std::collections::BTreeMap<String, crate::names::KeyPerson>,
    /// The event's own fields (docs/API.md, "Webhooks").
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// The role of the HSM key webhook secrets are derived from.
/// A claimed delivery is left to its node for the attempt's timeout plus this, before another
/// node (or this one after a restart) may try it.
const LEASE_MARGIN_MS: i64 = 10_000;
const MASTER_ROLE: &str = "webhook-master";
const MASTER_LABEL: &str = "mandate-webhook-master";
/// Deliveries taken per round, and sent at once.
const BATCH: i64 = 64;
const IN_FLIGHT: usize = 16;
/// The longest the worker sleeps before looking at the outbox again.
const IDLE: Duration = Duration::from_millis(250);

/// The secret of endpoint `id`: derived in the HSM, shown once at creation, never stored.
pub(crate) async fn secret(hsm: &Hsm, store: &Store, id: &str) -> Result<String, CaError> {
    let raw = crate::hsm_secret::derive(
        hsm,
        store,
        MASTER_ROLE,
        MASTER_LABEL,
        format!("mandate-webhook-v1:{id}").as_bytes(),
    )
    .await?;
    Ok(format!("whsec_{}", hex::encode(raw)))
}

/// `X-Mandate-Signature` of `body` under `secret` (the secret's text is the HMAC key).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, body).as_ref())
}

/// Handle on the delivery worker.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// Starts the worker.
    pub fn start(store: Store, hsm: Hsm, cfg: WebhookConfig) -> Result<Dispatcher, CaError> {
        let wake = Arc::new(Notify::new());
        let client = http_client(&cfg)?;
        let worker = Worker {
            store,
            hsm,
            cfg,
            client,
            keys: Arc::new(Mutex::new(HashMap::new())),
        };
        let w = wake.clone();
        tokio::spawn(async move { worker.run(w).await });
        Ok(Dispatcher { wake })
    }

    /// Says the outbox may have new events.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The client deliveries are sent with.
fn http_client(cfg: &WebhookConfig) -> Result<reqwest::Client, CaError> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        // Straight to the receiver: through a proxy the resolver below would judge the
        // proxy's address instead of the receiver's.
        .no_proxy()
        .dns_resolver(Arc::new(ReceiverResolver {
            allow_private: cfg.allow_private_addresses,
        }))
        .user_agent(concat!("mandate-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CaError::Internal(format!("webhook HTTP client: {e}")))
}

#[derive(Clone)]
struct Worker {
    store: Store,
    hsm: Hsm,
    cfg: WebhookConfig,
    client: reqwest::Client,
    /// Derived secrets by endpoint id, so the HSM is asked once per endpoint.
    keys: Arc<Mutex<HashMap<String, Arc<String>>>>,
}

impl Worker {
    async fn run(self, wake: Arc<Notify>) {
        loop {
            let busy = match self.round().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook round failed; retrying");
                    false
                }
            };
            if !busy {
                let wait = match self.store.next_delivery_due().await {
                    Ok(Some(due)) => {
                        let ms = (due - crate::now_ms()).clamp(0, 250);
                        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                    }
                    _ => IDLE,
                };
                // Whichever comes first: a wake-up or the poll (another process may write too).
                let _ = tokio::time::timeout(wait, wake.notified()).await;
            }
        }
    }

    /// One round: fan out, then send what is due. True if there may be more to do at once.
    async fn round(&self) -> Result<bool, CaError> {
        let mut busy = false;
        if self.store.has_new_webhook_events().await? {
            let n = self.store.fan_out_webhook_events(BATCH).await?;
            busy |= i64::try_from(n).unwrap_or(0) == BATCH;
        }
        // Claimed, not just read: another node sharing the outbox skips them meanwhile. A
        // plain read first keeps the idle poll off the write path.
        let now = crate::now_ms();
        let due = if self.store.due_deliveries(now, 1).await?.is_empty() {
            Vec::new()
        } else {
            let lease = i64::try_from(self.cfg.timeout_ms)
                .unwrap_or(i64::MAX)
                .saturating_add(LEASE_MARGIN_MS);
            self.store.claim_due_deliveries(now, BATCH, lease).await?
        };
        busy |= i64::try_from(due.len()).unwrap_or(0) == BATCH;
        let mut set = tokio::task::JoinSet::new();
        for d in due {
            while set.len() >= IN_FLIGHT {
                let _ = set.join_next().await;
            }
            let w = self.clone();
            set.spawn(async move {
                let id = d.id;
                let outcome = w.attempt(&d).await;
                crate::metrics::METRICS
                    .webhook_attempts
                    .inc(&[match &outcome {
                        AttemptOutcome::Delivered { .. } => "delivered",
                        AttemptOutcome::Retry { .. } => "retry",
                        AttemptOutcome::GiveUp { .. } => "failed",
                    }]);
                if let Err(e) = w.store.record_delivery_attempt(id, outcome).await {
                    tracing::warn!(delivery = id, error = %e, "could not record a webhook attempt");
                }
            });
        }
        while set.join_next().await.is_some() {}
        Ok(busy)
    }

    async fn key(&self, webhook_id: &str) -> Result<Arc<String>, CaError> {
        if let Some(k) = self
            .keys
            .lock()
            .ok()
            .and_then(|m| m.get(webhook_id).cloned())
        {
            return Ok(k);
        }
        let s = Arc::new(secret(&self.hsm, &self.store, webhook_id).await?);
        if let Ok(mut m) = self.keys.lock() {
            m.insert(webhook_id.to_owned(), s.clone());
        }
        Ok(s)
    }

    async fn attempt(&self, d: &DueDelivery) -> AttemptOutcome {
        let attempt = d.attempts + 1;
        let failed = |status: Option<i64>, error: String| {
            if attempt >= i64::from(self.cfg.max_attempts) {
                AttemptOutcome::GiveUp { status, error }
            } else {
                AttemptOutcome::Retry {
                    status,
                    error,
                    next_at_ms: crate::now_ms() + backoff_ms(&self.cfg, attempt),
                }
            }
        };
        // Never sent: recorded as a failed attempt like any other, so it is retried (the
        // configuration may change) and shows in the delivery log with its reason.
        if let Some(why) = refused_before_sending(&self.cfg, &d.url) {
            tracing::warn!(delivery = d.id, url = %d.url, error = %why, "webhook not sent");
            return failed(None, why);
        }
        let secret = match self.key(&d.webhook_id).await {
            Ok(s) => s,
            Err(e) => return failed(None, format!("webhook secret unavailable: {e}")),
        };
        let data = present(serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null));
        // Who acted, as people: the key ids the data names (`*_by`, `by`) with their person.
        let mut keys = std::collections::BTreeSet::new();
        crate::names::acting_keys(&data, &mut keys);
        if let Some(k) = data.get("by").and_then(|v| v.as_str()) {
            keys.insert(k.to_owned());
        }
        let people = crate::names::people_of(&self.store, keys)
            .await
            .unwrap_or_default();
        // The signed time, in the body and in `X-Mandate-Timestamp` alike.
        let sent_at = crate::rfc3339(mandate_store::now_unix());
        let body = serde_json::to_string(&Delivery {
            id: format!("evt_{}", d.event_id),
            kind: d.event_type.clone(),
            timestamp: crate::rfc3339(d.created_at_ms / 1000),
            attempt,
            sent_at: sent_at.clone(),
            organization: d.organization.clone(),
            people,
            data,
        })
        .unwrap_or_default();
        let sig = signature(&secret, body.as_bytes());
        let sent = self
            .client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-mandate-signature", sig)
            .header("x-mandate-timestamp", &sent_at)
            .header("x-mandate-event", &d.event_type)
            .header("x-mandate-delivery", d.id.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(delivery = d.id, url = %d.url, "webhook delivered");
                AttemptOutcome::Delivered {
                    status: i64::from(resp.status().as_u16()),
                }
            }
            Ok(resp) => {
                let code = resp.status().as_u16();
                failed(Some(i64::from(code)), format!("endpoint answered {code}"))
            }
            Err(e) => failed(None, send_error(&e)),
        }
    }
}

/// The address rules reqwest cannot leave to the resolver: it connects to an IP-literal host
/// without asking it.
fn refused_before_sending(cfg: &WebhookConfig, url: &str) -> Option<String> {
    if cfg.allow_private_addresses {
        return None;
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) => check_host(&parsed).err().map(|e| refusal_text(&e)),
        Err(e) => Some(format!("not sent: the URL does not parse ({e})")),
    }
}

/// Resolves receivers' names for the HTTP client, refusing (unless allowed) a name with any
/// non-public address: the check sits where the connection's addresses come from, so a name
/// that resolved outward at registration and inward now (DNS rebinding) is refused.
struct ReceiverResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for ReceiverResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_host(&name, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A refused receiver, as the delivery log says it.
fn refusal_text(e: &HostRefused) -> String {
    match e {
        HostRefused::NotPublic(why) => format!(
            "not sent: {why}; webhook receivers must be public (webhooks.allow_private_addresses is false)"
        ),
        HostRefused::Unresolved(why) => format!("not sent: {why}"),
    }
}

/// The error of a failed send; a refusal by [`ReceiverResolver`] is found in its causes and
/// said plainly (reqwest's own text would only say "error sending request").
fn send_error(e: &reqwest::Error) -> String {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<HostRefused>() {
            return refusal_text(refused);
        }
        cause = c.source();
    }
    format!("{e}")
}

/// Delay before attempt `attempt + 1`: base·2^(attempt-1), capped, times a random 0.5..1.0.
fn backoff_ms(cfg: &WebhookConfig, attempt: i64) -> i64 {
    let exp = u32::try_from(attempt.clamp(1, 40) - 1).unwrap_or(0);
    let full = cfg
        .retry_base_ms
        .saturating_mul(1u64.checked_shl(exp).unwrap_or(u64::MAX))
        .min(cfg.retry_max_ms);
    let mut r = [0u8; 2];
    let jitter = if getrandom::fill(&mut r).is_ok() {
        0.5 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) / 2.0
    } else {
        0.75
    };
    (full as f64 * jitter) as i64
}

/// The outbox's data in the v1 dialect, whatever release wrote it: times (`*_at` in unix
/// seconds) as RFC 3339, and a revocation reason by its RFC 5280 name with the code beside
/// (`revocation_reason`, `revocation_reason_code`), as REST gives them.
fn present(data: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match data {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k == "reason_code"
                    && let Some(code) = v.as_i64()
                {
                    let name = crate::revocation::RevocationReason::from_code(code)
                        .map(crate::revocation::RevocationReason::name);
                    out.insert("revocation_reason".into(), name.into());
                    out.insert("revocation_reason_code".into(), code.into());
                } else if k.ends_with("_at")
                    && let Some(unix) = v.as_i64()
                {
                    out.insert(k, crate::rfc3339(unix).into());
                } else {
                    out.insert(k, present(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(present).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let cfg = WebhookConfig {
            retry_base_ms: 1000,
            retry_max_ms: 10_000,
            ..WebhookConfig::default()
        };
        for attempt in 1..=3 {
            let full = 1000 * (1 << (attempt - 1));
            let d = backoff_ms(&cfg, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
        }
        assert!(backoff_ms(&cfg, 30) <= 10_000);
    }

    /// A receiver on loopback answering 204 to every request; counts the connections it took.
    async fn loopback_receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = taken.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (port, taken)
    }

    #[tokio::test]
    async fn a_name_resolving_inward_is_never_connected_to_unless_allowed() {
        let (port, taken) = loopback_receiver().await;
        let url = format!("http://localhost:{port}/hook");
        let strict = WebhookConfig::default();
        // `localhost` passes nothing before sending only because this test skips that step:
        // the resolver alone must refuse it.
        let e = http_client(&strict)
            .unwrap()
            .post(&url)
            .send()
            .await
            .unwrap_err();
        let text = send_error(&e);
        assert!(
            text.starts_with("not sent: localhost resolves to ") && text.contains("loopback"),
            "{text}"
        );
        assert!(text.contains("webhooks.allow_private_addresses"), "{text}");
        assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 0);

        let open = WebhookConfig {
            allow_private_addresses: true,
            ..WebhookConfig::default()
        };
        let r = http_client(&open).unwrap().post(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert!(taken.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }

    #[test]
    fn literal_hosts_are_refused_before_sending_unless_allowed() {
        let strict = WebhookConfig::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "https://[::1]/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data/",
            "https://localhost/",
        ] {
            let why = refused_before_sending(&strict, url).unwrap();
            assert!(why.starts_with("not sent: "), "{url}: {why}");
        }
        assert_eq!(refused_before_sending(&strict, "https://8.8.8.8/"), None);
        assert_eq!(
            refused_before_sending(&strict, "https://hooks.example.com/"),
            None
        );
        let open = WebhookConfig {
            allow_private_addresses: true,
            ..WebhookConfig::default()
        };
        assert_eq!(refused_before_sending(&open, "http://127.0.0.1:9/"), None);
    }

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

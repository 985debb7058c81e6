//! The stand-alone responder: serves the responses the daemon pre-signed into the shared store,
//! and holds no key at all. Run as many as OCSP traffic needs, beside or far from the daemon.
//!
//! It follows the store's change feed into its cache. On SQLite it reads the feed every
//! [`POLL`], so a revocation reaches it a poll interval after the daemon stored the revoked
//! response. On PostgreSQL a notification (LISTEN/NOTIFY, sent by a trigger when responses are
//! written) wakes it at once, and the feed is read every [`RECONCILE`] anyway, in case a
//! notification was lost with its connection. A certificate with
//! no pre-signed response gets `unauthorized`, as responders serving only pre-produced responses
//! answer (RFC 5019); a nonce is not echoed (the response is pre-produced): RFC 5019 clients
//! then fall back to time-based freshness, and openssl warns but accepts it. Requests are still
//! read by the same strict [`parse_request`] as the daemon's, so a request the daemon refuses
//! (a malformed nonce, say) is refused here too, though no nonce is echoed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mandate_store::{Backend, Change, FeedCursor, Store, now_unix, redact_url};
use tokio::sync::Notify;

use crate::http::{decode_get, read_post, refused};
use crate::presigned_cache::PresignedCache;
use crate::{CertIdHash, IssuerSet, OcspError, Refusal, parse_request};

/// How often the feed is read on SQLite.
pub const POLL: Duration = Duration::from_millis(25);
/// How often the feed is read on PostgreSQL, where notifications say when to read it.
pub const RECONCILE: Duration = Duration::from_secs(1);
/// How often the store is asked whether a key rotation added an issuer.
const CA_CHECK: Duration = Duration::from_secs(1);
/// Rows read from the feed at once.
const FEED_PAGE: i64 = 1024;
/// `/readyz` fails when the feed has not been read for this long.
const STALE_AFTER_MS: i64 = 5_000;

/// A running stand-alone responder.
#[derive(Debug)]
pub struct Responder {
    store: Store,
    issuers: IssuerSet,
    cache: PresignedCache,
    /// Unix milliseconds of the last successful feed read.
    synced_ms: AtomicI64,
    /// Rung by change notifications: read the feed now.
    wake: Notify,
    /// A notification said CA certificates changed: look for new issuers now.
    ca_changed: AtomicBool,
    /// The daemon refuses this database (behind the HSM's audit anchor: an older copy), and
    /// why: every request is answered tryLater, `/readyz` fails.
    refused: std::sync::Mutex<Option<String>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Responder {
    /// Loads the issuers from the store and starts following the feed from its current end.
    pub async fn start(store: Store, database: &str) -> Result<Arc<Responder>, OcspError> {
        let issuers = IssuerSet::load(&store).await?;
        if issuers.is_empty() {
            return Err(OcspError::NoCa(redact_url(database)));
        }
        // Read the end before serving anything: every later change then comes through the feed.
        let cursor = store.presigned_feed_end().await?;
        let refused = store.serving_refusal().await?;
        let responder = Arc::new(Responder {
            store,
            issuers,
            cache: PresignedCache::default(),
            synced_ms: AtomicI64::new(now_ms()),
            wake: Notify::new(),
            ca_changed: AtomicBool::new(false),
            refused: std::sync::Mutex::new(refused),
        });
        let poll = match responder.store.backend() {
            Backend::Sqlite => POLL,
            Backend::Postgres => {
                tokio::spawn(responder.clone().listen());
                RECONCILE
            }
        };
        tokio::spawn(responder.clone().follow(cursor, poll));
        Ok(responder)
    }

    /// `POST /ocsp`, `GET /ocsp/{base64}`, `/healthz` and `/readyz`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/ocsp", post(post_ocsp))
            .route("/ocsp/{*request}", get(get_ocsp))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .fallback(not_found)
            .with_state(self)
    }

    /// Turns change notifications into wake-ups of [`Responder::follow`].
    async fn listen(self: Arc<Self>) {
        self.store
            .for_each_change(RECONCILE, |change| match change {
                Change::Ca => {
                    self.ca_changed.store(true, Ordering::Relaxed);
                    self.wake.notify_one();
                }
                Change::Ocsp | Change::Revocation | Change::Missed => self.wake.notify_one(),
                Change::Agent(_) | Change::Keys | Change::Unknown(_) => {}
            })
            .await;
    }

    async fn follow(self: Arc<Self>, mut cursor: FeedCursor, poll: Duration) {
        let mut ca_generation = self.store.ca_generation().await.unwrap_or(0);
        let mut last_ca_check = std::time::Instant::now();
        loop {
            // A key rotation (by the daemon or the CLI) adds an issuer: look once a second, or
            // at once when told.
            if last_ca_check.elapsed() >= CA_CHECK || self.ca_changed.swap(false, Ordering::Relaxed)
            {
                last_ca_check = std::time::Instant::now();
                match self.store.ca_generation().await {
                    Ok(g) if g != ca_generation => match self.issuers.refresh(&self.store).await {
                        Ok(added) => {
                            ca_generation = g;
                            tracing::info!(?added, "OCSP: issuers added after a key rotation");
                        }
                        Err(e) => tracing::warn!(error = %e, "OCSP: new issuers not loaded"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "OCSP: CA generation not read"),
                }
            }
            match self.store.serving_refusal().await {
                Ok(now) => {
                    if let Ok(mut r) = self.refused.lock() {
                        if now.is_some() && r.is_none() {
                            tracing::error!(reason = ?now, "the daemon refuses this database: answering tryLater");
                        }
                        *r = now;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "OCSP: refusal mark not read"),
            }
            match self.store.presigned_changes(&cursor, FEED_PAGE).await {
                Ok(rows) => {
                    self.synced_ms.store(now_ms(), Ordering::Relaxed);
                    let full = i64::try_from(rows.len()).is_ok_and(|n| n == FEED_PAGE);
                    if let Some(last) = rows.last() {
                        cursor = FeedCursor {
                            seq: last.seq,
                            serial: last.serial.clone(),
                            hash: last.hash.clone(),
                        };
                    }
                    for row in rows {
                        self.cache.offer(row, None);
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "OCSP feed not read; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Why the database is refused, if it is.
    fn refusal(&self) -> Option<String> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }

    async fn answer(&self, der: &[u8], headers: &HeaderMap) -> Result<Response, Refusal> {
        let query = parse_request(der)?;
        // Stale answers from an older copy of the database are worse than none.
        if self.refusal().is_some() {
            return Err(Refusal::TryLater);
        }
        let issuer = self.issuers.find(&query.cert_id)?;
        let hash = CertIdHash::of(&query.cert_id).ok_or(Refusal::MalformedRequest)?;
        let serial = hex::encode(query.cert_id.serial_number.as_bytes());
        let now = now_unix();
        let entry = match self.cache.get(&serial, hash, now) {
            Some(hit) => hit,
            None => {
                let epoch = self.cache.epoch();
                let row = self
                    .store
                    .presigned_response(&serial, hash.as_str())
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "OCSP: store unavailable");
                        Refusal::TryLater
                    })?
                    .ok_or(Refusal::Unauthorized)?;
                if row.next_update <= now {
                    tracing::warn!(%serial, "pre-signed OCSP response expired: is the daemon signing?");
                    return Err(Refusal::TryLater);
                }
                self.cache
                    .offer(row, Some(epoch))
                    .ok_or(Refusal::TryLater)?
            }
        };
        if entry.issuer_id != issuer.id {
            return Err(Refusal::Unauthorized);
        }
        Ok(entry.response.to_http(now, headers))
    }
}

async fn post_ocsp(State(r): State<Arc<Responder>>, headers: HeaderMap, body: Body) -> Response {
    let answer = match read_post(body).await {
        Ok(der) => r.answer(&der, &headers).await,
        Err(why) => Err(why),
    };
    answer.unwrap_or_else(refused)
}

async fn get_ocsp(
    State(r): State<Arc<Responder>>,
    request: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Response {
    // A path that does not decode (not even as UTF-8) is a malformedRequest like any other.
    let Ok(Path(request)) = request else {
        return refused(Refusal::MalformedRequest);
    };
    let answer = match decode_get(&request) {
        Ok(der) => r.answer(&der, &headers).await,
        Err(why) => Err(why),
    };
    answer.unwrap_or_else(refused)
}

async fn readyz(State(r): State<Arc<Responder>>) -> Response {
    if let Some(reason) = r.refusal() {
        return problem(StatusCode::SERVICE_UNAVAILABLE, &reason);
    }
    let lag = now_ms() - r.synced_ms.load(Ordering::Relaxed);
    if lag <= STALE_AFTER_MS && r.store.ping().await.is_ok() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the store has not been readable for {lag} ms"),
        )
    }
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "this responder serves /ocsp only")
}

fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or(""),
        "status": status.as_u16(),
        "detail": detail,
    })
    .to_string();
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response()
}

/// Opens the store named by the config (it must exist and hold a CA), and serves on
/// `cfg.listen` until `shutdown` completes.
pub async fn serve(
    cfg: &mandate_config::Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), OcspError> {
    let store = Store::open_existing(&cfg.database_url).await?;
    let responder = Responder::start(store.clone(), &cfg.database_url).await?;
    let acceptor = mandate_listener::Acceptor::plain(cfg.listen).await?;
    let local = acceptor.local_addr()?;
    tracing::info!(%local, issuers = responder.issuers.len(), "stand-alone OCSP responder listening");
    let refuser: mandate_listener::Refuser = std::sync::Arc::new(|r| {
        crate::http::listener_refusal(r)
            .unwrap_or_else(|| mandate_listener::Answer::problem(r.status, "about:blank", r.detail))
    });
    mandate_listener::serve(
        acceptor,
        responder.router(),
        mandate_listener::Limits::from_config(&cfg.http),
        std::sync::Arc::new(mandate_listener::Stats::default()),
        refuser,
        shutdown,
    )
    .await?;
    store.close().await;
    tracing::info!("stand-alone OCSP responder stopped");
    Ok(())
}

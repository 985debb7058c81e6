//! Every request gets an id (the client's `X-Request-Id` if it is sane, else a fresh one),
//! echoed in the response and carried by every log line written while serving it; and every
//! request is counted and timed by route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::METRICS;

/// The header carrying the request id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// A client's id is kept if it is 1 to 64 of `A-Z a-z 0-9 - _ .`: anything else could forge
/// log lines or blow up label sets.
fn client_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let ok = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| v.to_owned())
}

/// A random prefix drawn once per process, then a counter: unique across restarts and nodes in
/// practice, and no system call per request.
fn fresh_id() -> String {
    static PREFIX: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
        let mut b = [0u8; 4];
        // Ids only tell requests apart; a failed RNG gives a fixed prefix, not a failed request.
        let _ = getrandom::fill(&mut b);
        u32::from_be_bytes(b)
    });
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:08x}{n:016x}", *PREFIX)
}

/// The middleware.
pub async fn observe(req: Request, next: Next) -> Response {
    let id = client_id(&req).unwrap_or_else(fresh_id);
    // The template (`/v1/agents/{id}`), never the path: label values stay a small set.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    // Only the id rides in the span: the formatting subscriber renders span fields when the
    // span opens, on every request, and this is the OCSP responder's hot path too.
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status();
    METRICS
        .http_requests
        .inc(&[route, method.as_str(), status.as_str()]);
    METRICS.http_seconds.observe(&[route], elapsed);
    span.in_scope(|| {
        tracing::debug!(
            %method,
            %route,
            status = status.as_u16(),
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request served"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

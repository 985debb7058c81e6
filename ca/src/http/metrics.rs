//! `GET /metrics`: Prometheus text exposition of the in-memory series, plus gauges read at
//! scrape time (webhook backlog, database pools, HSM session recoveries).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mandate_store::Role;

use super::{ApiError, AppState, Caller};
use crate::metrics::{METRICS, gauge, header as family};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(get))]
pub struct Doc;

/// Part of a scrape, for the API document.
const EXAMPLE: &str = "\
# HELP mandate_build_info The running version.
# TYPE mandate_build_info gauge
mandate_build_info{version=\"0.1.0\"} 1
# HELP mandate_hsm_session_recoveries_total Lost HSM sessions replaced since start.
# TYPE mandate_hsm_session_recoveries_total counter
mandate_hsm_session_recoveries_total 0
# HELP mandate_db_pool_connections Database connections by pool and state.
# TYPE mandate_db_pool_connections gauge
mandate_db_pool_connections{pool=\"writer\",state=\"in_use\"} 1
mandate_db_pool_connections{pool=\"writer\",state=\"idle\"} 0
";

/// Roles that may scrape: read-only auditors (what Prometheus should be given), operators and
/// admins.
const SCRAPERS: &[Role] = &[Role::Auditor, Role::Operator, Role::Admin];

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "ops",
    summary = "Prometheus metrics (text exposition format 0.0.4)",
    description = "Issuance count and latency, OCSP requests and cache hits, HSM signature \
        latency and errors by kind, revocation propagation, scoring latency, webhook backlog, \
        database pools, HTTP requests by route, committed changes applied. Roles: auditor (give \
        Prometheus a CA-staff auditor key), operator, admin; CA staff only (an organization's \
        people get 403). CA-wide figures: no series names an agent or an organization.",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "the metrics", body = String,
            content_type = "text/plain; version=0.0.4", example = json!(EXAMPLE)),
        (status = "4XX", description = "RFC 9457 problem", body = super::problem::Body<'static>,
            content_type = "application/problem+json"),
        (status = "5XX", description = "RFC 9457 problem", body = super::problem::Body<'static>,
            content_type = "application/problem+json")))]
pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    // CA-wide figures: CA staff only.
    caller.require(SCRAPERS)?;
    caller.require_ca_staff()?;
    let node = &state.node;
    let mut out = String::with_capacity(16 * 1024);
    family(
        &mut out,
        "mandate_build_info",
        "The running version.",
        "gauge",
    );
    gauge(
        &mut out,
        "mandate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    METRICS.render(&mut out);

    family(
        &mut out,
        "mandate_hsm_session_recoveries_total",
        "Lost HSM sessions replaced since start.",
        "counter",
    );
    let _ = writeln!(
        out,
        "mandate_hsm_session_recoveries_total {}",
        node.hsm.recovery_count()
    );

    family(
        &mut out,
        "mandate_db_pool_connections",
        "Database connections by pool and state.",
        "gauge",
    );
    let pools = node.store.pool_stats();
    for p in &pools {
        let in_use = p.open.saturating_sub(p.idle);
        gauge(
            &mut out,
            "mandate_db_pool_connections",
            &[("pool", p.pool), ("state", "in_use")],
            f64::from(in_use),
        );
        gauge(
            &mut out,
            "mandate_db_pool_connections",
            &[("pool", p.pool), ("state", "idle")],
            f64::from(p.idle),
        );
    }
    family(
        &mut out,
        "mandate_db_pool_max_connections",
        "Most connections each pool opens.",
        "gauge",
    );
    for p in &pools {
        gauge(
            &mut out,
            "mandate_db_pool_max_connections",
            &[("pool", p.pool)],
            f64::from(p.max),
        );
    }

    // A database that does not answer leaves these out (and `/readyz` says why); the
    // in-memory series above still help to see what happened.
    match node.store.webhook_backlog().await {
        Ok(b) => {
            family(
                &mut out,
                "mandate_webhook_backlog",
                "Webhook work waiting: pending deliveries, and outbox events not fanned out.",
                "gauge",
            );
            gauge(
                &mut out,
                "mandate_webhook_backlog",
                &[("kind", "pending_deliveries")],
                b.pending_deliveries as f64,
            );
            gauge(
                &mut out,
                "mandate_webhook_backlog",
                &[("kind", "events_not_fanned_out")],
                b.events_not_fanned_out as f64,
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: webhook backlog not read"),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

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
#[openapi()]
pub struct Doc;

/// Roles that may scrape: read-only auditors (what Prometheus should be given), operators and
/// admins.
const SCRAPERS: &[Role] = &[Role::Auditor, Role::Operator, Role::Admin];

/// `GET /metrics`.
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

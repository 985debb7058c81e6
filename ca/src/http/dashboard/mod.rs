//! The operator and compliance dashboard: server-rendered HTML under `/dashboard`, no
//! JavaScript at all.
//!
//! Signing in takes an API key once; the browser then holds a session cookie (HttpOnly,
//! SameSite=Strict, Secure over HTTPS) whose token is stored hashed, and every request acts with
//! the rights of that key, checked again each time (a revoked key ends its sessions). Every
//! page reads through the same handlers as the JSON API and every form posts to one, so the
//! role rules are the API's by construction. Forms carry a CSRF token derived from the session
//! token, and a POST from another origin is refused whatever it carries.

mod actions;
mod chart;
mod export;
mod layout;
mod pages;
mod session;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};

use super::AppState;

pub(crate) use session::OverTls;

/// The dashboard's routes (merged into the API router).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/", get(pages::overview))
        .route(
            "/dashboard/login",
            get(session::login_page).post(session::login),
        )
        .route("/dashboard/logout", post(session::logout))
        .route("/dashboard/assets/style.css", get(style))
        .route("/dashboard/assets/live.js", get(live_script))
        .route("/dashboard/export/{file}", get(export::csv))
        .route("/dashboard/agents", post(actions::register))
        .route("/dashboard/agents/{id}", get(pages::agent))
        .route(
            "/dashboard/agents/{id}/mandate",
            post(actions::submit_mandate),
        )
        .route(
            "/dashboard/agents/{id}/approve",
            post(actions::approve_mandate),
        )
        .route(
            "/dashboard/agents/{id}/reject",
            post(actions::reject_mandate),
        )
        .route("/dashboard/agents/{id}/reinstate", post(actions::reinstate))
        .route(
            "/dashboard/agents/{id}/baseline/approve",
            post(actions::approve_baseline),
        )
        .route(
            "/dashboard/agents/{id}/baseline/reject",
            post(actions::reject_baseline),
        )
        .route(
            "/dashboard/agents/{id}/kill",
            get(pages::kill_confirm).post(actions::kill),
        )
        .route("/dashboard/agents/{id}/report", get(pages::report))
        .route("/dashboard/approvals", get(pages::approvals))
        .route("/dashboard/incidents", get(pages::incidents))
        .route(
            "/dashboard/incidents/{id}/acknowledge",
            post(actions::acknowledge),
        )
        .route("/dashboard/incidents/{id}/resolve", post(actions::resolve))
        .route("/dashboard/revocations", get(pages::revocations))
        .route(
            "/dashboard/webhooks",
            get(pages::webhooks).post(actions::create_webhook),
        )
        .route("/dashboard/webhooks/{id}", get(pages::webhook))
        .route(
            "/dashboard/webhooks/{id}/disable",
            post(actions::disable_webhook),
        )
        .route(
            "/dashboard/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(actions::redeliver),
        )
        .route("/dashboard/audit", get(pages::audit))
        .route(
            "/dashboard/people",
            get(pages::people).post(actions::create_person),
        )
        .route("/dashboard/api-keys", post(actions::create_key))
        .layer(axum::middleware::map_response(security_headers))
}

/// What every dashboard answer carries: no caching of pages with data on them, no framing, no
/// script but the dashboard's own file (no inline script, nothing from elsewhere), no
/// sniffing, no referrer leaving the site.
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// `GET /dashboard/assets/style.css`.
async fn style() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("style.css"),
    )
}

/// `GET /dashboard/assets/live.js`: keeps a signed-in page current (short polling of the page
/// itself, which carries the same role and organization checks as loading it).
async fn live_script() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("live.js"),
    )
}

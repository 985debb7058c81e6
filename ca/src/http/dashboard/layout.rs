//! The page shell and the small pieces every page uses. maud escapes every interpolated value,
//! so data from agents and operators cannot inject markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use mandate_store::Role;
use maud::{DOCTYPE, Markup, html};

use super::session::Signed;
use crate::http::ApiError;

/// The navigation: path, label, and who sees the link (everyone if empty).
const NAV: &[(&str, &str, &[Role])] = &[
    ("/dashboard", "Agents", &[]),
    ("/dashboard/approvals", "Approvals", &[]),
    ("/dashboard/incidents", "Incidents", &[]),
    ("/dashboard/revocations", "Revocations", &[]),
    ("/dashboard/webhooks", "Webhooks", &[]),
    ("/dashboard/people", "People", &[Role::Admin]),
    (
        "/dashboard/audit",
        "Audit log",
        &[Role::Auditor, Role::Compliance, Role::Admin],
    ),
];

/// How often a signed-in page looks for changes (ms); `MANDATE_DASHBOARD_LIVE_MS` changes it
/// (tests make it short).
fn live_ms() -> u64 {
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| {
        std::env::var("MANDATE_DASHBOARD_LIVE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|ms| (200..=600_000).contains(ms))
            .unwrap_or(5000)
    })
}

fn shell(title: &str, signed: Option<&Signed>, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mandate" }
                link rel="stylesheet" href="/dashboard/assets/style.css";
                @if signed.is_some() {
                    script src="/dashboard/assets/live.js" defer {}
                }
            }
            body data-live-ms=[signed.map(|_| live_ms())] {
                header.top {
                    a.brand href="/dashboard" { "mandate" }
                    @if let Some(s) = signed {
                        nav {
                            @for (path, label, roles) in NAV {
                                // The audit log is CA-wide: CA staff only.
                                @if (roles.is_empty() || roles.contains(&s.caller.role))
                                    && (*path != "/dashboard/audit" || s.caller.is_ca_staff()) {
                                    a class=(if *path == active { "on" } else { "" }) href=(path) { (label) }
                                }
                            }
                        }
                        div.who {
                            @if let Some(p) = &s.caller.person {
                                span #who-name .name title={ "person " (p.id) } { (p.name) }
                                " "
                            }
                            @if let Some(o) = &s.caller.organization {
                                span #who-org .org { (o) }
                                " "
                            }
                            span #who-role .role { (s.caller.role.as_str()) }
                            " "
                            span.key title="API key id" { (s.caller.key_id) }
                            " "
                            span #live .muted title="The page keeps itself current" { "live" }
                            form.inline method="post" action="/dashboard/logout" {
                                (csrf(s))
                                button #sign-out type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A full page for a signed-in user.
pub(crate) fn page(title: &str, signed: &Signed, active: &str, body: Markup) -> Response {
    Html(shell(title, Some(signed), active, body).into_string()).into_response()
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf); }
}

/// The sign-in page.
pub(crate) fn login(nonce: &str, error: Option<&str>) -> Html<String> {
    let body = html! {
        section.card.narrow {
            h1 { "Sign in" }
            p.muted { "Paste an API key of role operator, compliance, auditor or admin. The key is checked once; the browser then keeps a session for 8 hours." }
            @if let Some(e) = error {
                p.error #login-error { (e) }
            }
            form method="post" action="/dashboard/login" {
                input type="hidden" name="login_token" value=(nonce);
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="off" required;
                button #sign-in type="submit" { "Sign in" }
            }
        }
    };
    Html(shell("Sign in", None, "", body).into_string())
}

/// An error as a page, with the problem's status.
pub(crate) fn error_page(signed: Option<&Signed>, e: ApiError) -> Response {
    let status = e.status;
    let body = html! {
        // An error may answer a form: loading its address again would show something else.
        div hidden data-live="off" {}
        section.card {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
            (problem(&e))
            p { a href="/dashboard" { "Back to the dashboard" } }
        }
    };
    (status, Html(shell("Error", signed, "", body).into_string())).into_response()
}

/// A problem inside a page (a section the role may not read, a store that did not answer).
pub(crate) fn problem(e: &ApiError) -> Markup {
    html! {
        div.problem data-kind=(e.kind) {
            strong { (e.kind) } ": " (e.detail)
        }
    }
}

/// A 404 page.
pub(crate) fn not_found(signed: &Signed, what: &str) -> Response {
    error_page(
        Some(signed),
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        ),
    )
}

/// A coloured label for a status, band or kind.
pub(crate) fn badge(text: &str) -> Markup {
    let class = match text {
        "active" | "approved" | "issued" | "delivered" | "low" | "resolved" | "ok" => "good",
        "pending_approval" | "pending" | "medium" | "acknowledged" | "risk_warning"
        | "suspended" => "warn",
        "revoked" | "rejected" | "failed" | "high" | "open" | "auto_revocation"
        | "mandate_breach" | "broken" => "bad",
        _ => "plain",
    };
    html! { span class={ "badge " (class) } { (text.replace('_', " ")) } }
}

/// Unix seconds as UTC text.
pub(crate) fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .map_or_else(|| unix.to_string(), |s| format!("{s} UTC"))
}

/// A time from a JSON document (RFC 3339 text, or unix seconds) in the one form the dashboard
/// shows times in, as [`when`] does; anything else as it is.
pub(crate) fn at(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => n.as_i64().map_or_else(|| n.to_string(), when),
        serde_json::Value::String(s) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_or_else(|_| s.clone(), |t| when(t.unix_timestamp()))
        }
        other => text(other),
    }
}

/// A value of a JSON document as text for a cell (strings without their quotes).
pub(crate) fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message for a `?done=` code after a form post; unknown codes show nothing (the query
/// string is never echoed).
pub(crate) fn done_message(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "mandate-approved" => "Mandate approved.",
        "mandate-rejected" => "Mandate rejected.",
        "reinstated" => "Agent reinstated with its approved mandate: it may be certified again.",
        "baseline-approved" => "Baseline approved.",
        "baseline-rejected" => "Baseline rejected.",
        "killed" => "Kill switch pulled: the agent is suspended and its certificates are revoked.",
        "acknowledged" => "Incident acknowledged.",
        "resolved" => "Incident resolved.",
        "webhook-disabled" => "Endpoint disabled: nothing more is delivered to it.",
        "redelivered" => "Delivery due again: it is attempted at once.",
        "registered" => "Agent registered: its mandate waits for a compliance officer.",
        "mandate-submitted" => {
            "Mandate change submitted: it waits for a compliance officer; the approved version stays in force until then."
        }
        "person-created" => "Person added. Give them an API key below.",
        _ => return None,
    })
}

/// The notice shown after a form post.
pub(crate) fn notice(code: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = done_message(code) {
            p.notice #notice { (m) }
        }
    }
}

/// `value` percent-encoded for a query string or path segment of a link.
pub(crate) fn query_escape(value: &str) -> String {
    crate::url_component(value)
}

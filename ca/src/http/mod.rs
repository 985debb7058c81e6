//! The HTTP API: routes, shared state, JSON in and problem+json out.

mod agents;
mod api_keys;
mod audit;
mod audit_tree;

mod auth;
mod behaviour;
mod certificates;
mod crl;
mod dashboard;
mod docs;
mod eab;
mod health;
mod incidents;
mod metrics;
mod observe;
mod ocsp;
pub(crate) mod openapi;
pub(crate) mod organizations;
mod problem;
pub mod refusal;
mod reports;
mod revocation;
mod schemas;
pub(crate) mod start_gate;
mod trading;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

pub use auth::Caller;
pub(crate) use dashboard::OverTls;
pub use problem::ApiError;

use crate::Node;

/// Who may do what (the registration authority's lists; the dashboard reads them too).
pub(crate) use crate::ra::roles;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The node: config, store, HSM, issuer.
    pub node: Arc<Node>,
}

/// Largest body of `POST /v1/events`: room for a batch of 1,000 events.
const EVENTS_MAX_BODY: usize = 1024 * 1024;

/// The whole router.
pub fn router(node: Arc<Node>) -> Router {
    let max_body = node.cfg.http.max_body_bytes;
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::get))
        .route("/ca/root.pem", get(certificates::root_pem))
        .route("/ca/root.der", get(certificates::root_der))
        .route("/ca/intermediate.pem", get(certificates::intermediate_pem))
        .route("/ca/intermediate.der", get(certificates::intermediate_der))
        .route("/ca/chain.pem", get(certificates::chain_pem))
        .route("/ca/issuers/{file}", get(certificates::issuer_cert))
        .route("/crl/{file}", get(crl::get))
        .route("/ocsp", post(ocsp::post))
        .route("/ocsp/{*request}", get(ocsp::get))
        .route("/v1/openapi.json", get(openapi::get))
        .route(
            "/v1/organizations",
            post(organizations::create).get(organizations::list),
        )
        .route("/v1/organizations/{id}", get(organizations::get_one))
        .route(
            "/v1/people",
            post(organizations::create_person).get(organizations::list_people),
        )
        .route(
            "/v1/people/{id}/disable",
            post(organizations::disable_person),
        )
        .route("/v1/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/v1/api-keys/{id}/revoke", post(api_keys::revoke))
        .route("/v1/agents", post(agents::register).get(agents::list))
        .route("/v1/agents/{id}", get(agents::get_one))
        .route("/v1/agents/{id}/mandate", post(agents::submit_mandate))
        .route("/v1/agents/{id}/approve", post(agents::approve))
        .route("/v1/agents/{id}/reinstate", post(agents::reinstate))
        .route("/v1/agents/{id}/mandates", get(agents::mandates))
        .route("/v1/agents/{id}/reject", post(agents::reject))
        .route("/v1/agents/{id}/certify", post(certificates::certify))
        .route(
            "/v1/agents/{id}/certificates",
            get(certificates::list_for_agent),
        )
        .route("/v1/certificates/{serial}", get(certificates::get_one))
        .route("/v1/certificates/{serial}/pem", get(certificates::download))
        .route(
            "/v1/certificates/{serial}/revoke",
            post(revocation::revoke_certificate),
        )
        .route("/v1/agents/{id}/revoke", post(revocation::kill_agent))
        .route("/v1/agents/{id}/eab", post(eab::create))
        .route(
            "/v1/operators/{org}/revoke",
            post(revocation::kill_operator),
        )
        .route(
            "/v1/events",
            post(behaviour::ingest).layer(DefaultBodyLimit::max(EVENTS_MAX_BODY)),
        )
        .route("/v1/agents/{id}/preflight", post(behaviour::preflight))
        .route("/v1/agents/{id}/risk-score", get(behaviour::risk_score))
        .route("/v1/agents/{id}/usage", get(behaviour::usage))
        .route("/v1/decisions/{id}", get(behaviour::decision))
        .route(
            "/v1/agents/{id}/overrides",
            get(behaviour::overrides).post(behaviour::grant_override),
        )
        .route(
            "/v1/agents/{id}/overrides/{oid}/end",
            post(behaviour::end_override),
        )
        .route("/v1/agents/{id}/sign", post(trading::sign))
        .route("/v1/reference-prices", post(trading::reference_prices))
        .route("/v1/verify", post(trading::verify))
        .route(
            "/v1/agents/{id}/baseline",
            get(behaviour::list_baselines).post(behaviour::learn),
        )
        .route("/v1/agents/{id}/baseline/approve", post(behaviour::approve))
        .route("/v1/agents/{id}/baseline/reject", post(behaviour::reject))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/checkpoint", get(audit_tree::checkpoint))
        .route("/v1/audit/consistency", get(audit_tree::consistency))
        .route("/v1/audit/export", get(audit_tree::export))
        .route("/v1/reports/agents/{id}", get(reports::agent))
        .route(
            "/v1/reports/organizations/{org}",
            get(reports::organization),
        )
        .route("/v1/incidents", get(incidents::list))
        .route("/v1/incidents/{id}", get(incidents::get_one))
        .route(
            "/v1/incidents/{id}/acknowledge",
            post(incidents::acknowledge),
        )
        .route("/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", get(webhooks::get_one))
        .route("/v1/webhooks/{id}/disable", post(webhooks::disable))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::redeliver),
        )
        .merge(crate::acme::server::routes())
        .merge(dashboard::routes())
        .merge(docs::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(refusal::documents_only))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(AppState { node })
}

/// `GET /` and `GET /v1/openapi.json`, for the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(root, openapi::get))]
pub(crate) struct RootDoc;

/// `GET /`: people who open the daemon's address in a browser want the dashboard.
#[utoipa::path(get, path = "/", operation_id = "redirectToDashboard",
    summary = "Redirects to the dashboard",
    description = "For people who open the daemon's address in a browser. No key.",
    security(),
    responses(
        (status = 307, description = "to /dashboard",
            headers(("Location" = String, description = "`/dashboard`"))),
        (status = "5XX", description = "RFC 9457 problem: 503 `overloaded` when the daemon \
            holds as many connections as it serves", body = problem::Body<'static>,
            content_type = "application/problem+json",
            example = json!({"type": "urn:mandate:problem:overloaded",
                "title": "Service Unavailable", "status": 503,
                "detail": "this server has its maximum of 512 connections open \
                    (http.max_connections); retry shortly"}))))]
async fn root() -> axum::response::Redirect {
    axum::response::Redirect::temporary("/dashboard")
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "method not allowed on this endpoint",
    )
}

/// A JSON body whose every rejection (syntax, type, size, content type) is a problem document.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(bytes_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-json",
                "this request needs a JSON body (an object; docs/API.md lists its fields)",
            ));
        }
        let again = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        let value = match axum::Json::<T>::from_request(again, state).await {
            Ok(axum::Json(v)) => v,
            Err(rej) => return Err(json_rejection(rej)),
        };
        plain_numbers(&bytes)?;
        Ok(ApiJson(value))
    }
}

/// A JSON document typed into a form field (a mandate in the dashboard's text area), read by
/// the rules a JSON body is read by: `400 invalid-json` when it does not parse, `422
/// invalid-json` for an exponent form or negative zero, each naming the field.
pub(crate) fn form_json(field: &str, text: &str) -> Result<serde_json::Value, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("{field}: needs a JSON object"),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("{field}: not JSON: {e}"),
        )
    })?;
    plain_numbers(text.as_bytes()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-json",
            format!("{field}: {}", e.detail),
        )
    })?;
    Ok(value)
}

/// A body that could not be read: over the limit (413), or cut off or stalled (400).
fn bytes_rejection(rej: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = rej.status();
    let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "body-too-large"
    } else {
        "invalid-request"
    };
    ApiError::new(status, kind, rej.body_text())
}

/// The one rule for JSON numbers (no exponent forms, no negative zero), on a body that
/// parsed: `422 invalid-json` naming the field.
fn plain_numbers(body: &[u8]) -> Result<(), ApiError> {
    mandate_policy::plain_json_numbers(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-json",
            e.to_string(),
        )
    })
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    let status = rej.status();
    let kind = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        _ => "invalid-json",
    };
    ApiError::new(status, kind, rej.body_text())
}

/// A body that may be empty (→ `T::default()`) or JSON; rejections as for [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "a request body must be sent as Content-Type: application/json",
            ));
        }
        let value = serde_json::from_slice(&body).map_err(|e| {
            // The same split as axum's Json: syntax errors are 400, a wrong shape is 422.
            let status = if e.is_data() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            ApiError::new(status, "invalid-json", e.to_string())
        })?;
        plain_numbers(&body)?;
        Ok(OptionalJson(value))
    }
}

/// Path parameters whose rejection (a segment that is not valid UTF-8 once percent-decoded)
/// is a problem document, not the framework's plain text.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|rej| {
                ApiError::bad_request(format!(
                    "the path does not name anything this API knows: {}",
                    rej.body_text()
                ))
            })
    }
}

/// Query parameters whose rejection is a problem document.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rej| ApiError::bad_request(rej.body_text()))
    }
}

/// One page of a list: the one shape every v1 list answers with. `next_cursor` is what to
/// pass as `?cursor=` for the next page, `null` on the last one.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A list that is never paged (it is short by nature).
    pub fn whole(items: Vec<T>) -> Page<T> {
        Page {
            items,
            next_cursor: None,
        }
    }
}

/// The cursor for the next page: the key of the last row of a full page, none after a short one.
pub fn next_cursor<T>(rows: &[T], limit: i64, key: impl Fn(&T) -> &str) -> Option<String> {
    if usize::try_from(limit).is_ok_and(|l| rows.len() == l) {
        rows.last().map(|r| key(r).to_owned())
    } else {
        None
    }
}

/// The cursor of the lists keyed by a number (a row id or a seq): that of the last row of a
/// full page, none after a short one.
pub fn next_number_cursor<T>(rows: &[T], limit: i64, id: impl Fn(&T) -> i64) -> Option<String> {
    if usize::try_from(limit).is_ok_and(|l| rows.len() == l) {
        rows.last().map(|r| id(r).to_string())
    } else {
        None
    }
}

/// `?cursor=&limit=` of the paged lists.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (default 50, at most 100).
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The cursor of a list paged by a number: absent is the first page (`first`); a cursor that
/// is not a number of at least `min` came from no page and is refused rather than read as
/// the first page.
pub fn number_cursor(cursor: Option<&str>, first: i64, min: i64) -> Result<i64, ApiError> {
    match cursor {
        None => Ok(first),
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= min).ok_or_else(|| {
            ApiError::bad_request(format!(
                "cursor must be the next_cursor of a previous page (got {c:?})"
            ))
        }),
    }
}

/// Reads `limit` from a query: default 50, at most 100.
pub fn page_limit(limit: Option<u32>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=100) => Ok(i64::from(n)),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit must be between 1 and 100 (got {n})"
        ))),
    }
}

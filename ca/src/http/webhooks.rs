//! Webhook endpoints and their delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_store::{DeliveryRow, WebhookRow};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    ApiError, ApiJson, ApiPath, ApiQuery, AppState, Caller, OptionalJson, PageQuery, page_limit,
};
use crate::{CaError, ra};

use super::roles::READERS;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, list, get_one, disable, deliveries, redeliver),
    components(schemas(Disable, Redeliver))
)]
pub struct Doc;

/// An event type: one of the list the RA checks.
use mandate_store::WebhookEventType as EventType;

/// An event type an endpoint subscribes to, or `*` for every one.
struct Subscription;

impl utoipa::PartialSchema for Subscription {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let types = mandate_store::WEBHOOK_EVENT_TYPES.iter().copied();
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(std::iter::once("*").chain(types)))
            .into()
    }
}
impl utoipa::ToSchema for Subscription {}

/// Where a delivery stands.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the status is text at run time"
)]
enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// An example endpoint, as answered (without its secret).
fn example_webhook() -> serde_json::Value {
    json!({
        "id": "wh_5f0c3a9e1b2d4c6e8f0a1b2c", "url": "https://hooks.acme.example/mandate",
        "events": ["incident.opened", "incident.updated"], "operator": "acme",
        "created_by": "key_7f3a9c", "created_at": "2026-12-07T09:45:00Z", "disabled_at": null
    })
}

/// An example delivery, as answered.
fn example_delivery() -> serde_json::Value {
    json!({
        "id": 311, "event_id": "evt_1204", "event_type": "incident.opened", "status": "pending",
        "attempts": 2, "next_attempt_at": "2026-12-07T10:01:04Z",
        "last_attempt_at": "2026-12-07T10:00:04Z", "last_status_code": 503,
        "last_error": "endpoint answered 503", "delivered_at": null
    })
}

/// `POST /v1/webhooks`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// https:// (http:// too while webhooks.allow_http is true, false by default), printable
    /// ASCII, no user:pass@; the receiver must be public: a host that is, or resolves to any,
    /// loopback, private, unique-local, link-local or other non-public address, or a localhost
    /// name, is refused (400, naming the rule) unless webhooks.allow_private_addresses is true.
    #[schema(max_length = 2048)]
    url: String,
    /// Event types, or `["*"]` (the default).
    #[schema(value_type = Option<Vec<Subscription>>, inline, min_items = 1, max_items = 10,
        default = json!(["*"]))]
    events: Option<Vec<String>>,
    /// An organization id: only events about its agents (a person of an organization: their
    /// own, the default).
    operator: Option<String>,
}

/// An endpoint as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    /// wh_<24 hex>.
    id: String,
    url: String,
    #[schema(value_type = Vec<Subscription>, inline)]
    events: Vec<String>,
    /// The organization whose events it receives; null: every organization's (CA staff).
    #[schema(required = true)]
    operator: Option<String>,
    /// The API key that made it.
    created_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// Set once disabled: no further deliveries.
    #[schema(format = DateTime, required = true)]
    disabled_at: Option<String>,
    /// whsec_<64 hex>; only in the answer to the creation: the HMAC secret, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    secret: Option<String>,
}

fn view(w: WebhookRow, secret: Option<String>) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url,
        events: w.events,
        operator: w.operator,
        created_by: w.created_by,
        created_at: crate::rfc3339(w.created_at),
        disabled_at: w.disabled_at.map(crate::rfc3339),
        secret,
    }
}

/// `POST /v1/webhooks` (operator, admin): the answer carries the secret, once.
#[utoipa::path(post, path = "/v1/webhooks", operation_id = "createWebhook", tag = "webhooks",
    summary = "Create a webhook endpoint (secret shown once)",
    description = "Roles: operator, admin. A person of an organization makes endpoints of their \
        organization (operator defaults to it; naming another answers 404); CA staff may name \
        any existing organization, or leave operator out for the events of every organization.",
    security(("apiKey" = [])), request_body = inline(CreateWebhook),
    responses(
        (status = 201, description = "created, with secret", body = WebhookView,
            example = json!({
                "id": "wh_5f0c3a9e1b2d4c6e8f0a1b2c", "url": "https://hooks.acme.example/mandate",
                "events": ["*"], "operator": "acme", "created_by": "key_7f3a9c",
                "created_at": "2026-12-07T09:45:00Z", "disabled_at": null,
                "secret": "whsec_8d2f4b6a0c1e3f5a7b9d0e2f4a6c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c"
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let (row, secret) = ra::webhooks::create(
        &state.node,
        &caller,
        ra::webhooks::NewWebhook {
            url: req.url,
            events: req.events,
            operator: req.operator,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(row, Some(secret)))))
}

/// `GET /v1/webhooks`.
#[utoipa::path(get, path = "/v1/webhooks", operation_id = "listWebhooks", tag = "webhooks",
    summary = "List webhook endpoints (no secrets), disabled ones included",
    description = "Roles: operator, compliance, auditor, admin. The caller's organization's \
        endpoints (CA staff: all, every-event ones included).",
    security(("apiKey" = [])), params(PageQuery),
    responses((status = 200, description = "page", body = super::Page<WebhookView>,
        example = json!({"items": [example_webhook()], "next_cursor": null}))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<super::Page<WebhookView>>, ApiError> {
    caller.require(READERS)?;
    let limit = page_limit(q.limit)?;
    let rows = state
        .node
        .store
        .webhooks(
            caller.org_filter(),
            q.cursor.as_deref().unwrap_or(""),
            limit,
        )
        .await
        .map_err(CaError::from)?;
    let next_cursor = super::next_cursor(&rows, limit, |r| &r.id);
    let items: Vec<WebhookView> = rows.into_iter().map(|r| view(r, None)).collect();
    Ok(Json(super::Page { items, next_cursor }))
}

/// `GET /v1/webhooks/{id}`.
#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "getWebhook", tag = "webhooks",
    summary = "One webhook endpoint (no secret)",
    description = "Roles: operator, compliance, auditor, admin. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "webhook id (wh_...)")),
    responses(
        (status = 200, description = "endpoint", body = WebhookView,
            example = json!(example_webhook())),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require(READERS)?;
    let row = crate::ra::tenant::webhook(&state.node.store, &caller, &id).await?;
    Ok(Json(view(row, None)))
}

/// The body of a disabling: empty, or {}.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisableWebhook)]
pub struct Disable {}

/// `POST /v1/webhooks/{id}/disable` (operator, admin).
#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", operation_id = "disableWebhook",
    tag = "webhooks",
    summary = "Disable an endpoint for good: no new deliveries, pending ones marked failed",
    description = "Roles: operator, admin. Another organization's object answers 404, as an \
        unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "webhook id (wh_...)")),
    request_body = ref("#/components/schemas/DisableWebhook"),
    responses(
        (status = 200, description = "disabled", body = WebhookView,
            example = json!({
                "id": "wh_5f0c3a9e1b2d4c6e8f0a1b2c", "url": "https://hooks.acme.example/mandate",
                "events": ["incident.opened", "incident.updated"], "operator": "acme",
                "created_by": "key_7f3a9c", "created_at": "2026-12-07T09:45:00Z",
                "disabled_at": "2026-12-08T08:00:00Z"
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(_): OptionalJson<Disable>,
) -> Result<Json<WebhookView>, ApiError> {
    let row = ra::webhooks::disable(&state.node.store, &caller, &id).await?;
    Ok(Json(view(row, None)))
}

/// A delivery of one event to one endpoint, with its latest attempt.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    id: i64,
    /// evt_<n>: the id in the delivered body.
    event_id: String,
    #[schema(value_type = EventType, inline)]
    event_type: String,
    #[schema(value_type = DeliveryStatus, inline)]
    status: String,
    /// Attempts made.
    attempts: i64,
    /// When the next attempt is due (pending only).
    #[schema(format = DateTime, required = true)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    last_attempt_at: Option<String>,
    /// HTTP status of the latest attempt, if an answer came.
    #[schema(required = true)]
    last_status_code: Option<i64>,
    /// Why the latest attempt failed.
    #[schema(required = true)]
    last_error: Option<String>,
    #[schema(format = DateTime, required = true)]
    delivered_at: Option<String>,
}

fn ms_text(ms: i64) -> String {
    crate::rfc3339(ms / 1000)
}

fn delivery_view(d: DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_id: format!("evt_{}", d.event_id),
        event_type: d.event_type,
        next_attempt_at: (d.status == "pending").then(|| ms_text(d.next_attempt_at_ms)),
        status: d.status,
        attempts: d.attempts,
        last_attempt_at: d.last_attempt_at_ms.map(ms_text),
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        delivered_at: d.delivered_at_ms.map(ms_text),
    }
}

/// `GET /v1/webhooks/{id}/deliveries`: newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries",
    tag = "webhooks", summary = "An endpoint's deliveries, newest first",
    description = "Roles: operator, compliance, auditor, admin. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "webhook id (wh_...)"), PageQuery),
    responses(
        (status = 200, description = "page", body = super::Page<DeliveryView>,
            example = json!({"items": [example_delivery()], "next_cursor": "311"})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<super::Page<DeliveryView>>, ApiError> {
    caller.require(READERS)?;
    let store = &state.node.store;
    crate::ra::tenant::webhook(store, &caller, &id).await?;
    let limit = page_limit(q.limit)?;
    let rows = store
        .webhook_deliveries(&id, super::number_cursor(q.cursor.as_deref(), 0, 1)?, limit)
        .await
        .map_err(CaError::from)?;
    let next_cursor = super::next_number_cursor(&rows, limit, |r| r.id);
    let items: Vec<DeliveryView> = rows.into_iter().map(delivery_view).collect();
    Ok(Json(super::Page { items, next_cursor }))
}

/// The body of a redelivery: empty, or {}.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RedeliverWebhookDelivery)]
pub struct Redeliver {}

/// `POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver` (operator, admin): the delivery is
/// due again now (`202`): one more attempt, then the usual retries while attempts remain.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
    operation_id = "redeliverWebhookDelivery", tag = "webhooks",
    summary = "Deliver a delivery again now (operator, admin)",
    description = "Roles: operator, admin. The endpoint must be the caller's organization's (404 \
        otherwise) and not disabled (409 wrong-state); a delivery still waiting for an attempt \
        is 409 too. The delivery is attempted again at once, then follows the usual retries \
        while webhooks.max_attempts allows; audited as webhook.redelivered.",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "webhook id (wh_...)"),
        ("delivery" = i64, Path, minimum = 1,
            description = "the delivery's id, from GET /v1/webhooks/{id}/deliveries")),
    request_body = ref("#/components/schemas/RedeliverWebhookDelivery"),
    responses(
        (status = 202, description = "due again now", body = DeliveryView,
            example = json!({
                "id": 311, "event_id": "evt_1204", "event_type": "incident.opened",
                "status": "pending", "attempts": 5, "next_attempt_at": "2026-12-08T08:00:00Z",
                "last_attempt_at": "2026-12-07T12:00:00Z", "last_status_code": 503,
                "last_error": "endpoint answered 503", "delivered_at": null
            })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, delivery)): ApiPath<(String, String)>,
    OptionalJson(_): OptionalJson<Redeliver>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let delivery: i64 = delivery.parse().ok().filter(|d| *d > 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "delivery id must be a positive number, not {delivery:?}"
        ))
    })?;
    let row = crate::ra::webhooks::redeliver(&state.node.store, &caller, &id, delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(row))))
}

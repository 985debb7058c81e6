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
#[openapi()]
pub struct Doc;

/// `POST /v1/webhooks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST.
    url: String,
    /// Event types, or `["*"]` (default).
    events: Option<Vec<String>>,
    /// Only events about this operator's agents.
    operator: Option<String>,
}

/// An endpoint as the API shows it.
#[derive(Serialize)]
pub struct WebhookView {
    id: String,
    url: String,
    events: Vec<String>,
    operator: Option<String>,
    created_by: String,
    created_at: String,
    disabled_at: Option<String>,
    /// Only in the answer to the creation: the HMAC secret, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
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
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(json!(super::Page { items, next_cursor })))
}

/// `GET /v1/webhooks/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require(READERS)?;
    let row = crate::ra::tenant::webhook(&state.node.store, &caller, &id).await?;
    Ok(Json(view(row, None)))
}

/// Body of disable.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Disable {}

/// `POST /v1/webhooks/{id}/disable` (operator, admin).
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(_): OptionalJson<Disable>,
) -> Result<Json<WebhookView>, ApiError> {
    let row = ra::webhooks::disable(&state.node.store, &caller, &id).await?;
    Ok(Json(view(row, None)))
}

/// A delivery as the API shows it.
#[derive(Serialize)]
pub struct DeliveryView {
    id: i64,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<String>,
    last_attempt_at: Option<String>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
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
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(json!(super::Page { items, next_cursor })))
}

/// Body of redeliver.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Redeliver {}

/// `POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver` (operator, admin): the delivery is
/// due again now (`202`): one more attempt, then the usual retries while attempts remain.
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

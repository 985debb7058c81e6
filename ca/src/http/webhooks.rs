//! Webhook endpoints and their delivery log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mandate_store::{AuditEvent, DeliveryRow, Role, WEBHOOK_EVENT_TYPES, WebhookRow};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiJson, ApiQuery, AppState, Caller, OptionalJson, PageQuery, page_limit};
use crate::CaError;

const MANAGERS: &[Role] = &[Role::Operator, Role::Admin];
use super::roles::READERS;
const MAX_URL_LEN: usize = 2048;

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

fn check_url(url: &str, allow_http: bool) -> Result<(), ApiError> {
    let ok_scheme = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
    let plain = url.len() <= MAX_URL_LEN
        && url.bytes().all(|b| b.is_ascii_graphic())
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok_scheme && plain && reqwest::Url::parse(url).is_ok() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "url must be an {} URL of printable ASCII, at most {MAX_URL_LEN} characters",
            if allow_http {
                "http:// or https://"
            } else {
                "https://"
            }
        )))
    }
}

/// `POST /v1/webhooks` (operator, admin): the answer carries the secret, once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    caller.require(MANAGERS)?;
    let node = &state.node;
    check_url(&req.url, node.cfg.webhooks.allow_http)?;
    let events = req.events.unwrap_or_else(|| vec!["*".to_owned()]);
    if events.is_empty() || events.len() > WEBHOOK_EVENT_TYPES.len() {
        return Err(ApiError::bad_request(
            "events: 1 or more event types, or [\"*\"]",
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| *e != "*" && !WEBHOOK_EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown event type {bad:?}; use \"*\" or some of {}",
            WEBHOOK_EVENT_TYPES.join(", ")
        )));
    }
    // An endpoint belongs to an organization and receives only its events; CA staff may make
    // one for any organization, or for every event (no operator).
    let operator = match (&caller.organization, req.operator) {
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(op)) if *own == op => Some(op),
        (Some(_), Some(op)) => {
            return Err(CaError::NotFound(format!("organization {op}")).into());
        }
        (None, Some(op)) => {
            crate::ra::tenant::organization(&node.store, &caller, &op).await?;
            Some(op)
        }
        (None, None) => None,
    };
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    let row = WebhookRow {
        id: format!("wh_{}", hex::encode(random)),
        url: req.url,
        events,
        operator,
        created_by: caller.key_id.clone(),
        created_at: mandate_store::now_unix(),
        disabled_at: None,
    };
    let secret = crate::webhooks::secret(&node.hsm, &node.store, &row.id).await?;
    node.store
        .create_webhook(
            &row,
            &AuditEvent::new(
                &caller.key_id,
                "webhook.created",
                &row.id,
                json!({"url": row.url, "events": row.events, "operator": row.operator}),
            ),
        )
        .await
        .map_err(CaError::from)?;
    tracing::info!(webhook = %row.id, url = %row.url, "webhook endpoint created");
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
        .webhooks(caller.org_filter(), q.after.as_deref().unwrap_or(""), limit)
        .await
        .map_err(CaError::from)?;
    let next = super::next_cursor(&rows, limit, |r| &r.id);
    let items: Vec<WebhookView> = rows.into_iter().map(|r| view(r, None)).collect();
    Ok(Json(json!({"items": items, "next_after": next})))
}

/// `GET /v1/webhooks/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
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
    Path(id): Path<String>,
    OptionalJson(_): OptionalJson<Disable>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require(MANAGERS)?;
    let store = &state.node.store;
    crate::ra::tenant::webhook(store, &caller, &id).await?;
    store
        .disable_webhook(
            &id,
            &AuditEvent::new(&caller.key_id, "webhook.disabled", &id, json!({})),
        )
        .await
        .map_err(CaError::from)?;
    let row = store
        .webhook(&id)
        .await
        .map_err(CaError::from)?
        .ok_or_else(|| CaError::NotFound(format!("webhook {id}")))?;
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

/// `?limit=&before=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

/// `GET /v1/webhooks/{id}/deliveries`: newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(READERS)?;
    let store = &state.node.store;
    crate::ra::tenant::webhook(store, &caller, &id).await?;
    let limit = page_limit(q.limit)?;
    let rows = store
        .webhook_deliveries(&id, q.before.unwrap_or(0).max(0), limit)
        .await
        .map_err(CaError::from)?;
    let next = super::next_before(&rows, limit, |r| r.id);
    let items: Vec<DeliveryView> = rows.into_iter().map(delivery_view).collect();
    Ok(Json(json!({"items": items, "next_before": next})))
}

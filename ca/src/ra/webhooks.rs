//! Webhook endpoints: each belongs to an organization and receives only its events (CA staff
//! may make one for any organization, or for every event).

use mandate_store::{AuditEvent, Role, Store, WEBHOOK_EVENT_TYPES, WebhookRow};
use serde_json::json;

use super::{Principal, tenant};
use crate::CaError;

/// Who may make and disable endpoints.
pub const MANAGERS: &[Role] = &[Role::Operator, Role::Admin];
const MAX_URL_LEN: usize = 2048;

/// An endpoint to make.
#[derive(Debug)]
pub struct NewWebhook {
    /// Where to POST.
    pub url: String,
    /// Event types, or `["*"]` (default).
    pub events: Option<Vec<String>>,
    /// The organization whose events it receives (default: the caller's).
    pub operator: Option<String>,
}

fn check_url(url: &str, allow_http: bool) -> Result<(), CaError> {
    let ok_scheme = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
    let plain = url.len() <= MAX_URL_LEN
        && url.bytes().all(|b| b.is_ascii_graphic())
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok_scheme && plain && reqwest::Url::parse(url).is_ok() {
        Ok(())
    } else {
        Err(CaError::InvalidRequest(format!(
            "url must be an {} URL of printable ASCII, at most {MAX_URL_LEN} characters",
            if allow_http {
                "http:// or https://"
            } else {
                "https://"
            }
        )))
    }
}

/// Makes an endpoint; returns it with its HMAC secret (shown once).
pub async fn create(
    node: &crate::node::Node,
    p: &Principal,
    req: NewWebhook,
) -> Result<(WebhookRow, String), CaError> {
    p.require(MANAGERS)?;
    check_url(&req.url, node.cfg.webhooks.allow_http)?;
    let events = req.events.unwrap_or_else(|| vec!["*".to_owned()]);
    if events.is_empty() || events.len() > WEBHOOK_EVENT_TYPES.len() {
        return Err(CaError::InvalidRequest(
            "events: 1 or more event types, or [\"*\"]".into(),
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| *e != "*" && !WEBHOOK_EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(CaError::InvalidRequest(format!(
            "unknown event type {bad:?}; use \"*\" or some of {}",
            WEBHOOK_EVENT_TYPES.join(", ")
        )));
    }
    let operator = match (&p.organization, req.operator) {
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(op)) if *own == op => Some(op),
        (Some(_), Some(op)) => return Err(CaError::NotFound(format!("organization {op}"))),
        (None, Some(op)) => {
            tenant::organization(&node.store, p, &op).await?;
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
        created_by: p.key_id.clone(),
        created_at: mandate_store::now_unix(),
        disabled_at: None,
    };
    let secret = crate::webhooks::secret(&node.hsm, &node.store, &row.id).await?;
    let mut details = json!({"url": row.url, "events": row.events, "operator": row.operator});
    details["by"] = p.audit_details();
    node.store
        .create_webhook(
            &row,
            &AuditEvent::new(&p.key_id, "webhook.created", &row.id, details),
        )
        .await?;
    tracing::info!(webhook = %row.id, url = %row.url, "webhook endpoint created");
    Ok((row, secret))
}

/// Disables an endpoint of the caller's organization; returns it.
pub async fn disable(store: &Store, p: &Principal, id: &str) -> Result<WebhookRow, CaError> {
    p.require(MANAGERS)?;
    tenant::webhook(store, p, id).await?;
    let mut details = json!({});
    details["by"] = p.audit_details();
    store
        .disable_webhook(
            id,
            &AuditEvent::new(&p.key_id, "webhook.disabled", id, details),
        )
        .await?;
    tenant::webhook(store, p, id).await
}

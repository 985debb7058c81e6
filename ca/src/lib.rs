//! The mandate daemon: key ceremony, issuance of mandate-carrying agent certificates, and the
//! REST API; composed from the config, hsm, store and policy crates.

mod api_key;
mod ceremony;
mod csr;
mod error;
mod http;
mod issuance;
mod node;
mod x509;

pub use ceremony::{CaCertSummary, CeremonyReport, init_ca};
pub use error::CaError;
pub use node::{connect_hsm, ensure_dev_token, open_store, prepare_dev_token, serve};

use node::Node;

/// Creates an API key from the command line (same checks as `POST /v1/api-keys`).
pub async fn create_api_key(
    store: &mandate_store::Store,
    role: mandate_store::Role,
    label: &str,
    agent_id: Option<String>,
    actor: &str,
) -> Result<serde_json::Value, CaError> {
    let created = http::create_key(store, role, label, agent_id, actor).await?;
    serde_json::to_value(created).map_err(|e| CaError::Internal(e.to_string()))
}

/// RFC 3339 UTC text for unix seconds.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

//! Secrets derived inside the HSM: HMAC-SHA256(master, input) with a master key made in the
//! token on first use (sensitive, never extractable). Secrets handed out once (EAB keys, webhook
//! secrets) are derived again when needed, so none is ever stored.

use mandate_hsm::{Hsm, KeyId};
use mandate_store::{AuditEvent, Store};
use serde_json::json;

use crate::CaError;

/// The master key of `role` (labelled `label` in the token), made on first use.
pub(crate) async fn master(
    hsm: &Hsm,
    store: &Store,
    role: &str,
    label: &str,
) -> Result<KeyId, CaError> {
    let parse = |hex: &str| {
        hex.parse::<KeyId>()
            .map_err(|_| CaError::Internal(format!("stored HSM key id {hex:?}")))
    };
    if let Some(id) = store.hsm_secret(role).await? {
        return parse(&id);
    }
    let made = hsm.generate_hmac_key(label).await?;
    let event = AuditEvent::new(
        "system",
        "hsm.key_generated",
        role,
        json!({"key_id": made.to_string(), "role": role, "kind": "hmac-sha256"}),
    );
    let recorded = store
        .record_hsm_secret(role, &made.to_string(), &event)
        .await?;
    if recorded != made.to_string() {
        tracing::warn!(role, unused = %made, "another process made this master key first; ours stays unused in the token");
    }
    parse(&recorded)
}

/// HMAC-SHA256(master of `role`, `input`), computed in the HSM.
pub(crate) async fn derive(
    hsm: &Hsm,
    store: &Store,
    role: &str,
    label: &str,
    input: &[u8],
) -> Result<Vec<u8>, CaError> {
    let key = master(hsm, store, role, label).await?;
    Ok(hsm.hmac_sha256(&key, input).await?)
}

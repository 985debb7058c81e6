//! External account binding credentials (RFC 8555 §7.3.4): a key id and an HMAC key, single
//! use, bound to one agent, valid for [`VALIDITY_SECS`].
//!
//! The HMAC key is never stored: it is HMAC-SHA256(`eab-master`, "mandate-eab-v1:" ‖ key id),
//! computed inside the HSM with a secret key that never leaves it, when the credentials are
//! made (to hand them out once) and again when a client uses them (to check its MAC).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mandate_hsm::{Hsm, KeyId};
use mandate_store::{AuditEvent, EabRow, Store, now_unix};
use serde::Serialize;
use serde_json::json;

use crate::CaError;

/// How long new credentials can be used.
pub const VALIDITY_SECS: i64 = 7 * 86_400;
/// The role of the HSM secret the HMAC keys are derived from.
const MASTER_ROLE: &str = "eab-master";

/// New credentials: `hmac_key` is shown once and can be derived again only inside the HSM.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EabCredentials {
    /// The `kid` of the EAB JWS.
    pub key_id: String,
    /// The HMAC-SHA256 key, base64url without padding (what certbot's `--eab-hmac-key` takes).
    pub hmac_key: String,
    /// The agent an account made with it may order for.
    pub agent_id: String,
    /// RFC 3339; unusable after.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

fn derivation_input(key_id: &str) -> Vec<u8> {
    format!("mandate-eab-v1:{key_id}").into_bytes()
}

/// The master key, made in the HSM on first use.
async fn master(hsm: &Hsm, store: &Store) -> Result<KeyId, CaError> {
    crate::hsm_secret::master(hsm, store, MASTER_ROLE, "mandate-eab-master").await
}

/// Makes credentials for `agent_id` (which must exist), recording who asked.
pub async fn create(
    hsm: &Hsm,
    store: &Store,
    agent_id: &str,
    actor: &str,
) -> Result<EabCredentials, CaError> {
    let master = master(hsm, store).await?;
    // One draw in 64 gives a key that starts with `-`, which command-line ACME clients
    // (certbot, lego) read as an option: draw again (the chance of eight such draws in a row is
    // 2^-48).
    let mut drawn = None;
    for _ in 0..8 {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
        let key_id = format!("eab_{}", B64.encode(random));
        let hmac = hsm.hmac_sha256(&master, &derivation_input(&key_id)).await?;
        let encoded = B64.encode(hmac);
        if safe_on_a_command_line(&encoded) {
            drawn = Some((key_id, encoded));
            break;
        }
    }
    let (key_id, hmac_key) =
        drawn.ok_or_else(|| CaError::Internal("eight EAB keys in a row began with '-'".into()))?;
    let now = now_unix();
    let row = EabRow {
        key_id: key_id.clone(),
        agent_id: agent_id.to_owned(),
        created_by: actor.to_owned(),
        created_at: now,
        expires_at: now + VALIDITY_SECS,
        used_at: None,
    };
    let event = AuditEvent::new(
        actor,
        "acme.eab_created",
        agent_id,
        json!({"key_id": key_id, "expires_at": crate::rfc3339(row.expires_at)}),
    );
    store.insert_eab(&row, &event).await?;
    Ok(EabCredentials {
        key_id,
        hmac_key,
        agent_id: agent_id.to_owned(),
        expires_at: crate::rfc3339(row.expires_at),
    })
}

/// Whether a base64url key can be given as a command-line argument of its own: it does not
/// start with `-`.
fn safe_on_a_command_line(encoded: &str) -> bool {
    !encoded.starts_with('-')
}

/// The HMAC key of usable credentials (known, unused, unexpired), derived again in the HSM;
/// `None` otherwise.
pub async fn hmac_key(
    hsm: &Hsm,
    store: &Store,
    key_id: &str,
) -> Result<Option<(EabRow, Vec<u8>)>, CaError> {
    let Some(row) = store.eab(key_id).await? else {
        return Ok(None);
    };
    if row.used_at.is_some() || row.expires_at <= now_unix() {
        return Ok(None);
    }
    let master = master(hsm, store).await?;
    let key = hsm.hmac_sha256(&master, &derivation_input(key_id)).await?;
    Ok(Some((row, key)))
}

#[cfg(test)]
mod tests {
    use super::safe_on_a_command_line;

    #[test]
    fn a_key_that_reads_as_an_option_is_drawn_again() {
        assert!(!safe_on_a_command_line("-aXb"));
        assert!(safe_on_a_command_line("aX-b"));
        assert!(safe_on_a_command_line("_aXb"));
    }
}

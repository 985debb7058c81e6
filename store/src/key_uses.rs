//! What each key in the HSM is for, as the database knows it: the HSM inventory's other half.

use sqlx::Row;

use crate::{Store, StoreError};

/// One key's role and user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyUse {
    /// CKA_ID, hex.
    pub key_id: String,
    /// `root`, `intermediate`, `ocsp-signer`, `audit-signer`, `agent`, or an HSM secret's role
    /// (`eab-master`, `webhook-master`).
    pub role: String,
    /// What uses it: a certificate subject, an agent id, ...
    pub used_by: String,
}

impl Store {
    /// Every key the database refers to, with its role.
    pub async fn hsm_key_uses(&self) -> Result<Vec<KeyUse>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.id AS key_id, k.role AS role,
                    COALESCE((SELECT c.subject || CASE WHEN c.active THEN ' (active)' ELSE '' END
                              FROM ca_certificates c WHERE c.key_id = k.id
                              ORDER BY c.id DESC LIMIT 1), '') AS used_by
             FROM ca_keys k
             UNION ALL
             SELECT key_id, 'ocsp-signer', 'OCSP responses of issuer ' || issuer_id
                    || ' until ' || not_after FROM ocsp_signers
             UNION ALL
             SELECT key_id, 'audit-signer', 'audit checkpoints until ' || not_after
             FROM audit_signers
             UNION ALL
             SELECT key_id, 'agent', 'agent ' || agent_id FROM agent_keys
             UNION ALL
             SELECT key_id, role, 'derived secrets (' || role || ')' FROM hsm_secrets
             ORDER BY 2, 1",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyUse {
                    key_id: r.try_get("key_id")?,
                    role: r.try_get("role")?,
                    used_by: r.try_get("used_by")?,
                })
            })
            .collect()
    }
}

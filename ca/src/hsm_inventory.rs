//! `mandate hsm keys`: every key pair on the token with what the database says it is for, and the
//! secret keys the database knows of.

use mandate_hsm::Hsm;
use mandate_store::Store;
use serde::Serialize;

use crate::CaError;

/// One key in the HSM.
#[derive(Debug, Serialize)]
pub struct InventoryRow {
    /// CKA_LABEL (key pairs only).
    pub label: Option<String>,
    /// CKA_ID, hex.
    pub id: String,
    /// `ec-p256`, `rsa-2048`, ... or `hmac-sha256`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its role, or `unknown` for a key the database does not mention (e.g. from an
    /// interrupted ceremony).
    pub role: String,
    /// What uses it.
    pub in_use_by: String,
    /// CKA_SENSITIVE (key pairs).
    pub sensitive: Option<bool>,
    /// CKA_EXTRACTABLE (key pairs).
    pub extractable: Option<bool>,
}

/// The inventory: key pairs found on the token, then the secret keys the database names.
pub async fn inventory(hsm: &Hsm, store: &Store) -> Result<Vec<InventoryRow>, CaError> {
    let uses = store.hsm_key_uses().await?;
    let mut out = Vec::new();
    for k in hsm.list_keys().await? {
        let id = k.id.to_string();
        let (role, in_use_by) = uses
            .iter()
            .find(|u| u.key_id == id)
            .map_or(("unknown".to_owned(), String::new()), |u| {
                (u.role.clone(), u.used_by.clone())
            });
        out.push(InventoryRow {
            label: Some(k.label),
            id,
            kind: k.kind.to_string(),
            role,
            in_use_by,
            sensitive: Some(k.sensitive),
            extractable: Some(k.extractable),
        });
    }
    for u in uses.iter().filter(|u| u.role.ends_with("-master")) {
        out.push(InventoryRow {
            label: None,
            id: u.key_id.clone(),
            kind: "hmac-sha256".into(),
            role: u.role.clone(),
            in_use_by: u.used_by.clone(),
            sensitive: None,
            extractable: None,
        });
    }
    Ok(out)
}

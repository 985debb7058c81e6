//! The people behind key ids: records keep the API key id that acted (`*_by`, `actor`);
//! readers (the dashboard, reports) show the person's name instead.

use std::collections::{BTreeMap, BTreeSet};

use mandate_store::Store;
use serde_json::Value;

use crate::CaError;

/// The person behind a key.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyPerson {
    /// Person id.
    pub person: String,
    /// Full name.
    pub name: String,
    /// Organization; none for CA staff.
    #[schema(required = true)]
    pub organization: Option<String>,
}

/// Adds to `out` every string of a `*_by` or `actor` member anywhere in `v`.
pub fn acting_keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if (k.ends_with("_by") || k == "actor")
                    && let Some(s) = x.as_str()
                {
                    out.insert(s.to_owned());
                }
                acting_keys(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| acting_keys(x, out)),
        _ => {}
    }
}

/// The people behind `keys` (keys of agents, `cli:...` and `system...` have none).
pub async fn people_of(
    store: &Store,
    keys: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<String, KeyPerson>, CaError> {
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(h) = store.key_holder(&key).await?
            && let Some(p) = h.person
        {
            out.insert(
                key,
                KeyPerson {
                    person: p.id,
                    name: p.name,
                    organization: p.organization,
                },
            );
        }
    }
    Ok(out)
}

//! Certification: who may have a certificate issued for which agent, and the key it is for
//! (the agent's own, by CSR, or one generated inside the HSM that never leaves it).

use mandate_store::Role;

use super::{Principal, tenant};
use crate::CaError;
use crate::issuance::{AgentKey, Issued};
use crate::node::Node;

/// Who may have certificates issued for an agent of their organization (besides its own key).
pub const CERTIFIERS: &[Role] = &[Role::Operator];

/// The key a certificate is for.
#[derive(Debug)]
pub enum Key {
    /// A PEM CSR made by the agent, which keeps its key.
    Csr(String),
    /// A key of this type (`ec-p256`, ...) to generate inside the HSM.
    InHsm(String),
}

/// Issues a certificate for agent `id` (an operator of its organization, or its own key);
/// returns it with `hsm:<CKA_ID>` when the key was made in the HSM.
pub async fn certify(
    node: &Node,
    p: &Principal,
    id: &str,
    key: Key,
    validity_days: Option<u32>,
) -> Result<(Issued, Option<String>), CaError> {
    tenant::agent_or_own(&node.store, p, CERTIFIERS, id).await?;
    // Validate, then spend: nothing is made in the HSM for a request that would be refused.
    node.issuer.validity_days(validity_days)?;
    let (key, key_ref) = match &key {
        Key::Csr(pem) => (AgentKey::Csr(pem), None),
        Key::InHsm(kind) => {
            let (valid, key_ref) = generate_agent_key(node, id, kind, &p.key_id).await?;
            (AgentKey::Generated(valid), Some(key_ref))
        }
    };
    let issued = node
        .issuer
        .certify(id, key, validity_days, &p.key_id, p.person_id())
        .await?;
    Ok((issued, key_ref))
}

/// Generates a key for the agent inside the HSM (sensitive, never extractable) and records it.
async fn generate_agent_key(
    node: &Node,
    agent_id: &str,
    kind: &str,
    actor: &str,
) -> Result<(crate::csr::ValidCsr, String), CaError> {
    use der::Decode;
    let kind: mandate_hsm::KeyKind = kind.parse().map_err(|_| {
        CaError::InvalidRequest(format!(
            "hsm_key_type {kind:?} is not one of rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384"
        ))
    })?;
    // Only for an agent that may get a certificate now: no key is made for a refusal.
    node.issuer.eligible(agent_id).await?;
    let label = format!("mandate-agent-{agent_id}-{}", mandate_store::now_unix());
    let info = node.hsm.generate_key(kind, &label).await?;
    let key_id = info.id.to_string();
    node.store
        .insert_agent_key(
            &key_id,
            agent_id,
            &kind.to_string(),
            &label,
            &mandate_store::AuditEvent::new(
                actor,
                "agent_key.generated",
                agent_id,
                serde_json::json!({"key_id": key_id, "key_type": kind.to_string()}),
            ),
        )
        .await?;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(&info.spki_der)?;
    Ok((
        crate::csr::ValidCsr {
            spki,
            key_type: kind.to_string(),
        },
        format!("hsm:{key_id}"),
    ))
}

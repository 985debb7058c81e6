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

/// What a request asks for its certificate's lifetime: a profile by name, or a number of days
/// (the older way), or neither (the organization's default profile, else the CA's).
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// A profile name (`agent`, `shortlived`, `extended`, or a configured one).
    pub profile: Option<String>,
    /// Days.
    pub validity_days: Option<u32>,
}

/// How long a certificate is valid, and under which profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetime {
    /// Seconds from notBefore to the end of notAfter.
    pub secs: i64,
    /// The profile, when the lifetime came from one.
    pub profile: Option<String>,
}

/// Why a profile was refused: unknown (ACME `invalidProfile`), or longer than allowed.
#[derive(Debug)]
pub enum LifetimeError {
    /// No profile of that name.
    UnknownProfile(String),
    /// The request is not acceptable otherwise.
    Invalid(String),
}

impl From<LifetimeError> for CaError {
    fn from(e: LifetimeError) -> CaError {
        match e {
            LifetimeError::UnknownProfile(d) | LifetimeError::Invalid(d) => {
                CaError::InvalidRequest(d)
            }
        }
    }
}

/// The lifetime of a certificate for an agent of `org`: the profile asked for (or the days),
/// else the organization's default profile, else `ca.default_profile`; never longer than
/// `ca.max_validity_days` nor the organization's `max_validity_secs`.
pub fn lifetime(
    cfg: &mandate_config::Config,
    org: &mandate_store::CertificateLimits,
    asked: &Asked,
) -> Result<Lifetime, LifetimeError> {
    let profiles = cfg.ca.all_profiles();
    let max = i64::from(cfg.ca.max_validity_days) * 86_400;
    let out = match (&asked.profile, asked.validity_days) {
        (Some(_), Some(_)) => {
            return Err(LifetimeError::Invalid(
                "give at most one of profile and validity_days".into(),
            ));
        }
        (None, Some(days)) => {
            if days == 0 || i64::from(days) * 86_400 > max {
                return Err(LifetimeError::Invalid(format!(
                    "validity_days must be between 1 and {} (got {days})",
                    cfg.ca.max_validity_days
                )));
            }
            Lifetime {
                secs: i64::from(days) * 86_400,
                profile: None,
            }
        }
        (asked_profile, None) => {
            let name = asked_profile
                .clone()
                .or_else(|| org.default_profile.clone())
                .unwrap_or_else(|| cfg.ca.default_profile.clone());
            let Some(p) = profiles.get(&name) else {
                return Err(LifetimeError::UnknownProfile(format!(
                    "no certificate profile {name:?}; known: {}",
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            };
            Lifetime {
                secs: i64::try_from(p.validity_secs).unwrap_or(max).min(max),
                profile: Some(name),
            }
        }
    };
    if let Some(org_max) = org.max_validity_secs
        && out.secs > org_max
    {
        return Err(LifetimeError::Invalid(format!(
            "organization {} allows certificates of at most {org_max} s; {} asks for {} s",
            org.organization,
            out.profile
                .as_deref()
                .map_or_else(|| "this request".to_owned(), |p| format!("profile {p}")),
            out.secs
        )));
    }
    Ok(out)
}

/// Issues a certificate for agent `id` (an operator of its organization, or its own key);
/// returns it with `hsm:<CKA_ID>` when the key was made in the HSM.
pub async fn certify(
    node: &Node,
    p: &Principal,
    id: &str,
    key: Key,
    asked: Asked,
) -> Result<(Issued, Option<String>), CaError> {
    // Validate, then spend: nothing is made in the HSM for a request that would be refused.
    let (_, limits) = tenant::agent_or_own_with_limits(&node.store, p, CERTIFIERS, id).await?;
    let lifetime = lifetime(&node.cfg, &limits, &asked)?;
    let (key, key_ref) = match &key {
        Key::Csr(pem) => (AgentKey::Csr(pem), None),
        Key::InHsm(kind) => {
            let (valid, key_ref) = generate_agent_key(node, id, kind, &p.key_id).await?;
            (AgentKey::Generated(valid), Some(key_ref))
        }
    };
    let issued = node
        .issuer
        .certify(id, key, &lifetime, &p.key_id, p.person_id())
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

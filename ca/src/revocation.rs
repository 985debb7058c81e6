//! Revocation reasons (RFC 5280 §5.3.1 CRLReason) as the API accepts them.

use serde::{Deserialize, Serialize};

use crate::CaError;

/// The CRLReason codes an agent certificate may be revoked with. `certificateHold` and
/// `removeFromCRL` are not offered (no suspension of certificates: revocation is final), nor are
/// the CA-only reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// 0: no reason given.
    Unspecified,
    /// 1: the agent's private key is, or may be, known to someone else.
    KeyCompromise,
    /// 3: the agent's operator or affiliation changed.
    AffiliationChanged,
    /// 4: replaced by a newer certificate.
    Superseded,
    /// 5: the agent stopped operating.
    CessationOfOperation,
    /// 9: the agent lost its authority (kill switch, behavioural revocation).
    PrivilegeWithdrawn,
}

const ALL: [RevocationReason; 6] = [
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
    RevocationReason::PrivilegeWithdrawn,
];

impl RevocationReason {
    /// The CRLReason code.
    pub fn code(self) -> i64 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }

    /// The RFC 5280 ASN.1 name, as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// The reason of a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether an agent may give this reason for revoking its own certificate (withdrawing
    /// privileges or changing affiliation is the operator's or compliance's call).
    pub fn open_to_agents(self) -> bool {
        matches!(
            self,
            RevocationReason::Unspecified
                | RevocationReason::KeyCompromise
                | RevocationReason::Superseded
                | RevocationReason::CessationOfOperation
        )
    }
}

impl std::str::FromStr for RevocationReason {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, CaError> {
        ALL.into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = ALL.iter().map(|r| r.name()).collect();
                CaError::InvalidRequest(format!(
                    "unknown revocation reason {s:?}; use one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// A reason as JSON: its RFC 5280 name or its code.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ReasonInput {
    /// `"keyCompromise"`.
    Name(String),
    /// `1`.
    Code(i64),
}

impl ReasonInput {
    /// The reason it names.
    pub fn resolve(&self) -> Result<RevocationReason, CaError> {
        match self {
            ReasonInput::Name(n) => n.parse(),
            ReasonInput::Code(c) => RevocationReason::from_code(*c).ok_or_else(|| {
                CaError::InvalidRequest(format!(
                    "revocation reason code {c} is not accepted for agent certificates"
                ))
            }),
        }
    }
}

impl Serialize for RevocationReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for r in ALL {
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        assert!("certificateHold".parse::<RevocationReason>().is_err());
        assert!(RevocationReason::from_code(8).is_none(), "removeFromCRL");
        assert!(RevocationReason::from_code(2).is_none(), "cACompromise");
        assert!(!RevocationReason::PrivilegeWithdrawn.open_to_agents());
    }
}

/// The answer to a kill switch.
#[derive(serde::Serialize)]
pub struct KillSwitchView {
    /// Its id.
    pub kill_switch_id: i64,
    /// `agent` or `operator`.
    pub scope: &'static str,
    /// The agent or organization.
    pub target: String,
    /// Agents suspended.
    pub agents_suspended: Vec<String>,
    /// Certificates revoked (serials).
    pub certificates_revoked: Vec<String>,
}

/// Pulls the kill switch; shared by the API, `mandate revoke agent|operator` and the scoring
/// loop.
pub async fn pull(
    store: &mandate_store::Store,
    scope: mandate_store::KillScope,
    target: &str,
    actor: &str,
    reason: &str,
    incident: Option<i64>,
) -> Result<KillSwitchView, CaError> {
    let mandate_store::KillSwitch {
        id,
        agents,
        certificates_revoked,
    } = store
        .pull_kill_switch(scope, target, actor, reason, incident)
        .await?;
    crate::metrics::METRICS.revocations.add(
        &[if incident.is_some() {
            "auto"
        } else {
            "kill_switch"
        }],
        u64::try_from(certificates_revoked.len()).unwrap_or(u64::MAX),
    );
    tracing::warn!(
        kill_switch = id,
        target,
        agents = agents.len(),
        certificates = certificates_revoked.len(),
        "kill switch pulled"
    );
    Ok(KillSwitchView {
        kill_switch_id: id,
        scope: match scope {
            mandate_store::KillScope::Agent => "agent",
            mandate_store::KillScope::Operator => "operator",
        },
        target: target.to_owned(),
        agents_suspended: agents,
        certificates_revoked,
    })
}

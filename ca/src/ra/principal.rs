//! Who is asking: the authenticated principal every registration-authority decision is taken
//! for. Adapters build it (an API key → its person or agent; the CLI → CA staff; the scoring
//! loop → the system); the RA alone decides what it may do.

use mandate_store::{KeyHolder, Role};

use crate::CaError;

/// The person behind a request, as audit records and approvals name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRef {
    /// Person id.
    pub id: String,
    /// Full name.
    pub name: String,
}

/// An authenticated principal: a person (with one role, that of the key used), an agent, or
/// the CA itself (the CLI and the scoring loop).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The API key used (`cli:<command>` or `system` when there is none): recorded as the
    /// actor of audit records and in `created_by` fields.
    pub key_id: String,
    /// What the key may do.
    pub role: Role,
    /// For agent keys, the agent.
    pub agent_id: Option<String>,
    /// For people's keys, the person.
    pub person: Option<PersonRef>,
    /// The organization acted for; `None` for CA staff and the CA itself.
    pub organization: Option<String>,
}

impl Principal {
    /// The principal of an authenticated key. `None` if the key's person is disabled, or the
    /// key belongs to nobody (a person's role without a person).
    pub fn of_key(holder: KeyHolder) -> Option<Principal> {
        let KeyHolder {
            key,
            person,
            agent_organization,
        } = holder;
        match (key.role, person) {
            (Role::Agent, _) => Some(Principal {
                key_id: key.id,
                role: Role::Agent,
                agent_id: key.agent_id,
                person: None,
                organization: agent_organization,
            }),
            (role, Some(p)) if p.disabled_at.is_none() && p.roles.contains(&role) => {
                Some(Principal {
                    key_id: key.id,
                    role,
                    agent_id: None,
                    organization: p.organization.clone(),
                    person: Some(PersonRef {
                        id: p.id,
                        name: p.name,
                    }),
                })
            }
            _ => None,
        }
    }

    /// The CA's administrator at the command line (`actor` e.g. `cli:revoke`): CA staff.
    pub fn cli(actor: &str) -> Principal {
        Principal {
            key_id: actor.to_owned(),
            role: Role::Admin,
            agent_id: None,
            person: None,
            organization: None,
        }
    }

    /// CA staff (a person of no organization, or the CA itself): sees every organization.
    pub fn is_ca_staff(&self) -> bool {
        self.role != Role::Agent && self.organization.is_none()
    }

    /// Whether this principal may see objects of organization `org` (the tenant rule).
    pub fn sees(&self, org: &str) -> bool {
        self.is_ca_staff() || self.organization.as_deref() == Some(org)
    }

    /// The organization lists are filtered to: `None` for CA staff (everything).
    pub fn org_filter(&self) -> Option<&str> {
        if self.is_ca_staff() {
            None
        } else {
            // An organization principal without an organization cannot exist; an empty
            // filter matches nothing rather than everything.
            Some(self.organization.as_deref().unwrap_or("\u{0}"))
        }
    }

    /// The person's id, if a person acts.
    pub fn person_id(&self) -> Option<&str> {
        self.person.as_ref().map(|p| p.id.as_str())
    }

    /// Refuses with `forbidden` unless the principal has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), CaError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(CaError::Forbidden(format!(
                "role {} may not do this; it needs one of: {}",
                self.role,
                wanted.join(", ")
            )))
        }
    }

    /// Like [`Principal::require`], but an agent key is also let through for its own agent.
    pub fn require_or_own_agent(&self, roles: &[Role], agent_id: &str) -> Result<(), CaError> {
        if self.is_agent(agent_id) {
            return Ok(());
        }
        self.require(roles)
    }

    /// Whether this is the key of agent `agent_id`.
    pub fn is_agent(&self, agent_id: &str) -> bool {
        self.role == Role::Agent && self.agent_id.as_deref() == Some(agent_id)
    }

    /// Refuses with `forbidden` unless a CA-staff principal acts (organizations, people and
    /// keys are the CA's to manage).
    pub fn require_ca_staff(&self) -> Result<(), CaError> {
        if self.is_ca_staff() {
            Ok(())
        } else {
            Err(CaError::Forbidden(
                "only CA staff (people of no organization) may do this".into(),
            ))
        }
    }

    /// What audit records say about who acted: the person (id and name) or agent, and the
    /// organization.
    pub fn audit_details(&self) -> serde_json::Value {
        let mut by = serde_json::Map::new();
        if let Some(p) = &self.person {
            by.insert("person".into(), p.id.clone().into());
            by.insert("person_name".into(), p.name.clone().into());
        }
        if let Some(a) = &self.agent_id {
            by.insert("agent".into(), a.clone().into());
        }
        if let Some(o) = &self.organization {
            by.insert("organization".into(), o.clone().into());
        }
        serde_json::Value::Object(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(org: Option<&str>, role: Role) -> Principal {
        Principal {
            key_id: "k".into(),
            role,
            agent_id: None,
            person: Some(PersonRef {
                id: "alice".into(),
                name: "Alice".into(),
            }),
            organization: org.map(str::to_owned),
        }
    }

    #[test]
    fn tenant_rule() {
        let a = person(Some("org-a"), Role::Operator);
        assert!(a.sees("org-a"));
        assert!(!a.sees("org-b"));
        assert_eq!(a.org_filter(), Some("org-a"));
        let staff = person(None, Role::Admin);
        assert!(staff.sees("org-b"));
        assert_eq!(staff.org_filter(), None);
        let agent = Principal {
            key_id: "k".into(),
            role: Role::Agent,
            agent_id: Some("bot".into()),
            person: None,
            organization: None,
        };
        // An agent key whose agent has no organization row is not CA staff.
        assert!(!agent.is_ca_staff());
        assert!(!agent.sees("org-a"));
        assert!(Principal::cli("cli:x").is_ca_staff());
    }

    #[test]
    fn roles() {
        let a = person(Some("org-a"), Role::Operator);
        assert!(a.require(&[Role::Operator]).is_ok());
        assert!(matches!(
            a.require(&[Role::Compliance]),
            Err(CaError::Forbidden(_))
        ));
        assert!(a.require_ca_staff().is_err());
    }
}

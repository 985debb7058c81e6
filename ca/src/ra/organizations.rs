//! Organizations and people: created by CA staff; a person of an organization reads their own.

use mandate_policy::{TextKind, is_dns_label};
use mandate_store::{AuditEvent, OrganizationRow, PersonRow, Role, Store};
use serde::Deserialize;
use serde_json::json;

use super::Principal;
use crate::CaError;

/// A new organization, as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// A DNS label (agents are named under it: `<agent>.<organization>.<agent domain>`).
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub id: String,
    /// The legal entity mandates must name as `operator` (the certificates' O).
    #[schema(min_length = 1, max_length = 64)]
    pub legal_name: String,
    /// Further legal entities of the firm its mandates may name (at most 32, each 1 to 64
    /// characters).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub legal_entities: Vec<String>,
    /// E.g. `ESMA-001234`.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub regulator_id: Option<String>,
    /// 1 (default) or 2 different compliance people must approve a mandate version.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2)]
    pub approvals_required: Option<i64>,
    /// The certificate profile of its agents' requests that name none (default: the CA's).
    #[serde(default)]
    pub default_profile: Option<String>,
    /// The longest lifetime its agents' certificates may have, in seconds (default: the CA's
    /// `ca.max_validity_days`).
    #[serde(default)]
    pub max_validity_secs: Option<i64>,
}

/// A new person, as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// Short id: 1 to 64 of a-z, 0-9, `.`, `_`, `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub id: String,
    /// Full name.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// An existing organization; leave out for CA staff.
    #[serde(default)]
    pub organization: Option<String>,
    /// One or more roles: operator, compliance, auditor, market-data (a price feed) for a
    /// person of an organization; admin, auditor for CA staff (others: 400).
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
}

/// Text a person reads, by the one rule of [`mandate_policy::human_text`]: one line (names,
/// legal names, labels) or a note (comments, reasons, resolutions); trimmed.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    kind: TextKind,
) -> Result<String, CaError> {
    mandate_policy::human_text(field, value, max, kind)
        .map_err(|e| CaError::InvalidRequest(e.to_string()))
}

/// [`check_text`] of an optional note.
pub(crate) fn check_note(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, CaError> {
    value
        .map(|v| check_text(field, v, max, TextKind::Note))
        .transpose()
}

fn check_person_id(id: &str) -> Result<(), CaError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(CaError::InvalidRequest(
            "id must be 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
                .into(),
        ))
    }
}

/// Creates an organization (CA staff, admin).
pub async fn create(
    store: &Store,
    ca: &mandate_config::CaConfig,
    p: &Principal,
    req: NewOrganization,
) -> Result<OrganizationRow, CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    if !is_dns_label(&req.id) {
        return Err(CaError::InvalidRequest(
            "id must be a DNS label: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'"
                .into(),
        ));
    }
    // X.520 bounds organizationName at 64: the legal name becomes the certificates' O.
    let legal_name = check_text("legal_name", &req.legal_name, 64, TextKind::Line)?;
    let mut legal_entities = Vec::new();
    for e in &req.legal_entities {
        let e = check_text("legal_entities[]", e, 64, TextKind::Line)?;
        if e != legal_name && !legal_entities.contains(&e) {
            legal_entities.push(e);
        }
    }
    if legal_entities.len() > 32 {
        return Err(CaError::InvalidRequest("legal_entities: at most 32".into()));
    }
    let regulator_id = req
        .regulator_id
        .as_deref()
        .map(|r| check_text("regulator_id", r, 64, TextKind::Line))
        .transpose()?;
    let approvals_required = req.approvals_required.unwrap_or(1);
    if !(1..=2).contains(&approvals_required) {
        return Err(CaError::InvalidRequest(
            "approvals_required must be 1 or 2".into(),
        ));
    }
    let profiles = ca.all_profiles();
    if let Some(name) = &req.default_profile
        && !profiles.contains_key(name)
    {
        return Err(CaError::InvalidRequest(format!(
            "default_profile: no certificate profile {name:?}; known: {}",
            profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let ca_max = i64::from(ca.max_validity_days) * 86_400;
    if let Some(max) = req.max_validity_secs
        && !(10..=ca_max).contains(&max)
    {
        return Err(CaError::InvalidRequest(format!(
            "max_validity_secs must be 10 to {ca_max} (ca.max_validity_days)"
        )));
    }
    // The default profile must fit under the organization's own maximum.
    if let (Some(max), Some(p)) = (
        req.max_validity_secs,
        profiles.get(
            req.default_profile
                .as_deref()
                .unwrap_or(&ca.default_profile),
        ),
    ) && i64::try_from(p.validity_secs).unwrap_or(i64::MAX) > max
    {
        return Err(CaError::InvalidRequest(format!(
            "max_validity_secs {max} is shorter than the default profile's {} s: name a shorter default_profile",
            p.validity_secs
        )));
    }
    let row = OrganizationRow {
        id: req.id,
        legal_name,
        legal_entities,
        regulator_id,
        approvals_required,
        default_profile: req.default_profile,
        max_validity_secs: req.max_validity_secs,
        created_by: Some(p.key_id.clone()),
        created_at: 0,
    };
    let mut details = json!({
        "legal_name": row.legal_name, "legal_entities": row.legal_entities,
        "regulator_id": row.regulator_id, "approvals_required": row.approvals_required,
        "default_profile": row.default_profile, "max_validity_secs": row.max_validity_secs,
    });
    details["by"] = p.audit_details();
    let event = AuditEvent::new(&p.key_id, "organization.created", &row.id, details);
    Ok(store.create_organization(&row, &event).await?)
}

/// Organizations `p` may see: CA staff all; everyone else their own.
pub async fn list(
    store: &Store,
    p: &Principal,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<OrganizationRow>, CaError> {
    p.require(&[Role::Admin, Role::Operator, Role::Compliance, Role::Auditor])?;
    Ok(store.organizations(p.org_filter(), after, limit).await?)
}

/// One organization, if `p` may see it.
pub async fn get(store: &Store, p: &Principal, id: &str) -> Result<OrganizationRow, CaError> {
    p.require(&[Role::Admin, Role::Operator, Role::Compliance, Role::Auditor])?;
    super::tenant::organization(store, p, id).await
}

/// Creates a person (CA staff, admin). People of an organization hold operator, compliance,
/// auditor and market-data roles (the last for a price feed, which is registered as a person
/// of its organization so that its keys are the organization's); CA staff admin and auditor.
pub async fn create_person(
    store: &Store,
    p: &Principal,
    req: NewPerson,
) -> Result<PersonRow, CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    check_person_id(&req.id)?;
    let name = check_text("name", &req.name, 128, TextKind::Line)?;
    let email = match req.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => {
            let e = check_text("email", e, 254, TextKind::Line)?;
            if !e.contains('@') || e.contains(char::is_whitespace) {
                return Err(CaError::InvalidRequest("email is not an address".into()));
            }
            Some(e)
        }
    };
    if req.roles.is_empty() {
        return Err(CaError::InvalidRequest("roles: one or more".into()));
    }
    let allowed: &[Role] = if req.organization.is_some() {
        &[
            Role::Operator,
            Role::Compliance,
            Role::Auditor,
            Role::MarketData,
        ]
    } else {
        &[Role::Admin, Role::Auditor]
    };
    let mut roles = Vec::new();
    for r in req.roles {
        if !allowed.contains(&r) {
            let allowed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            return Err(CaError::InvalidRequest(format!(
                "role {r} is not for {}: one of {}",
                if req.organization.is_some() {
                    "a person of an organization"
                } else {
                    "CA staff (no organization)"
                },
                allowed.join(", ")
            )));
        }
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    let row = PersonRow {
        id: req.id,
        name,
        email,
        organization: req.organization,
        roles,
        created_by: Some(p.key_id.clone()),
        created_at: 0,
        disabled_at: None,
    };
    let mut details = json!({"name": row.name, "organization": row.organization,
                             "roles": row.roles});
    details["by"] = p.audit_details();
    let event = AuditEvent::new(&p.key_id, "person.created", &row.id, details);
    Ok(store.create_person(&row, &event).await?)
}

/// People (admin): CA staff see all, or those of one organization.
pub async fn list_people(
    store: &Store,
    p: &Principal,
    organization: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<PersonRow>, CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    Ok(store.people(organization, after, limit).await?)
}

/// Disables a person (admin): all their keys stop at once. Returns the row and whether this
/// call disabled it.
pub async fn disable_person(
    store: &Store,
    p: &Principal,
    id: &str,
) -> Result<(PersonRow, bool), CaError> {
    p.require(&[Role::Admin])?;
    p.require_ca_staff()?;
    let mut details = json!({});
    details["by"] = p.audit_details();
    // Their keys stop at once: the store's change (`Keys`) empties this node's key cache, and
    // other nodes' through NOTIFY (or within the cache's two seconds).
    Ok(store
        .disable_person(
            id,
            &AuditEvent::new(&p.key_id, "person.disabled", id, details),
        )
        .await?)
}

//! Organizations (the firms sharing the CA) and the people in them. Every API key acts for one
//! person or one agent; CA staff are people without an organization.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::Change;
use crate::audit::append;
use crate::{AuditEvent, Role, Store, StoreError, now_unix};

/// An organization: a firm whose agents, people and records are its own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationRow {
    /// A DNS label; its agents are named under it.
    pub id: String,
    /// The legal entity; a mandate's `operator` (the certificate's O) must be this...
    pub legal_name: String,
    /// ...or one of these further legal entities of the firm.
    pub legal_entities: Vec<String>,
    /// Its regulator's identifier, e.g. `ESMA-001234`.
    pub regulator_id: Option<String>,
    /// How many different compliance people must approve a mandate, baseline, reinstatement or
    /// incident resolution: 1 or 2.
    pub approvals_required: i64,
    /// The certificate profile of its agents' requests that name none (else the CA's).
    pub default_profile: Option<String>,
    /// The longest lifetime its agents' certificates may have, in seconds (else the CA's).
    pub max_validity_secs: Option<i64>,
    /// Who created it (an API key id, or `cli:...`).
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl OrganizationRow {
    /// Whether a mandate may name `operator` as the legal entity behind its agent.
    pub fn allows_operator(&self, operator: &str) -> bool {
        self.legal_name == operator || self.legal_entities.iter().any(|e| e == operator)
    }
}

/// A person: the holder of API keys, the one named in audit records and approvals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PersonRow {
    /// Short id, e.g. `alice`.
    pub id: String,
    /// Full name.
    pub name: String,
    /// E-mail address, if given.
    pub email: Option<String>,
    /// The organization; `None` for CA staff.
    pub organization: Option<String>,
    /// What the person may do; each of their keys has one of these.
    pub roles: Vec<Role>,
    /// Who created the person.
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When the person was disabled (all their keys stopped), unix seconds.
    pub disabled_at: Option<i64>,
}

/// An API key with whoever it acts for: the key's row, its person (if a person's key) and
/// the organization of the agent (if an agent's key).
#[derive(Debug, Clone)]
pub struct KeyHolder {
    /// The key.
    pub key: crate::ApiKeyRow,
    /// The person holding it (keys of every role but `agent`).
    pub person: Option<PersonRow>,
    /// The organization of the agent an agent key belongs to.
    pub agent_organization: Option<String>,
}

fn org_row(r: &AnyRow) -> Result<OrganizationRow, StoreError> {
    let entities: String = r.try_get("legal_entities")?;
    Ok(OrganizationRow {
        id: r.try_get("id")?,
        legal_name: r.try_get("legal_name")?,
        legal_entities: serde_json::from_str(&entities)
            .map_err(|e| StoreError::Corrupt(format!("legal_entities: {e}")))?,
        regulator_id: r.try_get("regulator_id")?,
        approvals_required: r.try_get("approvals_required")?,
        default_profile: r.try_get("default_profile")?,
        max_validity_secs: r.try_get("max_validity_secs")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

macro_rules! org_columns {
    () => {
        "id, legal_name, legal_entities, regulator_id, approvals_required, default_profile, \
         max_validity_secs, created_by, created_at"
    };
}
macro_rules! person_columns {
    () => {
        "id, name, email, organization, roles, created_by, created_at, disabled_at"
    };
}

fn person_row(r: &AnyRow) -> Result<PersonRow, StoreError> {
    let roles: String = r.try_get("roles")?;
    Ok(PersonRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        organization: r.try_get("organization")?,
        roles: roles
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

pub(crate) async fn fetch_person(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<PersonRow>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        person_columns!(),
        " FROM people WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(person_row).transpose()
}

async fn fetch_org(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<OrganizationRow>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM organizations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(org_row).transpose()
}

/// Enabled admin people who hold an unrevoked admin key, besides `except_person` and
/// `except_key`: the CA must keep at least one.
pub(crate) async fn other_admins(
    conn: &mut AnyConnection,
    except_person: Option<&str>,
    except_key: Option<&str>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys k LEFT JOIN people p ON p.id = k.person_id
          WHERE k.role = 'admin' AND k.revoked_at IS NULL AND p.disabled_at IS NULL
            AND (k.person_id IS NULL OR k.person_id <> $1) AND k.id <> $2",
    )
    .bind(except_person.unwrap_or(""))
    .bind(except_key.unwrap_or(""))
    .fetch_one(conn)
    .await?)
}

impl Store {
    /// Creates an organization, with its audit event.
    pub async fn create_organization(
        &self,
        org: &OrganizationRow,
        event: &AuditEvent,
    ) -> Result<OrganizationRow, StoreError> {
        let (mut org, event) = (org.clone(), event.clone());
        org.created_at = now_unix();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let entities = serde_json::to_string(&org.legal_entities)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(
                        "INSERT INTO organizations (id, legal_name, legal_entities, regulator_id,
                             approvals_required, created_by, created_at, default_profile,
                             max_validity_secs)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&org.id)
                    .bind(&org.legal_name)
                    .bind(&entities)
                    .bind(&org.regulator_id)
                    .bind(org.approvals_required)
                    .bind(&org.created_by)
                    .bind(org.created_at)
                    .bind(&org.default_profile)
                    .bind(org.max_validity_secs)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        crate::error::conflict_or(e, format!("organization {}", org.id))
                    })?;
                    append(conn, &event).await?;
                    Ok(org)
                })
            })
            .await
    }

    /// An organization by id.
    pub async fn organization(&self, id: &str) -> Result<Option<OrganizationRow>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        fetch_org(&mut conn, id).await
    }

    /// Organizations by id, after `after` (exclusive), at most `limit`; only `only` if given.
    pub async fn organizations(
        &self,
        only: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrganizationRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE id > $1 AND ($2 = '' OR id = $2) ORDER BY id LIMIT $3"
        ))
        .bind(after.unwrap_or(""))
        .bind(only.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(org_row).collect()
    }

    /// Creates a person, with its audit event. The organization must exist.
    pub async fn create_person(
        &self,
        person: &PersonRow,
        event: &AuditEvent,
    ) -> Result<PersonRow, StoreError> {
        let (mut person, event) = (person.clone(), event.clone());
        person.created_at = now_unix();
        person.disabled_at = None;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(org) = &person.organization
                        && fetch_org(&mut *conn, org).await?.is_none()
                    {
                        return Err(StoreError::NotFound(format!("organization {org}")));
                    }
                    let roles: Vec<&str> = person.roles.iter().map(|r| r.as_str()).collect();
                    sqlx::query(
                        "INSERT INTO people (id, name, email, organization, roles, created_by,
                             created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&person.id)
                    .bind(&person.name)
                    .bind(&person.email)
                    .bind(&person.organization)
                    .bind(roles.join(","))
                    .bind(&person.created_by)
                    .bind(person.created_at)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, format!("person {}", person.id)))?;
                    append(conn, &event).await?;
                    Ok(person)
                })
            })
            .await
    }

    /// A person by id.
    pub async fn person(&self, id: &str) -> Result<Option<PersonRow>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        fetch_person(&mut conn, id).await
    }

    /// People by id, after `after` (exclusive), at most `limit`; only those of `organization`
    /// if given.
    pub async fn people(
        &self,
        organization: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PersonRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            person_columns!(),
            " FROM people WHERE id > $1 AND ($2 = '' OR organization = $2) ORDER BY id LIMIT $3"
        ))
        .bind(after.unwrap_or(""))
        .bind(organization.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(person_row).collect()
    }

    /// Disables a person: every key of theirs stops at once. Idempotent; refused
    /// ([`StoreError::WrongState`]) if it would leave the CA without an enabled admin holding
    /// an admin key. Returns the row and whether this call disabled it.
    pub async fn disable_person(
        &self,
        id: &str,
        event: &AuditEvent,
    ) -> Result<(PersonRow, bool), StoreError> {
        let (id, event) = (id.to_owned(), event.clone());
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let person = fetch_person(&mut *conn, &id)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("person {id}")))?;
                    if person.disabled_at.is_some() {
                        return Ok((person, false));
                    }
                    if person.roles.contains(&Role::Admin)
                        && other_admins(&mut *conn, Some(&id), None).await? == 0
                    {
                        return Err(StoreError::WrongState(
                            "this is the last admin: create another admin person and key first"
                                .into(),
                        ));
                    }
                    sqlx::query("UPDATE people SET disabled_at = $2 WHERE id = $1")
                        .bind(&id)
                        .bind(now_unix())
                        .execute(&mut *conn)
                        .await?;
                    append(conn, &event).await?;
                    let person = fetch_person(&mut *conn, &id)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("person {id}")))?;
                    Ok((person, true))
                })
            })
            .await?;
        if out.1 {
            self.publish([Change::Keys]);
        }
        Ok(out)
    }

    /// An API key with the person or agent it acts for (one read, for authentication).
    pub async fn key_holder(&self, key_id: &str) -> Result<Option<KeyHolder>, StoreError> {
        let Some(key) = self.api_key(key_id).await? else {
            return Ok(None);
        };
        let mut conn = self.reader.acquire().await?;
        let person = match &key.person_id {
            Some(p) => fetch_person(&mut conn, p).await?,
            None => None,
        };
        let agent_organization = match &key.agent_id {
            Some(a) => {
                sqlx::query_scalar("SELECT organization FROM agents WHERE id = $1")
                    .bind(a)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            None => None,
        };
        Ok(Some(KeyHolder {
            key,
            person,
            agent_organization,
        }))
    }

    /// The person an API key acts for (`None`: an agent's key, or not a key at all, e.g.
    /// `cli:...` or `system`).
    pub async fn person_of_key(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT person_id FROM api_keys WHERE id = $1")
                .bind(key_id)
                .fetch_optional(&self.reader)
                .await?
                .flatten(),
        )
    }
}

impl Store {
    /// Records one person's approval of `kind`/`reference` with its audit event, and returns
    /// how many different people have approved it so far (this one included). The same person
    /// twice is a [`StoreError::Conflict`]. Used only while an organization's second approval
    /// is still missing: the approval that completes the pair is the action itself.
    pub async fn record_approval(
        &self,
        kind: &str,
        reference: &str,
        person_id: &str,
        key_id: &str,
        comment: Option<&str>,
        event: &AuditEvent,
    ) -> Result<i64, StoreError> {
        let (kind, reference, person_id, key_id, comment, event) = (
            kind.to_owned(),
            reference.to_owned(),
            person_id.to_owned(),
            key_id.to_owned(),
            comment.map(str::to_owned),
            event.clone(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO pending_approvals (kind, ref, person_id, key_id, comment,
                             created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&kind)
                    .bind(&reference)
                    .bind(&person_id)
                    .bind(&key_id)
                    .bind(&comment)
                    .bind(now_unix())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        crate::error::conflict_or(e, format!("an approval of {person_id}"))
                    })?;
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pending_approvals WHERE kind = $1 AND ref = $2",
                    )
                    .bind(&kind)
                    .bind(&reference)
                    .fetch_one(&mut *conn)
                    .await?;
                    append(conn, &event).await?;
                    Ok(n)
                })
            })
            .await
    }

    /// The people who approved `kind`/`reference` so far.
    pub async fn approvals_of(
        &self,
        kind: &str,
        reference: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT person_id FROM pending_approvals WHERE kind = $1 AND ref = $2
              ORDER BY created_at, person_id",
        )
        .bind(kind)
        .bind(reference)
        .fetch_all(&self.reader)
        .await?)
    }
}

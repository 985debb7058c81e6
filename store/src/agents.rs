use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Change;
use crate::audit::append;
use crate::{
    AgentOverview, AgentRow, AgentStatus, AuditEvent, MandateRow, MandateStatus, NewAgent, Store,
    StoreError, now_unix,
};

macro_rules! agent_columns {
    () => {
        "id, name, organization, status, created_by, created_at, updated_at"
    };
}
/// Agent columns, the newest mandate version (`m`) and the approved version's number.
macro_rules! overview_select {
    () => {
        "SELECT a.id, a.name, a.organization, a.status, a.created_by, a.created_at, a.updated_at,
                m.agent_id AS m_agent_id, m.version, m.mandate, m.status AS m_status,
                m.created_by AS m_created_by, m.created_at AS m_created_at, m.decided_by,
                m.decided_at,
                (SELECT p.version FROM mandates p
                 WHERE p.agent_id = a.id AND p.status = 'approved') AS approved_version
         FROM agents a
         JOIN mandates m ON m.agent_id = a.id
          AND m.version = (SELECT MAX(x.version) FROM mandates x WHERE x.agent_id = a.id)"
    };
}

macro_rules! mandate_columns {
    () => {
        "agent_id, version, mandate, status, created_by, created_at, decided_by, decided_at"
    };
}

fn agent_row(r: &AnyRow) -> Result<AgentRow, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(AgentRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        organization: r.try_get("organization")?,
        status: status.parse()?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn overview_row(r: &AnyRow) -> Result<AgentOverview, StoreError> {
    let status: String = r.try_get("m_status")?;
    Ok(AgentOverview {
        agent: agent_row(r)?,
        latest: MandateRow {
            agent_id: r.try_get("m_agent_id")?,
            version: r.try_get("version")?,
            mandate_json: r.try_get("mandate")?,
            status: status.parse()?,
            created_by: r.try_get("m_created_by")?,
            created_at: r.try_get("m_created_at")?,
            decided_by: r.try_get("decided_by")?,
            decided_at: r.try_get("decided_at")?,
        },
        approved_version: r.try_get("approved_version")?,
    })
}

fn mandate_row(r: &AnyRow) -> Result<MandateRow, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(MandateRow {
        agent_id: r.try_get("agent_id")?,
        version: r.try_get("version")?,
        mandate_json: r.try_get("mandate")?,
        status: status.parse()?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
    })
}

/// Who decides on a mandate version, and how many approvals the agent's organization requires.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    /// The API key id (kept in `mandates.decided_by`).
    pub key_id: &'a str,
    /// The person behind the key; one decision per person and version.
    pub person_id: Option<&'a str>,
    /// Approvals of different people needed (1 or 2).
    pub approvals_required: i64,
    /// How the certificates of older versions retire when this decision approves: at once
    /// (revoked `superseded` in the approving transaction) when the new version narrows any
    /// limit, else after this many seconds (ARI says "renew now" meanwhile).
    pub retirement: Retirement,
}

/// How an approval retires the certificates of older mandate versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retirement {
    /// The new version takes authority away: the old certificates are revoked at once.
    #[default]
    AtOnce,
    /// The new version only widens: the old certificates stay valid this many seconds.
    After(i64),
}

/// What a decision on a mandate version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MandateDecision {
    /// The version is approved: certificates carry it now.
    Approved,
    /// The version is rejected.
    Rejected,
    /// The approval is recorded; the version waits for another person's.
    AwaitingApproval {
        /// Approvals recorded so far.
        approvals: i64,
        /// Approvals needed.
        required: i64,
    },
}

impl Store {
    /// Registers an agent with its requested mandate as version 1, pending approval.
    pub async fn create_agent(
        &self,
        agent: &NewAgent,
        event: &AuditEvent,
    ) -> Result<AgentRow, StoreError> {
        let now = now_unix();
        let (agent, event) = (agent.clone(), event.clone());
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO agents
                             (id, name, organization, status, created_by, created_at, updated_at)
                         VALUES ($1, $2, $3, 'pending_approval', $4, $5, $5)",
                    )
                    .bind(&agent.id)
                    .bind(&agent.name)
                    .bind(&agent.organization)
                    .bind(&agent.created_by)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::conflict_or(e, format!("agent {}", agent.id)))?;
                    sqlx::query(
                        "INSERT INTO mandates
                             (agent_id, version, mandate, status, created_by, created_at)
                         VALUES ($1, 1, $2, 'pending_approval', $3, $4)",
                    )
                    .bind(&agent.id)
                    .bind(&agent.mandate_json)
                    .bind(&agent.created_by)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    append(conn, &event).await?;
                    Ok(AgentRow {
                        id: agent.id,
                        name: agent.name,
                        organization: agent.organization,
                        status: AgentStatus::PendingApproval,
                        created_by: agent.created_by,
                        created_at: now,
                        updated_at: now,
                    })
                })
            })
            .await?;
        self.publish([Change::Agent(out.id.clone())]);
        Ok(out)
    }

    /// Submits a changed mandate as a new version, pending approval. A version still pending is
    /// withdrawn (only the newest request can be approved). Writes the audit events itself, as
    /// the version number is only known inside the transaction.
    pub async fn submit_mandate(
        &self,
        agent_id: &str,
        mandate_json: &str,
        submitted_by: &str,
    ) -> Result<MandateRow, StoreError> {
        let now = now_unix();
        let (agent_id, mandate_json, submitted_by) = (
            agent_id.to_owned(),
            mandate_json.to_owned(),
            submitted_by.to_owned(),
        );
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let latest: Option<i64> =
                        sqlx::query_scalar("SELECT MAX(version) FROM mandates WHERE agent_id = $1")
                            .bind(&agent_id)
                            .fetch_one(&mut *conn)
                            .await?;
                    let Some(latest) = latest else {
                        return Err(StoreError::NotFound(format!("agent {agent_id}")));
                    };
                    let withdrawn: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM mandates
                         WHERE agent_id = $1 AND status = 'pending_approval'",
                    )
                    .bind(&agent_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(old) = withdrawn {
                        sqlx::query(
                            "UPDATE mandates SET status = 'withdrawn'
                             WHERE agent_id = $1 AND version = $2",
                        )
                        .bind(&agent_id)
                        .bind(old)
                        .execute(&mut *conn)
                        .await?;
                        let event = AuditEvent::new(
                            &submitted_by,
                            "mandate.withdrawn",
                            &agent_id,
                            serde_json::json!({"version": old, "replaced_by": latest + 1}),
                        );
                        append(conn, &event).await?;
                    }
                    let version = latest + 1;
                    sqlx::query(
                        "INSERT INTO mandates
                             (agent_id, version, mandate, status, created_by, created_at)
                         VALUES ($1, $2, $3, 'pending_approval', $4, $5)",
                    )
                    .bind(&agent_id)
                    .bind(version)
                    .bind(&mandate_json)
                    .bind(&submitted_by)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query("UPDATE agents SET updated_at = $2 WHERE id = $1")
                        .bind(&agent_id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    let event = AuditEvent::new(
                        &submitted_by,
                        "mandate.submitted",
                        &agent_id,
                        serde_json::json!({"version": version}),
                    );
                    append(conn, &event).await?;
                    Ok(MandateRow {
                        agent_id,
                        version,
                        mandate_json,
                        status: MandateStatus::PendingApproval,
                        created_by: submitted_by,
                        created_at: now,
                        decided_by: None,
                        decided_at: None,
                    })
                })
            })
            .await?;
        self.publish([Change::Agent(out.agent_id.clone())]);
        Ok(out)
    }

    /// Approves or rejects a pending mandate version. Approval supersedes the previously approved
    /// version and makes a pending agent active (a suspended one stays suspended). The caller checks segregation of duties; the store
    /// makes the decision happen once (a second decision finds the version no longer pending).
    pub async fn decide_mandate(
        &self,
        agent_id: &str,
        version: i64,
        approve: bool,
        decider: &Decider<'_>,
        comment: Option<&str>,
        event: &AuditEvent,
    ) -> Result<MandateDecision, StoreError> {
        let published = Change::Agent(agent_id.to_owned());
        let now = now_unix();
        let retirement = decider.retirement;
        let (agent_id, decided_by, person, required, comment, mut event) = (
            agent_id.to_owned(),
            decider.key_id.to_owned(),
            decider.person_id.map(str::to_owned),
            decider.approvals_required.max(1),
            comment.map(str::to_owned),
            event.clone(),
        );
        let decision = if approve { "approved" } else { "rejected" };
        let out = self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // An agent revoked by the scoring loop comes back only after a compliance
                    // officer resolved the incident (the human sign-off).
                    let unresolved: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM incidents WHERE agent_id = $1
                           AND revokes = TRUE AND status <> 'resolved' LIMIT 1",
                    )
                    .bind(&agent_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let (true, Some(incident)) = (approve, unresolved) {
                        return Err(StoreError::WrongState(format!(
                            "agent {agent_id} has auto-revocation incident {incident} not yet resolved; a compliance officer must resolve it first"
                        )));
                    }
                    let pending: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM mandates
                          WHERE agent_id = $1 AND version = $2 AND status = 'pending_approval'",
                    )
                    .bind(&agent_id)
                    .bind(version)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if pending.is_none() {
                        return Err(StoreError::WrongState(format!(
                            "mandate version {version} of agent {agent_id} is not pending approval"
                        )));
                    }
                    // One decision per person and version (a unique index): a second approval
                    // by the same person is a conflict, not a second approval.
                    sqlx::query(
                        "INSERT INTO approvals (agent_id, mandate_version, decision, decided_by,
                             person_id, comment, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&agent_id)
                    .bind(version)
                    .bind(decision)
                    .bind(&decided_by)
                    .bind(&person)
                    .bind(&comment)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        crate::error::conflict_or(
                            e,
                            format!("a decision of this person on version {version}"),
                        )
                    })?;
                    if approve {
                        let approvals: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM approvals
                              WHERE agent_id = $1 AND mandate_version = $2
                                AND decision = 'approved'",
                        )
                        .bind(&agent_id)
                        .bind(version)
                        .fetch_one(&mut *conn)
                        .await?;
                        if approvals < required {
                            event.action = "mandate.approval_recorded".into();
                            append(conn, &event).await?;
                            return Ok(MandateDecision::AwaitingApproval {
                                approvals,
                                required,
                            });
                        }
                        sqlx::query(
                            "UPDATE mandates SET status = 'superseded'
                             WHERE agent_id = $1 AND status = 'approved'",
                        )
                        .bind(&agent_id)
                        .execute(&mut *conn)
                        .await?;
                    }
                    sqlx::query(
                        "UPDATE mandates SET status = $3, decided_by = $4, decided_at = $5
                         WHERE agent_id = $1 AND version = $2 AND status = 'pending_approval'",
                    )
                    .bind(&agent_id)
                    .bind(version)
                    .bind(decision)
                    .bind(&decided_by)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    if approve {
                        retire_older(conn, &agent_id, version, &decided_by, retirement, now)
                            .await?;
                        // The first approval activates the agent; a suspended one stays
                        // suspended (lifting a suspension is its own decision).
                        sqlx::query(
                            "UPDATE agents SET status = CASE WHEN status = 'suspended'
                                 THEN 'suspended' ELSE 'active' END, updated_at = $2
                             WHERE id = $1",
                        )
                        .bind(&agent_id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        let operator = crate::webhooks::operator_of(conn, &agent_id).await?;
                        let data = serde_json::json!({"agent_id": agent_id,
                            "mandate_version": version, "approved_by": decided_by});
                        crate::webhooks::enqueue(
                            conn,
                            "agent.approved",
                            operator.as_deref(),
                            &data,
                        )
                        .await?;
                    }
                    append(conn, &event).await?;
                    Ok(if approve {
                        MandateDecision::Approved
                    } else {
                        MandateDecision::Rejected
                    })
                })
            })
            .await?;
        // An approval may have revoked certificates of older versions (a narrowing).
        if approve {
            self.publish([published, Change::Revocation]);
        } else {
            self.publish([published]);
        }
        Ok(out)
    }

    /// An agent by id.
    pub async fn agent(&self, id: &str) -> Result<Option<AgentRow>, StoreError> {
        let sql = concat!("SELECT ", agent_columns!(), " FROM agents WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(agent_row).transpose()
    }

    /// An agent with its organization's certificate limits (default profile, longest
    /// lifetime), in one read: what a certification request is checked against.
    pub async fn agent_with_limits(
        &self,
        id: &str,
    ) -> Result<Option<(AgentRow, CertificateLimits)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.organization, a.status, a.created_by, a.created_at,
                    a.updated_at, o.default_profile, o.max_validity_secs
             FROM agents a JOIN organizations o ON o.id = a.organization
             WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let agent = agent_row(&r)?;
        let limits = CertificateLimits {
            organization: agent.organization.clone(),
            default_profile: r.try_get("default_profile")?,
            max_validity_secs: r.try_get("max_validity_secs")?,
        };
        Ok(Some((agent, limits)))
    }

    /// An agent and its approved mandate version (if any) in one read: what issuance needs.
    pub async fn agent_with_approved_mandate(
        &self,
        id: &str,
    ) -> Result<Option<(AgentRow, Option<MandateRow>)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.organization, a.status, a.created_by, a.created_at,
                    a.updated_at, m.version, m.mandate, m.status AS m_status,
                    m.created_by AS m_created_by, m.created_at AS m_created_at, m.decided_by,
                    m.decided_at
             FROM agents a
             LEFT JOIN mandates m ON m.agent_id = a.id AND m.status = 'approved'
             WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let agent = agent_row(&r)?;
        let version: Option<i64> = r.try_get("version")?;
        let mandate = match version {
            None => None,
            Some(version) => {
                let status: String = r.try_get("m_status")?;
                Some(MandateRow {
                    agent_id: agent.id.clone(),
                    version,
                    mandate_json: r.try_get("mandate")?,
                    status: status.parse()?,
                    created_by: r.try_get("m_created_by")?,
                    created_at: r.try_get("m_created_at")?,
                    decided_by: r.try_get("decided_by")?,
                    decided_at: r.try_get("decided_at")?,
                })
            }
        };
        Ok(Some((agent, mandate)))
    }

    /// An agent with its newest mandate version and the number of its approved one.
    pub async fn agent_overview(&self, id: &str) -> Result<Option<AgentOverview>, StoreError> {
        let sql = concat!(overview_select!(), " WHERE a.id = $1");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(overview_row).transpose()
    }

    /// Agents (of `organization` only, if given) ordered by id, after `after` (exclusive), at
    /// most `limit`, each with its newest
    /// mandate version and the number of its approved one: one query for the whole page.
    pub async fn list_agent_overviews(
        &self,
        organization: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AgentOverview>, StoreError> {
        let filter = AgentFilter {
            organization,
            ..AgentFilter::default()
        };
        self.find_agent_overviews(&filter, after, limit).await
    }

    /// Agents matching `filter`, with their latest mandate, by id after `after`.
    pub async fn find_agent_overviews(
        &self,
        filter: &AgentFilter<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AgentOverview>, StoreError> {
        let sql = concat!(
            overview_select!(),
            " WHERE a.id > $1 AND ($3 = '' OR a.organization = $3)
               AND ($4 = '' OR a.status = $4) AND ($5 = '' OR m.status = $5)
               AND ($6 = '' OR LOWER(a.id) LIKE $6 ESCAPE '\\' OR LOWER(a.name) LIKE $6 ESCAPE '\\')
             ORDER BY a.id LIMIT $2"
        );
        let pattern = match filter.search.map(str::trim) {
            Some(q) if !q.is_empty() => format!("%{}%", like_escape(&q.to_lowercase())),
            _ => String::new(),
        };
        let rows = sqlx::query(sql)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .bind(filter.organization.unwrap_or(""))
            .bind(filter.status.map(AgentStatus::as_str).unwrap_or(""))
            .bind(
                filter
                    .mandate_status
                    .map(MandateStatus::as_str)
                    .unwrap_or(""),
            )
            .bind(pattern)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(overview_row).collect()
    }

    /// Every decision recorded on the agent's mandate versions, oldest first.
    pub async fn mandate_approvals(&self, agent_id: &str) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT mandate_version, decision, decided_by, person_id, comment, created_at
             FROM approvals WHERE agent_id = $1 ORDER BY id",
        )
        .bind(agent_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApprovalRow {
                    version: r.try_get("mandate_version")?,
                    decision: r.try_get("decision")?,
                    decided_by: r.try_get("decided_by")?,
                    person: r.try_get("person_id")?,
                    comment: r.try_get("comment")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Every mandate version of an agent, newest first.
    pub async fn mandates(&self, agent_id: &str) -> Result<Vec<MandateRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mandate_columns!(),
            " FROM mandates WHERE agent_id = $1 ORDER BY version DESC"
        );
        let rows = sqlx::query(sql)
            .bind(agent_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(mandate_row).collect()
    }
}

/// Retires the valid certificates of versions older than `version` (see [`Retirement`]): each
/// is revoked `superseded` now, or marked to retire after the grace with a
/// `certificate.superseded` webhook telling the bot to renew.
async fn retire_older(
    conn: &mut sqlx::AnyConnection,
    agent_id: &str,
    version: i64,
    decided_by: &str,
    retirement: Retirement,
    now: i64,
) -> Result<(), StoreError> {
    let serials: Vec<String> = sqlx::query_scalar(
        "SELECT serial FROM certificates
          WHERE agent_id = $1 AND mandate_version < $2 AND status = 'issued' AND not_after > $3
          ORDER BY serial",
    )
    .bind(agent_id)
    .bind(version)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let operator = crate::webhooks::operator_of(conn, agent_id).await?;
    for serial in serials {
        let retire_at = match retirement {
            Retirement::AtOnce => now,
            Retirement::After(grace) => now.saturating_add(grace),
        };
        sqlx::query("UPDATE certificates SET retire_at = $2 WHERE serial = $1")
            .bind(&serial)
            .bind(retire_at)
            .execute(&mut *conn)
            .await?;
        let details = serde_json::json!({"reason": "superseded", "agent_id": agent_id,
            "mandate_version": version, "retire_at": retire_at});
        match retirement {
            Retirement::AtOnce => {
                crate::revocation::revoke_one(
                    conn,
                    &serial,
                    crate::revocation::SUPERSEDED,
                    decided_by,
                    now,
                    serde_json::json!({"comment": format!(
                        "mandate version {version} of {agent_id} narrows the mandate this certificate carries"
                    ), "mandate_version": version}),
                )
                .await?;
            }
            Retirement::After(_) => {
                let data = serde_json::json!({"serial_number": serial, "agent_id": agent_id,
                    "mandate_version": version, "retire_at": retire_at, "renew": "now"});
                crate::audit::append(
                    conn,
                    &AuditEvent::new(decided_by, "certificate.superseded", &serial, details),
                )
                .await?;
                crate::webhooks::enqueue(
                    conn,
                    "certificate.superseded",
                    operator.as_deref(),
                    &data,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// An organization's limits on its agents' certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateLimits {
    /// The organization.
    pub organization: String,
    /// The profile of requests that name none (else the CA's).
    pub default_profile: Option<String>,
    /// The longest lifetime, in seconds (else the CA's).
    pub max_validity_secs: Option<i64>,
}

impl From<&crate::OrganizationRow> for CertificateLimits {
    fn from(o: &crate::OrganizationRow) -> Self {
        CertificateLimits {
            organization: o.id.clone(),
            default_profile: o.default_profile.clone(),
            max_validity_secs: o.max_validity_secs,
        }
    }
}

/// One person's decision on a mandate version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// The version.
    pub version: i64,
    /// `approved` or `rejected`.
    pub decision: String,
    /// The API key that decided.
    pub decided_by: String,
    /// The person holding it.
    pub person: Option<String>,
    /// Their words.
    pub comment: Option<String>,
    /// When (unix s).
    pub at: i64,
}

/// Which agents a listing shows: every field left empty matches all.
#[derive(Debug, Default, Clone, Copy)]
pub struct AgentFilter<'a> {
    /// Only this organization's.
    pub organization: Option<&'a str>,
    /// Only agents in this state.
    pub status: Option<AgentStatus>,
    /// Only agents whose latest mandate version is in this state (e.g. waiting for approval).
    pub mandate_status: Option<MandateStatus>,
    /// Only agents whose id or name contains this text (case-insensitive).
    pub search: Option<&'a str>,
}

/// `text` with LIKE's wildcards and the escape character escaped (`ESCAPE '\'`).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

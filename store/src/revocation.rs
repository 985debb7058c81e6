use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::Change;
use crate::audit::append;
use crate::webhooks::{enqueue, operator_of};
use crate::{AuditEvent, CertStatus, CertificateRow, Store, StoreError, now_unix};

impl Store {
    /// Revokes (`superseded`) the certificates whose retirement is due at `now`: those of an
    /// older mandate version whose grace after a widening approval ran out. At most 500 per
    /// call, all in one transaction; returns their serials. Safe on several nodes at once (a
    /// certificate is revoked once).
    pub async fn retire_due(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let retired = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let serials: Vec<String> = sqlx::query_scalar(
                        "SELECT serial FROM certificates
                          WHERE status = 'issued' AND retire_at IS NOT NULL AND retire_at <= $1
                          ORDER BY retire_at, serial LIMIT 500",
                    )
                    .bind(now)
                    .fetch_all(&mut *conn)
                    .await?;
                    for serial in &serials {
                        revoke_one(
                            conn,
                            serial,
                            SUPERSEDED,
                            "system:supersede",
                            now,
                            json!({"comment": "a newer mandate version was approved and the grace ran out"}),
                        )
                        .await?;
                    }
                    Ok(serials)
                })
            })
            .await?;
        if !retired.is_empty() {
            self.publish([Change::Revocation]);
        }
        Ok(retired)
    }
}

/// What a revocation request did.
#[derive(Debug, Clone)]
pub enum Revocation {
    /// The certificate is now revoked.
    Revoked(CertificateRow),
    /// It was revoked before; nothing changed (the first revocation's time and reason stand).
    AlreadyRevoked(CertificateRow),
}

/// What a kill switch acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillScope {
    /// One agent.
    Agent,
    /// Every agent of an operator organization.
    Operator,
}

impl KillScope {
    fn as_str(self) -> &'static str {
        match self {
            KillScope::Agent => "agent",
            KillScope::Operator => "operator",
        }
    }
}

/// What a kill switch did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KillSwitch {
    /// Row id of the kill switch record.
    pub id: i64,
    /// Agents now suspended (issuance blocked until a compliance officer re-approves).
    pub agents: Vec<String>,
    /// Serials revoked by it (those already revoked are not counted again).
    pub certificates_revoked: Vec<String>,
}

/// A kill switch as it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitchRow {
    /// Row id.
    pub id: i64,
    /// `agent` or `operator`.
    pub scope: String,
    /// The agent id or the operator organization.
    pub target: String,
    /// API key id (or `cli:…`, `system:…`) that pulled it.
    pub pulled_by: String,
    /// Why, as given.
    pub reason: String,
    /// Agents it suspended.
    pub agents_suspended: i64,
    /// Certificates it revoked.
    pub certificates_revoked: i64,
    /// Unix s.
    pub created_at: i64,
}

impl Store {
    /// The most recent kill switches, newest first.
    pub async fn kill_switches(
        &self,
        organization: Option<&str>,
        limit: i64,
    ) -> Result<Vec<KillSwitchRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, scope, target, pulled_by, reason, agents_suspended, certificates_revoked,
                    created_at
             FROM kill_switches
             WHERE $2 = ''
                OR (scope = 'operator' AND target = $2)
                OR (scope = 'agent' AND target IN (SELECT id FROM agents WHERE organization = $2))
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .bind(organization.unwrap_or(""))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KillSwitchRow {
                    id: r.try_get("id")?,
                    scope: r.try_get("scope")?,
                    target: r.try_get("target")?,
                    pulled_by: r.try_get("pulled_by")?,
                    reason: r.try_get("reason")?,
                    agents_suspended: r.try_get("agents_suspended")?,
                    certificates_revoked: r.try_get("certificates_revoked")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// RFC 5280 CRLReason privilegeWithdrawn: the kill switch's reason code.
const PRIVILEGE_WITHDRAWN: i64 = 9;

/// Revokes a certificate whose signing completed after its agent stopped being eligible
/// (inside the completing transaction).
pub(crate) async fn revoke_reserved(
    conn: &mut AnyConnection,
    serial: &str,
    now: i64,
) -> Result<(), StoreError> {
    revoke_one(
        conn,
        serial,
        PRIVILEGE_WITHDRAWN,
        "system:issuance",
        now,
        json!({"reason": PRIVILEGE_WITHDRAWN, "reason_name": "privilegeWithdrawn",
               "comment": "the agent stopped being eligible while the certificate was signed"}),
    )
    .await
}

/// RFC 5280 CRLReason `superseded`.
pub(crate) const SUPERSEDED: i64 = 4;

pub(crate) async fn revoke_one(
    conn: &mut AnyConnection,
    serial: &str,
    reason: i64,
    actor: &str,
    now: i64,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    let fingerprint: Option<String> = sqlx::query_scalar(
        "UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3,
             revoked_by = $4, ocsp_refresh_at = 0
         WHERE serial = $1 AND status <> 'revoked' RETURNING sha256",
    )
    .bind(serial)
    .bind(now)
    .bind(reason)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    let agent: String = sqlx::query_scalar("SELECT agent_id FROM certificates WHERE serial = $1")
        .bind(serial)
        .fetch_one(&mut *conn)
        .await?;
    // RTS 6 Art. 12: a stopped agent's resting orders are cancelled too. Every revocation but
    // a supersession (a renewal, a newer mandate: another certificate takes over) stops it.
    let data = json!({"serial_number": serial, "agent_id": agent, "reason_code": reason,
                      "revoked_at": now, "revoked_by": actor, "details": details,
                      "cancel_open_orders": reason != SUPERSEDED});
    let mut event = AuditEvent::new(actor, "certificate.revoked", serial, details);
    event.cert_fingerprint = fingerprint;
    append(conn, &event).await?;
    let operator = operator_of(conn, &agent).await?;
    enqueue(conn, "certificate.revoked", operator.as_deref(), &data).await?;
    Ok(())
}

impl Store {
    /// Revokes one certificate (issued, or reserved and never returned) with an RFC 5280 reason
    /// code. Idempotent: a second call changes nothing and says so.
    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: i64,
        actor: &str,
        details: serde_json::Value,
    ) -> Result<Revocation, StoreError> {
        let (serial, actor) = (serial.to_owned(), actor.to_owned());
        let now = now_unix();
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let status: Option<String> =
                        sqlx::query_scalar("SELECT status FROM certificates WHERE serial = $1")
                            .bind(&serial)
                            .fetch_optional(&mut *conn)
                            .await?;
                    let status: CertStatus = status
                        .ok_or_else(|| StoreError::NotFound(format!("certificate {serial}")))?
                        .parse()?;
                    let revoked = status != CertStatus::Revoked;
                    if revoked {
                        revoke_one(conn, &serial, reason, &actor, now, details).await?;
                    }
                    let row = crate::certificates::fetch(conn, &serial).await?;
                    Ok(if revoked {
                        Revocation::Revoked(row)
                    } else {
                        Revocation::AlreadyRevoked(row)
                    })
                })
            })
            .await?;
        if let Revocation::Revoked(row) = &out {
            self.publish([Change::Revocation, Change::Agent(row.agent_id.clone())]);
        }
        Ok(out)
    }

    /// The kill switch: suspends the agent (or every agent of the organization) and revokes each
    /// of their certificates not yet revoked, with reason privilegeWithdrawn, all in one
    /// transaction with the record of who pulled it and why. `incident` names the
    /// auto-revocation incident this kill switch carries out, if any.
    pub async fn pull_kill_switch(
        &self,
        scope: KillScope,
        target: &str,
        actor: &str,
        reason: &str,
        incident: Option<i64>,
    ) -> Result<KillSwitch, StoreError> {
        let (target, actor, reason) = (target.to_owned(), actor.to_owned(), reason.to_owned());
        let now = now_unix();
        let out = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let agents: Vec<String> = match scope {
                        KillScope::Agent => {
                            sqlx::query_scalar("SELECT id FROM agents WHERE id = $1")
                                .bind(&target)
                                .fetch_all(&mut *conn)
                                .await?
                        }
                        KillScope::Operator => {
                            sqlx::query_scalar(
                                "SELECT id FROM agents WHERE organization = $1 ORDER BY id",
                            )
                            .bind(&target)
                            .fetch_all(&mut *conn)
                            .await?
                        }
                    };
                    if agents.is_empty() {
                        return Err(StoreError::NotFound(format!("{} {target}", scope.as_str())));
                    }
                    let mut serials = Vec::new();
                    for agent in &agents {
                        let rows = sqlx::query(
                            "SELECT serial FROM certificates
                             WHERE agent_id = $1 AND status <> 'revoked' ORDER BY serial",
                        )
                        .bind(agent)
                        .fetch_all(&mut *conn)
                        .await?;
                        for r in rows {
                            serials.push(r.try_get::<String, _>("serial")?);
                        }
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO kill_switches (scope, target, pulled_by, reason,
                             agents_suspended, certificates_revoked, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(scope.as_str())
                    .bind(&target)
                    .bind(&actor)
                    .bind(&reason)
                    .bind(i64::try_from(agents.len()).unwrap_or(i64::MAX))
                    .bind(i64::try_from(serials.len()).unwrap_or(i64::MAX))
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    append(
                        conn,
                        &AuditEvent::new(
                            &actor,
                            "kill_switch.pulled",
                            &target,
                            json!({"kill_switch": id, "scope": scope.as_str(), "reason": reason,
                                   "agents": agents, "certificates": serials.len()}),
                        ),
                    )
                    .await?;
                    for agent in &agents {
                        sqlx::query(
                            "UPDATE agents SET status = 'suspended', updated_at = $2 WHERE id = $1",
                        )
                        .bind(agent)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        let data = json!({"agent_id": agent, "kill_switch": id, "reason": reason,
                                          "by": actor, "incident_id": incident});
                        append(
                            conn,
                            &AuditEvent::new(&actor, "agent.suspended", agent, data.clone()),
                        )
                        .await?;
                        let operator = operator_of(conn, agent).await?;
                        // The kill function (RTS 6 Art. 12) cancels what is resting too.
                        let mut hook = data.clone();
                        hook["cancel_open_orders"] = json!(true);
                        enqueue(conn, "agent.suspended", operator.as_deref(), &hook).await?;
                    }
                    if let Some(incident) = incident {
                        sqlx::query("UPDATE incidents SET kill_switch_id = $2 WHERE id = $1")
                            .bind(incident)
                            .bind(id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    for serial in &serials {
                        revoke_one(
                            conn,
                            serial,
                            PRIVILEGE_WITHDRAWN,
                            &actor,
                            now,
                            json!({"reason": PRIVILEGE_WITHDRAWN, "kill_switch": id,
                                   "comment": reason}),
                        )
                        .await?;
                    }
                    Ok(KillSwitch {
                        id,
                        agents,
                        certificates_revoked: serials,
                    })
                })
            })
            .await?;
        self.publish(
            std::iter::once(Change::Revocation)
                .chain(out.agents.iter().map(|a| Change::Agent(a.clone()))),
        );
        Ok(out)
    }

    /// Lifts a suspension: the agent is active again with its approved mandate. Refused unless
    /// the agent is suspended and has an approved version.
    pub async fn reinstate_agent(
        &self,
        agent_id: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let published = Change::Agent(agent_id.to_owned());
        let (agent_id, event) = (agent_id.to_owned(), event.clone());
        let now = now_unix();
        self.writer
            .write_first_statement(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE agents SET status = 'active', updated_at = $2
                         WHERE id = $1 AND status = 'suspended' AND EXISTS (
                             SELECT 1 FROM mandates WHERE agent_id = $1 AND status = 'approved')
                           AND NOT EXISTS (
                             SELECT 1 FROM incidents WHERE agent_id = $1
                               AND revokes = TRUE AND status <> 'resolved')",
                    )
                    .bind(&agent_id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed != 1 {
                        return Err(StoreError::WrongState(format!(
                            "agent {agent_id} is not suspended with an approved mandate, or has an incident that revoked it not yet resolved (a compliance officer must resolve it first)"
                        )));
                    }
                    append(conn, &event).await
                })
            })
            .await?;
        self.publish([published]);
        Ok(())
    }
}

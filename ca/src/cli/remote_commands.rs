//! The commands that run over `--url`: each is one or two API calls, printed as the API
//! answered (`--json`) or as text and tables for people.

use serde_json::{Value, json};

use super::remote::{Api, read_json, seg};
use super::{
    AgentsCommand, ApiKeysCommand, ApprovalsCommand, Command, IncidentsCommand, OrgsCommand,
    PeopleCommand, RevokeCommand, WebhooksCommand, output,
};

/// Columns of the agents table.
const AGENT_COLUMNS: &[(&str, &str)] = &[
    ("AGENT", "/agent_id"),
    ("ORGANIZATION", "/organization"),
    ("STATUS", "/status"),
    ("MANDATE", "/mandate_version"),
    ("MANDATE STATUS", "/mandate_status"),
    ("UPDATED", "/updated_at"),
];

/// Runs `command` against the API.
pub async fn dispatch(api: &Api, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Agents(cmd) => agents(api, cmd).await,
        Command::Approvals(cmd) => approvals(api, cmd).await,
        Command::Incidents(cmd) => incidents(api, cmd).await,
        Command::Webhooks(cmd) => webhooks(api, cmd).await,
        Command::People(cmd) => people(api, cmd).await,
        Command::Orgs(cmd) => orgs(api, cmd).await,
        Command::ApiKeys(ApiKeysCommand::Create {
            role,
            label,
            person,
            agent_id,
        }) => {
            let body =
                json!({"role": role, "label": label, "person": person, "agent_id": agent_id});
            output::emit(&api.post("/v1/api-keys", Some(body)).await?)
        }
        Command::Revoke(cmd) => revoke(api, cmd).await,
        other => anyhow::bail!(
            "`mandate {}` runs on the data directory, not over --url",
            other.name()
        ),
    }
}

async fn agents(api: &Api, cmd: AgentsCommand) -> anyhow::Result<()> {
    match cmd {
        AgentsCommand::List {
            status,
            search,
            cursor,
        } => {
            let page = api
                .get(
                    "/v1/agents",
                    &[
                        ("limit", Some("100".into())),
                        ("status", status),
                        ("q", search),
                        ("cursor", cursor),
                    ],
                )
                .await?;
            output::page(&page, AGENT_COLUMNS)
        }
        AgentsCommand::Show { id } => {
            output::emit(&api.get(&format!("/v1/agents/{}", seg(&id)), &[]).await?)
        }
        AgentsCommand::Register {
            id,
            name,
            mandate,
            organization,
        } => {
            let mandate = read_json("--mandate", &mandate)?;
            let body = json!({
                "agent_id": id, "name": name, "organization": organization, "mandate": mandate,
            });
            output::emit(&api.post("/v1/agents", Some(body)).await?)
        }
        AgentsCommand::Submit { id, mandate } => {
            let mandate = read_json("--mandate", &mandate)?;
            let path = format!("/v1/agents/{}/mandate", seg(&id));
            output::emit(&api.post(&path, Some(json!({"mandate": mandate}))).await?)
        }
        AgentsCommand::Mandates { id } => {
            let versions = api
                .get(&format!("/v1/agents/{}/mandates", seg(&id)), &[])
                .await?;
            output::emit(&versions)
        }
        AgentsCommand::Certificates { id, cursor } => {
            let page = api
                .get(
                    &format!("/v1/agents/{}/certificates", seg(&id)),
                    &[("cursor", cursor)],
                )
                .await?;
            output::page(
                &page,
                &[
                    ("SERIAL", "/serial_number"),
                    ("STATUS", "/status"),
                    ("NOT AFTER", "/not_after"),
                    ("MANDATE", "/mandate_version"),
                    ("REASON", "/revocation_reason"),
                ],
            )
        }
        AgentsCommand::Eab { id } => {
            let path = format!("/v1/agents/{}/eab", seg(&id));
            output::emit(&api.post(&path, None).await?)
        }
    }
}

async fn approvals(api: &Api, cmd: ApprovalsCommand) -> anyhow::Result<()> {
    match cmd {
        ApprovalsCommand::List { cursor } => {
            let mut page = api
                .get(
                    "/v1/agents",
                    &[
                        ("limit", Some("100".into())),
                        ("mandate_status", Some("pending_approval".into())),
                        ("cursor", cursor),
                    ],
                )
                .await?;
            // Each with what it changes: the review is of the difference, not the whole.
            if let Some(items) = page["items"].as_array_mut() {
                for item in items.iter_mut() {
                    let id = item["agent_id"].as_str().unwrap_or_default().to_owned();
                    let versions = api
                        .get(&format!("/v1/agents/{}/mandates", seg(&id)), &[])
                        .await?;
                    let pending = versions["items"]
                        .as_array()
                        .and_then(|v| v.iter().find(|m| m["status"] == "pending_approval"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    item["changes"] = pending["changes"].clone();
                    item["requested_by"] = pending["requested_by"].clone();
                    item["requested_at"] = pending["requested_at"].clone();
                    let text = if item["approved_mandate_version"].is_null() {
                        "first version".to_owned()
                    } else {
                        changes_text(&pending["changes"])
                    };
                    item["changes_text"] = Value::String(text);
                }
            }
            // The one-line form is for the table; JSON keeps the structured changes.
            if output::is_json()
                && let Some(items) = page["items"].as_array_mut()
            {
                for item in items.iter_mut() {
                    if let Some(o) = item.as_object_mut() {
                        o.remove("changes_text");
                    }
                }
            }
            output::page(
                &page,
                &[
                    ("AGENT", "/agent_id"),
                    ("ORGANIZATION", "/organization"),
                    ("VERSION", "/mandate_version"),
                    ("REQUESTED", "/requested_at"),
                    ("CHANGES", "/changes_text"),
                ],
            )
        }
        ApprovalsCommand::Approve {
            id,
            version,
            comment,
        } => decide(api, &id, "approve", version, comment).await,
        ApprovalsCommand::Reject {
            id,
            version,
            comment,
        } => decide(api, &id, "reject", version, comment).await,
    }
}

/// A mandate's changes as one line: `maxTransactionSize 1000 EUR → 5000 EUR; …`.
fn changes_text(changes: &Value) -> String {
    match changes.as_array() {
        None => "first version".into(),
        Some(list) if list.is_empty() => "no change".into(),
        Some(list) => list
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {}",
                    c["field"].as_str().unwrap_or("?"),
                    c["before"].as_str().unwrap_or("?"),
                    c["after"].as_str().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

async fn decide(
    api: &Api,
    id: &str,
    verb: &str,
    version: i64,
    comment: Option<String>,
) -> anyhow::Result<()> {
    let path = format!("/v1/agents/{}/{verb}", seg(id));
    let body = json!({"version": version, "comment": comment});
    output::emit(&api.post(&path, Some(body)).await?)
}

async fn incidents(api: &Api, cmd: IncidentsCommand) -> anyhow::Result<()> {
    match cmd {
        IncidentsCommand::List {
            status,
            agent,
            cursor,
        } => {
            let page = api
                .get(
                    "/v1/incidents",
                    &[
                        ("limit", Some("100".into())),
                        ("status", status),
                        ("agent_id", agent),
                        ("cursor", cursor),
                    ],
                )
                .await?;
            output::page(
                &page,
                &[
                    ("ID", "/id"),
                    ("AGENT", "/agent_id"),
                    ("KIND", "/kind"),
                    ("STATUS", "/status"),
                    ("RISK", "/risk_score"),
                    ("CREATED", "/created_at"),
                ],
            )
        }
        IncidentsCommand::Show { id } => {
            output::emit(&api.get(&format!("/v1/incidents/{id}"), &[]).await?)
        }
        IncidentsCommand::Acknowledge { id } => {
            let path = format!("/v1/incidents/{id}/acknowledge");
            output::emit(&api.post(&path, None).await?)
        }
        IncidentsCommand::Resolve { id, resolution } => {
            let path = format!("/v1/incidents/{id}/resolve");
            output::emit(
                &api.post(&path, Some(json!({"resolution": resolution})))
                    .await?,
            )
        }
    }
}

async fn webhooks(api: &Api, cmd: WebhooksCommand) -> anyhow::Result<()> {
    match cmd {
        WebhooksCommand::List { cursor } => {
            let page = api.get("/v1/webhooks", &[("cursor", cursor)]).await?;
            output::page(
                &page,
                &[
                    ("ID", "/id"),
                    ("URL", "/url"),
                    ("ORGANIZATION", "/operator"),
                    ("EVENTS", "/events"),
                    ("DISABLED", "/disabled_at"),
                ],
            )
        }
        WebhooksCommand::Show { id } => {
            output::emit(&api.get(&format!("/v1/webhooks/{}", seg(&id)), &[]).await?)
        }
        WebhooksCommand::Create {
            endpoint,
            events,
            organization,
        } => {
            let events = (!events.is_empty()).then_some(events);
            let body = json!({"url": endpoint, "events": events, "operator": organization});
            output::emit(&api.post("/v1/webhooks", Some(body)).await?)
        }
        WebhooksCommand::Disable { id } => {
            let path = format!("/v1/webhooks/{}/disable", seg(&id));
            output::emit(&api.post(&path, None).await?)
        }
        WebhooksCommand::Redeliver { id, delivery } => {
            let path = format!("/v1/webhooks/{}/deliveries/{delivery}/redeliver", seg(&id));
            output::emit(&api.post(&path, None).await?)
        }
        WebhooksCommand::Deliveries { id, cursor } => {
            let page = api
                .get(
                    &format!("/v1/webhooks/{}/deliveries", seg(&id)),
                    &[("cursor", cursor)],
                )
                .await?;
            output::page(
                &page,
                &[
                    ("ID", "/id"),
                    ("EVENT", "/event_type"),
                    ("STATUS", "/status"),
                    ("ATTEMPTS", "/attempts"),
                    ("LAST ATTEMPT", "/last_attempt_at"),
                    ("ANSWER", "/last_status_code"),
                ],
            )
        }
    }
}

async fn people(api: &Api, cmd: PeopleCommand) -> anyhow::Result<()> {
    match cmd {
        PeopleCommand::Create {
            id,
            name,
            email,
            organization,
            roles,
        } => {
            let body = json!({
                "id": id, "name": name, "email": email, "organization": organization,
                "roles": roles,
            });
            output::emit(&api.post("/v1/people", Some(body)).await?)
        }
        PeopleCommand::List {
            organization,
            cursor,
        } => {
            let page = api
                .get(
                    "/v1/people",
                    &[
                        ("limit", Some("100".into())),
                        ("organization", organization),
                        ("cursor", cursor),
                    ],
                )
                .await?;
            output::page(
                &page,
                &[
                    ("ID", "/id"),
                    ("NAME", "/name"),
                    ("ORGANIZATION", "/organization"),
                    ("ROLES", "/roles"),
                    ("DISABLED", "/disabled_at"),
                ],
            )
        }
        PeopleCommand::Disable { id } => {
            let path = format!("/v1/people/{}/disable", seg(&id));
            output::emit(&api.post(&path, None).await?)
        }
    }
}

async fn orgs(api: &Api, cmd: OrgsCommand) -> anyhow::Result<()> {
    match cmd {
        OrgsCommand::Create {
            id,
            legal_name,
            legal_entities,
            regulator_id,
            approvals_required,
            default_profile,
            max_validity_secs,
        } => {
            let body = json!({
                "id": id, "legal_name": legal_name, "legal_entities": legal_entities,
                "regulator_id": regulator_id, "approvals_required": approvals_required,
                "default_profile": default_profile, "max_validity_secs": max_validity_secs,
            });
            output::emit(&api.post("/v1/organizations", Some(body)).await?)
        }
        OrgsCommand::List { cursor } => {
            let page = api
                .get(
                    "/v1/organizations",
                    &[("limit", Some("100".into())), ("cursor", cursor)],
                )
                .await?;
            output::page(
                &page,
                &[
                    ("ID", "/id"),
                    ("LEGAL NAME", "/legal_name"),
                    ("APPROVALS", "/approvals_required"),
                    ("CREATED", "/created_at"),
                ],
            )
        }
    }
}

async fn revoke(api: &Api, cmd: RevokeCommand) -> anyhow::Result<()> {
    let (path, body) = match cmd {
        RevokeCommand::Certificate {
            serial,
            reason,
            comment,
        } => (
            format!("/v1/certificates/{}/revoke", seg(&serial)),
            json!({"reason": reason, "comment": comment}),
        ),
        RevokeCommand::Agent { id, reason } => (
            format!("/v1/agents/{}/revoke", seg(&id)),
            json!({"reason": reason}),
        ),
        RevokeCommand::Operator {
            organization,
            reason,
        } => (
            format!("/v1/operators/{}/revoke", seg(&organization)),
            json!({"reason": reason}),
        ),
    };
    output::emit(&api.post(&path, Some(body)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_one_line() {
        assert_eq!(changes_text(&Value::Null), "first version");
        let changes = json!([
            {"field": "maxTransactionSize", "before": "1000 EUR", "after": "5000 EUR"},
            {"field": "allowedMarkets", "before": "BTC_EUR", "after": "BTC_EUR, ETH_EUR"}
        ]);
        assert_eq!(
            changes_text(&changes),
            "maxTransactionSize 1000 EUR → 5000 EUR; allowedMarkets BTC_EUR → BTC_EUR, ETH_EUR"
        );
    }
}

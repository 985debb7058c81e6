//! The pages. Each reads through the JSON API's handlers (same role checks, same views) and
//! renders what it got; a section the role may not read shows the refusal instead.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mandate_store::Role;
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::chart::{Point, risk_timeline};
use super::layout::{self, at, badge, csrf, notice, problem, text, when};
use super::session::Signed;
use crate::http::roles::{
    ACKNOWLEDGERS, AUDIT_READERS, DECIDERS, MANDATE_REQUESTERS, READERS, REPORTERS, RESOLVERS,
    REVOKERS, WEBHOOK_MANAGERS,
};
use crate::http::{
    ApiError, ApiPath, ApiQuery, AppState, PageQuery, agents, audit, behaviour, certificates,
    incidents, organizations, reports, webhooks,
};

/// The register form's starting point: the shape of a mandate, limits to be edited.
const MANDATE_TEMPLATE: &str = r#"{
  "maxTransactionSize": {"amount": "10000", "currency": "EUR"},
  "maxDailyVolume": {"amount": "100000", "currency": "EUR"},
  "allowedMarkets": ["BTC_EUR"],
  "allowedCounterparties": ["exchange_a"],
  "allowedRegions": ["eu-west-1"],
  "permittedActions": ["trade_execution"],
  "circuitBreakerThreshold": 0.7,
  "autoRevokeThreshold": 0.9
}"#;

/// Most rows a table shows.
const ROWS: u32 = 100;

/// `?done=` after a form post; on the agent page also `?certs=`, the cursor of its
/// certificates' page.
#[derive(Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
    certs: Option<String>,
}

/// The JSON a handler answered, or its refusal.
pub(super) async fn value<T: serde::Serialize>(
    r: impl Future<Output = Result<Json<T>, ApiError>>,
) -> Result<Value, ApiError> {
    let Json(v) = r.await?;
    serde_json::to_value(v).map_err(|e| ApiError::from(crate::CaError::Internal(e.to_string())))
}

/// A handler's query or body type, built from JSON (their fields are private to the API).
pub(super) fn from_json<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Key id → the name of the person behind it, for every `*_by`/`actor` member in `values`
/// (a key without a person keeps its id).
async fn names<'a>(
    state: &AppState,
    values: impl IntoIterator<Item = &'a Value>,
    more: impl IntoIterator<Item = String>,
) -> std::collections::BTreeMap<String, String> {
    let mut keys: std::collections::BTreeSet<String> = more.into_iter().collect();
    for v in values {
        crate::names::acting_keys(v, &mut keys);
    }
    crate::names::people_of(&state.node.store, keys)
        .await
        .map(|m| m.into_iter().map(|(k, p)| (k, p.name)).collect())
        .unwrap_or_default()
}

/// The person's name for a key id, or the id itself.
fn by(names: &std::collections::BTreeMap<String, String>, key: &str) -> String {
    names.get(key).cloned().unwrap_or_else(|| key.to_owned())
}

fn can(signed: &Signed, roles: &[Role]) -> bool {
    roles.contains(&signed.caller.role)
}

fn page_query() -> ApiQuery<PageQuery> {
    ApiQuery(PageQuery {
        limit: Some(ROWS),
        cursor: None,
    })
}

fn items(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

fn score_text(v: &Value) -> String {
    // Shares can be a hair below zero; "-0.000" reads as a sign error.
    v.as_f64().map_or_else(String::new, |s| {
        format!("{:.3}", if s.abs() < 0.0005 { 0.0 } else { s })
    })
}

/// `?done=&cursor=&q=` of the agents page.
#[derive(Deserialize, Default)]
pub(crate) struct AgentsPage {
    done: Option<String>,
    cursor: Option<String>,
    q: Option<String>,
}

/// A query of `GET /v1/agents` for a dashboard page.
fn agent_query(
    cursor: Option<String>,
    q: Option<String>,
    mandate_status: Option<&str>,
) -> ApiQuery<agents::AgentQuery> {
    ApiQuery(agents::AgentQuery {
        limit: Some(ROWS),
        cursor,
        status: None,
        mandate_status: mandate_status.map(str::to_owned),
        q,
    })
}

/// `GET /dashboard?q=&cursor=`: the agents (100 a page, searchable by id or name) with their
/// status, mandate, risk and certificates.
pub(crate) async fn overview(
    State(state): State<AppState>,
    signed: Signed,
    Query(params): Query<AgentsPage>,
) -> Response {
    let caller = signed.caller.clone();
    let search = params.q.clone().filter(|q| !q.trim().is_empty());
    let list = match value(agents::list(
        State(state.clone()),
        caller.clone(),
        agent_query(params.cursor.clone(), search.clone(), None),
    ))
    .await
    {
        Ok(v) => v,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let waiting = value(agents::list(
        State(state.clone()),
        caller.clone(),
        agent_query(None, None, Some("pending_approval")),
    ))
    .await
    .unwrap_or(Value::Null);
    let pending = match (items(&waiting, "items").len(), waiting.get("next_cursor")) {
        (n, Some(c)) if !c.is_null() => format!("{n}+"),
        (n, _) => n.to_string(),
    };
    let next = list.get("next_cursor").and_then(Value::as_str).map(|c| {
        let mut href = format!("/dashboard?cursor={}", layout::query_escape(c));
        if let Some(q) = &search {
            href.push_str("&q=");
            href.push_str(&layout::query_escape(q));
        }
        href
    });
    let params_cursor_set = params.cursor.is_some();
    let done = params;
    let agents = items(&list, "items");
    let mut rows = Vec::with_capacity(agents.len());
    for a in &agents {
        let id = text(&a["agent_id"]);
        let risk = value(behaviour::risk_score(
            State(state.clone()),
            caller.clone(),
            ApiPath(id.clone()),
        ))
        .await
        .unwrap_or(Value::Null);
        let certs = state
            .node
            .store
            .agent_certificate_summary(&id, mandate_store::now_unix())
            .await
            .unwrap_or((0, 0));
        rows.push((a, risk, certs));
    }
    let open = value(incidents::list(
        State(state.clone()),
        caller.clone(),
        ApiQuery(match from_json(json!({"status": "open", "limit": ROWS})) {
            Ok(q) => q,
            Err(e) => return layout::error_page(Some(&signed), e),
        }),
    ))
    .await
    .map(|v| items(&v, "items").len())
    .unwrap_or(0);
    let body = html! {
        (notice(done.done.as_deref()))
        div.title-row {
            h1 { "Agents" }
            a.button #export-agents href={ "/dashboard/export/agents.csv" @if let Some(q) = &search { "?q=" (layout::query_escape(q)) } } { "Export CSV" }
        }
        div.tiles {
            div.tile { span.n #agent-count { (agents.len()) } span { "agents" } }
            a.tile href="/dashboard/approvals" { span.n #pending-count { (pending) } span { "mandates awaiting approval" } }
            a.tile href="/dashboard/incidents" { span.n #open-incidents { (open) } span { "open incidents" } }
        }
        @if can(&signed, MANDATE_REQUESTERS) {
            details.card #register-agent {
                summary { "Register an agent" }
                form method="post" action="/dashboard/agents" {
                    (csrf(&signed))
                    label { "Agent id " input type="text" name="agent_id" required maxlength="63" pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" placeholder="trading-bot-1"; }
                    label { "Name " input type="text" name="name" required maxlength="200"; }
                    label.block { "Mandate (JSON) "
                        textarea.mono name="mandate" rows="16" spellcheck="false" required {
                            (MANDATE_TEMPLATE)
                        }
                    }
                    button #register type="submit" { "Register (waits for compliance)" }
                }
            }
        }
        form.search #agent-search method="get" action="/dashboard" {
            input type="search" name="q" value=(search.clone().unwrap_or_default())
                placeholder="Agent id or name" aria-label="Search agents" maxlength="100";
            button type="submit" { "Search" }
            @if search.is_some() { " " a href="/dashboard" { "Clear" } }
        }
        @if agents.is_empty() && search.is_some() {
            p.muted #no-match { "No agent matches." }
        }
        table #agents {
            thead { tr {
                th { "Agent" } th { "Operator" } th { "Status" } th { "Mandate" }
                th { "Risk" } th { "Certificates" }
            } }
            tbody {
                @for (a, risk, (valid, revoked)) in &rows {
                    tr data-agent=(text(&a["agent_id"])) {
                        td {
                            a href={ "/dashboard/agents/" (text(&a["agent_id"])) } { (text(&a["agent_id"])) }
                            br; span.muted { (text(&a["name"])) }
                        }
                        td { (text(&a["organization"])) }
                        td { (badge(&text(&a["status"]))) }
                        td {
                            "v" (text(&a["mandate_version"])) " " (badge(&text(&a["mandate_status"])))
                            @if let Some(v) = a["approved_mandate_version"].as_i64() {
                                @if a["mandate_version"].as_i64() != Some(v) {
                                    br; span.muted { "issuing with v" (v) }
                                }
                            }
                        }
                        td.risk {
                            @if risk.is_null() { span.muted { "—" } }
                            @else {
                                @if risk["risk_score"].is_null() {
                                    span.muted.not-monitored { "not monitored" }
                                } @else {
                                    span.score { (score_text(&risk["risk_score"])) } " "
                                    (badge(&text(&risk["risk_band"])))
                                }
                            }
                        }
                        td { (valid) " valid" @if *revoked > 0 { ", " (revoked) " revoked" } }
                    }
                }
            }
        }
        @if params_cursor_set {
            a #first-page href="/dashboard" { "First page" } " "
        }
        @if let Some(href) = &next {
            a #next-page href=(href) { "Next " (ROWS) " agents" }
        }
    };
    layout::page("Agents", &signed, "/dashboard", body)
}

/// `GET /dashboard/agents/{id}`: the mandate, the risk timeline, baselines, certificates,
/// incidents and events, with what the role may do.
pub(crate) async fn agent(
    State(state): State<AppState>,
    signed: Signed,
    ApiPath(id): ApiPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let caller = signed.caller.clone();
    let st = || State(state.clone());
    let a = match value(agents::get_one(st(), caller.clone(), ApiPath(id.clone()))).await {
        Ok(v) => v,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            return layout::not_found(&signed, &format!("agent {id}"));
        }
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let risk = value(behaviour::risk_score(
        st(),
        caller.clone(),
        ApiPath(id.clone()),
    ))
    .await;
    let usage = value(behaviour::usage(st(), caller.clone(), ApiPath(id.clone()))).await;
    let baselines = value(behaviour::list_baselines(
        st(),
        caller.clone(),
        ApiPath(id.clone()),
    ))
    .await;
    let certs = value(certificates::list_for_agent(
        st(),
        caller.clone(),
        ApiPath(id.clone()),
        ApiQuery(PageQuery {
            limit: Some(ROWS),
            cursor: done.certs.clone().filter(|c| !c.is_empty()),
        }),
    ))
    .await;
    let older_certs = certs
        .as_ref()
        .ok()
        .and_then(|c| c["next_cursor"].as_str())
        .map(|c| {
            format!(
                "/dashboard/agents/{}?certs={}#certificates",
                layout::query_escape(&id),
                layout::query_escape(c)
            )
        });
    let incidents = match from_json(json!({"agent_id": id, "limit": 20})) {
        Ok(q) => value(incidents::list(st(), caller.clone(), ApiQuery(q))).await,
        Err(e) => Err(e),
    };
    // Events have no API of their own yet: the same readers as the agent may see them.
    let events = match caller.require(READERS) {
        Ok(()) => state
            .node
            .store
            .agent_events(&id, 200)
            .await
            .map_err(|e| ApiError::from(crate::CaError::from(e))),
        Err(e) => Err(e.into()),
    };
    let who = names(
        &state,
        [&a].into_iter()
            .chain(baselines.as_ref().ok())
            .chain(certs.as_ref().ok()),
        [],
    )
    .await;
    let status = text(&a["status"]);
    let pending_mandate = a["mandate_status"] == "pending_approval";
    // What the pending version changes, read before the approve button.
    let changes = if pending_mandate {
        value(agents::mandates(st(), caller.clone(), ApiPath(id.clone())))
            .await
            .map(|v| v["items"][0]["changes"].clone())
    } else {
        Ok(Value::Null)
    };
    let body = html! {
        (notice(done.done.as_deref()))
        div.title-row {
            h1 { (id) " " (badge(&status)) }
            div.actions {
                @if can(&signed, REVOKERS) && status != "suspended" {
                    a.button.danger #kill-switch href={ "/dashboard/agents/" (id) "/kill" } { "Kill switch…" }
                }
            }
        }
        p.muted #agent-meta {
            (text(&a["name"])) " · " (text(&a["organization"])) " · " (text(&a["dns_name"]))
            " · registered by " (by(&who, &text(&a["registered_by"]))) " at " (at(&a["created_at"]))
        }

        section.card #mandate {
            h2 { "Mandate v" (text(&a["mandate_version"])) " " (badge(&text(&a["mandate_status"]))) }
            @if pending_mandate {
                @match &changes {
                    Ok(c) => (changes_table(c)),
                    Err(e) => (problem(e)),
                }
                @if can(&signed, DECIDERS) {
                    div.decision {
                        form method="post" action={ "/dashboard/agents/" (id) "/approve" } {
                            (csrf(&signed))
                            input type="hidden" name="version" value=(text(&a["mandate_version"]));
                            label { "Comment " input type="text" name="comment" maxlength="1000"; }
                            button #approve-mandate type="submit" { "Approve mandate" }
                        }
                        form method="post" action={ "/dashboard/agents/" (id) "/reject" } {
                            (csrf(&signed))
                            input type="hidden" name="version" value=(text(&a["mandate_version"]));
                            input type="hidden" name="comment" value="rejected in the dashboard";
                            button.danger #reject-mandate type="submit" { "Reject" }
                        }
                    }
                } @else {
                    p.muted #no-approve { "Waiting for a compliance officer to approve it." }
                }
            }
            @if status == "suspended" && can(&signed, DECIDERS) {
                form.row #reinstate method="post" action={ "/dashboard/agents/" (id) "/reinstate" } {
                    (csrf(&signed))
                    span.muted { "Suspended by a kill switch or an automatic revocation (its incident must be resolved first). Reinstating approves no pending version." }
                    label { "Comment " input type="text" name="comment" maxlength="1000"; }
                    button #reinstate-agent type="submit" { "Reinstate" }
                }
            }
            (mandate_table(&a["mandate"]))
            @if can(&signed, MANDATE_REQUESTERS) {
                details #change-mandate {
                    summary { "Request a mandate change…" }
                    form method="post" action={ "/dashboard/agents/" (id) "/mandate" } {
                        (csrf(&signed))
                        p.muted { "The new version waits for a compliance officer; until then the agent keeps the approved one." }
                        textarea.mono name="mandate" rows="18" spellcheck="false" aria-label="Mandate (JSON)" {
                            (serde_json::to_string_pretty(&a["mandate"]).unwrap_or_default())
                        }
                        button #submit-mandate type="submit" { "Submit for approval" }
                    }
                }
            }
        }

        section.card #risk {
            h2 { "Risk" }
            @match &risk {
                Ok(r) => {
                    @let warning = r["warning_threshold"].as_f64().unwrap_or(0.75);
                    @let auto = r["auto_revoke_threshold"].as_f64().unwrap_or(0.85);
                    @if r["risk_score"].is_null() {
                        p.big {
                            span #risk-score.not-monitored { "Not monitored" } " "
                            span.muted { "— no approved behavioural baseline yet, so no anomaly score. The mandate's limits are still enforced on every order and every reported event." }
                        }
                    } @else {
                        p.big {
                            span #risk-score { (score_text(&r["risk_score"])) } " "
                            span #risk-band { (badge(&text(&r["risk_band"]))) }
                            span.muted { " now (decaying), warning at " (format!("{warning:.2}"))
                                ", automatic revocation at " (format!("{auto:.2}")) }
                        }
                    }
                    @let points: Vec<Point> = match &events {
                        Ok(evs) => evs.iter().filter_map(|e| e.score.map(|s| Point { at_ms: e.received_at_ms, score: s })).collect(),
                        Err(_) => Vec::new(),
                    };
                    (risk_timeline(&points, warning, auto))
                    p.muted { span #risk-chart-points { (points.len()) } " scored events (the newest 200 events)." }
                    h3 { "What makes up the latest score" }
                    (contributions(&r["contributions"]))
                }
                Err(e) => (problem(e)),
            }
        }

        section.card #usage {
            h2 { "Used today" }
            @match &usage {
                Ok(u) => {
                    table.usage {
                        thead { tr { th { "Limit" } th { "Used" } th { "Of" } } }
                        tbody {
                            tr { td { "Daily volume" } td #usage-volume { (text(&u["daily_volume"])) } td { (text(&u["max_daily_volume"])) } }
                            tr { td { "Realised loss" } td #usage-loss { (text(&u["daily_loss"])) } td { (text(&u["max_daily_loss"])) } }
                            tr { td { "Messages in the last second" } td { (text(&u["messages_last_second"])) } td { (text(&u["max_messages_per_second"])) } }
                            tr { td { "Failures in a row" } td { (text(&u["consecutive_failures"])) } td { (text(&a["mandate"]["maxConsecutiveFailures"])) } }
                            tr { td { "Open orders" } td #usage-open-orders { (text(&u["open_orders"])) } td { (text(&u["max_open_orders"])) } }
                            @if let Some(otr) = u["order_to_trade"].as_object() {
                                tr { td { "Orders per trade" } td { (text(&otr["orders"])) " orders, " (text(&otr["trades"])) " trades in " (text(&otr["window_secs"])) " s" } td { (text(&otr["max_ratio"])) } }
                            }
                            @if let Some(positions) = u["net_positions"].as_object() {
                                @for (market, p) in positions {
                                    tr { td { "Net position " (market) } td.usage-position { (text(p)) } td { (text(&a["mandate"]["maxNetPosition"])) } }
                                }
                            }
                        }
                    }
                    p.muted { "Since " (text(&u["trading_day_start"])) ", the start of the mandate's trading day." }
                    @if let Some(list) = u["overrides"].as_array().filter(|l| !l.is_empty()) {
                        h3 { "Limit overrides in force" }
                        table #overrides {
                            thead { tr { th { "Limit" } th { "Market" } th { "Value" } th { "Until" } th { "Granted by" } th { "Reason" } } }
                            tbody {
                                @for o in list {
                                    tr { td { (text(&o["limit"])) } td { (text(&o["market"])) } td { (o["value"].to_string()) } td { (at(&o["expires_at"])) } td { (o["granted_by"].as_array().map(|g| g.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) } td { (text(&o["reason"])) } }
                                }
                            }
                        }
                    }
                }
                Err(e) => (problem(e)),
            }
        }

        section.card #baselines {
            h2 { "Behavioural baselines" }
            @match &baselines {
                Ok(b) => (baseline_table(&signed, &id, &items(b, "items"), &who)),
                Err(e) => (problem(e)),
            }
        }

        section.card #certificates {
            h2 { "Certificates" }
            @if done.certs.is_some() { p { a href={ "/dashboard/agents/" (layout::query_escape(&id)) "#certificates" } { "Newest certificates" } } }
            @match &certs {
                Ok(c) => (certificate_table(&items(c, "items"), &who)),
                Err(e) => (problem(e)),
            }
            @if let Some(href) = &older_certs { a #older-certificates href=(href) { "Older certificates" } }
        }

        section.card #agent-incidents {
            h2 { "Incidents" }
            @match &incidents {
                Ok(i) => (incident_table(&signed, &items(i, "items"), false)),
                Err(e) => (problem(e)),
            }
        }

        section.card #events {
            h2 { "Latest events" }
            @match &events {
                Ok(evs) => {
                    @if evs.is_empty() { p.muted { "No events reported." } }
                    @else {
                        table {
                            thead { tr { th { "When" } th { "Action" } th { "Market" } th { "Size" } th { "Region" } th { "OK" } th { "Score" } } }
                            tbody {
                                @for e in evs.iter().take(50) {
                                    tr data-event=(e.id) {
                                        td { (when(e.at)) }
                                        td { (e.action_type) }
                                        td { (e.market.as_deref().unwrap_or("")) }
                                        td { (e.size.as_deref().unwrap_or("")) " " (e.currency.as_deref().unwrap_or("")) }
                                        td { (e.region.as_deref().unwrap_or("")) }
                                        td { @if e.success { "yes" } @else { (badge("failed")) } }
                                        td { (e.score.map_or_else(String::new, |s| format!("{s:.3}"))) }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => (problem(e)),
            }
        }

        @if can(&signed, REPORTERS) {
            section.card #report {
                h2 { "Compliance report" }
                @let today = mandate_store::now_unix();
                form.row method="get" action={ "/dashboard/agents/" (id) "/report" } {
                    label { "From " input type="date" name="from" value=(day(today - 30 * 86_400)) required; }
                    label { "To " input type="date" name="to" value=(day(today)) required; }
                    label { "Format "
                        select name="format" {
                            option value="pdf" { "PDF" }
                            option value="json" { "JSON (signed)" }
                        }
                    }
                    button #download-report type="submit" { "Download" }
                }
            }
        }
    };
    layout::page(&format!("Agent {id}"), &signed, "/dashboard", body)
}

fn day(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_default()
}

fn mandate_table(m: &Value) -> Markup {
    let Some(fields) = m.as_object() else {
        return html! { pre { (m.to_string()) } };
    };
    html! {
        table.kv {
            tbody {
                @for (k, v) in fields {
                    tr {
                        th { (k) }
                        td { @match v {
                            Value::Array(a) => { (a.iter().map(text).collect::<Vec<_>>().join(", ")) }
                            Value::Object(o) if o.contains_key("amount") => { (text(&o["amount"])) " " (text(&o["currency"])) }
                            other => { (text(other)) }
                        } }
                    }
                }
            }
        }
    }
}

/// The features behind a score, largest share first.
fn contributions(c: &Value) -> Markup {
    let mut rows = c.as_array().cloned().unwrap_or_default();
    rows.sort_by(|a, b| {
        let (x, y) = (
            a["contribution"].as_f64().unwrap_or(0.0),
            b["contribution"].as_f64().unwrap_or(0.0),
        );
        y.total_cmp(&x)
    });
    html! {
        @if rows.is_empty() { p.muted { "No score yet." } }
        @else {
            table #contributions {
                thead { tr { th { "Feature" } th { "Observed" } th { "Expected" } th { "Anomaly" } th { "Weight" } th { "Share of score" } } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { (text(&r["feature"])) }
                            td { (text(&r["observed"])) }
                            td { (text(&r["expected"])) }
                            td { (score_text(&r["value"])) }
                            td { (score_text(&r["weight"])) }
                            td { (score_text(&r["contribution"])) }
                        }
                    }
                }
            }
        }
    }
}

/// A one-line explanation of a mandate breach: its reasons, and what the CA did.
fn breach_explanation(reasons: &Value, revoked: bool) -> String {
    let parts: Vec<String> = reasons
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    format!(
                        "{} (limit {}, did {})",
                        text(&r["code"]).replace('_', " "),
                        text(&r["limit"]),
                        text(&r["requested"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "Outside the mandate: {}.{}",
        parts.join("; "),
        if revoked {
            " Revoked at once."
        } else {
            " Warned only."
        }
    )
}

/// A one-line explanation of an incident: its largest contributions.
fn explanation(c: &Value) -> String {
    let mut rows = c.as_array().cloned().unwrap_or_default();
    rows.sort_by(|a, b| {
        b["contribution"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["contribution"].as_f64().unwrap_or(0.0))
    });
    rows.iter()
        .take(3)
        .filter(|r| r["contribution"].as_f64().unwrap_or(0.0) > 0.0)
        .map(|r| {
            format!(
                "{} {} (expected {}): +{:.2}",
                text(&r["feature"]),
                text(&r["observed"]),
                text(&r["expected"]),
                r["contribution"].as_f64().unwrap_or(0.0)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn baseline_table(
    signed: &Signed,
    agent: &str,
    versions: &[Value],
    who: &std::collections::BTreeMap<String, String>,
) -> Markup {
    html! {
        @if versions.is_empty() { p.muted { "No baseline learnt yet." } }
        @else {
            table {
                thead { tr { th { "Version" } th { "Status" } th { "Events" } th { "Learnt" } th { "Decided" } th {} } }
                tbody {
                    @for b in versions {
                        tr {
                            td { "v" (text(&b["version"])) }
                            td { (badge(&text(&b["status"]))) }
                            td { (text(&b["baseline"]["events"])) }
                            td { (at(&b["created_at"])) " by " (by(who, &text(&b["learnt_by"]))) }
                            td { (at(&b["decided_at"])) " " (by(who, &text(&b["decided_by"]))) }
                            td {
                                @if b["status"] == "pending_approval" && can(signed, DECIDERS) {
                                    (baseline_buttons(signed, agent, b["version"].as_i64().unwrap_or(0)))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn baseline_buttons(signed: &Signed, agent: &str, version: i64) -> Markup {
    html! {
        form.inline method="post" action={ "/dashboard/agents/" (agent) "/baseline/approve" } {
            (csrf(signed))
            input type="hidden" name="version" value=(version);
            button.approve-baseline type="submit" { "Approve" }
        }
        form.inline method="post" action={ "/dashboard/agents/" (agent) "/baseline/reject" } {
            (csrf(signed))
            input type="hidden" name="version" value=(version);
            button.danger type="submit" { "Reject" }
        }
    }
}

fn certificate_table(certs: &[Value], who: &std::collections::BTreeMap<String, String>) -> Markup {
    html! {
        @if certs.is_empty() { p.muted { "No certificate issued." } }
        @else {
            table {
                thead { tr { th { "Serial" } th { "Status" } th { "Mandate" } th { "Valid until" } th { "Revoked" } } }
                tbody {
                    @for c in certs {
                        tr data-serial=(text(&c["serial_number"])) {
                            td.mono { (text(&c["serial_number"])) }
                            td.cert-status { (badge(&text(&c["status"]))) }
                            td { "v" (text(&c["mandate_version"])) }
                            td { (at(&c["not_after"])) }
                            td {
                                @if !c["revoked_at"].is_null() {
                                    (at(&c["revoked_at"])) " · " (text(&c["revocation_reason"]))
                                    " · by " (by(who, &text(&c["revoked_by"])))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn incident_table(signed: &Signed, rows: &[Value], with_agent: bool) -> Markup {
    html! {
        @if rows.is_empty() { p.muted { "No incidents." } }
        @else {
            table.incidents {
                thead { tr {
                    th { "#" } @if with_agent { th { "Agent" } } th { "Kind" } th { "Status" }
                    th { "Score" } th { "Opened" } th { "Explanation" } th {}
                } }
                tbody {
                    @for i in rows {
                        @let id = text(&i["id"]);
                        @let status = text(&i["status"]);
                        tr data-incident=(id) {
                            td { (id) }
                            @if with_agent {
                                td { a href={ "/dashboard/agents/" (text(&i["agent_id"])) } { (text(&i["agent_id"])) } }
                            }
                            td { (badge(&text(&i["kind"]))) }
                            td { (badge(&status))
                                @if !i["resolution"].is_null() { br; span.muted { (text(&i["resolution"])) } } }
                            @if i["kind"] == "mandate_breach" {
                                td { "—" }
                                td { (at(&i["created_at"])) }
                                td.explain { (breach_explanation(&i["reasons"], i["revokes"] == true)) }
                            } @else {
                                td { (score_text(&i["risk_score"])) " ≥ " (score_text(&i["threshold"])) }
                                td { (at(&i["created_at"])) }
                                td.explain { (explanation(&i["contributions"])) }
                            }
                            td {
                                @if status == "open" && can(signed, ACKNOWLEDGERS) {
                                    form.inline method="post" action={ "/dashboard/incidents/" (id) "/acknowledge" } {
                                        (csrf(signed))
                                        button type="submit" { "Acknowledge" }
                                    }
                                }
                                @if status != "resolved" && can(signed, RESOLVERS) {
                                    form.inline method="post" action={ "/dashboard/incidents/" (id) "/resolve" } {
                                        (csrf(signed))
                                        input type="text" name="resolution" placeholder="What was found" maxlength="1000" required;
                                        button type="submit" { "Resolve" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /dashboard/agents/{id}/kill`: the confirmation step before the kill switch.
pub(crate) async fn kill_confirm(
    State(state): State<AppState>,
    signed: Signed,
    ApiPath(id): ApiPath<String>,
) -> Response {
    if let Err(e) = signed.caller.require(REVOKERS) {
        return layout::error_page(Some(&signed), e.into());
    }
    let a = match value(agents::get_one(
        State(state.clone()),
        signed.caller.clone(),
        ApiPath(id.clone()),
    ))
    .await
    {
        Ok(v) => v,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let (valid, _) = state
        .node
        .store
        .agent_certificate_summary(&id, mandate_store::now_unix())
        .await
        .unwrap_or((0, 0));
    let body = html! {
        section.card.danger-zone {
            h1 { "Pull the kill switch on " (id) "?" }
            p {
                "This suspends " strong { (id) } " (" (text(&a["name"])) ", " (text(&a["organization"])) ") and revokes its "
                strong #valid-certs { (valid) } " valid certificate(s) at once. OCSP and the CRLs say revoked within seconds; "
                "only a compliance officer can let the agent be certified again. This is recorded in the audit log with your key."
            }
            form method="post" action={ "/dashboard/agents/" (id) "/kill" } {
                (csrf(&signed))
                label for="reason" { "Reason (recorded)" }
                textarea #reason name="reason" maxlength="500" required {}
                label for="confirm" { "Type the agent id to confirm" }
                input #confirm type="text" name="confirm" autocomplete="off" required;
                div.row {
                    button.danger #confirm-kill type="submit" { "Revoke now" }
                    a href={ "/dashboard/agents/" (id) } { "Cancel" }
                }
            }
        }
    };
    layout::page("Kill switch", &signed, "/dashboard", body)
}

/// `GET /dashboard/approvals`: mandates and baselines waiting for compliance.
pub(crate) async fn approvals(
    State(state): State<AppState>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Response {
    let list = match value(agents::list(
        State(state.clone()),
        signed.caller.clone(),
        agent_query(None, None, Some("pending_approval")),
    ))
    .await
    {
        Ok(v) => v,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let pending: Vec<Value> = items(&list, "items");
    let baselines = state
        .node
        .store
        .pending_baselines(signed.caller.org_filter(), i64::from(ROWS))
        .await
        .map_err(|e| ApiError::from(crate::CaError::from(e)));
    let decider = can(&signed, DECIDERS);
    let who = names(
        &state,
        &pending,
        baselines
            .as_ref()
            .map(|b| b.iter().map(|x| x.learnt_by.clone()).collect::<Vec<_>>())
            .unwrap_or_default(),
    )
    .await;
    let body = html! {
        (notice(done.done.as_deref()))
        h1 { "Approvals" }
        @if !decider {
            p.muted #read-only { "Only a compliance officer can approve or reject; you see what waits." }
        }
        section.card {
            h2 { "Mandates" }
            @if pending.is_empty() { p.muted #no-pending { "No mandate waits for approval." } }
            @else {
                table #pending-mandates {
                    thead { tr { th { "Agent" } th { "Operator" } th { "Version" } th { "Requested" } th {} } }
                    tbody {
                        @for a in &pending {
                            @let id = text(&a["agent_id"]);
                            tr data-agent=(id) {
                                td { a href={ "/dashboard/agents/" (id) } { (id) } }
                                td { (text(&a["organization"])) }
                                td { "v" (text(&a["mandate_version"])) }
                                td { (at(&a["updated_at"])) " by " (by(&who, &text(&a["registered_by"]))) }
                                td {
                                    @if decider && a["approved_mandate_version"].is_number() {
                                        // A change to an approved mandate is read before it is approved.
                                        a.button.review href={ "/dashboard/agents/" (id) "#mandate" } { "Review changes…" }
                                    } @else if decider {
                                        form.inline method="post" action={ "/dashboard/agents/" (id) "/approve" } {
                                            (csrf(&signed))
                                            input type="hidden" name="version" value=(text(&a["mandate_version"]));
                                            button.approve type="submit" { "Approve" }
                                        }
                                        form.inline method="post" action={ "/dashboard/agents/" (id) "/reject" } {
                                            (csrf(&signed))
                                            input type="hidden" name="version" value=(text(&a["mandate_version"]));
                                            button.danger type="submit" { "Reject" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Baselines" }
            @match &baselines {
                Ok(rows) if rows.is_empty() => { p.muted { "No baseline waits for approval." } }
                Ok(rows) => {
                    table #pending-baselines {
                        thead { tr { th { "Agent" } th { "Version" } th { "Events" } th { "Learnt" } th {} } }
                        tbody {
                            @for b in rows {
                                tr {
                                    td { a href={ "/dashboard/agents/" (b.agent_id) } { (b.agent_id) } }
                                    td { "v" (b.version) }
                                    td { (text(&b.baseline["events"])) }
                                    td { (when(b.created_at)) " by " (by(&who, &b.learnt_by)) }
                                    td { @if decider { (baseline_buttons(&signed, &b.agent_id, b.version)) } }
                                }
                            }
                        }
                    }
                },
                Err(e) => (problem(e)),
            }
        }
    };
    layout::page("Approvals", &signed, "/dashboard/approvals", body)
}

/// `?status=` of the incidents page.
#[derive(Deserialize, Default)]
pub(crate) struct IncidentFilter {
    status: Option<String>,
    done: Option<String>,
    cursor: Option<String>,
    agent: Option<String>,
}

/// `GET /dashboard/incidents`.
pub(crate) async fn incidents(
    State(state): State<AppState>,
    signed: Signed,
    Query(f): Query<IncidentFilter>,
) -> Response {
    let status = f
        .status
        .filter(|s| ["open", "acknowledged", "resolved"].contains(&s.as_str()));
    let agent = f.agent.clone().filter(|a| !a.trim().is_empty());
    let q = match from_json(
        json!({"status": status, "limit": ROWS, "cursor": f.cursor, "agent_id": agent}),
    ) {
        Ok(q) => q,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let list = value(incidents::list(
        State(state.clone()),
        signed.caller.clone(),
        ApiQuery(q),
    ))
    .await;
    // The next page keeps the filters.
    let next = list
        .as_ref()
        .ok()
        .and_then(|v| v["next_cursor"].as_str())
        .map(|c| {
            let mut href = format!("/dashboard/incidents?cursor={}", layout::query_escape(c));
            if let Some(st) = &status {
                href.push_str(&format!("&status={st}"));
            }
            if let Some(a) = &agent {
                href.push_str(&format!("&agent={}", layout::query_escape(a)));
            }
            href
        });
    let body = html! {
        (notice(f.done.as_deref()))
        div.title-row {
            h1 { "Incidents" }
            a.button #export-incidents href={ "/dashboard/export/incidents.csv" @if let Some(st) = &status { "?status=" (st) } } { "Export CSV" }
        }
        p.filters {
            a href="/dashboard/incidents" { "all" } " · "
            a href="/dashboard/incidents?status=open" { "open" } " · "
            a href="/dashboard/incidents?status=acknowledged" { "acknowledged" } " · "
            a href="/dashboard/incidents?status=resolved" { "resolved" }
        }
        form.search #incident-search method="get" action="/dashboard/incidents" {
            @if let Some(st) = &status { input type="hidden" name="status" value=(st); }
            input type="search" name="agent" value=(agent.clone().unwrap_or_default())
                placeholder="Agent id" aria-label="Incidents of an agent" maxlength="128";
            button type="submit" { "Filter" }
        }
        @match &list {
            Ok(v) => (incident_table(&signed, &items(v, "items"), true)),
            Err(e) => (problem(e)),
        }
        @if f.cursor.is_some() { a #first-page href="/dashboard/incidents" { "Newest" } " " }
        @if let Some(href) = &next { a #next-page href=(href) { "Older incidents" } }
    };
    layout::page("Incidents", &signed, "/dashboard/incidents", body)
}

/// `?serial=` of the revocations page: a certificate to look up.
#[derive(Deserialize, Default)]
pub(crate) struct FindCertificate {
    serial: Option<String>,
}

/// `GET /dashboard/revocations`: revoked certificates and kill switches, newest first, and
/// any certificate found by its serial (`?serial=`).
pub(crate) async fn revocations(
    State(state): State<AppState>,
    signed: Signed,
    Query(find): Query<FindCertificate>,
) -> Response {
    if let Err(e) = signed.caller.require(READERS) {
        return layout::error_page(Some(&signed), e.into());
    }
    let serial = find
        .serial
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let found = match &serial {
        Some(s) => Some(
            value(certificates::get_one(
                State(state.clone()),
                signed.caller.clone(),
                ApiPath(s.clone()),
            ))
            .await,
        ),
        None => None,
    };
    let store = &state.node.store;
    let org = signed.caller.org_filter();
    let certs = store.recent_revocations(org, i64::from(ROWS)).await;
    let kills = store.kill_switches(org, i64::from(ROWS)).await;
    let (certs, kills) = match (certs, kills) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => {
            return layout::error_page(Some(&signed), crate::CaError::from(e).into());
        }
    };
    let who = names(
        &state,
        [],
        certs
            .iter()
            .filter_map(|c| c.revoked_by.clone())
            .chain(kills.iter().map(|k| k.pulled_by.clone())),
    )
    .await;
    let body = html! {
        h1 { "Revocations" }
        section.card #find-certificate {
            h2 { "Find a certificate" }
            form.inline method="get" action="/dashboard/revocations" {
                label { "Serial (hex) " input type="search" name="serial" value=(serial.as_deref().unwrap_or("")); }
                button type="submit" { "Find" }
            }
            @match &found {
                Some(Ok(c)) => {
                    p { "Agent " a href={ "/dashboard/agents/" (text(&c["agent_id"])) } { (text(&c["agent_id"])) } }
                    (certificate_table(std::slice::from_ref(c), &who))
                }
                Some(Err(e)) => (problem(e)),
                None => {}
            }
        }
        section.card {
            h2 { "Revoked certificates" }
            @if certs.is_empty() { p.muted { "Nothing revoked." } }
            @else {
                table #revoked {
                    thead { tr { th { "When" } th { "Agent" } th { "Serial" } th { "Reason" } th { "By" } } }
                    tbody {
                        @for c in &certs {
                            tr data-serial=(c.serial) {
                                td { (c.revoked_at.map(when).unwrap_or_default()) }
                                td { a href={ "/dashboard/agents/" (c.agent_id) } { (c.agent_id) } }
                                td.mono { (c.serial) }
                                td { (c.revocation_reason
                                        .and_then(crate::revocation::RevocationReason::from_code)
                                        .map(|r| r.name())
                                        .unwrap_or("unspecified")) }
                                td { (by(&who, c.revoked_by.as_deref().unwrap_or(""))) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Kill switches" }
            @if kills.is_empty() { p.muted { "No kill switch pulled." } }
            @else {
                table #kill-switches {
                    thead { tr { th { "When" } th { "Scope" } th { "Target" } th { "Reason" } th { "By" } th { "Revoked" } } }
                    tbody {
                        @for k in &kills {
                            tr {
                                td { (when(k.created_at)) }
                                td { (k.scope) }
                                td { (k.target) }
                                td.reason { (k.reason) }
                                td { (by(&who, &k.pulled_by)) }
                                td { (k.certificates_revoked) " certificate(s), " (k.agents_suspended) " agent(s)" }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Revocations", &signed, "/dashboard/revocations", body)
}

/// `GET /dashboard/webhooks`.
pub(crate) async fn webhooks(State(state): State<AppState>, signed: Signed) -> Response {
    let list = value(webhooks::list(
        State(state),
        signed.caller.clone(),
        page_query(),
    ))
    .await;
    let manager = can(&signed, WEBHOOK_MANAGERS);
    let staff = signed.caller.org_filter().is_none();
    let body = html! {
        div.title-row {
            h1 { "Webhooks" }
            a.button #export-webhooks href="/dashboard/export/webhooks.csv" { "Export CSV" }
        }
        @if manager {
            details.card #new-webhook {
                summary { "Register an endpoint" }
                form method="post" action="/dashboard/webhooks" {
                    (csrf(&signed))
                    label { "URL " input type="url" name="url" required placeholder="https://hooks.example.com/mandate" maxlength="2000"; }
                    label { "Event types " input type="text" name="events" placeholder="every event; or e.g. certificate.revoked, incident.opened"; }
                    @if staff {
                        label { "Organization " input type="text" name="organization" placeholder="every organization"; }
                    }
                    button type="submit" #create-webhook { "Register" }
                }
            }
        }
        @match &list {
            Ok(v) => {
                @let hooks = items(v, "items");
                @if hooks.is_empty() { p.muted #no-webhooks { "No webhook registered." } }
                @else {
                    table #webhooks {
                        thead { tr { th { "Id" } th { "URL" } th { "Events" } th { "Operator" } th { "State" } } }
                        tbody {
                            @for h in &hooks {
                                tr data-webhook=(text(&h["id"])) {
                                    td { a href={ "/dashboard/webhooks/" (text(&h["id"])) } { (text(&h["id"])) } }
                                    td.mono { (text(&h["url"])) }
                                    td { (h["events"].as_array().map(|e| e.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                    td { (text(&h["operator"])) }
                                    td { @if h["disabled_at"].is_null() { (badge("active")) } @else { (badge("disabled")) } }
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => (problem(e)),
        }
    };
    layout::page("Webhooks", &signed, "/dashboard/webhooks", body)
}

/// `GET /dashboard/webhooks/{id}`: the delivery log.
pub(crate) async fn webhook(
    State(state): State<AppState>,
    signed: Signed,
    ApiPath(id): ApiPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let hook = value(webhooks::get_one(
        State(state.clone()),
        signed.caller.clone(),
        ApiPath(id.clone()),
    ))
    .await;
    let hook = match hook {
        Ok(h) => h,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let q = match from_json(json!({"limit": ROWS})) {
        Ok(q) => q,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    let deliveries = value(webhooks::deliveries(
        State(state),
        signed.caller.clone(),
        ApiPath(id.clone()),
        ApiQuery(q),
    ))
    .await;
    let active = hook["disabled_at"].is_null();
    let redeliverable = active && can(&signed, WEBHOOK_MANAGERS);
    let body = html! {
        (notice(done.done.as_deref()))
        h1 { "Webhook " (id) }
        p.mono { (text(&hook["url"])) }
        p #webhook-state {
            @if active { (badge("active")) } @else { (badge("disabled")) " since " (at(&hook["disabled_at"])) }
        }
        @if active && can(&signed, WEBHOOK_MANAGERS) {
            form method="post" action={ "/dashboard/webhooks/" (layout::query_escape(&id)) "/disable" } {
                (csrf(&signed))
                button.danger type="submit" #disable-webhook { "Disable this endpoint" }
            }
        }
        section.card {
            h2 { "Deliveries" }
            @match &deliveries {
                Ok(v) => {
                    @let rows = items(v, "items");
                    @if rows.is_empty() { p.muted { "Nothing delivered yet." } }
                    @else {
                        table #deliveries {
                            thead { tr { th { "Event" } th { "Type" } th { "Status" } th { "Attempts" } th { "Last attempt" } th { "Answer" } th {} } }
                            tbody {
                                @for d in &rows {
                                    tr data-delivery=(text(&d["id"])) {
                                        td { (text(&d["event_id"])) }
                                        td { (text(&d["event_type"])) }
                                        td { (badge(&text(&d["status"]))) }
                                        td { (text(&d["attempts"])) }
                                        td { (at(&d["last_attempt_at"])) }
                                        td { (text(&d["last_status_code"])) " " (text(&d["last_error"])) }
                                        td {
                                            @if redeliverable && d["status"] != "pending" {
                                                form.inline method="post" action={ "/dashboard/webhooks/" (layout::query_escape(&id)) "/deliveries/" (text(&d["id"])) "/redeliver" } {
                                                    (csrf(&signed))
                                                    button.redeliver type="submit" { "Redeliver" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => (problem(e)),
            }
        }
    };
    layout::page("Webhook", &signed, "/dashboard/webhooks", body)
}

/// `GET /dashboard/audit`: the newest records and the verification of the whole chain.
/// `?page=` of the audit page: 0 the newest records, 1 the hundred before them, ...
#[derive(Deserialize, Default)]
pub(crate) struct AuditPage {
    page: Option<u32>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    signed: Signed,
    Query(p): Query<AuditPage>,
) -> Response {
    // The log is CA-wide: CA staff only (as `GET /v1/audit`).
    if let Err(e) = signed
        .caller
        .require(AUDIT_READERS)
        .and_then(|()| signed.caller.require_ca_staff())
    {
        return layout::error_page(Some(&signed), e.into());
    }
    // The newest record, whether the chain has reached it yet or not.
    let tip = match state.node.store.audit_last_seq().await {
        Ok(seq) => seq,
        Err(e) => return layout::error_page(Some(&signed), crate::CaError::from(e).into()),
    };
    let page = i64::from(p.page.unwrap_or(0));
    let upto = (tip - page * i64::from(ROWS)).max(0);
    let after = (upto - i64::from(ROWS)).max(0);
    let records = if upto > after {
        let q = match from_json(json!({"cursor": after.to_string(), "limit": upto - after})) {
            Ok(q) => q,
            Err(e) => return layout::error_page(Some(&signed), e),
        };
        value(audit::list(
            State(state.clone()),
            signed.caller.clone(),
            ApiQuery(q),
        ))
        .await
    } else {
        Ok(json!({"items": [], "next_cursor": null}))
    };
    let report = crate::audit_log::verify_store(&state.node.store, None).await;
    let body = html! {
        // Verifying the whole chain is work in proportion to the log: not every few seconds.
        div hidden data-live="off" {}
        div.title-row {
            h1 { "Audit log" }
            a.button #export-audit href="/dashboard/export/audit.csv" { "Export CSV" }
        }
        p.pager {
            @if page > 0 { a #newer-page href={ "/dashboard/audit?page=" (page - 1) } { "Newer records" } " " }
            @if after > 0 { a #older-page href={ "/dashboard/audit?page=" (page + 1) } { "Older records" } }
        }
        section.card #verification {
            h2 { "Verification" }
            @match &report {
                Ok(r) => {
                    p.big {
                        @if r.intact { span #audit-status { (badge("ok")) } " The hash chain is intact." }
                        @else { span #audit-status { (badge("broken")) } " The hash chain is broken." }
                    }
                    p {
                        (r.records_verified) " records verified from the first; "
                        (r.checkpoints_verified) " signed checkpoints verified"
                        @if let Some(s) = r.last_checkpoint_seq { " (newest covers record " (s) ")" } "."
                    }
                    p {
                        "Merkle tree (RFC 6962) of " (r.tree_size) " records"
                        @if let Some(root) = &r.tree_root { ", root " code { (root) } }
                        ", rebuilt from the records and their salts. Witnesses follow it at "
                        code { "/v1/audit/checkpoint" } "."
                    }
                    @if let Some(b) = &r.first_broken {
                        p.error { "First broken record: " (b.seq) ": " (b.reason) }
                    }
                }
                Err(e) => (problem(&ApiError::from(crate::CaError::Internal(e.to_string())))),
            }
        }
        section.card {
            h2 { "Newest records" }
            @match &records {
                Ok(v) => {
                    table #audit-records {
                        thead { tr { th { "Seq" } th { "When" } th { "Actor" } th { "Action" } th { "Subject" } th { "Details" } } }
                        tbody {
                            @for r in items(v, "items").iter().rev() {
                                tr {
                                    td { (text(&r["seq"])) }
                                    td { (at(&r["at"])) }
                                    td { (text(&r["actor"])) }
                                    td { (text(&r["action"])) }
                                    td { (text(&r["subject"])) }
                                    td.mono.small { (r["details"].to_string()) }
                                }
                            }
                        }
                    }
                }
                Err(e) => (problem(e)),
            }
        }
    };
    layout::page("Audit log", &signed, "/dashboard/audit", body)
}

/// `?from&to&format` of a report download.
#[derive(Deserialize)]
pub(crate) struct ReportForm {
    from: String,
    to: String,
    format: Option<String>,
}

/// `GET /dashboard/agents/{id}/report`: the compliance report as a download.
pub(crate) async fn report(
    State(state): State<AppState>,
    signed: Signed,
    ApiPath(id): ApiPath<String>,
    Query(f): Query<ReportForm>,
) -> Response {
    let pdf = f.format.as_deref() != Some("json");
    let q = match from_json(json!({"from": f.from, "to": f.to,
                                    "format": if pdf { "pdf" } else { "json" }}))
    {
        Ok(q) => q,
        Err(e) => return layout::error_page(Some(&signed), e),
    };
    match reports::agent(
        State(state),
        signed.caller.clone(),
        ApiPath(id.clone()),
        ApiQuery(q),
    )
    .await
    {
        Ok(mut resp) => {
            let name = format!(
                "attachment; filename=\"mandate-report-{id}.{}\"",
                if pdf { "pdf" } else { "json" }
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            resp.into_response()
        }
        Err(e) => layout::error_page(Some(&signed), e),
    }
}

/// `GET /dashboard/people`: the organizations sharing the CA and the people in them (CA
/// staff's admins; an organization's people see their organization, and no people list).
pub(crate) async fn people(
    State(state): State<AppState>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Response {
    let orgs = value(organizations::list(
        State(state.clone()),
        signed.caller.clone(),
        page_query(),
    ))
    .await;
    let people = match from_json(json!({"limit": ROWS})) {
        Ok(q) => {
            value(organizations::list_people(
                State(state.clone()),
                signed.caller.clone(),
                ApiQuery(q),
            ))
            .await
        }
        Err(e) => Err(e),
    };
    let roles = |p: &Value| {
        p["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let body = html! {
        h1 { "Organizations and people" }
        section.card {
            h2 { "Organizations" }
            @match &orgs {
                Ok(v) => {
                    table #organizations {
                        thead { tr { th { "Id" } th { "Legal name" } th { "Other legal entities" } th { "Regulator id" } th { "Approvers" } } }
                        tbody {
                            @for o in &items(v, "items") {
                                tr data-org=(text(&o["id"])) {
                                    td { (text(&o["id"])) }
                                    td { (text(&o["legal_name"])) }
                                    td { (o["legal_entities"].as_array().map(|e| e.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                    td { (text(&o["regulator_id"])) }
                                    td { (text(&o["approvals_required"])) }
                                }
                            }
                        }
                    }
                }
                Err(e) => (problem(e)),
            }
        }
        section.card {
            h2 { "People" }
            @match &people {
                Ok(v) => {
                    table #people {
                        thead { tr { th { "Id" } th { "Name" } th { "Organization" } th { "Roles" } th { "State" } } }
                        tbody {
                            @for p in &items(v, "items") {
                                tr data-person=(text(&p["id"])) {
                                    td { (text(&p["id"])) }
                                    td { (text(&p["name"])) }
                                    td { @if p["organization"].is_null() { "CA staff" } @else { (text(&p["organization"])) } }
                                    td { (roles(p)) }
                                    td { @if p["disabled_at"].is_null() { (badge("active")) } @else { (badge("disabled")) } }
                                }
                            }
                        }
                    }
                    p.muted { "Organizations are made with mandate orgs create or POST /v1/organizations." }
                }
                Err(e) => (problem(e)),
            }
        }
    };
    let org_ids: Vec<String> = orgs
        .as_ref()
        .map(|v| items(v, "items").iter().map(|o| text(&o["id"])).collect())
        .unwrap_or_default();
    let people_ids: Vec<(String, String)> = people
        .as_ref()
        .map(|v| {
            items(v, "items")
                .iter()
                .filter(|p| p["disabled_at"].is_null())
                .map(|p| (text(&p["id"]), text(&p["name"])))
                .collect()
        })
        .unwrap_or_default();
    let forms = html! {
        @if can(&signed, &[Role::Admin]) {
            section.card #new-person {
                h2 { "Add a person" }
                form method="post" action="/dashboard/people" {
                    (csrf(&signed))
                    label { "Id " input type="text" name="id" required maxlength="64" placeholder="alice"; }
                    label { "Name " input type="text" name="name" required maxlength="200"; }
                    label { "E-mail " input type="email" name="email" maxlength="254"; }
                    label { "Organization "
                        select name="organization" {
                            option value="" { "— CA staff —" }
                            @for o in &org_ids { option value=(o) { (o) } }
                        }
                    }
                    fieldset.roles {
                        legend { "Roles" }
                        @for r in ["operator", "compliance", "auditor", "market-data", "admin"] {
                            label { input type="checkbox" name={ "role_" (r) } value="on"; " " (r) }
                        }
                    }
                    button #create-person type="submit" { "Add person" }
                }
            }
            section.card #new-key {
                h2 { "Give a person an API key" }
                form method="post" action="/dashboard/api-keys" {
                    (csrf(&signed))
                    label { "Person "
                        select name="person" required {
                            @for (id, name) in &people_ids { option value=(id) { (name) " (" (id) ")" } }
                        }
                    }
                    label { "Role "
                        select name="role" {
                            @for r in ["operator", "compliance", "auditor", "market-data", "admin"] { option value=(r) { (r) } }
                        }
                    }
                    label { "Label " input type="text" name="label" required maxlength="200" placeholder="laptop"; }
                    button #create-key type="submit" { "Create key" }
                }
            }
        }
    };
    let body = html! { (notice(done.done.as_deref())) (body) (forms) };
    layout::page("People", &signed, "/dashboard/people", body)
}

/// The answer to a new API key: the key, shown this once.
pub(crate) fn key_created(signed: &Signed, key: &Value) -> Response {
    let body = html! {
        // The answer to a form, with a secret shown once: loading the address again (as the
        // live updates do) would replace it with the people page.
        div hidden data-live="off" {}
        h1 { "API key created" }
        section.card {
            p { "Key " span.mono { (text(&key["id"])) } " acts for " strong { (text(&key["person"])) }
                " as " (text(&key["role"])) ". " strong { "It is shown this once:" } " hand it over now." }
            p.mono #new-api-key { (text(&key["api_key"])) }
            p { a href="/dashboard/people" { "Back to people" } }
        }
    };
    layout::page("API key created", signed, "/dashboard/people", body)
}

/// A pending mandate version's changes against the approved one, widened limits marked.
fn changes_table(changes: &Value) -> Markup {
    let rows = changes.as_array().cloned().unwrap_or_default();
    if changes.is_null() {
        return html! {};
    }
    html! {
        h3 { "Changes against the approved version" }
        @if rows.is_empty() {
            p.muted #mandate-changes { "The first version: nothing approved to compare with." }
        } @else {
            table #mandate-changes {
                thead { tr { th { "Field" } th { "Approved" } th { "Requested" } th { "Effect" } } }
                tbody {
                    @for c in &rows {
                        @let direction = text(&c["direction"]);
                        tr class={ "change-" (direction) } {
                            td { code { (text(&c["field"])) } }
                            td { (text(&c["before"])) }
                            td { (text(&c["after"])) }
                            td {
                                @match direction.as_str() {
                                    "widened" => strong.widened { "widened" },
                                    "narrowed" => span { "narrowed" },
                                    _ => span { "changed" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The answer to a new endpoint: its signing secret, shown this once.
pub(crate) fn webhook_created(signed: &Signed, hook: &Value) -> Response {
    let id = text(&hook["id"]);
    let body = html! {
        // As for a new key: the secret must stay on the page.
        div hidden data-live="off" {}
        h1 { "Endpoint registered" }
        section.card {
            p { "Deliveries to " span.mono { (text(&hook["url"])) } " are signed with this secret. "
                strong { "It is shown this once:" } " keep it where the receiver reads it." }
            p.mono #webhook-secret { (text(&hook["secret"])) }
            p { a #webhook-link href={ "/dashboard/webhooks/" (layout::query_escape(&id)) } { "Webhook " (id) } }
        }
    };
    layout::page("Endpoint registered", signed, "/dashboard/webhooks", body)
}

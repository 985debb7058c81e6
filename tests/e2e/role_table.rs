//! docs/API.md's table of every operation, its roles and its tenant rule, driven against the
//! running daemon: two organizations, every role (CA staff, each role of an organization, an
//! agent's own key), each operation on its own organization's object and on the other's. A
//! refusal is exactly the documented 403 or 404 and writes nothing (rows, audit records, HSM
//! keys); an allowed call gets past both checks. The dashboard's forms are driven the same way
//! over HTTP with a real session and CSRF token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Daemon, csr, exec_sql, footprint, query_sql};

const READERS: &[&str] = &["admin", "operator", "compliance", "auditor"];
const REVOKERS: &[&str] = &["admin", "operator", "compliance"];
const TRADING: &[&str] = &["admin", "operator", "compliance"];

/// May an agent key use the route for its own agent, and what does it get for another's?
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Own {
    /// Never: the role's 403.
    No,
    /// Its own agent by id: another agent's id is the role's 403.
    ById,
    /// Its own agent's object (a certificate): another's is 404, as a missing one.
    ByObject,
}

/// How the organization scopes the route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    /// The object belongs to an organization: another's is 404.
    Tenant,
    /// CA staff only (people, keys, the CA-wide audit log): others get 403.
    Staff,
    /// Not scoped (lists filter instead; see the list checks).
    None,
}

struct Route {
    method: &'static str,
    path: &'static str,
    body: Value,
    roles: &'static [&'static str],
    own: Own,
    scope: Scope,
}

fn route(
    method: &'static str,
    path: &'static str,
    body: Value,
    roles: &'static [&'static str],
    own: Own,
    scope: Scope,
) -> Route {
    Route {
        method,
        path,
        body,
        roles,
        own,
        scope,
    }
}

/// docs/API.md, "Every operation: roles and tenant rule" (the REST rows).
fn table() -> Vec<Route> {
    use Own::*;
    use Scope::*;
    let order = json!({"action": "trade_execution", "market": "EUR_USD", "size": "10",
                       "currency": "EUR", "side": "buy"});
    let event = json!({"agent_id": "{agent}", "action": "trade_execution",
                       "market": "EUR_USD", "size": "10", "currency": "EUR"});
    vec![
        route(
            "POST",
            "/v1/organizations",
            json!({"id": "org-x", "legal_name": "X"}),
            &["admin"],
            No,
            Staff,
        ),
        route(
            "GET",
            "/v1/organizations/{org}",
            json!(null),
            READERS,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/people",
            json!({"id": "p-x", "name": "X", "roles": ["auditor"]}),
            &["admin"],
            No,
            Staff,
        ),
        route("GET", "/v1/people", json!(null), &["admin"], No, Staff),
        route(
            "POST",
            "/v1/people/nobody/disable",
            json!({}),
            &["admin"],
            No,
            Staff,
        ),
        route("GET", "/v1/api-keys", json!(null), &["admin"], No, Staff),
        route(
            "POST",
            "/v1/api-keys",
            json!({"role": "auditor", "label": "x", "person": "nobody"}),
            &["admin"],
            No,
            Staff,
        ),
        route(
            "POST",
            "/v1/api-keys/nope/revoke",
            json!({}),
            &["admin"],
            No,
            Staff,
        ),
        route(
            "POST",
            "/v1/agents",
            json!({"agent_id": "new-{org}", "name": "n", "organization": "{org}", "mandate": {}}),
            &["operator"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/mandate",
            json!({"mandate": {}}),
            &["operator"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/approve",
            json!({}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/reject",
            json!({}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/reinstate",
            json!({}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}/mandates",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/certify",
            json!({"csr": "{csr}"}),
            &["operator"],
            ById,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}/certificates",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "GET",
            "/v1/certificates/{serial}",
            json!(null),
            READERS,
            ByObject,
            Tenant,
        ),
        route(
            "GET",
            "/v1/certificates/{serial}/pem",
            json!(null),
            READERS,
            ByObject,
            Tenant,
        ),
        route(
            "POST",
            "/v1/certificates/{serial}/revoke",
            json!({"reason": "superseded"}),
            REVOKERS,
            ByObject,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/revoke",
            json!({"reason": "drill"}),
            REVOKERS,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/operators/{org}/revoke",
            json!({"reason": "drill"}),
            REVOKERS,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/eab",
            json!({}),
            &["operator", "admin"],
            No,
            Tenant,
        ),
        route("POST", "/v1/events", event, TRADING, ById, Tenant),
        route(
            "POST",
            "/v1/agents/{agent}/preflight",
            order.clone(),
            TRADING,
            ById,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}/risk-score",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}/baseline",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/baseline",
            json!({}),
            TRADING,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/baseline/approve",
            json!({}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/baseline/reject",
            json!({}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/sign",
            order,
            &["operator", "admin"],
            ById,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}/usage",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "GET",
            "/v1/agents/{agent}/overrides",
            json!(null),
            READERS,
            ById,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/overrides",
            json!({"limit": "maxOpenOrders", "value": 7, "duration_secs": 60,
                   "reason": "role table"}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/agents/{agent}/overrides/{override}/end",
            json!({}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/decisions/{decision}",
            json!(null),
            READERS,
            ByObject,
            Tenant,
        ),
        route(
            "POST",
            "/v1/reference-prices",
            json!({"organization": "{org}", "prices": [{"market": "BTC_EUR", "price": "1"}]}),
            &["operator", "market-data", "admin"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/reports/agents/{agent}?from=2026-01-01&to=2027-12-31",
            json!(null),
            &["compliance", "auditor"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/reports/organizations/{org}?from=2026-01-01&to=2027-12-31",
            json!(null),
            &["compliance", "auditor"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/incidents/{incident}",
            json!(null),
            READERS,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/incidents/{incident}/acknowledge",
            json!({}),
            REVOKERS,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/incidents/{incident}/resolve",
            json!({"resolution": "checked"}),
            &["compliance"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/webhooks/{hook}",
            json!(null),
            READERS,
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/webhooks/{hook}/deliveries",
            json!(null),
            READERS,
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/webhooks/{hook}/deliveries/{delivery}/redeliver",
            json!({}),
            &["operator", "admin"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/webhooks/{hook}/disable",
            json!({}),
            &["operator", "admin"],
            No,
            Tenant,
        ),
        route(
            "POST",
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "operator": "{org}"}),
            &["operator", "admin"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/audit",
            json!(null),
            &["admin", "auditor", "compliance"],
            No,
            None,
        ),
        route(
            "GET",
            "/v1/audit/export?agent={agent}",
            json!(null),
            &["admin", "auditor", "compliance"],
            No,
            Tenant,
        ),
        route(
            "GET",
            "/v1/audit/export?organization={org}",
            json!(null),
            &["admin", "auditor", "compliance"],
            No,
            Tenant,
        ),
        route("GET", "/v1/agents", json!(null), READERS, No, None),
        route("GET", "/v1/incidents", json!(null), READERS, No, None),
        route("GET", "/v1/webhooks", json!(null), READERS, No, None),
        route(
            "GET",
            "/metrics",
            json!(null),
            &["admin", "operator", "auditor"],
            No,
            Staff,
        ),
    ]
}

/// One organization's objects.
struct Objects {
    org: &'static str,
    agent: &'static str,
    serial: String,
    incident: String,
    hook: String,
    delivery: String,
    decision: String,
    override_id: String,
}

struct Who {
    name: &'static str,
    role: &'static str,
    key: String,
    staff: bool,
}

fn fill(text: &str, o: &Objects, csr: &str) -> String {
    text.replace("{org}", o.org)
        .replace("{agent}", o.agent)
        .replace("{serial}", &o.serial)
        .replace("{incident}", &o.incident)
        .replace("{hook}", &o.hook)
        .replace("{delivery}", &o.delivery)
        .replace("{decision}", &o.decision)
        .replace("{override}", &o.override_id)
        .replace("{csr}", csr)
}

fn fill_json(v: &Value, o: &Objects, csr: &str) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, o, csr)),
        Value::Array(a) => a.iter().map(|x| fill_json(x, o, csr)).collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| (k.clone(), fill_json(x, o, csr)))
            .collect(),
        other => other.clone(),
    }
}

/// What the table says `who` gets on `r` for objects of its own organization (`own`) or the
/// other's: `Some((status, problem type))` for a refusal, `None` when both checks let it by.
fn expected(r: &Route, who: &Who, own: bool) -> Option<(u16, &'static str)> {
    if who.role == "agent" {
        return match (r.own, own) {
            (Own::No, _) => Some((403, "forbidden")),
            (_, true) => None,
            (Own::ById, false) => Some((403, "forbidden")),
            (Own::ByObject, false) => Some((404, "not-found")),
        };
    }
    if !r.roles.contains(&who.role) {
        return Some((403, "forbidden"));
    }
    match r.scope {
        Scope::Staff if !who.staff => Some((403, "forbidden")),
        Scope::Tenant if !who.staff && !own => Some((404, "not-found")),
        _ => None,
    }
}

async fn call(d: &Daemon, who: &Who, method: &str, path: &str, body: &Value) -> (u16, String) {
    let url = format!("{}{path}", d.base);
    let req = if method == "GET" {
        d.raw().get(url)
    } else {
        d.raw().post(url).json(body)
    };
    let r = req.bearer_auth(&who.key).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let kind = body["type"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("urn:mandate:problem:")
        .to_owned();
    (status, kind)
}

async fn setup_org(d: &Daemon, org: &'static str, legal: &str, agent: &'static str) -> Objects {
    let admin = d.admin_key();
    let r = d
        .post(
            &admin,
            "/v1/organizations",
            &json!({"id": org, "legal_name": legal}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let op = d.person_key(Some(org), "operator").await;
    let comp = d.person_key(Some(org), "compliance").await;
    let r = d
        .post(
            &op,
            "/v1/agents",
            &json!({"agent_id": agent, "name": agent,
                    "mandate": {"allowedMarkets": ["EUR_USD"], "permittedActions": ["trade_execution"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = d
        .post(
            &comp,
            &format!("/v1/agents/{agent}/approve"),
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let work = tempfile::tempdir().unwrap();
    let r = d
        .post(
            &op,
            &format!("/v1/agents/{agent}/certify"),
            &json!({"csr": csr(work.path(), "ec-p256", &format!("/CN={agent}"), None)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let serial = r.body["serial_number"].as_str().unwrap().to_owned();
    let r = d
        .post(
            &op,
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let hook = r.body["id"].as_str().unwrap().to_owned();
    // A delivery to it that was given up, for redelivery.
    exec_sql(
        d,
        &format!(
            "INSERT INTO webhook_events (type, operator, data, created_at_ms, fanned_out)
                 VALUES ('incident.opened', '{org}', '{{\"agent_id\": \"{agent}\"}}', 0, TRUE);
             INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts,
                 next_attempt_at_ms)
                 VALUES ('{hook}', (SELECT MAX(id) FROM webhook_events), 'failed', 20, 0)"
        ),
        false,
    );
    let delivery = query_sql(
        d,
        &format!("SELECT MAX(id) FROM webhook_deliveries WHERE webhook_id = '{hook}'"),
    )[0][0]
        .clone();
    exec_sql(
        d,
        &format!(
            "INSERT INTO incidents (agent_id, kind, status, score, threshold, contributions,
                 created_at_ms) VALUES ('{agent}', 'risk_warning', 'open', 0.8, 0.75, '[]', 0)"
        ),
        false,
    );
    let incident = query_sql(
        d,
        &format!("SELECT MAX(id) FROM incidents WHERE agent_id = '{agent}'"),
    )[0][0]
        .clone();
    let r = d
        .post(
            &op,
            &format!("/v1/agents/{agent}/preflight"),
            &json!({"action": "trade_execution", "market": "EUR_USD"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let decision = r.body["decision_id"].as_str().unwrap().to_owned();
    let r = d
        .post(
            &comp,
            &format!("/v1/agents/{agent}/overrides"),
            &json!({"limit": "maxOpenOrders", "value": 5, "duration_secs": 3600,
                    "reason": "role table"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let override_id = r.body["id"].to_string();
    Objects {
        org,
        agent,
        serial,
        incident,
        hook,
        delivery,
        decision,
        override_id,
    }
}

#[tokio::test]
async fn every_operation_answers_each_role_and_organization_as_documented() {
    let d = Daemon::start().await;
    let a = setup_org(&d, "org-a", "Alpha Trading AG", "a-bot").await;
    let b = setup_org(&d, "org-b", "Beta Capital Ltd", "b-bot").await;
    let who = vec![
        Who {
            name: "CA admin",
            role: "admin",
            key: d.admin_key(),
            staff: true,
        },
        Who {
            name: "CA auditor",
            role: "auditor",
            key: d.person_key(None, "auditor").await,
            staff: true,
        },
        Who {
            name: "org-a operator",
            role: "operator",
            key: d.person_key(Some("org-a"), "operator").await,
            staff: false,
        },
        Who {
            name: "org-a compliance",
            role: "compliance",
            key: d.person_key(Some("org-a"), "compliance").await,
            staff: false,
        },
        Who {
            name: "org-a auditor",
            role: "auditor",
            key: d.person_key(Some("org-a"), "auditor").await,
            staff: false,
        },
        Who {
            name: "a-bot's key",
            role: "agent",
            key: d.key("agent", Some("a-bot")).await,
            staff: false,
        },
        Who {
            name: "org-a price feed",
            role: "market-data",
            key: d.person_key(Some("org-a"), "market-data").await,
            staff: false,
        },
    ];
    let work = tempfile::tempdir().unwrap();
    let csr_a = csr(work.path(), "ec-p256", "/CN=a-bot", None);
    let csr_b = csr(work.path(), "ec-p256", "/CN=b-bot", None);

    // Refusals first: every one exactly as documented, and all of them together write nothing.
    let before = footprint(&d);
    let mut allowed = Vec::new();
    let mut refusals = 0;
    let routes = table();
    for r in &routes {
        for w in &who {
            for (own, objects, csr) in [(true, &a, &csr_a), (false, &b, &csr_b)] {
                let path = fill(r.path, objects, csr);
                match expected(r, w, own) {
                    Some((status, kind)) => {
                        let body = fill_json(&r.body, objects, csr);
                        let got = call(&d, w, r.method, &path, &body).await;
                        assert_eq!(
                            got,
                            (status, kind.to_owned()),
                            "{} {path} as {}",
                            r.method,
                            w.name
                        );
                        refusals += 1;
                    }
                    None => allowed.push((r, w, own, path, fill_json(&r.body, objects, csr))),
                }
            }
        }
    }
    assert_eq!(footprint(&d), before, "a refusal wrote something");
    assert!(refusals > 200, "{refusals}");

    // Lists: an organization's people see its rows only; CA staff see both.
    for w in &who[..5] {
        let agents = d.get(&w.key, "/v1/agents").await;
        let ids: Vec<&str> = agents.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["agent_id"].as_str().unwrap())
            .collect();
        let want: &[&str] = if w.staff {
            &["a-bot", "b-bot"]
        } else {
            &["a-bot"]
        };
        assert_eq!(ids, want, "{}", w.name);
        let incidents = d.get(&w.key, "/v1/incidents").await;
        let of: Vec<&str> = incidents.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["agent_id"].as_str().unwrap())
            .collect();
        assert!(
            w.staff || of.iter().all(|x| *x == "a-bot"),
            "{}: {of:?}",
            w.name
        );
        if w.role != "operator" {
            let audit = d.get(&w.key, "/v1/audit?limit=100").await;
            // Chain hashes link to other organizations' records: CA staff's only.
            assert!(
                audit.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r.get("prev_hash").is_some() == w.staff),
                "{}",
                w.name
            );
            let orgs: std::collections::BTreeSet<String> = audit.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["organization"].as_str().unwrap_or("").to_owned())
                .collect();
            if w.staff {
                assert!(
                    orgs.contains("org-b") && orgs.contains(""),
                    "{}: {orgs:?}",
                    w.name
                );
            } else {
                assert_eq!(
                    orgs.into_iter().collect::<Vec<_>>(),
                    ["org-a"],
                    "{}",
                    w.name
                );
            }
        }
        let hooks = d.get(&w.key, "/v1/webhooks").await;
        assert_eq!(
            hooks.body["items"].as_array().unwrap().len(),
            if w.staff { 2 } else { 1 },
            "{}",
            w.name
        );
    }

    // What the table allows gets past the role and tenant checks (its answer may still be a
    // state error: approving what is approved, learning without events...).
    for (r, w, own, path, body) in &allowed {
        let (status, kind) = call(&d, w, r.method, path, body).await;
        let tenant = r.scope == Scope::Tenant;
        assert!(
            status != 401 && kind != "forbidden" && !(kind == "not-found" && tenant),
            "{} {path} as {} ({}): {status} {kind}",
            r.method,
            w.name,
            if *own { "own" } else { "other" }
        );
    }
}

/// A browser's side of a dashboard session: its cookies and the CSRF token of its pages.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: std::collections::BTreeMap<String, String>,
    csrf: String,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for h in r.headers().get_all("set-cookie") {
            let text = h.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> u16 {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r.status().as_u16()
    }

    /// A browser with no cookies yet.
    fn new(d: &Daemon) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: d.base.clone(),
            cookies: Default::default(),
            csrf: String::new(),
        }
    }

    /// Signs in with `key` and reads the CSRF token of the overview page.
    async fn sign_in(d: &Daemon, key: &str) -> Browser {
        let mut b = Browser::new(d);
        let (_, page) = b.get("/dashboard/login").await;
        let token = hidden(&page, "login_token");
        let status = b
            .post(
                "/dashboard/login",
                &[("api_key", key), ("login_token", &token)],
            )
            .await;
        assert_eq!(status, 303, "sign-in");
        let (_, page) = b.get("/dashboard").await;
        b.csrf = hidden(&page, "csrf");
        b
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn dashboard_forms_follow_the_same_table() {
    let d = Daemon::start().await;
    let a = setup_org(&d, "org-a", "Alpha Trading AG", "a-bot").await;
    let b = setup_org(&d, "org-b", "Beta Capital Ltd", "b-bot").await;
    let comp_a = d.person_key(Some("org-a"), "compliance").await;
    let aud_a = d.person_key(Some("org-a"), "auditor").await;
    let mut comp = Browser::sign_in(&d, &comp_a).await;
    let mut aud = Browser::sign_in(&d, &aud_a).await;
    // A price feed's key posts prices and nothing else: it cannot sign in.
    let feed = d.person_key(Some("org-a"), "market-data").await;
    let before_feed = footprint(&d);
    let mut stranger = Browser::new(&d);
    let (_, page) = stranger.get("/dashboard/login").await;
    let token = hidden(&page, "login_token");
    let status = stranger
        .post(
            "/dashboard/login",
            &[("api_key", &feed), ("login_token", &token)],
        )
        .await;
    assert_eq!(status, 403, "a market-data key signed in");
    assert_eq!(
        footprint(&d),
        before_feed,
        "a refused sign-in wrote something"
    );
    let before = footprint(&d);
    // (signed in as compliance?, form action, fields, status): another organization's agent
    // or incident is "not found"; a role the table refuses is "forbidden".
    type Form<'a> = (bool, String, Vec<(&'a str, &'a str)>, u16);
    let forms: Vec<Form> = vec![
        (
            true,
            format!("/dashboard/agents/{}/approve", b.agent),
            vec![],
            404,
        ),
        (
            true,
            format!("/dashboard/agents/{}/reject", b.agent),
            vec![],
            404,
        ),
        (
            true,
            format!("/dashboard/agents/{}/reinstate", b.agent),
            vec![],
            404,
        ),
        (
            true,
            format!("/dashboard/agents/{}/baseline/approve", b.agent),
            vec![],
            404,
        ),
        (
            true,
            format!("/dashboard/agents/{}/kill", b.agent),
            vec![("reason", "x"), ("confirm", b.agent)],
            404,
        ),
        (
            true,
            format!("/dashboard/incidents/{}/acknowledge", b.incident),
            vec![],
            404,
        ),
        (
            true,
            format!("/dashboard/incidents/{}/resolve", b.incident),
            vec![("resolution", "x")],
            404,
        ),
        (
            false,
            format!("/dashboard/agents/{}/approve", a.agent),
            vec![],
            403,
        ),
        (
            false,
            format!("/dashboard/agents/{}/reinstate", a.agent),
            vec![],
            403,
        ),
        (
            false,
            format!("/dashboard/agents/{}/kill", a.agent),
            vec![("reason", "x"), ("confirm", a.agent)],
            403,
        ),
        (
            false,
            format!("/dashboard/incidents/{}/resolve", a.incident),
            vec![("resolution", "x")],
            403,
        ),
        (
            true,
            format!("/dashboard/webhooks/{}/disable", b.hook),
            vec![],
            403,
        ),
        (
            false,
            "/dashboard/webhooks".to_owned(),
            vec![("url", "https://hooks.example.com/x")],
            403,
        ),
        (
            false,
            "/dashboard/agents".to_owned(),
            vec![("agent_id", "x-bot"), ("name", "X"), ("mandate", "{}")],
            403,
        ),
        (
            true,
            format!("/dashboard/agents/{}/mandate", a.agent),
            vec![("mandate", "{}")],
            403,
        ),
        (
            true,
            "/dashboard/people".to_owned(),
            vec![("id", "mallory"), ("name", "M"), ("role_admin", "on")],
            403,
        ),
        (
            false,
            "/dashboard/api-keys".to_owned(),
            vec![("person", "mallory"), ("role", "admin"), ("label", "x")],
            403,
        ),
    ];
    for (as_comp, action, fields, status) in &forms {
        let browser = if *as_comp { &mut comp } else { &mut aud };
        let csrf = browser.csrf.clone();
        let mut form = fields.clone();
        form.push(("csrf", &csrf));
        assert_eq!(browser.post(action, &form).await, *status, "{action}");
    }
    for (as_comp, page, status) in [
        (true, format!("/dashboard/agents/{}", b.agent), 404),
        (true, format!("/dashboard/webhooks/{}", b.hook), 404),
        (false, "/dashboard/audit".to_owned(), 403),
        (true, format!("/dashboard/agents/{}", a.agent), 200),
    ] {
        let browser = if as_comp { &mut comp } else { &mut aud };
        assert_eq!(browser.get(&page).await.0, status, "{page}");
    }
    assert_eq!(footprint(&d), before, "a refused form wrote something");
    // The people page: CA staff's admins list everyone; an organization's people see their
    // organization and no people list.
    let (status, page) = comp.get("/dashboard/people").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-org=\"org-a\"") && !page.contains("data-org=\"org-b\""));
    assert!(!page.contains("id=\"people\""), "{page}");
    let mut admin = Browser::sign_in(&d, &d.admin_key()).await;
    let (_, page) = admin.get("/dashboard/people").await;
    assert!(page.contains("data-org=\"org-b\"") && page.contains("data-person=\"admin\""));
    // Pages name people, not key ids; the header names who is signed in.
    let (_, page) = comp.get(&format!("/dashboard/agents/{}", a.agent)).await;
    assert!(page.contains("registered by Person operator-"), "{page}");
    assert!(page.contains("id=\"who-name\""), "{page}");
}

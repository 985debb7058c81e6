//! Two firms on one CA: every key acts for one person of one organization; another
//! organization's objects do not exist for it (404, as missing ones), and nothing a refusal
//! touches is written. Four eyes are between people, with one or two approvers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, Daemon, csr, footprint, full_mandate, query_sql};

async fn org(d: &Daemon, id: &str, legal_name: &str, approvals: i64) {
    let r = d
        .post(
            &d.admin_key(),
            "/v1/organizations",
            &json!({"id": id, "legal_name": legal_name, "approvals_required": approvals,
                    "regulator_id": "ESMA-000001"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

/// The full mandate without trading hours (events reported now must fit at any time of day).
fn mandate(operator: &str) -> Value {
    let mut m = full_mandate();
    m["operator"] = json!(operator);
    m.as_object_mut().unwrap().remove("tradingHours");
    m
}

#[tokio::test]
async fn another_organizations_objects_do_not_exist_and_refusals_write_nothing() {
    let d = Daemon::start().await;
    org(&d, "org-a", "Alpha Trading AG", 1).await;
    org(&d, "org-b", "Beta Capital Ltd", 1).await;
    let op_a = d.person_key(Some("org-a"), "operator").await;
    let comp_a = d.person_key(Some("org-a"), "compliance").await;
    let aud_a = d.person_key(Some("org-a"), "auditor").await;
    let op_b = d.person_key(Some("org-b"), "operator").await;
    let comp_b = d.person_key(Some("org-b"), "compliance").await;

    // org-a's operator registers in its own organization (the default), not in org-b.
    let r = d
        .post(
            &op_a,
            "/v1/agents",
            &json!({"agent_id": "a-bot", "name": "A", "mandate": mandate("Alpha Trading AG")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["organization"], "org-a");
    // No desk puts another firm's name in a certificate.
    let before = footprint(&d);
    d.post(
        &op_a,
        "/v1/agents",
        &json!({"agent_id": "a-bot2", "name": "A", "mandate": mandate("Beta Capital Ltd")}),
    )
    .await
    .assert_problem(422, "invalid-mandate");
    d.post(
        &op_a,
        "/v1/agents",
        &json!({"agent_id": "x-bot", "name": "X", "organization": "org-b",
                "mandate": mandate("Beta Capital Ltd")}),
    )
    .await
    .assert_problem(404, "not-found");
    assert_eq!(footprint(&d), before);

    let r = d
        .post(
            &op_b,
            "/v1/agents",
            &json!({"agent_id": "b-bot", "name": "B", "mandate": mandate("Beta Capital Ltd")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    // org-a's compliance officer cannot approve org-b's agent: it does not exist for them.
    let before = footprint(&d);
    d.post(&comp_a, "/v1/agents/b-bot/approve", &json!({"version": 1}))
        .await
        .assert_problem(404, "not-found");
    assert_eq!(footprint(&d), before);
    let r = d
        .post(&comp_b, "/v1/agents/b-bot/approve", &json!({"version": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let work = tempfile::tempdir().unwrap();
    let r = d
        .post(
            &op_b,
            "/v1/agents/b-bot/certify",
            &json!({"csr": csr(work.path(), "ec-p256", "/CN=b-bot", None)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let serial = r.body["serial_number"].as_str().unwrap().to_owned();
    let r = d
        .post(
            &op_b,
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["operator"], "org-b");
    let hook_b = r.body["id"].as_str().unwrap().to_owned();
    let r = d
        .post(
            &op_b,
            "/v1/events",
            &json!({"agent_id": "b-bot", "action": "trade_execution",
                    "market": "EUR_USD", "size": "10", "currency": "EUR",
                             "counterparty": "exchange_a", "region": "eu-west-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let incidents_b = d.get(&op_b, "/v1/incidents").await;
    assert_eq!(incidents_b.status, StatusCode::OK, "{incidents_b:?}");

    // Every one of org-b's objects answers org-a's people exactly as a missing one, and
    // nothing is written.
    let csr_b = csr(work.path(), "ec-p256", "/CN=b-bot", None);
    let before = footprint(&d);
    let posts: Vec<(&str, String, Value)> = vec![
        (
            &op_a,
            "/v1/agents/b-bot/mandate".into(),
            json!({"mandate": mandate("Alpha Trading AG")}),
        ),
        (
            &op_a,
            "/v1/agents/b-bot/certify".into(),
            json!({"csr": csr_b}),
        ),
        (
            &op_a,
            "/v1/agents/b-bot/certify".into(),
            json!({"hsm_key_type": "ec-p256"}),
        ),
        (&op_a, "/v1/agents/b-bot/eab".into(), json!({})),
        (
            &op_a,
            "/v1/agents/b-bot/revoke".into(),
            json!({"reason": "not yours"}),
        ),
        (
            &op_a,
            "/v1/operators/org-b/revoke".into(),
            json!({"reason": "not yours"}),
        ),
        (
            &comp_a,
            "/v1/operators/org-b/revoke".into(),
            json!({"reason": "not yours"}),
        ),
        (
            &op_a,
            format!("/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        ),
        (
            &op_a,
            "/v1/agents/b-bot/preflight".into(),
            json!({"action": "trade_execution", "market": "EUR_USD", "size": "10", "currency": "EUR", "side": "buy"}),
        ),
        (
            &op_a,
            "/v1/agents/b-bot/sign".into(),
            json!({"action": "trade_execution", "market": "EUR_USD", "size": "10", "currency": "EUR", "side": "buy"}),
        ),
        (&op_a, "/v1/agents/b-bot/baseline".into(), json!({})),
        (
            &comp_a,
            "/v1/agents/b-bot/baseline/approve".into(),
            json!({}),
        ),
        (&comp_a, "/v1/agents/b-bot/approve".into(), json!({})),
        (&comp_a, "/v1/agents/b-bot/reject".into(), json!({})),
        (&op_a, format!("/v1/webhooks/{hook_b}/disable"), json!({})),
        (
            &op_a,
            "/v1/events".into(),
            json!({"agent_id": "b-bot", "action": "trade_execution",
                "market": "EUR_USD", "size": "10", "currency": "EUR",
                             "counterparty": "exchange_a", "region": "eu-west-1"}),
        ),
        (
            &op_a,
            "/v1/webhooks".into(),
            json!({"url": "http://127.0.0.1:9/x", "operator": "org-b"}),
        ),
    ];
    for (key, path, body) in &posts {
        let r = d.post(key, path, body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "POST {path}: {r:?}");
        r.assert_problem(404, "not-found");
    }
    let gets: Vec<(&str, String)> = vec![
        (&op_a, "/v1/agents/b-bot".into()),
        (&aud_a, "/v1/agents/b-bot".into()),
        (&op_a, "/v1/agents/b-bot/certificates".into()),
        (&op_a, format!("/v1/certificates/{serial}")),
        (&op_a, format!("/v1/certificates/{serial}/pem")),
        (&op_a, "/v1/agents/b-bot/risk-score".into()),
        (&op_a, "/v1/agents/b-bot/baseline".into()),
        (&op_a, format!("/v1/webhooks/{hook_b}")),
        (&op_a, format!("/v1/webhooks/{hook_b}/deliveries")),
        (
            &comp_a,
            "/v1/reports/agents/b-bot?from=2026-01-01&to=2026-12-31".into(),
        ),
        (&op_a, "/v1/organizations/org-b".into()),
    ];
    for (key, path) in &gets {
        let r = d.get(key, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {path}: {r:?}");
    }
    // Lists hold only the caller's organization.
    let agents = d.get(&aud_a, "/v1/agents").await;
    let ids: Vec<&str> = agents.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a-bot"]);
    let hooks = d.get(&op_a, "/v1/webhooks").await;
    assert_eq!(hooks.body["items"], json!([]), "{hooks:?}");
    let orgs = d.get(&op_a, "/v1/organizations").await;
    assert_eq!(orgs.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(orgs.body["items"][0]["id"], "org-a");
    // An organization's auditor reads the audit records of its organization only, each
    // naming its organization and the person who acted.
    let audit = d.get(&aud_a, "/v1/audit?limit=100").await;
    assert_eq!(audit.status, StatusCode::OK, "{audit:?}");
    let items = audit.body["items"].as_array().unwrap();
    assert!(
        items.iter().all(|r| r["organization"] == "org-a"),
        "{audit:?}"
    );
    assert!(!audit.body.to_string().contains("b-bot"), "{audit:?}");
    let registered = items
        .iter()
        .find(|r| r["action"] == "agent.registered")
        .unwrap();
    assert_eq!(registered["subject"], "a-bot");
    assert!(
        registered["person"]
            .as_str()
            .is_some_and(|p| p.starts_with("operator-")),
        "{registered}"
    );
    assert!(
        registered["person_name"]
            .as_str()
            .is_some_and(|p| p.starts_with("Person operator-")),
        "{registered}"
    );
    assert_eq!(footprint(&d), before);

    // A report names people, not key ids.
    let report = d
        .get(
            &comp_b,
            "/v1/reports/agents/b-bot?from=2026-01-01&to=2027-12-31",
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{report:?}");
    let people = report.body["report"]["people"].as_object().unwrap();
    assert!(
        people.values().any(|p| p["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Person operator-"))
            && p["organization"] == "org-b"),
        "{people:?}"
    );
    // CA staff see both firms.
    let all = d.get(&d.admin_key(), "/v1/agents").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    // org-b's own kill switch works for org-b.
    let r = d
        .post(
            &comp_b,
            "/v1/operators/org-b/revoke",
            &json!({"reason": "drill"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["certificates_revoked"], json!([serial]));
}

#[tokio::test]
async fn four_eyes_are_between_people_and_two_approvers_when_required() {
    let d = Daemon::start().await;
    org(&d, "solo", "Solo Trading AG", 1).await;
    org(&d, "duo", "Duo Capital Ltd", 2).await;
    // One person holding both an operator and a compliance key.
    d.person("dana", Some("solo"), &["operator", "compliance"])
        .await;
    let dana_op = d.key_of("dana", "operator").await;
    let dana_comp = d.key_of("dana", "compliance").await;
    let r = d
        .post(
            &dana_op,
            "/v1/agents",
            &json!({"agent_id": "solo-bot", "name": "S", "mandate": mandate("Solo Trading AG")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let before = footprint(&d);
    d.post(
        &dana_comp,
        "/v1/agents/solo-bot/approve",
        &json!({"version": 1}),
    )
    .await
    .assert_problem(403, "segregation-of-duties");
    assert_eq!(footprint(&d), before);
    let other = d.person_key(Some("solo"), "compliance").await;
    let r = d
        .post(
            &other,
            "/v1/agents/solo-bot/approve",
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "active");

    // Two approvers: the first leaves the version pending, the same person again is refused,
    // a second person approves it.
    let op = d.person_key(Some("duo"), "operator").await;
    let c1 = d.person_key(Some("duo"), "compliance").await;
    let c2 = d.person_key(Some("duo"), "compliance").await;
    let r = d
        .post(
            &op,
            "/v1/agents",
            &json!({"agent_id": "duo-bot", "name": "D", "mandate": mandate("Duo Capital Ltd")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = d
        .post(&c1, "/v1/agents/duo-bot/approve", &json!({"version": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "pending_approval");
    assert_eq!(r.body["mandate_status"], "pending_approval");
    assert_eq!(r.body["approvals"], json!({"recorded": 1, "required": 2}));
    let work = tempfile::tempdir().unwrap();
    d.post(
        &op,
        "/v1/agents/duo-bot/certify",
        &json!({"csr": csr(work.path(), "ec-p256", "/CN=duo-bot", None)}),
    )
    .await
    .assert_problem(409, "mandate-not-approved");
    let before = footprint(&d);
    d.post(&c1, "/v1/agents/duo-bot/approve", &json!({"version": 1}))
        .await
        .assert_problem(409, "conflict");
    assert_eq!(footprint(&d), before);
    let r = d
        .post(&c2, "/v1/agents/duo-bot/approve", &json!({"version": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "active");
    // Each approval is recorded with its person.
    let people = query_sql(
        &d,
        "SELECT person_id FROM approvals WHERE agent_id = 'duo-bot' ORDER BY id",
    );
    assert_eq!(people.len(), 2, "{people:?}");
    assert_ne!(people[0], people[1]);
}

#[tokio::test]
async fn a_disabled_person_keys_stop_and_keys_belong_to_people() {
    let ca = Ca::start().await;
    let admin = ca.d.admin_key();
    // A person's key needs the person and one of their roles.
    ca.d.post(
        &admin,
        "/v1/api-keys",
        &json!({"role": "operator", "label": "x"}),
    )
    .await
    .assert_problem(400, "invalid-request");
    ca.d.person("erin", Some("acme-trading"), &["auditor"])
        .await;
    ca.d.post(
        &admin,
        "/v1/api-keys",
        &json!({"role": "operator", "label": "x", "person": "erin"}),
    )
    .await
    .assert_problem(400, "invalid-request");
    // People of an organization hold no admin role.
    ca.d.post(
        &admin,
        "/v1/people",
        &json!({"id": "mallory", "name": "M", "organization": "acme-trading", "roles": ["admin"]}),
    )
    .await
    .assert_problem(400, "invalid-request");
    let key = ca.d.key_of("erin", "auditor").await;
    assert_eq!(ca.d.get(&key, "/v1/agents").await.status, StatusCode::OK);
    // Only CA staff manage people.
    ca.d.post(&ca.operator, "/v1/people/erin/disable", &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let r =
        ca.d.post(&admin, "/v1/people/erin/disable", &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["newly_disabled"], true);
    ca.d.get(&key, "/v1/agents")
        .await
        .assert_problem(401, "unauthorized");
    // The bootstrap admin cannot disable the last admin.
    ca.d.post(&admin, "/v1/people/admin/disable", &json!({}))
        .await
        .assert_problem(409, "wrong-state");
}

/// Approves `path` as `first`, then again as `first` (refused), then as `second`; returns the
/// three answers' bodies after checking the first waits for another person.
async fn two_approvals(d: &Daemon, first: &str, second: &str, path: &str, body: Value) -> Value {
    let r = d.post(first, path, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {r:?}");
    assert_eq!(
        r.body["approvals"],
        json!({"recorded": 1, "required": 2}),
        "{path}: {r:?}"
    );
    d.post(first, path, &body)
        .await
        .assert_problem(409, "conflict");
    let r = d.post(second, path, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {r:?}");
    assert!(r.body.get("approvals").is_none(), "{path}: {r:?}");
    r.body
}

#[tokio::test]
async fn two_approvers_also_for_baselines_reinstatements_and_incident_resolutions() {
    let d = Daemon::start_with_config(
        "[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n",
    )
    .await;
    org(&d, "duo", "Duo Capital Ltd", 2).await;
    let op = d.person_key(Some("duo"), "operator").await;
    let c1 = d.person_key(Some("duo"), "compliance").await;
    let c2 = d.person_key(Some("duo"), "compliance").await;
    let mut m = crate::behaviour::open_mandate();
    m["operator"] = json!("Duo Capital Ltd");
    let r = d
        .post(
            &op,
            "/v1/agents",
            &json!({"agent_id": "duo-bot", "name": "D", "mandate": m}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let a = two_approvals(
        &d,
        &c1,
        &c2,
        "/v1/agents/duo-bot/approve",
        json!({"version": 1}),
    )
    .await;
    assert_eq!(a["status"], "active");

    // A baseline learnt from six days of history.
    let r = d
        .post(
            &op,
            "/v1/events",
            &Value::Array(crate::behaviour::history("duo-bot")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = d.post(&op, "/v1/agents/duo-bot/baseline", &json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let b = two_approvals(
        &d,
        &c1,
        &c2,
        "/v1/agents/duo-bot/baseline/approve",
        json!({}),
    )
    .await;
    assert_eq!(b["status"], "approved");

    // Lifting a suspension.
    let r = d
        .post(
            &op,
            "/v1/agents/duo-bot/revoke",
            &json!({"reason": "drill"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // An unresolved auto-revocation incident refuses the lifting before a first approval is
    // recorded: nothing written.
    crate::harness::exec_sql(
        &d,
        "INSERT INTO incidents (agent_id, kind, status, score, threshold, contributions,
             created_at_ms, revokes) VALUES ('duo-bot', 'auto_revocation', 'open', 0.9, 0.85, '[]', 0,
             TRUE)",
        false,
    );
    let before = (
        footprint(&d),
        query_sql(&d, "SELECT COUNT(*) FROM pending_approvals"),
    );
    d.post(&c1, "/v1/agents/duo-bot/reinstate", &json!({}))
        .await
        .assert_problem(409, "wrong-state");
    assert_eq!(
        (
            footprint(&d),
            query_sql(&d, "SELECT COUNT(*) FROM pending_approvals")
        ),
        before
    );
    crate::harness::exec_sql(
        &d,
        "UPDATE incidents SET status = 'resolved' WHERE kind = 'auto_revocation'",
        false,
    );
    let first = d
        .post(&c1, "/v1/agents/duo-bot/reinstate", &json!({}))
        .await;
    assert_eq!(first.body["status"], "suspended", "{first:?}");
    let r = d
        .post(&c2, "/v1/agents/duo-bot/reinstate", &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "active", "{r:?}");

    // Resolving an incident.
    crate::harness::exec_sql(
        &d,
        "INSERT INTO incidents (agent_id, kind, status, score, threshold, contributions,
             created_at_ms) VALUES ('duo-bot', 'risk_warning', 'open', 0.8, 0.75, '[]', 0)",
        false,
    );
    let id = query_sql(&d, "SELECT MAX(id) FROM incidents")[0][0].clone();
    let i = two_approvals(
        &d,
        &c1,
        &c2,
        &format!("/v1/incidents/{id}/resolve"),
        json!({"resolution": "looked at it"}),
    )
    .await;
    assert_eq!(i["status"], "resolved");
    // Each first approval is in the audit log with its person.
    let recorded = query_sql(
        &d,
        "SELECT action FROM audit_events WHERE action LIKE '%.approval_recorded' ORDER BY seq",
    );
    let actions: Vec<&str> = recorded.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        actions,
        [
            "mandate.approval_recorded",
            "baseline.approval_recorded",
            "reinstatement.approval_recorded",
            "incident.approval_recorded"
        ]
    );
}

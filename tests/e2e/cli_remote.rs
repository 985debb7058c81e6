//! The command line as a client of the API (`--url`, `MANDATE_API_KEY`): a compliance
//! officer's day with neither curl nor the database, in text and with `--json`; the same role
//! rules as the API; nothing read-only creates anything.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::harness::{BIN, Ca, full_mandate};

/// `mandate ARGS` over the API as `key`, from a directory with no CA in it.
fn cli(ca: &Ca, key: &str, args: &[&str]) -> Output {
    let nowhere = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env("MANDATE_URL", &ca.d.base)
        .env("MANDATE_API_KEY", key)
        .env("MANDATE_DATA_DIR", nowhere.path().join("none"))
        .env_remove("MANDATE_CONFIG")
        .env_remove("MANDATE_JSON")
        .current_dir(nowhere.path())
        .output()
        .unwrap()
}

/// Its stdout, asserting success and a quiet stderr.
#[track_caller]
fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stderr, "", "nothing on stderr without -v");
    stdout
}

/// Its stdout as JSON, asserting success.
#[track_caller]
fn ok_json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Its stderr, asserting failure.
#[track_caller]
fn fails(out: Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_compliance_officers_day_over_the_api_in_text_and_json() {
    let ca = Ca::start().await;
    // Two agents wait for approval; a third, approved, breaches its mandate (an incident).
    for id in ["bot-a", "bot-b"] {
        assert_eq!(ca.register(id, full_mandate()).await.status, 201);
    }
    ca.approved_agent("bot-c", full_mandate()).await;
    let breach = json!({"agent_id": "bot-c", "action": "trade_execution",
        "market": "DOGE_USD", "size": "60000", "currency": "EUR",
                     "counterparty": "exchange_a", "region": "eu-west-1"});
    let r = ca.d.post(&ca.operator, "/v1/events", &breach).await;
    assert_eq!(r.status, 201, "{r:?}");
    let incident = r.body["incidents"][0]["id"].as_i64().unwrap();
    let officer = &ca.compliance;

    // What waits, as a table and as the API's page.
    let table = ok(cli(&ca, officer, &["approvals", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("AGENT"), "{table}");
    assert!(lines[0].contains("CHANGES"), "{table}");
    assert_eq!(
        lines.len(),
        3,
        "a header and the two waiting agents: {table}"
    );
    assert!(
        lines[1].starts_with("bot-a") && lines[1].contains("first version"),
        "{table}"
    );
    assert!(!table.contains("bot-c"), "{table}");
    let page = ok_json(cli(&ca, officer, &["--json", "approvals", "list"]));
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bot-a", "bot-b"], "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["items"][0]["mandate_status"], "pending_approval");
    assert!(
        page["items"][0]["requested_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Approve one (text), reject the other (JSON): the API's answers.
    let approved = ok(cli(
        &ca,
        officer,
        &[
            "approvals",
            "approve",
            "bot-a",
            "--version",
            "1",
            "--comment",
            "limits checked",
        ],
    ));
    assert!(
        approved.contains("status") && approved.contains("active"),
        "{approved}"
    );
    let rejected = ok_json(cli(
        &ca,
        officer,
        &[
            "approvals",
            "reject",
            "bot-b",
            "--version",
            "1",
            "--comment",
            "wrong desk",
            "--json",
        ],
    ));
    assert_eq!(rejected["agent_id"], "bot-b");
    assert_eq!(rejected["mandate_status"], "rejected", "{rejected}");
    let page = ok_json(cli(&ca, officer, &["--json", "approvals", "list"]));
    assert_eq!(page["items"], json!([]), "{page}");
    assert_eq!(ok(cli(&ca, officer, &["approvals", "list"])), "(none)\n");

    // The open incident: listed, acknowledged, resolved.
    let table = ok(cli(
        &ca,
        officer,
        &["incidents", "list", "--status", "open"],
    ));
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&incident.to_string()),
        "{table}"
    );
    assert!(
        table.contains("mandate_breach") && table.contains("bot-c"),
        "{table}"
    );
    let acked = ok_json(cli(
        &ca,
        officer,
        &["--json", "incidents", "acknowledge", &incident.to_string()],
    ));
    assert_eq!(acked["status"], "acknowledged", "{acked}");
    let resolved = ok(cli(
        &ca,
        officer,
        &[
            "incidents",
            "resolve",
            &incident.to_string(),
            "--resolution",
            "test order on the wrong market; desk briefed",
        ],
    ));
    assert!(resolved.contains("resolved"), "{resolved}");
    let shown = ok_json(cli(
        &ca,
        officer,
        &["--json", "incidents", "show", &incident.to_string()],
    ));
    assert_eq!(shown["status"], "resolved");
    assert_eq!(
        shown["resolution"],
        "test order on the wrong market; desk briefed"
    );
    assert!(
        shown["resolved_at"].as_str().unwrap().ends_with('Z'),
        "{shown}"
    );

    // The agents as the API lists them, filtered and searched.
    let page = ok_json(cli(
        &ca,
        officer,
        &["--json", "agents", "list", "--status", "active"],
    ));
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["agent_id"], "bot-a");
    let page = ok_json(cli(
        &ca,
        officer,
        &["--json", "agents", "list", "--search", "BOT-C"],
    ));
    assert_eq!(page["items"][0]["agent_id"], "bot-c", "{page}");

    // Refusals are the API's, one line each, with a non-zero exit and nothing on stdout.
    let err = fails(cli(
        &ca,
        &ca.operator,
        &["approvals", "approve", "bot-b", "--version", "1"],
    ));
    assert!(err.starts_with("error: 403 forbidden"), "{err}");
    assert!(err.contains("request id"), "{err}");
    let err = fails(cli(&ca, officer, &["incidents", "show", "999999"]));
    assert!(err.starts_with("error: 404 not-found"), "{err}");
    let err = fails(cli(&ca, "not-a-key", &["agents", "list"]));
    assert!(err.starts_with("error: 401 unauthorized"), "{err}");
    let err = fails(cli(
        &ca,
        officer,
        &["agents", "list", "--status", "sleeping"],
    ));
    assert!(err.contains("status: unknown state \"sleeping\""), "{err}");
}

#[tokio::test]
async fn without_url_the_api_commands_say_what_they_need_and_read_only_commands_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mistyped");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("MANDATE_DATA_DIR", &data)
            .env_remove("MANDATE_URL")
            .env_remove("MANDATE_API_KEY")
            .env_remove("MANDATE_CONFIG")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let err = fails(run(&["approvals", "list"]));
    assert!(err.contains("give --url"), "{err}");
    for args in [
        &["ca", "show"][..],
        &["orgs", "list"],
        &["people", "list"],
        &["hsm", "keys"],
        &["audit", "verify"],
        &["revoke", "certificate", "0a", "--reason", "superseded"],
    ] {
        let err = fails(run(args));
        assert!(err.contains("no CA here"), "{args:?}: {err}");
        assert!(err.contains("mandate.db does not exist"), "{args:?}: {err}");
    }
    assert!(
        !data.exists(),
        "a read-only command created {}",
        data.display()
    );
    let err = fails(run(&["--url", "http://127.0.0.1:9", "hsm", "keys"]));
    assert!(err.contains("runs on the data directory"), "{err}");
}

#[tokio::test]
async fn a_given_up_delivery_is_redelivered_by_its_organization_after_the_receiver_is_fixed() {
    use crate::receiver::Receiver;
    let ca = Ca::start_with_config("[webhooks]\nmax_attempts = 1\n").await;
    let port = crate::harness::free_port();
    let receiver = Receiver::start(port).await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["agent.approved"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let hook = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    // The receiver does not know the secret yet: it answers 401, and with one attempt allowed
    // the delivery is given up.
    ca.approved_agent("hook-bot", full_mandate()).await;
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let delivery = loop {
        let page = ca.d.get(&ca.operator, &deliveries).await;
        if let Some(d) = page.body["items"].as_array().and_then(|a| a.first())
            && d["status"] == "failed"
        {
            assert_eq!(d["last_status_code"], 401, "{d}");
            break d["id"].as_i64().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not given up: {page:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(receiver.received.of_type("agent.approved").is_empty());

    // Neither another organization's operator nor a compliance officer may redeliver.
    ca.d.ensure_org("other-firm", "Other Firm AG").await;
    let stranger = ca.d.person_key(Some("other-firm"), "operator").await;
    let path = format!("{deliveries}/{delivery}/redeliver");
    ca.d.post(&stranger, &path, &json!({}))
        .await
        .assert_problem(404, "not-found");
    ca.d.post(&ca.compliance, &path, &json!({}))
        .await
        .assert_problem(403, "forbidden");
    ca.d.post(
        &ca.operator,
        &format!("{deliveries}/999999/redeliver"),
        &json!({}),
    )
    .await
    .assert_problem(404, "not-found");

    // Fixed, then redelivered from the command line: it arrives, verified.
    *receiver.secret.lock().unwrap() = secret;
    let out = ok_json(cli(
        &ca,
        &ca.operator,
        &[
            "--json",
            "webhooks",
            "redeliver",
            &hook,
            &delivery.to_string(),
        ],
    ));
    assert_eq!(out["id"], delivery, "{out}");
    assert_eq!(out["status"], "pending", "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while receiver.received.of_type("agent.approved").is_empty() {
        assert!(std::time::Instant::now() < deadline, "not redelivered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = receiver.received.of_type("agent.approved");
    assert_eq!(got[0]["data"]["agent_id"], "hook-bot");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = ca.d.get(&ca.operator, &deliveries).await;
        let d = &page.body["items"][0];
        if d["status"] == "delivered" {
            assert_eq!(d["attempts"], 2, "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A delivered delivery may be sent again (a receiver that lost it).
    let again = ca.d.post(&ca.operator, &path, &json!({})).await;
    assert_eq!(again.status, reqwest::StatusCode::ACCEPTED, "{again:?}");
    assert_eq!(again.body["status"], "pending", "{again:?}");
    // Audited; and a disabled endpoint gets nothing more.
    let audit = ca.d.get(&ca.d.admin_key(), "/v1/audit?limit=100").await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "webhook.redelivered" && r["subject"] == hook.as_str()),
        "{audit:?}"
    );
    ca.d.post(
        &ca.operator,
        &format!("/v1/webhooks/{hook}/disable"),
        &json!({}),
    )
    .await;
    ca.d.post(&ca.operator, &path, &json!({}))
        .await
        .assert_problem(409, "wrong-state");
}

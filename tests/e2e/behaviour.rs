//! Pre-trade checks, events, baselines, scoring, automatic revocation, incidents and webhooks,
//! on the running daemon; OCSP checked with openssl, webhooks with a receiver that verifies the
//! HMAC.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, csr, free_port, full_mandate};
use crate::receiver::Receiver;

const DEADLINE: Duration = Duration::from_secs(15);
pub(crate) const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Today's UTC midnight.
pub(crate) fn midnight() -> i64 {
    now() - now().rem_euclid(DAY)
}

fn codes(r: &Value) -> Vec<String> {
    r["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The answer to a preflight, without its decision id (checked here: every answer names one).
async fn preflight(ca: &Ca, agent: &str, order: Value) -> Value {
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/agents/{agent}/preflight"),
            &order,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let mut body = r.body;
    let id = body
        .as_object_mut()
        .and_then(|o| o.remove("decision_id"))
        .unwrap_or_default();
    assert!(
        id.as_str()
            .is_some_and(|s| s.starts_with("dec_") && s.len() == 36),
        "no decision id: {id}"
    );
    body
}

pub(crate) async fn events(ca: &Ca, key: &str, batch: Value) -> Value {
    let r = ca.d.post(key, "/v1/events", &batch).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}\n{}", ca.d.log());
    r.body
}

pub(crate) fn event(
    agent: &str,
    at: i64,
    size: &str,
    market: &str,
    region: &str,
    success: bool,
) -> Value {
    json!({"agent_id": agent, "action": "trade_execution",
           "market": market, "size": size, "currency": "EUR", "side": "buy",
                        "counterparty": "exchange_a", "region": region, "timestamp": at,
                        "success": success})
}

/// Unix seconds of a wall-clock time in a zone, via python (an independent clock library).
fn unix_of(local: &str, zone: &str) -> i64 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,datetime,zoneinfo;print(int(datetime.datetime.fromisoformat(sys.argv[1]).replace(tzinfo=zoneinfo.ZoneInfo(sys.argv[2])).timestamp()))",
            local,
            zone,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn the_pre_trade_check_gives_every_reason_code_with_limit_and_request() {
    let ca = Ca::start().await;
    let work = tempfile::tempdir().unwrap();
    ca.approved_agent("desk-bot", full_mandate()).await;
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    m["maxConsecutiveFailures"] = json!(2);
    m["maxDailyVolume"] = json!({"amount": "1000", "currency": "EUR"});
    m["maxTransactionSize"] = json!({"amount": "500", "currency": "EUR"});
    ca.approved_agent("volume-bot", m).await;

    // Monday 2026-11-23 10:00 in Berlin is 09:00 UTC: inside 08:00-17:00 Europe/Berlin.
    let monday = unix_of("2026-11-23T10:00:00", "Europe/Berlin");
    let ok = json!({"action": "trade_execution", "market": "BTC_EUR", "counterparty": "exchange_a",
                    "region": "eu-west-1", "size": "100", "currency": "EUR", "side": "buy",
                    "timestamp": monday});
    // Approved but without a certificate: it cannot prove who it is, so it may not act.
    let r = preflight(&ca, "desk-bot", ok.clone()).await;
    assert_eq!(codes(&r), vec!["no_valid_certificate"], "{r}");
    ca.certify_new_key("desk-bot", work.path()).await;
    ca.certify_new_key("volume-bot", work.path()).await;
    // Another time than now is a what-if, and says so.
    assert_eq!(
        preflight(&ca, "desk-bot", ok.clone()).await,
        json!({"allowed": true, "hypothetical": true})
    );
    // The same instant as RFC 3339 text in UTC.
    let mut utc = ok.clone();
    utc["timestamp"] = json!("2026-11-23T09:00:00Z");
    assert_eq!(preflight(&ca, "desk-bot", utc).await["allowed"], true);
    // Another currency than the limits' cannot be compared: said once, as such.
    let mut usd = ok.clone();
    usd["currency"] = json!("USD");
    let r = preflight(&ca, "desk-bot", usd).await;
    assert_eq!(codes(&r), vec!["currency_mismatch"], "{r}");
    assert_eq!(r["reasons"][0]["limit"], "amounts in EUR");

    // Everything wrong at once: each reason, with limit and request.
    let bad = json!({"action": "model_inference", "market": "DOGE_USD",
                     "counterparty": "exchange_z", "region": "us-east-1", "size": "60000",
                     "currency": "EUR", "timestamp": monday});
    let r = preflight(&ca, "desk-bot", bad).await;
    assert_eq!(r["allowed"], false);
    let c = codes(&r);
    for code in [
        "action_not_permitted",
        "exceeds_scope_size",
        "market_not_allowed",
        "counterparty_not_allowed",
        "region_not_allowed",
    ] {
        assert!(c.contains(&code.to_owned()), "{code} missing: {r}");
    }
    let size = r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "exceeds_scope_size")
        .unwrap();
    assert_eq!(size["limit"], "50000 EUR");
    assert_eq!(size["requested"], "60000 EUR");

    // Hours across the time zone and the weekend: 07:30 Berlin is before the window, 16:59 is
    // in it, Saturday is out, and 17:00 is the end.
    for (local, allowed) in [
        ("2026-11-23T07:30:00", false),
        ("2026-11-23T16:59:00", true),
        ("2026-11-28T10:00:00", false),
        ("2026-11-23T17:00:00", false),
    ] {
        let mut o = ok.clone();
        o["timestamp"] = json!(unix_of(local, "Europe/Berlin"));
        let r = preflight(&ca, "desk-bot", o).await;
        assert_eq!(r["allowed"], allowed, "{local}: {r}");
        if !allowed {
            assert_eq!(codes(&r), vec!["outside_trading_hours"], "{local}: {r}");
        }
    }

    // Daily volume counts what events reported today; failures in a row trip the limit.
    let t = now();
    let mut o = ok.clone();
    o.as_object_mut().unwrap().remove("timestamp");
    assert_eq!(
        preflight(&ca, "volume-bot", o.clone()).await,
        json!({"allowed": true})
    );
    events(
        &ca,
        &ca.operator,
        json!([
            event("volume-bot", t, "500", "BTC_EUR", "eu-west-1", true),
            event("volume-bot", t, "400", "BTC_EUR", "eu-west-1", true)
        ]),
    )
    .await;
    o["size"] = json!("100");
    assert_eq!(
        preflight(&ca, "volume-bot", o.clone()).await["allowed"],
        true
    );
    o["size"] = json!("100.01");
    let r = preflight(&ca, "volume-bot", o.clone()).await;
    assert_eq!(codes(&r), vec!["daily_volume_cap_exceeded"], "{r}");
    assert_eq!(r["reasons"][0]["requested"], "1000.01 EUR");
    // Tomorrow's volume starts at zero (a what-if: it is not tomorrow yet).
    let mut tomorrow = o.clone();
    tomorrow["timestamp"] = json!(t + DAY);
    assert_eq!(
        preflight(&ca, "volume-bot", tomorrow).await,
        json!({"allowed": true, "hypothetical": true})
    );
    o["size"] = json!("1");
    events(
        &ca,
        &ca.operator,
        json!([
            event("volume-bot", t, "1", "BTC_EUR", "eu-west-1", false),
            event("volume-bot", t, "1", "BTC_EUR", "eu-west-1", false)
        ]),
    )
    .await;
    let r = preflight(&ca, "volume-bot", o.clone()).await;
    assert_eq!(codes(&r), vec!["too_many_consecutive_failures"], "{r}");
    // A success resets the count.
    events(
        &ca,
        &ca.operator,
        event("volume-bot", t, "1", "BTC_EUR", "eu-west-1", true),
    )
    .await;
    assert_eq!(
        preflight(&ca, "volume-bot", o.clone()).await["allowed"],
        true
    );

    // Revoked: the kill switch.
    assert_eq!(
        preflight(&ca, "volume-bot", o.clone()).await["allowed"],
        true
    );
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/volume-bot/revoke",
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = preflight(&ca, "volume-bot", o).await;
    assert_eq!(codes(&r), vec!["certificate_revoked"], "{r}");

    // Refusals: an unknown agent, a bad order, another agent's key, an unapproved agent.
    ca.d.post(&ca.operator, "/v1/agents/ghost/preflight", &ok)
        .await
        .assert_problem(404, "not-found");
    ca.d.post(
        &ca.operator,
        "/v1/agents/desk-bot/preflight",
        &json!({"action": "fly"}),
    )
    .await
    .assert_problem(422, "invalid-json");
    ca.d.post(
        &ca.operator,
        "/v1/agents/desk-bot/preflight",
        &json!({"action": "trade_execution", "size": "5"}),
    )
    .await
    .assert_problem(422, "invalid-order");
    let other = ca.d.key("agent", Some("volume-bot")).await;
    ca.d.post(&other, "/v1/agents/desk-bot/preflight", &ok)
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        ca.register("new-bot", full_mandate()).await.status,
        StatusCode::CREATED
    );
    ca.d.post(&ca.operator, "/v1/agents/new-bot/preflight", &ok)
        .await
        .assert_problem(409, "mandate-not-approved");
    // Once approved, the same daemon checks against the approved mandate.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/new-bot/approve",
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    ca.certify_new_key("new-bot", work.path()).await;
    assert_eq!(
        preflight(&ca, "new-bot", ok).await,
        json!({"allowed": true, "hypothetical": true})
    );
}

/// A mandate that lets the scorer, not the mandate, judge markets and regions.
pub(crate) fn open_mandate() -> Value {
    json!({"operator": "Acme Trading GmbH",
           "maxTransactionSize": {"amount": "1000000", "currency": "EUR"},
           "allowedMarkets": ["BTC_EUR", "ETH_EUR", "DOGE_EUR"],
           "allowedRegions": ["eu-west-1", "ap-south-1"],
           "permittedActions": ["trade_execution"]})
}

/// Six past days of trading 09:00-17:00 UTC, four events an hour, sizes 80..120, two markets.
/// The oldest day starts 7 days before today's midnight, more than 7 days ago once it is past
/// 09:00 UTC: the tests that learn from it use an 8-day observation window.
pub(crate) fn history(agent: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for day in 2..8 {
        for hour in 9..17 {
            for i in 0..4i64 {
                let at = midnight() - day * DAY + hour * 3600 + i * 900;
                let size = 80 + (day * 7 + hour * 3 + i * 11) % 41;
                let market = if i == 0 { "ETH_EUR" } else { "BTC_EUR" };
                out.push(event(
                    agent,
                    at,
                    &size.to_string(),
                    market,
                    "eu-west-1",
                    true,
                ));
            }
        }
    }
    out
}

/// Reports `agent`'s history, has its baseline learnt and approved.
async fn observed(ca: &Ca, agent: &str) {
    events(ca, &ca.operator, Value::Array(history(agent))).await;
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/agents/{agent}/baseline"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["status"], "pending_approval");
    assert_eq!(r.body["baseline"]["events"], 192);
    // Segregation of duties does not let the operator approve; compliance does.
    ca.d.post(
        &ca.operator,
        &format!("/v1/agents/{agent}/baseline/approve"),
        &json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    // A rejected baseline is learnt again before one is approved.
    let r =
        ca.d.post(
            &ca.compliance,
            &format!("/v1/agents/{agent}/baseline/reject"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/agents/{agent}/baseline"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r =
        ca.d.post(
            &ca.compliance,
            &format!("/v1/agents/{agent}/baseline/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "approved");
}

async fn pem_file(ca: &Ca, path: &str, file: &Path) {
    std::fs::write(file, ca.d.get_text(path).await).unwrap();
}

/// What `openssl ocsp` says of `cert` at the daemon's responder (verified against the root).
fn ocsp_status(ca: &Ca, dir: &Path, cert: &Path) -> String {
    let int = dir.join("int.pem");
    crate::harness::ocsp_status(&ca.d.base, &int, cert, &dir.join("root.pem"), &int)
}

async fn certified(ca: &Ca, agent: &str, dir: &Path) -> std::path::PathBuf {
    let r = ca.certify_new_key(agent, dir).await;
    let path = dir.join(format!("{agent}.pem"));
    std::fs::write(&path, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    path
}

async fn webhook(ca: &Ca, port: u16) -> (String, String) {
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    (r.body["id"].as_str().unwrap().to_owned(), secret)
}

async fn wait_until<F: FnMut() -> bool>(what: &str, mut f: F) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rogue_agent_is_revoked_automatically_a_normal_one_is_not_and_a_warning_fires_between() {
    let ca =
        Ca::start_with_config("[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n")
            .await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    pem_file(&ca, "/ca/root.pem", &dir.join("root.pem")).await;
    pem_file(&ca, "/ca/intermediate.pem", &dir.join("int.pem")).await;
    let port = free_port();
    let receiver = Receiver::start(port).await;
    let (hook_id, secret) = webhook(&ca, port).await;
    *receiver.secret.lock().unwrap() = secret.clone();

    let mut certs = Vec::new();
    for agent in ["calm-bot", "rogue-bot", "odd-bot"] {
        ca.approved_agent(agent, open_mandate()).await;
        certs.push(certified(&ca, agent, dir).await);
        observed(&ca, agent).await;
    }
    let yesterday = midnight() - DAY;

    // Normal trading at the usual hours, sizes and markets: low scores, nothing happens.
    let calm: Vec<Value> = (0..6)
        .map(|i| {
            event(
                "calm-bot",
                yesterday + 10 * 3600 + i * 600,
                "100",
                "BTC_EUR",
                "eu-west-1",
                true,
            )
        })
        .collect();
    let r = events(&ca, &ca.operator, Value::Array(calm)).await;
    for e in r["events"].as_array().unwrap() {
        assert!(e["score"].as_f64().unwrap() < 0.5, "{r}");
    }
    assert_eq!(r["incidents"], json!([]));
    let risk =
        ca.d.get(&ca.operator, "/v1/agents/calm-bot/risk-score")
            .await;
    assert_eq!(risk.body["risk_band"], "low", "{risk:?}");
    assert_eq!(risk.body["contributions"].as_array().unwrap().len(), 5);

    // Once at 03:00, an hour it never trades: the warning, not the revocation.
    let r = events(
        &ca,
        &ca.operator,
        event(
            "odd-bot",
            yesterday + 3 * 3600,
            "100",
            "BTC_EUR",
            "eu-west-1",
            true,
        ),
    )
    .await;
    let score = r["events"][0]["score"].as_f64().unwrap();
    assert!((0.75..0.85).contains(&score), "{r}");
    assert_eq!(r["incidents"][0]["kind"], "risk_warning", "{r}");
    let risk =
        ca.d.get(&ca.operator, "/v1/agents/odd-bot/risk-score")
            .await;
    assert_eq!(risk.body["risk_band"], "high", "{risk:?}");
    let top = risk.body["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["contribution"]
                .as_f64()
                .partial_cmp(&b["contribution"].as_f64())
                .unwrap()
        })
        .unwrap()
        .clone();
    assert_eq!(top["feature"], "time_of_day", "{risk:?}");
    // The circuit breaker now stops its trades.
    let order = json!({"action": "trade_execution", "market": "BTC_EUR", "size": "10",
                       "currency": "EUR", "region": "eu-west-1"});
    assert_eq!(
        codes(&preflight(&ca, "odd-bot", order.clone()).await),
        vec!["circuit_breaker_active"]
    );

    // The rogue: an order fifty times its usual size. Revoked before the answer comes back.
    let r = events(
        &ca,
        &ca.operator,
        event(
            "rogue-bot",
            yesterday + 11 * 3600,
            "5000",
            "BTC_EUR",
            "eu-west-1",
            true,
        ),
    )
    .await;
    assert!(r["events"][0]["score"].as_f64().unwrap() >= 0.85, "{r}");
    assert_eq!(r["incidents"][0]["kind"], "auto_revocation", "{r}");
    let incident = r["incidents"][0]["id"].as_i64().unwrap();
    assert_eq!(ocsp_status(&ca, dir, &certs[1]), "revoked");
    assert_eq!(ocsp_status(&ca, dir, &certs[0]), "good");
    assert_eq!(ocsp_status(&ca, dir, &certs[2]), "good");
    let agent = ca.d.get(&ca.operator, "/v1/agents/rogue-bot").await;
    assert_eq!(agent.body["status"], "suspended", "{agent:?}");
    let inc =
        ca.d.get(&ca.operator, &format!("/v1/incidents/{incident}"))
            .await;
    assert_eq!(inc.body["status"], "open", "{inc:?}");
    assert!(inc.body["kill_switch_id"].as_i64().is_some(), "{inc:?}");
    assert!(inc.body["risk_score"].as_f64().unwrap() >= 0.85);
    let size = inc.body["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == "size")
        .unwrap()
        .clone();
    assert_eq!(size["value"], 1.0, "{inc:?}");
    assert_eq!(
        codes(&preflight(&ca, "rogue-bot", order.clone()).await)[0],
        "certificate_revoked"
    );

    // The webhooks arrive signed: the warning, the revocation, the incident.
    wait_until("webhooks", || {
        !receiver.received.of_type("certificate.revoked").is_empty()
            && !receiver.received.of_type("risk.warning").is_empty()
            && !receiver.received.of_type("incident.opened").is_empty()
    })
    .await;
    let revoked = &receiver.received.of_type("certificate.revoked")[0];
    assert_eq!(revoked["data"]["agent_id"], "rogue-bot", "{revoked}");
    assert_eq!(revoked["data"]["revoked_by"], "system:scoring");
    assert!(revoked["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(
        receiver.received.of_type("risk.warning")[0]["data"]["agent_id"],
        "odd-bot"
    );
    // A tampered body fails the receiver's check.
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "x-mandate-signature",
        crate::receiver::sign_hex(&secret, b"{}").parse().unwrap(),
    );
    headers.insert("x-mandate-timestamp", "0".parse().unwrap());
    assert!(crate::receiver::verify(&secret, &headers, b"{ }").is_none());
    let log =
        ca.d.get(&ca.operator, &format!("/v1/webhooks/{hook_id}/deliveries"))
            .await;
    assert!(
        log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "delivered"),
        "{log:?}"
    );

    // A replacement needs a human sign-off: reinstating is refused until compliance resolves.
    ca.d.post(&ca.compliance, "/v1/agents/rogue-bot/reinstate", &json!({}))
        .await
        .assert_problem(409, "wrong-state");
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/incidents/{incident}/acknowledge"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "acknowledged");
    ca.d.post(
        &ca.operator,
        &format!("/v1/incidents/{incident}/resolve"),
        &json!({"resolution": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let r =
        ca.d.post(
            &ca.compliance,
            &format!("/v1/incidents/{incident}/resolve"),
            &json!({"resolution": "runaway position sizing fixed in v2.1; reviewed with the desk"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "resolved");
    let r =
        ca.d.post(&ca.compliance, "/v1/agents/rogue-bot/reinstate", &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    certified(&ca, "rogue-bot", dir).await;
    // Reinstated and certified again, it may trade (within its mandate) once more.
    assert_eq!(
        preflight(&ca, "rogue-bot", order.clone()).await,
        json!({"allowed": true})
    );
    // The audit record of the incident carries the score behind it.
    let auditor = ca.auditor().await;
    let records: Vec<Value> = ca.d.list_all(&auditor, "/v1/audit?limit=100").await;
    let opened = records
        .iter()
        .find(|r| r["action"] == "incident.opened" && r["subject"] == "rogue-bot")
        .unwrap();
    assert!(opened["risk_score"].as_f64().unwrap() >= 0.85, "{opened}");
    let list =
        ca.d.get(&ca.operator, "/v1/incidents?agent_id=rogue-bot")
            .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "{list:?}");
}

#[tokio::test]
async fn a_webhook_is_delivered_after_the_receiver_was_down_across_a_restart() {
    let mut ca =
        Ca::start_with_config("[webhooks]\nretry_base_ms = 100\nretry_max_ms = 400\n").await;
    let port = free_port();
    let (hook_id, secret) = webhook(&ca, port).await;
    // Nothing listens on the port: the approval's webhook fails and is retried.
    ca.approved_agent("late-bot", full_mandate()).await;
    let path = format!("/v1/webhooks/{hook_id}/deliveries");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = ca.d.get(&ca.operator, &path).await;
        let items = log.body["items"].as_array().unwrap().clone();
        if items.iter().any(|d| d["attempts"].as_i64().unwrap() >= 2) {
            assert!(items.iter().all(|d| d["status"] == "pending"), "{log:?}");
            assert!(items[0]["last_error"].as_str().is_some(), "{log:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempts: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ca.d.stop().await;
    let receiver = Receiver::start(port).await;
    *receiver.secret.lock().unwrap() = secret;
    ca.d.restart().await;
    wait_until("agent.approved after the restart", || {
        receiver
            .received
            .of_type("agent.approved")
            .iter()
            .any(|v| v["data"]["agent_id"] == "late-bot")
    })
    .await;
    let got = receiver.received.of_type("agent.approved");
    assert!(got[0]["attempt"].as_i64().unwrap() >= 3, "{got:?}");
    // The event names its organization, and the person behind the approving key.
    assert_eq!(got[0]["organization"], "acme-trading", "{got:?}");
    let approver = got[0]["data"]["approved_by"].as_str().unwrap();
    assert!(
        got[0]["people"][approver]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Person compliance-")),
        "{got:?}"
    );
    // The worker records the delivery once the receiver answered: wait for that record.
    let deadline = Instant::now() + DEADLINE;
    let (log, approved) = loop {
        let log = ca.d.get(&ca.operator, &path).await;
        let approved = log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event_type"] == "agent.approved")
            .unwrap()
            .clone();
        if approved["status"] == "delivered" || Instant::now() >= deadline {
            break (log, approved);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(approved["status"], "delivered", "{log:?}");
    assert_eq!(approved["last_status_code"], 204);

    // Bad endpoints are refused.
    ca.d.post(&ca.operator, "/v1/webhooks", &json!({"url": "ftp://x"}))
        .await
        .assert_problem(400, "invalid-request");
    ca.d.post(
        &ca.operator,
        "/v1/webhooks",
        &json!({"url": "http://x/", "events": ["nope"]}),
    )
    .await
    .assert_problem(400, "invalid-request");
    let auditor = ca.auditor().await;
    ca.d.post(&auditor, "/v1/webhooks", &json!({"url": "http://x/"}))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn webhooks_to_internal_addresses_are_refused_naming_the_rule_unless_allowed() {
    // Allowed (the suite's config): the loopback receiver gets its delivery.
    let mut ca = Ca::start_with_config(
        "[webhooks]\nallow_http = true\nallow_private_addresses = true\nretry_base_ms = 100\nretry_max_ms = 400\n",
    )
    .await;
    let port = free_port();
    let receiver = Receiver::start(port).await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["agent.approved"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let hook_id = r.body["id"].as_str().unwrap().to_owned();
    *receiver.secret.lock().unwrap() = r.body["secret"].as_str().unwrap().to_owned();
    ca.approved_agent("inside-ok-bot", full_mandate()).await;
    wait_until("the delivery while private addresses are allowed", || {
        !receiver.received.of_type("agent.approved").is_empty()
    })
    .await;

    // Not allowed (the default): the same receiver is refused at registration and at delivery.
    ca.d.stop().await;
    std::fs::write(
        ca.d.data_dir().join("mandate.toml"),
        "[webhooks]\nallow_http = true\nallow_private_addresses = false\nretry_base_ms = 100\nretry_max_ms = 400\n",
    )
    .unwrap();
    ca.d.spawn().await;
    let before = crate::harness::footprint(&ca.d);
    let hooks_before = ca.d.get(&ca.operator, "/v1/webhooks").await.body;
    for (url, rule) in [
        (
            format!("http://127.0.0.1:{port}/hook"),
            "127.0.0.1 is a loopback address",
        ),
        (
            "https://127.0.0.1/hook".into(),
            "127.0.0.1 is a loopback address",
        ),
        ("https://[::1]/".into(), "::1 is a loopback address"),
        (
            "https://[::ffff:127.0.0.1]/".into(),
            "::ffff:127.0.0.1 is a loopback address",
        ),
        // Another spelling of 127.0.0.1.
        (
            "https://2130706433/".into(),
            "127.0.0.1 is a loopback address",
        ),
        ("https://10.1.2.3/".into(), "10.1.2.3 is a private address"),
        (
            "https://192.168.0.10/".into(),
            "192.168.0.10 is a private address",
        ),
        (
            "https://169.254.169.254/latest/meta-data/".into(),
            "169.254.169.254 is a link-local address",
        ),
        ("https://[fd00::1]/".into(), "fd00::1 is a unique-local"),
        ("https://localhost/".into(), "localhost is a localhost name"),
        (
            "https://api.localhost./".into(),
            "api.localhost. is a localhost name",
        ),
    ] {
        let r =
            ca.d.post(&ca.operator, "/v1/webhooks", &json!({"url": url}))
                .await;
        r.assert_problem(400, "invalid-request");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("url: {rule}")), "{url}: {r:?}");
        assert!(
            detail.contains("set webhooks.allow_private_addresses = true"),
            "{url}: {r:?}"
        );
    }
    for (url, says) in [
        ("https://no-such-receiver.invalid/hook", "does not resolve"),
        ("https://user:pw@hooks.example.com/", "user:pass@"),
    ] {
        let r =
            ca.d.post(&ca.operator, "/v1/webhooks", &json!({"url": url}))
                .await;
        r.assert_problem(400, "invalid-request");
        assert!(
            r.body["detail"].as_str().unwrap().contains(says),
            "{url}: {r:?}"
        );
    }
    assert_eq!(crate::harness::footprint(&ca.d), before, "a refusal wrote");
    assert_eq!(
        ca.d.get(&ca.operator, "/v1/webhooks").await.body,
        hooks_before
    );

    // The endpoint registered while allowed is not sent to: each attempt fails, saying why.
    ca.approved_agent("inside-refused-bot", full_mandate())
        .await;
    let path = format!("/v1/webhooks/{hook_id}/deliveries");
    let deadline = Instant::now() + DEADLINE;
    let refused = loop {
        let log = ca.d.get(&ca.operator, &path).await;
        let newest = log.body["items"][0].clone();
        if newest["attempts"].as_i64().unwrap_or(0) >= 2 {
            break newest;
        }
        assert!(Instant::now() < deadline, "no refused attempts: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused["status"], "pending", "{refused}");
    assert_eq!(refused["last_status_code"], Value::Null, "{refused}");
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .starts_with("not sent: 127.0.0.1 is a loopback address"),
        "{refused}"
    );
    let got = receiver.received.of_type("agent.approved");
    assert!(
        got.iter().all(|v| v["data"]["agent_id"] == "inside-ok-bot"),
        "{got:?}"
    );
    assert_eq!(*receiver.received.bad_signatures.lock().unwrap(), 0);
}

#[tokio::test]
async fn custodial_signing_refuses_out_of_mandate_orders_and_verify_checks_everything() {
    let ca = Ca::start().await;
    ca.approved_agent("custody-bot", open_mandate()).await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/custody-bot/certify",
            &json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let order = json!({"action": "trade_execution", "market": "BTC_EUR", "size": "250.5",
                       "currency": "EUR", "side": "sell", "region": "eu-west-1"});
    let signed =
        ca.d.post(&ca.operator, "/v1/agents/custody-bot/sign", &order)
            .await;
    assert_eq!(signed.status, StatusCode::OK, "{signed:?}");
    assert_eq!(signed.body["algorithm"], "ecdsa-with-SHA256");

    // openssl checks the signature with the certificate's key.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(signed.body["payload"].as_str().unwrap())
        .unwrap();
    std::fs::write(d.join("payload"), &payload).unwrap();
    std::fs::write(
        d.join("sig"),
        b64.decode(signed.body["signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("cert.pem"),
        signed.body["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    crate::harness::run(
        Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(d.join("cert.pem"))
            .arg("-out")
            .arg(d.join("pub.pem")),
    );
    let out = crate::harness::run(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(d.join("pub.pem"))
            .arg("-signature")
            .arg(d.join("sig"))
            .arg(d.join("payload")),
    );
    assert!(out.contains("Verified OK"), "{out}");
    let parsed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(parsed["size"], "250.5");
    assert!(
        parsed["timestamp"].as_i64().is_some(),
        "the signed order says when"
    );

    // Out of mandate: refused with every reason, nothing signed.
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/custody-bot/sign",
            &json!({"action": "trade_execution", "market": "XRP_EUR", "size": "2000000",
                    "currency": "EUR"}),
        )
        .await;
    r.assert_problem(403, "out-of-mandate");
    assert_eq!(r.body["allowed"], false);
    let c = codes(&r.body);
    assert!(
        c.contains(&"market_not_allowed".to_owned())
            && c.contains(&"exceeds_scope_size".to_owned()),
        "{r:?}"
    );
    assert!(r.body.get("signature").is_none());

    // An exchange checks the signed order in one call.
    let exchange = ca.auditor().await;
    let verify = |payload: String| {
        json!({"certificate": signed.body["certificate_pem"], "signature": signed.body["signature"],
               "payload": payload})
    };
    let r =
        ca.d.post(
            &exchange,
            "/v1/verify",
            &verify(signed.body["payload"].as_str().unwrap().to_owned()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["valid"], true, "{r:?}");
    assert_eq!(r.body["agent_id"], "custody-bot");
    assert_eq!(r.body["revocation"]["status"], "good");
    let mut tampered = parsed.clone();
    tampered["size"] = json!("25050");
    let r =
        ca.d.post(
            &exchange,
            "/v1/verify",
            &verify(b64.encode(serde_json::to_vec(&tampered).unwrap())),
        )
        .await;
    assert_eq!(r.body["valid"], false);
    assert!(
        codes(&r.body).contains(&"signature_invalid".to_owned()),
        "{r:?}"
    );
    // With a stapled OCSP response from our responder instead of the CA's records.
    std::fs::write(
        d.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    crate::harness::run(
        Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(d.join("int.pem"))
            .arg("-cert")
            .arg(d.join("cert.pem"))
            .arg("-reqout")
            .arg(d.join("req.der")),
    );
    let resp =
        ca.d.raw()
            .post(format!("{}/ocsp", ca.d.base))
            .header("content-type", "application/ocsp-request")
            .body(std::fs::read(d.join("req.der")).unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    let mut stapled = verify(signed.body["payload"].as_str().unwrap().to_owned());
    stapled["ocsp_response"] = json!(b64.encode(&resp));
    let r = ca.d.post(&exchange, "/v1/verify", &stapled).await;
    assert_eq!(r.body["valid"], true, "{r:?}");
    assert_eq!(r.body["revocation"]["status"], "good");
    // Revoked: the verdict says so.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/custody-bot/revoke",
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r =
        ca.d.post(
            &exchange,
            "/v1/verify",
            &verify(signed.body["payload"].as_str().unwrap().to_owned()),
        )
        .await;
    assert_eq!(r.body["valid"], false);
    assert_eq!(r.body["revocation"]["status"], "revoked", "{r:?}");
    assert!(codes(&r.body).contains(&"certificate_revoked".to_owned()));
    // And signing stops.
    ca.d.post(&ca.operator, "/v1/agents/custody-bot/sign", &order)
        .await
        .assert_problem(403, "out-of-mandate");
    ca.d.post(
        &exchange,
        "/v1/verify",
        &json!({"certificate": "x", "signature": "", "payload": ""}),
    )
    .await
    .assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn an_auto_revocation_interrupted_by_a_stop_is_finished_at_the_next_start() {
    let mut ca =
        Ca::start_with_config("[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n")
            .await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    pem_file(&ca, "/ca/root.pem", &dir.join("root.pem")).await;
    pem_file(&ca, "/ca/intermediate.pem", &dir.join("int.pem")).await;
    ca.approved_agent("crash-bot", open_mandate()).await;
    let cert = certified(&ca, "crash-bot", dir).await;
    assert_eq!(ocsp_status(&ca, dir, &cert), "good");
    // The state a stop between the two transactions leaves: the incident is committed, the kill
    // switch is not.
    ca.d.stop().await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    crate::harness::exec_sql(
        &ca.d,
        &format!(
            "INSERT INTO incidents (agent_id, kind, status, score, threshold, contributions, created_at_ms,
                 revokes)
             VALUES ('crash-bot', 'auto_revocation', 'open', 0.97, 0.85, '[]', {now_ms}, TRUE);"
        ),
        false,
    );
    ca.d.restart().await;
    let deadline = Instant::now() + DEADLINE;
    while ocsp_status(&ca, dir, &cert) != "revoked" {
        assert!(
            Instant::now() < deadline,
            "not revoked after the restart:\n{}",
            ca.d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list =
        ca.d.get(&ca.operator, "/v1/incidents?agent_id=crash-bot")
            .await;
    assert!(
        list.body["items"][0]["kill_switch_id"].as_i64().is_some(),
        "{list:?}"
    );
    let agent = ca.d.get(&ca.operator, "/v1/agents/crash-bot").await;
    assert_eq!(agent.body["status"], "suspended");
}

#[tokio::test]
async fn a_baseline_is_learnt_by_itself_after_the_window_and_waits_for_approval() {
    let ca = Ca::start_with_config(
        "[scoring]\nobservation_window_secs = 3600\nlearn_interval_secs = 1\n",
    )
    .await;
    ca.approved_agent("auto-bot", open_mandate()).await;
    // 41 events over the last two hours, 21 of them in the last hour (the window).
    let t = now();
    let batch: Vec<Value> = (0..41)
        .map(|i| {
            event(
                "auto-bot",
                t - 7000 + i * 173,
                "100",
                "BTC_EUR",
                "eu-west-1",
                true,
            )
        })
        .collect();
    events(&ca, &ca.operator, Value::Array(batch)).await;
    let deadline = Instant::now() + DEADLINE;
    let versions = loop {
        let r = ca.d.get(&ca.operator, "/v1/agents/auto-bot/baseline").await;
        let v = r.body["items"].as_array().unwrap().clone();
        if !v.is_empty() {
            break v;
        }
        assert!(Instant::now() < deadline, "no baseline learnt: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(versions[0]["learnt_by"], "system:learner");
    assert_eq!(versions[0]["status"], "pending_approval");
    // Only the events of the last window count.
    assert_eq!(versions[0]["baseline"]["events"], 21, "{versions:?}");
    // Not scored until approved.
    let r = events(
        &ca,
        &ca.operator,
        event("auto-bot", now(), "100", "BTC_EUR", "eu-west-1", true),
    )
    .await;
    assert!(r["events"][0]["score"].is_null(), "{r}");
}

#[tokio::test]
async fn a_kill_switch_from_the_cli_reaches_the_pre_trade_check() {
    let ca = Ca::start().await;
    ca.approved_agent("cli-bot", open_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    certified(&ca, "cli-bot", work.path()).await;
    let order = json!({"action": "trade_execution", "market": "BTC_EUR", "size": "10",
                       "currency": "EUR", "region": "eu-west-1"});
    assert_eq!(
        preflight(&ca, "cli-bot", order.clone()).await["allowed"],
        true
    );
    crate::harness::run(ca.d.command().args([
        "revoke",
        "agent",
        "cli-bot",
        "--reason",
        "desk closed",
    ]));
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = preflight(&ca, "cli-bot", order.clone()).await;
        if codes(&r) == vec!["certificate_revoked"] {
            break;
        }
        assert_eq!(r["allowed"], true, "{r}");
        assert!(
            Instant::now() < deadline,
            "the daemon never saw the CLI's kill switch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The day of `unix` as YYYY-MM-DD (UTC).
pub(crate) fn day(unix: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn report_verify(ca: &Ca, file: &Path, root: &Path) -> (bool, Value) {
    let out =
        ca.d.command()
            .args(["report", "verify", "--file"])
            .arg(file)
            .arg("--root")
            .arg(root)
            .output()
            .unwrap();
    let check: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.success(), check["valid"] == true, "{check}");
    (out.status.success(), check)
}

#[tokio::test]
async fn a_compliance_report_verifies_offline_fails_on_any_changed_byte_and_its_pdf_shows_the_incident()
 {
    let ca =
        Ca::start_with_config("[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n")
            .await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    pem_file(&ca, "/ca/root.pem", &dir.join("root.pem")).await;
    pem_file(&ca, "/ca/intermediate.pem", &dir.join("int.pem")).await;
    ca.approved_agent("rogue-bot", open_mandate()).await;
    certified(&ca, "rogue-bot", dir).await;
    observed(&ca, "rogue-bot").await;
    let yesterday = midnight() - DAY;
    let r = events(
        &ca,
        &ca.operator,
        event(
            "rogue-bot",
            yesterday + 11 * 3600,
            "5000",
            "BTC_EUR",
            "eu-west-1",
            true,
        ),
    )
    .await;
    assert_eq!(r["incidents"][0]["kind"], "auto_revocation", "{r}");

    // From the CLI: the bundle and the PDF.
    let out_dir = dir.join("report");
    let (from, to) = (day(yesterday - DAY), day(midnight()));
    let printed: Value = serde_json::from_str(&crate::harness::run(
        ca.d.command()
            .args([
                "report",
                "--agent",
                "rogue-bot",
                "--from",
                &from,
                "--to",
                &to,
                "--out",
            ])
            .arg(&out_dir),
    ))
    .unwrap();
    assert!(printed["audit_records"].as_u64().unwrap() >= 4, "{printed}");
    let file = out_dir.join("report.json");
    let root = dir.join("root.pem");
    let (ok, check) = report_verify(&ca, &file, &root);
    assert!(ok, "{check}");
    assert_eq!(check["agent_id"], "rogue-bot");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let report = &bundle["report"];
    assert_eq!(report["incidents"][0]["kind"], "auto_revocation");
    assert_eq!(report["revocations"].as_array().unwrap().len(), 1);
    assert_eq!(report["mandates"][0]["status"], "approved");
    assert_eq!(report["baselines"][0]["status"], "approved");

    // One changed byte anywhere fails: in content (the signature), or in layout (the form).
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let tampered = dir.join("tampered.json");
    for (what, changed) in [
        ("a digit of a score", {
            // The first score that is a number (events without a baseline have none).
            let at = text
                .match_indices("\"score\":")
                .map(|(i, _)| i + 8)
                .find(|&i| text.as_bytes()[i].is_ascii_digit())
                .unwrap();
            let mut b = bytes.clone();
            b[at] = if b[at] == b'0' { b'1' } else { b'0' };
            b
        }),
        ("a letter of the agent's name", {
            let at = text.find("\"name\":\"").unwrap() + 8;
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            b
        }),
        ("a space added", {
            let mut b = bytes.clone();
            b.insert(1, b' ');
            b
        }),
    ] {
        std::fs::write(&tampered, &changed).unwrap();
        let (ok, check) = report_verify(&ca, &tampered, &root);
        assert!(!ok, "{what}: {check}");
    }
    // A changed audit record, proof or checkpoint, re-signed as a whole would need the CA's
    // key: checked here without the report signature in the way, on the audit section alone.
    let audit_text = bundle["report"]["audit"].to_string();
    assert!(
        !audit_text.contains("prev_hash"),
        "records carry no link to their neighbours"
    );
    for (what, path, expect) in [
        (
            "a record's details",
            "/report/audit/records/0/details",
            "audit record",
        ),
        (
            "a proof hash",
            "/report/audit/records/0/proof/0",
            "audit record",
        ),
        (
            "the checkpoint note",
            "/report/audit/checkpoint/note",
            "checkpoint",
        ),
    ] {
        let mut b = bundle.clone();
        let v = b.pointer_mut(path).unwrap();
        let s = v.as_str().unwrap().to_owned();
        // Flip one character inside the text (the first base64 or JSON letter after position 10).
        let at = s.char_indices().nth(10).unwrap().0;
        let c = s[at..].chars().next().unwrap();
        let swapped = if c == 'A' { 'B' } else { 'A' };
        *v = Value::String(format!(
            "{}{}{}",
            &s[..at],
            swapped,
            &s[at + c.len_utf8()..]
        ));
        std::fs::write(&tampered, serde_json::to_vec(&b).unwrap()).unwrap();
        let (ok, check) = report_verify(&ca, &tampered, &root);
        assert!(!ok, "{what}: {check}");
        assert!(
            check["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().contains(expect)),
            "{what}: {check}"
        );
    }
    // Another root fails too.
    let other = dir.join("other-root.pem");
    crate::harness::run(
        Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:P-256",
                "-subj",
                "/CN=Other Root",
                "-days",
                "1",
            ])
            .arg("-keyout")
            .arg(dir.join("other.key"))
            .arg("-out")
            .arg(&other),
    );
    let (ok, check) = report_verify(&ca, &file, &other);
    assert!(!ok, "{check}");

    // The PDF renders and shows the incident.
    let pdf = out_dir.join("report.pdf");
    let png = dir.join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", "30", "-png"])
        .arg(&pdf)
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    assert!(dir.join("page-1.png").exists() || dir.join("page-01.png").exists());
    let out = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Compliance report: agent rogue-bot",
        "Incidents",
        "auto_revocation",
        "Appendix: digests and signatures",
    ] {
        assert!(words.contains(want), "{want} not in the PDF:\n{words}");
    }

    // Over HTTP, for compliance and auditors only.
    let path = format!("/v1/reports/agents/rogue-bot?from={from}&to={to}");
    let r = ca.d.get(&ca.operator, &path).await;
    r.assert_problem(403, "forbidden");
    let auditor = ca.auditor().await;
    let body =
        ca.d.raw()
            .get(format!("{}{path}", ca.d.base))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    let http_file = dir.join("http.json");
    std::fs::write(&http_file, &body).unwrap();
    assert!(report_verify(&ca, &http_file, &root).0);
    let pdf =
        ca.d.raw()
            .get(format!("{}{path}&format=pdf", ca.d.base))
            .bearer_auth(&ca.compliance)
            .send()
            .await
            .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    let r =
        ca.d.get(
            &auditor,
            "/v1/reports/agents/rogue-bot?from=2026-02-30&to=x",
        )
        .await;
    r.assert_problem(400, "invalid-request");
}

/// The only `.key` file in `dir` (made by `csr`).
fn key_in(dir: &Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "key"))
        .unwrap()
}

#[tokio::test]
async fn orders_are_decided_at_the_daemon_s_clock_whatever_timestamp_they_carry() {
    let ca = Ca::start().await;
    let t = now();
    // A cap already reached today, and trading hours that are not now: the next full hour
    // starting at least two hours from now, UTC, every day.
    let opens = (t + 2 * 3600 + 3599) / 3600 * 3600;
    let hhmm = |at: i64| format!("{:02}:00", at.rem_euclid(DAY) / 3600);
    let mut capped = open_mandate();
    capped["maxDailyVolume"] = json!({"amount": "1000", "currency": "EUR"});
    capped["maxTransactionSize"] = json!({"amount": "1000", "currency": "EUR"});
    ca.approved_agent("capped-bot", capped).await;
    let mut hours = open_mandate();
    hours["tradingHours"] = json!({"start": hhmm(opens), "end": hhmm(opens + 3600), "timeZone": "UTC",
        "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]});
    ca.approved_agent("hours-bot", hours).await;
    for agent in ["capped-bot", "hours-bot"] {
        let r =
            ca.d.post(
                &ca.operator,
                &format!("/v1/agents/{agent}/certify"),
                &json!({"hsm_key_type": "ec-p256"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    }
    events(
        &ca,
        &ca.operator,
        json!([event("capped-bot", t, "1000", "BTC_EUR", "eu-west-1", true)]),
    )
    .await;
    let order = json!({"action": "trade_execution", "market": "BTC_EUR", "size": "10",
                       "currency": "EUR", "region": "eu-west-1"});
    let at = |o: &Value, ts: Value| {
        let mut o = o.clone();
        o["timestamp"] = ts;
        o
    };
    // The cap holds: now it is reached, and a timestamp a day away, or at 0, signs nothing.
    let r =
        ca.d.post(&ca.operator, "/v1/agents/capped-bot/sign", &order)
            .await;
    r.assert_problem(403, "out-of-mandate");
    assert_eq!(codes(&r.body), vec!["daily_volume_cap_exceeded"]);
    for ts in [
        json!(t + DAY),
        json!(t - DAY),
        json!(0),
        json!("2000-01-01T00:00:00Z"),
    ] {
        let r =
            ca.d.post(
                &ca.operator,
                "/v1/agents/capped-bot/sign",
                &at(&order, ts.clone()),
            )
            .await;
        r.assert_problem(422, "invalid-order");
        assert!(
            r.body["detail"].as_str().unwrap().contains("timestamp"),
            "{ts}: {r:?}"
        );
    }
    // Preflight answers what tomorrow would allow, marked as a what-if.
    let r = preflight(&ca, "capped-bot", at(&order, json!(t + DAY))).await;
    assert_eq!(r, json!({"allowed": true, "hypothetical": true}));
    // The trading hours hold: now is outside them, and a timestamp inside them signs nothing.
    let r =
        ca.d.post(&ca.operator, "/v1/agents/hours-bot/sign", &order)
            .await;
    r.assert_problem(403, "out-of-mandate");
    assert_eq!(codes(&r.body), vec!["outside_trading_hours"]);
    ca.d.post(
        &ca.operator,
        "/v1/agents/hours-bot/sign",
        &at(&order, json!(opens + 60)),
    )
    .await
    .assert_problem(422, "invalid-order");
    let r = preflight(&ca, "hours-bot", at(&order, json!(opens + 60))).await;
    assert_eq!(r, json!({"allowed": true, "hypothetical": true}));
    // A timestamp within the skew is fine, and the signed bytes carry the daemon's time.
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/hours-bot/sign",
            &at(&order, json!(t - 5)),
        )
        .await;
    r.assert_problem(403, "out-of-mandate");

    // Every day keeps its own volume: a trade reported late for yesterday counts there, not
    // today, and does not reset today's.
    let mut late = open_mandate();
    late["maxDailyVolume"] = json!({"amount": "1000", "currency": "EUR"});
    late["maxTransactionSize"] = json!({"amount": "1000", "currency": "EUR"});
    ca.approved_agent("late-bot", late).await;
    let work = tempfile::tempdir().unwrap();
    ca.certify_new_key("late-bot", work.path()).await;
    events(
        &ca,
        &ca.operator,
        json!([event("late-bot", t, "600", "BTC_EUR", "eu-west-1", true)]),
    )
    .await;
    events(
        &ca,
        &ca.operator,
        json!([event(
            "late-bot",
            t - DAY,
            "950",
            "BTC_EUR",
            "eu-west-1",
            true
        )]),
    )
    .await;
    let mut o = order.clone();
    o["size"] = json!("400");
    assert_eq!(
        preflight(&ca, "late-bot", o.clone()).await,
        json!({"allowed": true})
    );
    o["size"] = json!("401");
    let r = preflight(&ca, "late-bot", o.clone()).await;
    assert_eq!(r["reasons"][0]["requested"], "1001 EUR", "{r}");
    o["size"] = json!("51");
    let r = preflight(&ca, "late-bot", at(&o, json!(t - DAY))).await;
    assert_eq!(r["hypothetical"], true);
    assert_eq!(r["reasons"][0]["requested"], "1001 EUR", "{r}");
    // The same after a restart: the volumes are counted again from the stored trades.
    let mut ca = ca;
    ca.d.restart().await;
    let r = preflight(&ca, "late-bot", at(&o, json!(t - DAY))).await;
    assert_eq!(r["reasons"][0]["requested"], "1001 EUR", "{r}");
    o["size"] = json!("401");
    let r = preflight(&ca, "late-bot", o).await;
    assert_eq!(r["reasons"][0]["requested"], "1001 EUR", "{r}");
}

#[tokio::test]
async fn verify_refuses_a_signed_order_outside_the_clock_skew() {
    let ca = Ca::start().await;
    ca.approved_agent("skew-bot", open_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let r = ca
        .certify(
            &ca.operator,
            "skew-bot",
            &csr(d, "ec-p256", "/CN=skew-bot", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let cert = r.body["certificate_pem"].as_str().unwrap().to_owned();
    let key = key_in(d);
    let exchange = ca.auditor().await;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let t = now();
    for (ts, valid) in [
        (t, true),
        (t - 10, true),
        (t + DAY, false),
        (t - DAY, false),
        (0, false),
    ] {
        let payload = format!(
            r#"{{"action":"trade_execution","market":"BTC_EUR","size":"10","currency":"EUR","region":"eu-west-1","timestamp":{ts}}}"#
        );
        std::fs::write(d.join("order.json"), &payload).unwrap();
        crate::harness::run(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(&key)
                .arg("-out")
                .arg(d.join("order.sig"))
                .arg(d.join("order.json")),
        );
        let sig = std::fs::read(d.join("order.sig")).unwrap();
        let r =
            ca.d.post(
                &exchange,
                "/v1/verify",
                &json!({"certificate": cert, "signature": b64.encode(&sig),
                        "payload": b64.encode(payload.as_bytes())}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.body["valid"], valid, "{ts}: {r:?}");
        if !valid {
            assert_eq!(codes(&r.body), vec!["order_time_skew"], "{ts}: {r:?}");
        }
    }
}

#[tokio::test]
async fn a_first_out_of_mandate_event_revokes_before_the_answer_without_any_baseline() {
    let ca = Ca::start_with_config("[scoring]\nauto_learn = false\n").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    pem_file(&ca, "/ca/root.pem", &dir.join("root.pem")).await;
    pem_file(&ca, "/ca/intermediate.pem", &dir.join("int.pem")).await;
    let port = free_port();
    let receiver = Receiver::start(port).await;
    let (_, secret) = webhook(&ca, port).await;
    *receiver.secret.lock().unwrap() = secret;

    // A freshly deployed bot: approved, certified, no baseline. Not monitored, not "low".
    // (No trading hours: the events are reported now, whatever the time of day.)
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    ca.approved_agent("fresh-bot", m.clone()).await;
    let cert = certified(&ca, "fresh-bot", dir).await;
    let risk =
        ca.d.get(&ca.operator, "/v1/agents/fresh-bot/risk-score")
            .await;
    assert_eq!(risk.body["risk_score"], Value::Null, "{risk:?}");
    assert_eq!(risk.body["risk_band"], "not_monitored");
    // Inside the mandate: accepted, nothing happens.
    let t = now();
    let inside = json!({"agent_id": "fresh-bot", "action": "trade_execution",
        "market": "BTC_EUR", "size": "100", "currency": "EUR",
                     "counterparty": "exchange_a", "region": "eu-west-1"});
    let r = events(&ca, &ca.operator, inside).await;
    assert_eq!(r["incidents"], json!([]), "{r}");
    assert!(r["events"][0].get("breach").is_none(), "{r}");
    // 60000 EUR (limit 50000) in a market and region the mandate forbids, at a time inside its
    // hours or not: the first such event is a breach, and the kill switch is pulled before
    // the answer comes back.
    let mut rogue = json!({"agent_id": "fresh-bot", "action": "trade_execution",
        "market": "DOGE_USD", "size": "60000", "currency": "EUR",
                     "counterparty": "exchange_a", "region": "us-east-1", "timestamp": t});
    let r = events(&ca, &ca.operator, rogue.clone()).await;
    assert_eq!(r["events"][0]["score"], Value::Null);
    let breach: Vec<&str> = r["events"][0]["breach"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    for code in [
        "exceeds_scope_size",
        "market_not_allowed",
        "region_not_allowed",
    ] {
        assert!(breach.contains(&code), "{code}: {r}");
    }
    assert_eq!(r["incidents"][0]["kind"], "mandate_breach", "{r}");
    let incident = r["incidents"][0]["id"].as_i64().unwrap();
    // Already revoked: the API, OCSP and the agent's state say so.
    assert_eq!(ocsp_status(&ca, dir, &cert), "revoked");
    let a = ca.d.get(&ca.operator, "/v1/agents/fresh-bot").await;
    assert_eq!(a.body["status"], "suspended");
    let i =
        ca.d.get(&ca.operator, &format!("/v1/incidents/{incident}"))
            .await;
    assert_eq!(i.body["revokes"], true, "{i:?}");
    assert!(i.body["kill_switch_id"].is_number(), "{i:?}");
    assert_eq!(i.body["reasons"][0]["limit"], "50000 EUR", "{i:?}");
    // The webhook says so, with the reasons.
    wait_until("mandate.breach", || {
        !receiver.received.of_type("mandate.breach").is_empty()
    })
    .await;
    let hook = receiver.received.of_type("mandate.breach")[0].clone();
    assert_eq!(hook["data"]["on_breach"], "revoke");
    assert_eq!(hook["data"]["incident_id"], incident);
    // The kill function cancels what is resting: the bot is told so.
    wait_until("agent.suspended and certificate.revoked", || {
        !receiver.received.of_type("agent.suspended").is_empty()
            && !receiver.received.of_type("certificate.revoked").is_empty()
    })
    .await;
    assert_eq!(
        receiver.received.of_type("agent.suspended")[0]["data"]["cancel_open_orders"],
        true
    );
    assert_eq!(
        receiver.received.of_type("certificate.revoked")[0]["data"]["cancel_open_orders"],
        true
    );
    // No reinstating until compliance resolved the breach.
    ca.d.post(&ca.compliance, "/v1/agents/fresh-bot/reinstate", &json!({}))
        .await
        .assert_problem(409, "wrong-state");

    // With onBreach: warn, only an incident opens.
    m["onBreach"] = json!("warn");
    ca.approved_agent("lenient-bot", m.clone()).await;
    let cert = certified(&ca, "lenient-bot", dir).await;
    rogue["agent_id"] = json!("lenient-bot");
    let r = events(&ca, &ca.operator, rogue).await;
    assert_eq!(r["incidents"][0]["kind"], "mandate_breach", "{r}");
    assert_eq!(ocsp_status(&ca, dir, &cert), "good");
    let a = ca.d.get(&ca.operator, "/v1/agents/lenient-bot").await;
    assert_eq!(a.body["status"], "active");
    assert_eq!(a.body["mandate"]["onBreach"], "warn");
    let i =
        ca.d.get(
            &ca.operator,
            &format!("/v1/incidents/{}", r["incidents"][0]["id"]),
        )
        .await;
    assert_eq!(i.body["revokes"], false, "{i:?}");
    // The daily volume counts too: two trades that each fit, together over the cap.
    let mut capped = m.clone();
    capped.as_object_mut().unwrap().remove("onBreach");
    capped["maxDailyVolume"] = json!({"amount": "60000", "currency": "EUR"});
    ca.approved_agent("capped-bot", capped).await;
    let trade = |size: &str| {
        json!({"agent_id": "capped-bot", "action": "trade_execution",
            "market": "BTC_EUR", "size": size, "currency": "EUR",
                         "counterparty": "exchange_a", "region": "eu-west-1"})
    };
    let r = events(&ca, &ca.operator, trade("40000")).await;
    assert_eq!(r["incidents"], json!([]), "{r}");
    let r = events(&ca, &ca.operator, trade("30000")).await;
    assert_eq!(
        r["events"][0]["breach"][0]["code"], "daily_volume_cap_exceeded",
        "{r}"
    );
    assert_eq!(r["events"][0]["breach"][0]["requested"], "70000 EUR", "{r}");
}

#[tokio::test]
async fn order_quantity_and_type_hold_through_preflight_sign_verify_and_events_hard_or_soft() {
    let ca = Ca::start_with_config("[scoring]\nauto_learn = false\n").await;
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    m["maxOrderQuantity"] = json!("10");
    m["allowedOrderTypes"] = json!(["limit"]);
    m["marketControls"] = json!([{"market": "BTC_EUR", "controls":
        {"maxOrderQuantity": {"value": "0.5", "enforcement": "soft"}}}]);
    ca.approved_agent("rts-bot", m).await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/rts-bot/certify",
            &json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let order = |market: &str, qty: &str, kind: &str| {
        json!({"action": "trade_execution", "market": market, "counterparty": "exchange_a",
               "region": "eu-west-1", "size": "100", "currency": "EUR", "side": "buy",
               "quantity": qty, "price": "100", "order_type": kind, "client_order_id": "o-1"})
    };
    // Hard: refused with code, limit and requested.
    let r = preflight(&ca, "rts-bot", order("EUR_USD", "10.5", "limit")).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(
        r["reasons"][0],
        json!({"code": "exceeds_order_quantity", "limit": "10", "requested": "10.5"})
    );
    let r = preflight(&ca, "rts-bot", order("EUR_USD", "1", "market")).await;
    assert_eq!(r["reasons"][0]["code"], "order_type_not_allowed", "{r}");
    // Soft, and the market's own limit: allowed, flagged.
    let r = preflight(&ca, "rts-bot", order("BTC_EUR", "0.6", "limit")).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["soft_breaches"][0],
        json!({"code": "exceeds_order_quantity", "limit": "0.5", "requested": "0.6"})
    );
    // Signing: the hard refusal holds, the soft breach is signed and flagged; the payload
    // carries the new fields and the verifier (the certificate's mandate is version 2) agrees.
    ca.d.post(
        &ca.operator,
        "/v1/agents/rts-bot/sign",
        &order("EUR_USD", "10.5", "limit"),
    )
    .await
    .assert_problem(403, "out-of-mandate");
    let signed =
        ca.d.post(
            &ca.operator,
            "/v1/agents/rts-bot/sign",
            &order("BTC_EUR", "0.6", "limit"),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{signed:?}");
    assert_eq!(
        signed.body["soft_breaches"][0]["code"],
        "exceeds_order_quantity"
    );
    let v =
        ca.d.post(
            &ca.auditor().await,
            "/v1/verify",
            &json!({"certificate": signed.body["certificate_pem"], "signature": signed.body["signature"],
                    "payload": signed.body["payload"]}),
        )
        .await;
    assert_eq!(v.body["valid"], true, "{v:?}");
    assert_eq!(v.body["order"]["quantity"], "0.6");
    assert_eq!(v.body["mandate"]["marketControls"][0]["market"], "BTC_EUR");
    assert_eq!(v.body["soft_breaches"][0]["limit"], "0.5", "{v:?}");
    // Events: a soft breach opens an incident and revokes nothing; a hard one revokes.
    let event = |market: &str, qty: &str| {
        json!({"agent_id": "rts-bot", "action": "trade_execution",
               "market": market, "size": "100", "currency": "EUR",
                            "counterparty": "exchange_a", "region": "eu-west-1",
                            "quantity": qty, "price": "100", "order_type": "limit"})
    };
    let r = events(&ca, &ca.operator, event("BTC_EUR", "0.6")).await;
    assert_eq!(r["events"][0]["breach"][0]["enforcement"], "soft", "{r}");
    assert_eq!(r["incidents"][0]["kind"], "mandate_breach", "{r}");
    let i =
        ca.d.get(
            &ca.operator,
            &format!("/v1/incidents/{}", r["incidents"][0]["id"]),
        )
        .await;
    assert_eq!(i.body["revokes"], false, "{i:?}");
    assert_eq!(
        ca.d.get(&ca.operator, "/v1/agents/rts-bot").await.body["status"],
        "active"
    );
    let r = events(&ca, &ca.operator, event("EUR_USD", "11")).await;
    assert_eq!(r["events"][0]["breach"][0]["enforcement"], "hard", "{r}");
    assert_eq!(
        ca.d.get(&ca.operator, "/v1/agents/rts-bot").await.body["status"],
        "suspended"
    );
}

#[tokio::test]
async fn a_price_collar_holds_around_a_fresh_reference_price_and_fails_closed_without_one() {
    let ca = Ca::start().await;
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    m["priceCollar"] = json!({"buyBps": 100, "sellBps": 100});
    m["referencePriceMaxAge"] = json!(60);
    m["marketControls"] = json!([{"market": "BTC_EUR", "controls":
        {"priceCollar": {"value": {"buyBps": 50, "sellBps": 50}, "enforcement": "soft"}}}]);
    ca.approved_agent("collar-bot", m).await;
    let work = tempfile::tempdir().unwrap();
    ca.certify_new_key("collar-bot", work.path()).await;
    let order = |market: &str, side: &str, price: &str| {
        json!({"action": "trade_execution", "market": market, "counterparty": "exchange_a",
               "region": "eu-west-1", "size": "100", "currency": "EUR", "side": side,
               "quantity": "1", "price": price, "order_type": "limit"})
    };
    // No reference price yet: fails closed.
    let r = preflight(&ca, "collar-bot", order("EUR_USD", "buy", "1.08")).await;
    assert_eq!(
        r["reasons"][0],
        json!({"code": "reference_price_stale", "limit": "a reference price at most 60 s old",
               "requested": "none"}),
        "{r}"
    );
    let t = now();
    let ca = &ca;
    let post = |prices: Value| {
        let body = json!({ "prices": prices });
        async move { ca.d.post(&ca.operator, "/v1/reference-prices", &body).await }
    };
    let r = post(json!([{"market": "EUR_USD", "price": "100", "at": t},
                        {"market": "BTC_EUR", "price": "40000"}]))
    .await;
    assert_eq!(r.body, json!({"accepted": 2}), "{r:?}");
    // ±1%: 101 buys and 99 sells are in, a hair beyond is out, each side on its own.
    for (side, price, allowed) in [
        ("buy", "101", true),
        ("buy", "101.01", false),
        ("sell", "99", true),
        ("sell", "98.99", false),
        ("sell", "150", true),
    ] {
        let r = preflight(ca, "collar-bot", order("EUR_USD", side, price)).await;
        assert_eq!(r["allowed"], allowed, "{side} {price}: {r}");
        if !allowed {
            assert_eq!(r["reasons"][0]["code"], "price_outside_collar");
            assert_eq!(r["reasons"][0]["limit"], "99 to 101 (reference 100)");
            assert_eq!(r["reasons"][0]["requested"], price);
        }
    }
    // A soft collar of the market's own: allowed, flagged.
    let r = preflight(ca, "collar-bot", order("BTC_EUR", "buy", "40300")).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(r["soft_breaches"][0]["code"], "price_outside_collar");
    // A reference older than referencePriceMaxAge fails closed; a newer post wins, an older
    // one does not replace it.
    post(json!([{"market": "EUR_USD", "price": "100", "at": t - 120}])).await;
    assert_eq!(
        preflight(ca, "collar-bot", order("EUR_USD", "buy", "100")).await["allowed"],
        true
    );
    let r = post(json!([{"market": "GBP_USD", "price": "1.27", "at": t - 120}])).await;
    assert_eq!(r.status, StatusCode::OK);
    // A known but old reference: refused as stale, with its age (GBP_USD is not an allowed
    // market either; both reasons are given).
    let r = preflight(ca, "collar-bot", order("GBP_USD", "buy", "1.27")).await;
    let stale = r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "reference_price_stale")
        .cloned()
        .unwrap_or_else(|| panic!("{r}"));
    let age: i64 = stale["requested"]
        .as_str()
        .unwrap()
        .trim_end_matches(" s old")
        .parse()
        .unwrap();
    assert!((120..130).contains(&age), "{stale}");
    // Refusals change nothing: a price from the future, zero, another organization.
    post(json!([{"market": "EUR_USD", "price": "500", "at": t + 3600}]))
        .await
        .assert_problem(400, "invalid-request");
    post(json!([{"market": "EUR_USD", "price": "0"}]))
        .await
        .assert_problem(400, "invalid-request");
    ca.d.post(
        &ca.operator,
        "/v1/reference-prices",
        &json!({"organization": "elsewhere", "prices": [{"market": "EUR_USD", "price": "1"}]}),
    )
    .await
    .assert_problem(404, "not-found");
    assert_eq!(
        preflight(ca, "collar-bot", order("EUR_USD", "buy", "101")).await["allowed"],
        true,
        "still the reference of 100"
    );
}

#[tokio::test]
async fn repeated_executions_disable_the_agent_until_a_named_person_re_enables_it() {
    let mut ca = Ca::start_with_config("[scoring]\nauto_learn = false\n").await;
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    // Three buys of one market within a minute disable it, even under onBreach: warn.
    m["onBreach"] = json!("warn");
    m["repeatedExecutionThrottle"] = json!({"executions": 3, "withinSecs": 60});
    ca.approved_agent("busy-bot", m).await;
    let work = tempfile::tempdir().unwrap();
    ca.certify_new_key("busy-bot", work.path()).await;
    let t = now();
    let fill = |at: i64, side: &str, market: &str| {
        json!({"agent_id": "busy-bot", "action": "trade_execution",
               "market": market, "size": "10", "currency": "EUR", "side": side,
                            "counterparty": "exchange_a", "region": "eu-west-1", "timestamp": at})
    };
    // Two buys and sells, and buys of another market, a minute apart or more: nothing.
    let r = events(
        &ca,
        &ca.operator,
        json!([
            fill(t - 200, "buy", "BTC_EUR"),
            fill(t - 100, "buy", "BTC_EUR"),
            fill(t - 30, "buy", "BTC_EUR"),
            fill(t - 20, "sell", "BTC_EUR"),
            fill(t - 10, "buy", "EUR_USD")
        ]),
    )
    .await;
    assert_eq!(r["incidents"], json!([]), "{r}");
    // The state survives a restart: the window is read back from the stored events.
    ca.d.restart().await;
    let r = events(&ca, &ca.operator, fill(t - 5, "buy", "BTC_EUR")).await;
    assert_eq!(r["incidents"], json!([]), "two in the window so far: {r}");
    let r = events(&ca, &ca.operator, fill(t, "buy", "BTC_EUR")).await;
    assert_eq!(
        r["events"][0]["breach"][0]["code"], "repeated_execution_throttle",
        "{r}"
    );
    assert_eq!(
        r["events"][0]["breach"][0]["limit"],
        "3 executions of BTC_EUR buy within 60 s"
    );
    assert_eq!(r["events"][0]["breach"][0]["requested"], "3 within 60 s");
    let incident = r["incidents"][0]["id"].as_i64().unwrap();
    assert_eq!(
        ca.d.get(&ca.operator, "/v1/agents/busy-bot").await.body["status"],
        "suspended"
    );
    // Only a named compliance person re-enables it, after resolving what disabled it.
    ca.d.post(&ca.compliance, "/v1/agents/busy-bot/reinstate", &json!({}))
        .await
        .assert_problem(409, "wrong-state");
    let r =
        ca.d.post(
            &ca.compliance,
            &format!("/v1/incidents/{incident}/resolve"),
            &json!({"resolution": "a fill loop in the bot, fixed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r =
        ca.d.post(&ca.compliance, "/v1/agents/busy-bot/reinstate", &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "active");
}

#[tokio::test]
async fn the_message_rate_counts_each_order_message_once() {
    let ca = Ca::start().await;
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    m["maxMessagesPerSecond"] = json!(3);
    ca.approved_agent("chatty-bot", m).await;
    let work = tempfile::tempdir().unwrap();
    ca.certify_new_key("chatty-bot", work.path()).await;
    let order = |id: &str| {
        json!({"action": "trade_execution", "market": "EUR_USD", "counterparty": "exchange_a",
               "region": "eu-west-1", "size": "100", "currency": "EUR", "side": "buy",
               "client_order_id": id})
    };
    // The same message asked about again and again counts once.
    for _ in 0..10 {
        assert_eq!(
            preflight(&ca, "chatty-bot", order("same")).await["allowed"],
            true
        );
    }
    // Distinct messages: the fourth within a second is refused (a deadline, not a sleep: the
    // loop ends at the first refusal).
    let deadline = Instant::now() + DEADLINE;
    let mut k = 0;
    let refusal = loop {
        k += 1;
        let r = preflight(&ca, "chatty-bot", order(&format!("o-{k}"))).await;
        if r["allowed"] == false {
            break r;
        }
        assert!(Instant::now() < deadline, "never refused");
    };
    assert_eq!(
        refusal["reasons"][0],
        json!({"code": "message_rate_exceeded", "limit": "3 messages a second",
               "requested": "4 in the last second"}),
        "{refusal}"
    );
}

#[tokio::test]
async fn the_day_s_realised_loss_stops_new_orders_at_its_limit_across_a_restart() {
    let mut ca = Ca::start_with_config("[scoring]\nauto_learn = false\n").await;
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    m["onBreach"] = json!("warn");
    m["maxDailyLoss"] = json!({"amount": "100", "currency": "EUR"});
    ca.approved_agent("loss-bot", m).await;
    let work = tempfile::tempdir().unwrap();
    ca.certify_new_key("loss-bot", work.path()).await;
    let t = now();
    let pnl = |p: &str| {
        json!({"agent_id": "loss-bot", "action": "trade_execution",
               "market": "EUR_USD", "size": "10", "currency": "EUR",
                            "counterparty": "exchange_a", "region": "eu-west-1",
                            "timestamp": t, "realised_pnl": p})
    };
    let order = json!({"action": "trade_execution", "market": "EUR_USD",
                       "counterparty": "exchange_a", "region": "eu-west-1", "size": "10",
                       "currency": "EUR"});
    // −60, +10, −40: a net loss of 90, under the limit.
    let r = events(
        &ca,
        &ca.operator,
        json!([pnl("-60"), pnl("10"), pnl("-40")]),
    )
    .await;
    assert_eq!(r["incidents"], json!([]), "{r}");
    assert_eq!(
        preflight(&ca, "loss-bot", order.clone()).await["allowed"],
        true
    );
    // −20 more: 110 lost, past 100: a breach (warned only here), and no new order today.
    let r = events(&ca, &ca.operator, pnl("-20")).await;
    assert_eq!(
        r["events"][0]["breach"][0],
        json!({"code": "daily_loss_limit_reached", "limit": "100 EUR",
               "requested": "110 EUR lost today", "enforcement": "hard"}),
        "{r}"
    );
    let refused = |r: Value| {
        assert_eq!(r["allowed"], false, "{r}");
        assert_eq!(r["reasons"][0]["code"], "daily_loss_limit_reached", "{r}");
        assert_eq!(r["reasons"][0]["requested"], "110 EUR lost today");
    };
    refused(preflight(&ca, "loss-bot", order.clone()).await);
    // Read back from the stored events after a restart.
    ca.d.restart().await;
    refused(preflight(&ca, "loss-bot", order.clone()).await);
    let u =
        ca.d.get(&ca.auditor().await, "/v1/agents/loss-bot/usage")
            .await;
    assert_eq!(u.status, StatusCode::OK, "{u:?}");
    assert_eq!(
        (
            &u.body["daily_loss"],
            &u.body["max_daily_loss"],
            &u.body["daily_volume"]
        ),
        (&json!("110"), &json!("100 EUR"), &json!("40")),
        "{u:?}"
    );
    // A cancellation still goes through: it takes risk away.
    let mut cancel = order.clone();
    cancel["intent"] = json!("cancel");
    assert_eq!(preflight(&ca, "loss-bot", cancel).await["allowed"], true);
}

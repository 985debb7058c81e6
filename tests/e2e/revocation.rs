//! Revocation and the kill switch through the API and the CLI, on the running daemon.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, csr, full_mandate, run};

async fn issue(ca: &Ca, agent: &str, work: &std::path::Path) -> String {
    let r = ca.certify_new_key(agent, work).await;
    r.body["serial_number"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn revocation_is_idempotent_and_checks_reason_and_role() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-a", full_mandate()).await;
    ca.approved_agent("bot-b", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let s1 = issue(&ca, "bot-a", work.path()).await;
    let s2 = issue(&ca, "bot-a", work.path()).await;
    let sb = issue(&ca, "bot-b", work.path()).await;
    let path = |s: &str| format!("/v1/certificates/{s}/revoke");

    let r =
        ca.d.post(
            &ca.operator,
            &path(&s1),
            &json!({"reason": "keyCompromise", "comment": "leaked"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "revoked");
    assert_eq!(r.body["revocation_reason"], "keyCompromise");
    assert_eq!(r.body["newly_revoked"], true);
    let again =
        ca.d.post(
            &ca.compliance,
            &path(&s1.to_uppercase()),
            &json!({"reason": 4}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body["newly_revoked"], false);
    assert_eq!(
        again.body["revocation_reason"], "keyCompromise",
        "the first reason stands"
    );
    assert_eq!(again.body["revoked_at"], r.body["revoked_at"]);

    for bad in [
        json!({"reason": "certificateHold"}),
        json!({"reason": 8}),
        json!({}),
    ] {
        let r = ca.d.post(&ca.operator, &path(&s2), &bad).await;
        assert!(r.status.is_client_error(), "{bad}: {r:?}");
    }
    ca.d.post(
        &ca.operator,
        &path("4fffffffffffffff"),
        &json!({"reason": "unspecified"}),
    )
    .await
    .assert_problem(404, "not-found");
    let auditor = ca.auditor().await;
    ca.d.post(&auditor, &path(&s2), &json!({"reason": "unspecified"}))
        .await
        .assert_problem(403, "forbidden");

    // An agent key: its own certificate, with the reasons open to agents; never another's.
    let key_a = ca.d.key("agent", Some("bot-a")).await;
    ca.d.post(&key_a, &path(&s2), &json!({"reason": "privilegeWithdrawn"}))
        .await
        .assert_problem(403, "forbidden");
    ca.d.post(&key_a, &path(&sb), &json!({"reason": "keyCompromise"}))
        .await
        .assert_problem(404, "not-found");
    let own =
        ca.d.post(&key_a, &path(&s2), &json!({"reason": "keyCompromise"}))
            .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    let got =
        ca.d.get(&ca.operator, &format!("/v1/certificates/{sb}"))
            .await;
    assert_eq!(
        got.body["status"], "issued",
        "bot-b's certificate was touched"
    );

    // The CLI on the same data, while the daemon runs: idempotent too.
    let out: Value = serde_json::from_str(&run(ca.d.command().args([
        "revoke",
        "certificate",
        &sb,
        "--reason",
        "superseded",
    ])))
    .unwrap();
    assert_eq!(out["newly_revoked"], true);
    let out: Value = serde_json::from_str(&run(ca.d.command().args([
        "revoke",
        "certificate",
        &sb,
        "--reason",
        "superseded",
    ])))
    .unwrap();
    assert_eq!(out["newly_revoked"], false);
    let got =
        ca.d.get(&ca.operator, &format!("/v1/certificates/{sb}"))
            .await;
    assert_eq!(got.body["revoked_by"], "cli:revoke");
}

#[tokio::test]
async fn the_kill_switch_revokes_everything_and_blocks_issuance_until_reapproval() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-k", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let serials = [
        issue(&ca, "bot-k", work.path()).await,
        issue(&ca, "bot-k", work.path()).await,
    ];
    ca.d.post(
        &ca.operator,
        "/v1/agents/bot-k/revoke",
        &json!({"reason": " "}),
    )
    .await
    .assert_problem(400, "invalid-request");
    let auditor = ca.auditor().await;
    ca.d.post(&auditor, "/v1/agents/bot-k/revoke", &json!({"reason": "x"}))
        .await
        .assert_problem(403, "forbidden");
    ca.d.post(
        &ca.operator,
        "/v1/agents/nobody/revoke",
        &json!({"reason": "x"}),
    )
    .await
    .assert_problem(404, "not-found");

    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-k/revoke",
            &json!({"reason": "orders outside the desk's hours"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["agents_suspended"], json!(["bot-k"]));
    let mut revoked: Vec<String> =
        serde_json::from_value(r.body["certificates_revoked"].clone()).unwrap();
    revoked.sort();
    let mut expected = serials.to_vec();
    expected.sort();
    assert_eq!(revoked, expected);
    for s in &serials {
        let c =
            ca.d.get(&ca.operator, &format!("/v1/certificates/{s}"))
                .await;
        assert_eq!(c.body["status"], "revoked");
        assert_eq!(c.body["revocation_reason"], "privilegeWithdrawn");
    }
    assert_eq!(
        ca.d.get(&ca.operator, "/v1/agents/bot-k").await.body["status"],
        "suspended"
    );
    ca.certify(
        &ca.operator,
        "bot-k",
        &csr(work.path(), "ec-p256", "/CN=bot-k", None),
    )
    .await
    .assert_problem(409, "mandate-not-approved");

    // Approving is not reinstating: with nothing pending, approve says where to go.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-k/approve",
            &json!({"version": 1}),
        )
        .await;
    r.assert_problem(409, "wrong-state");
    assert!(
        r.body["detail"].as_str().unwrap().contains("/reinstate"),
        "{r:?}"
    );
    // Only compliance reinstates; then issuance works again.
    ca.d.post(&ca.operator, "/v1/agents/bot-k/reinstate", &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let r =
        ca.d.post(&ca.compliance, "/v1/agents/bot-k/reinstate", &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "active");
    issue(&ca, "bot-k", work.path()).await;
}

#[tokio::test]
async fn the_operator_kill_switch_from_the_cli_covers_every_agent_of_the_organization() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-1", full_mandate()).await;
    ca.approved_agent("bot-2", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    issue(&ca, "bot-1", work.path()).await;
    issue(&ca, "bot-2", work.path()).await;

    let out: Value = serde_json::from_str(&run(ca.d.command().args([
        "revoke",
        "operator",
        "acme-trading",
        "--reason",
        "regulator order",
    ])))
    .unwrap();
    assert_eq!(out["agents_suspended"], json!(["bot-1", "bot-2"]));
    assert_eq!(out["certificates_revoked"].as_array().unwrap().len(), 2);
    for id in ["bot-1", "bot-2"] {
        let a = ca.d.get(&ca.operator, &format!("/v1/agents/{id}")).await;
        assert_eq!(a.body["status"], "suspended");
        let certs =
            ca.d.get(&ca.operator, &format!("/v1/agents/{id}/certificates"))
                .await;
        assert_eq!(certs.body["items"][0]["status"], "revoked");
    }
    let none =
        ca.d.command()
            .args(["revoke", "operator", "nobody-corp", "--reason", "x"])
            .output()
            .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("not found"));
    let no_reason =
        ca.d.command()
            .args(["revoke", "agent", "bot-1", "--reason", " "])
            .output()
            .unwrap();
    assert!(!no_reason.status.success());
}

/// A change-following metric of the daemon (0 if not there yet).
async fn changes(ca: &Ca, admin: &str, source: &str) -> f64 {
    let text =
        ca.d.raw()
            .get(format!("{}/metrics", ca.d.base))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let series = format!("mandate_changes_total{{source=\"{source}\",kind=\"revocation\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn api_and_cli_revocations_reach_ocsp_the_crl_and_the_pre_trade_check_by_one_path() {
    let ca = Ca::start().await;
    let admin = ca.d.admin_key();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(
        dir.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    let mandate = json!({"operator": "Acme Trading GmbH", "allowedMarkets": ["BTC_EUR"]});
    let order = json!({"action": "trade_execution", "market": "BTC_EUR", "size": "10",
                       "currency": "EUR", "side": "buy"});
    let mut certs = Vec::new();
    for agent in ["api-bot", "cli-bot"] {
        ca.approved_agent(agent, mandate.clone()).await;
        let r = ca.certify_new_key(agent, dir).await;
        let serial = r.body["serial_number"].as_str().unwrap().to_owned();
        let pem = dir.join(format!("{agent}.pem"));
        std::fs::write(&pem, r.body["certificate_pem"].as_str().unwrap()).unwrap();
        certs.push((agent, serial, pem));
    }
    let commits = changes(&ca, &admin, "commit").await;
    let foreign_source = if ca.d.db_url.starts_with("postgres") {
        "notify"
    } else {
        "poll"
    };
    let before = changes(&ca, &admin, foreign_source).await;

    // One kill switch through the API, the other from the command line (another process).
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/api-bot/revoke",
            &json!({"reason": "api"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // This node's commit is applied before the answer; the store's follower (NOTIFY or the
    // poll) sees it too: wait for that, so the CLI's revocation is the next one it sees.
    assert!(changes(&ca, &admin, "commit").await > commits);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let foreign = loop {
        let n = changes(&ca, &admin, foreign_source).await;
        if n > before {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{foreign_source} never saw the API's revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    run(ca
        .d
        .command()
        .args(["revoke", "agent", "cli-bot", "--reason", "cli"]));

    for (agent, serial, pem) in &certs {
        // The CRL the certificate names.
        let text = run(std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
            .arg(pem));
        let crl_url = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("URI:"))
            .unwrap()
            .to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let ocsp = crate::harness::ocsp_status(
                &ca.d.base,
                &dir.join("int.pem"),
                pem,
                &dir.join("root.pem"),
                &dir.join("int.pem"),
            );
            let pre =
                ca.d.post(
                    &ca.operator,
                    &format!("/v1/agents/{agent}/preflight"),
                    &order,
                )
                .await;
            let denied = pre.body["reasons"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["code"] == "certificate_revoked"));
            let crl = crate::crl::fetch_crl(&ca, &crl_url, dir).await;
            let listed = run(std::process::Command::new("openssl")
                .args(["crl", "-noout", "-text", "-in"])
                .arg(&crl))
            .contains(&serial.to_uppercase());
            if ocsp == "revoked" && denied && listed {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{agent}: ocsp {ocsp}, pre-trade denied {denied}, in the CRL {listed}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    // The CLI's revocation came from the store (poll on SQLite, NOTIFY on PostgreSQL), through
    // the same path as the API's, which counts each.
    assert!(changes(&ca, &admin, foreign_source).await > foreign);
}

#[tokio::test]
async fn certify_racing_a_kill_switch_never_leaves_a_suspended_agent_with_a_valid_certificate() {
    let ca = Ca::start().await;
    let work = tempfile::tempdir().unwrap();
    let mandate = json!({"operator": "Acme Trading GmbH", "allowedMarkets": ["BTC_EUR"]});
    let (mut issued, mut refused) = (0, 0);
    for round in 0..20 {
        let agent = format!("race-{round}");
        ca.approved_agent(&agent, mandate.clone()).await;
        let body = json!({"csr": csr(work.path(), "ec-p256", &format!("/CN={agent}"), None)});
        let path = format!("/v1/agents/{agent}/certify");
        let kill = format!("/v1/agents/{agent}/revoke");
        let reason = json!({"reason": "race"});
        let (a, b, c, d, k) = tokio::join!(
            ca.d.post(&ca.operator, &path, &body),
            ca.d.post(&ca.operator, &path, &body),
            ca.d.post(&ca.operator, &path, &body),
            ca.d.post(&ca.operator, &path, &body),
            async {
                // Spread the kill switch over the certify pipeline's phases (before the
                // eligibility check, between reservation and signature, after completion).
                tokio::time::sleep(std::time::Duration::from_micros(round * 400)).await;
                ca.d.post(&ca.operator, &kill, &reason).await
            },
        );
        assert_eq!(k.status, StatusCode::OK, "{k:?}");
        for r in [a, b, c, d] {
            match r.status.as_u16() {
                201 => issued += 1,
                409 => {
                    r.assert_problem(409, "mandate-not-approved");
                    refused += 1;
                }
                _ => panic!("{agent}: {r:?}"),
            }
        }
        // Whatever was signed, before, across or after the kill switch, is revoked now.
        let certs =
            ca.d.get(&ca.operator, &format!("/v1/agents/{agent}/certificates"))
                .await;
        for cert in certs.body["items"].as_array().unwrap() {
            assert_eq!(cert["status"], "revoked", "{agent}: {cert}");
        }
        let a = ca.d.get(&ca.operator, &format!("/v1/agents/{agent}")).await;
        assert_eq!(a.body["status"], "suspended");
    }
    assert_eq!(issued + refused, 80);
    assert!(
        issued > 0 && refused > 0,
        "the race was not run: {issued} issued, {refused} refused"
    );
}

//! Start-up, the key ceremony from the CLI, admin commands on the daemon's data, and restarts.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{BIN, Ca, Daemon, csr, full_mandate, run};

#[tokio::test]
async fn a_restart_keeps_everything() {
    let mut ca = Ca::start().await;
    ca.approved_agent("bot-keep", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let r = ca
        .certify(
            &ca.operator,
            "bot-keep",
            &csr(work.path(), "ec-p256", "/CN=bot-keep", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let serial = r.body["serial_number"].as_str().unwrap().to_owned();
    let root_before = ca.d.get_text("/ca/root.pem").await;
    let agent_before = ca.d.get(&ca.operator, "/v1/agents/bot-keep").await.body;

    ca.d.restart().await;

    assert_eq!(ca.d.get_text("/ca/root.pem").await, root_before);
    let agent_after = ca.d.get(&ca.operator, "/v1/agents/bot-keep").await;
    assert_eq!(agent_after.status, StatusCode::OK);
    assert_eq!(agent_after.body, agent_before);
    let cert =
        ca.d.get(&ca.compliance, &format!("/v1/certificates/{serial}"))
            .await;
    assert_eq!(cert.status, StatusCode::OK, "{cert:?}");
    assert_eq!(cert.body["certificate_pem"], r.body["certificate_pem"]);
    // The same keys still authenticate and the CA keys in the HSM still sign.
    let again = ca
        .certify(
            &ca.operator,
            "bot-keep",
            &csr(work.path(), "ec-p256", "/CN=bot-keep", None),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    assert_eq!(again.body["chain_pem"], r.body["chain_pem"]);
    // First start wrote the bootstrap key once; a restart did not replace it.
    let mode = std::fs::metadata(ca.d.data_dir().join("admin.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    assert!(
        !ca.d.log().contains(&ca.d.admin_key()),
        "admin key was logged"
    );
    assert!(!ca.d.log().contains(&ca.d.user_pin()), "HSM PIN was logged");
    // The delegated OCSP signer made at first start is reused, not re-made on every start.
    assert_eq!(
        ca.d.log().matches("delegated OCSP signer issued").count(),
        1,
        "{}",
        ca.d.log()
    );
}

#[tokio::test]
async fn init_prints_the_admin_key_once_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let mandate = || {
        let mut c = Command::new(BIN);
        c.env("MANDATE_DATA_DIR", dir.path())
            .env_remove("MANDATE_CONFIG")
            .env("MANDATE_LOG", "warn");
        c
    };
    let out: Value = serde_json::from_str(&run(mandate().args(["--json", "init"]))).unwrap();
    let key = out["admin_api_key"].as_str().unwrap();
    assert!(key.starts_with("mk_"), "{out}");
    // Without --json, the same for people: aligned `key  value` lines, PEM blocks indented.
    let text = run(mandate().args(["ca", "show"]));
    assert!(!text.trim_start().starts_with('['), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("role") && l.ends_with("root")),
        "{text}"
    );
    let json: Value = serde_json::from_str(&run(mandate().args(["ca", "show", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    for cert in json.as_array().unwrap() {
        for key in ["not_before", "not_after"] {
            let t = cert[key].as_str().unwrap_or_default();
            assert!(t.len() == 20 && t.ends_with('Z'), "RFC 3339 {key}: {cert}");
        }
    }
    for which in ["root", "intermediate"] {
        let fp = out[which]["sha256_fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 64, "{out}");
        assert!(
            out[which]["pem"]
                .as_str()
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
    }
    assert!(
        !dir.path().join("admin.key").exists(),
        "init prints; it writes no key file"
    );

    let second = mandate().arg("init").output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already initialised"), "{err}");
    assert!(second.stdout.is_empty(), "a refusal printed a key");

    // Admin commands act on the same data: organizations, people and their keys from the CLI.
    run(mandate().args([
        "orgs",
        "create",
        "--id",
        "acme",
        "--legal-name",
        "Acme AG",
        "--approvals-required",
        "2",
    ]));
    run(mandate().args([
        "people",
        "create",
        "--id",
        "olga",
        "--name",
        "Olga",
        "--organization",
        "acme",
        "--role",
        "compliance",
    ]));
    let created: Value = serde_json::from_str(&run(mandate().args([
        "--json",
        "api-keys",
        "create",
        "--role",
        "compliance",
        "--label",
        "officer",
        "--person",
        "olga",
    ])))
    .unwrap();
    assert_eq!(created["role"], "compliance");
    assert_eq!(created["person"], "olga");
    let people: Value =
        serde_json::from_str(&run(mandate().args(["--json", "people", "list"]))).unwrap();
    assert!(people["next_cursor"].is_null(), "{people}");
    let ids: Vec<&str> = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["admin", "olga"], "{people}");
    let orgs: Value =
        serde_json::from_str(&run(mandate().args(["--json", "orgs", "list"]))).unwrap();
    assert_eq!(orgs["items"][0]["approvals_required"], 2);
    // A person's role, or a person at all, is required.
    let refused = mandate()
        .args(["api-keys", "create", "--role", "operator", "--label", "x"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("belongs to a person"));
    let disabled: Value =
        serde_json::from_str(&run(mandate().args(["--json", "people", "disable", "olga"])))
            .unwrap();
    assert_eq!(disabled["newly_disabled"], true);
    let bad = mandate()
        .args(["api-keys", "create", "--role", "king", "--label", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));
    let shown: Value =
        serde_json::from_str(&run(mandate().args(["ca", "show", "--json"]))).unwrap();
    assert_eq!(shown.as_array().unwrap().len(), 2);
    assert_eq!(shown[0]["sha256"], out["root"]["sha256_fingerprint"]);
}

#[tokio::test]
async fn daemon_started_on_defaults_is_ready_and_serves_its_ca() {
    let d = Daemon::start().await;
    let r = d
        .raw()
        .get(format!("{}/healthz", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = d
        .raw()
        .get(format!("{}/readyz", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["hsm"], "ok");
    assert_eq!(body["database"], "ok");
    let der = d
        .raw()
        .get(format!("{}/ca/intermediate.der", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("int.der");
    std::fs::write(&path, der.bytes().await.unwrap()).unwrap();
    let text = run(Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-subject", "-in"])
        .arg(&path));
    assert!(text.contains("Mandate Issuing CA 1"), "{text}");
    assert_eq!(
        d.data_dir().join("mandate.db").exists(),
        !mandate_testkit::on_postgres()
    );
}

#[tokio::test]
async fn a_bad_config_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "[ca]\nmax_validity_days = 900\n").unwrap();
    // The same file named by the flag and by MANDATE_CONFIG.
    let by_flag = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .env("MANDATE_DATA_DIR", dir.path())
        .arg("serve")
        .output()
        .unwrap();
    let by_env = Command::new(BIN)
        .env("MANDATE_CONFIG", &cfg)
        .env("MANDATE_DATA_DIR", dir.path())
        .arg("serve")
        .output()
        .unwrap();
    for out in [by_flag, by_env] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ca.max_validity_days"), "{err}");
    }
    assert!(
        !dir.path().join("mandate.db").exists(),
        "a refused config still created a database"
    );
    let bad_log = Command::new(BIN)
        .env("MANDATE_DATA_DIR", dir.path())
        .env("MANDATE_LOG", "info,[[[")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!bad_log.status.success());
    assert!(String::from_utf8_lossy(&bad_log.stderr).contains("invalid log filter"));
}

#[tokio::test]
async fn a_lost_database_never_leads_to_a_silent_second_ceremony() {
    let mut d = Daemon::start().await;
    d.stop().await;
    for f in ["mandate.db", "mandate.db-wal", "mandate.db-shm"] {
        let _ = std::fs::remove_file(d.data_dir().join(f));
    }
    let out = d.command().arg("serve").output().unwrap();
    assert!(!out.status.success(), "serve started a second CA");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already holds CA keys"), "{err}");
}

#[tokio::test]
async fn the_dev_token_ignores_a_stray_pin_variable_and_reads_do_not_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let mandate = || {
        let mut c = Command::new(BIN);
        c.env("MANDATE_DATA_DIR", dir.path().join("data"))
            .env_remove("MANDATE_CONFIG")
            .env("MANDATE_HSM_PIN", "not-the-pin");
        c
    };
    let show = mandate().args(["ca", "show"]).output().unwrap();
    assert!(!show.status.success());
    let err = String::from_utf8_lossy(&show.stderr);
    assert!(
        err.contains("no CA here") && err.contains("mandate.db does not exist"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a read-only command created the data directory"
    );
    let out: Value = serde_json::from_str(&run(mandate().args(["init", "--json"]))).unwrap();
    assert!(out["admin_api_key"].as_str().is_some());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "data dir must be private");
}

#[tokio::test]
async fn a_new_mandate_version_needs_its_own_approval() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-v", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let req = csr(work.path(), "ec-p256", "/CN=bot-v", None);

    let mut v2 = full_mandate();
    v2["maxTransactionSize"]["amount"] = "20000".into();
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-v/mandate",
            &serde_json::json!({"mandate": v2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["mandate_version"], 2);
    assert_eq!(r.body["mandate_status"], "pending_approval");
    assert_eq!(r.body["approved_mandate_version"], 1);
    // Until v2 is approved, certificates carry v1.
    let c = ca.certify(&ca.operator, "bot-v", &req).await;
    assert_eq!(c.body["mandate_version"], 1, "{c:?}");

    // A v3 request replaces the pending v2, which is withdrawn, not "rejected".
    let mut v3 = full_mandate();
    v3["maxTransactionSize"]["amount"] = "10000".into();
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-v/mandate",
            &serde_json::json!({"mandate": v3}),
        )
        .await;
    assert_eq!(r.body["mandate_version"], 3);
    ca.d.post(
        &ca.compliance,
        "/v1/agents/bot-v/approve",
        &serde_json::json!({"version": 2}),
    )
    .await
    .assert_problem(409, "wrong-state");
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-v/approve",
            &serde_json::json!({"version": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let c = ca.certify(&ca.operator, "bot-v", &req).await;
    assert_eq!(c.body["mandate_version"], 3, "{c:?}");
    let pem = c.body["certificate_pem"].as_str().unwrap();
    let path = work.path().join("v3.pem");
    std::fs::write(&path, pem).unwrap();
    let parsed: Value = serde_json::from_str(&run(Command::new("python3")
        .arg(crate::harness::here("check_cert.py"))
        .arg(&path)))
    .unwrap();
    let m = mandate_policy::Mandate::from_der(
        &hex::decode(parsed["mandate_der_hex"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(m.max_transaction_size.unwrap().amount.to_string(), "10000");
}

#[tokio::test]
async fn reinstating_lifts_a_suspension_and_approves_nothing() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-r", full_mandate()).await;
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-r/revoke",
            &serde_json::json!({"reason": "drill"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // While suspended, the operator asks for wider limits.
    let mut v2 = full_mandate();
    v2["maxTransactionSize"]["amount"] = "90000".into();
    v2["maxDailyVolume"] = serde_json::json!({"amount": "900000", "currency": "EUR"});
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-r/mandate",
            &serde_json::json!({"mandate": v2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    // The versions, the pending one with what it changes.
    let m =
        ca.d.get(&ca.auditor().await, "/v1/agents/bot-r/mandates")
            .await;
    assert_eq!(m.status, StatusCode::OK, "{m:?}");
    assert_eq!(m.body["items"][0]["version"], 2);
    assert_eq!(m.body["items"][0]["status"], "pending_approval");
    assert_eq!(
        m.body["items"][0]["changes"][0],
        serde_json::json!({"field": "maxTransactionSize", "before": "50000 EUR",
                           "after": "90000 EUR", "direction": "widened"})
    );
    assert_eq!(m.body["items"][1]["status"], "approved");
    assert!(m.body["items"][1].get("changes").is_none());
    // An empty approve is refused and asks for the version.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-r/approve",
            &serde_json::json!({}),
        )
        .await;
    r.assert_problem(400, "invalid-request");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains(r#"{"version": 2}"#),
        "{r:?}"
    );
    // Reinstating lifts the suspension with v1; v2 stays pending.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-r/reinstate",
            &serde_json::json!({"comment": "drill over"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["mandate_version"], 2);
    assert_eq!(r.body["mandate_status"], "pending_approval");
    assert_eq!(r.body["approved_mandate_version"], 1);
    // Not suspended any more: reinstating again is a state error.
    ca.d.post(
        &ca.compliance,
        "/v1/agents/bot-r/reinstate",
        &serde_json::json!({}),
    )
    .await
    .assert_problem(409, "wrong-state");
    // Approving a version of a suspended agent does not lift the suspension either.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-r/revoke",
            &serde_json::json!({"reason": "again"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-r/approve",
            &serde_json::json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["approved_mandate_version"], 2);
    assert_eq!(r.body["status"], "suspended");
}

#[tokio::test]
async fn a_time_zone_that_does_not_exist_is_refused_at_registration() {
    let ca = Ca::start().await;
    let mut m = full_mandate();
    m["tradingHours"]["timeZone"] = "Mars/Olympus".into();
    let r = ca.register("bot-mars", m).await;
    r.assert_problem(422, "invalid-mandate");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("tradingHours.timeZone"),
        "{r:?}"
    );
    ca.d.get(&ca.operator, "/v1/agents/bot-mars")
        .await
        .assert_problem(404, "not-found");
}

/// The agent's certificate for a fresh P-256 key made by openssl: (PEM path, serial, key path).
async fn certified_key(
    ca: &Ca,
    agent: &str,
    dir: &std::path::Path,
) -> (std::path::PathBuf, String, std::path::PathBuf) {
    let sub = dir.join(format!("{agent}-{}", std::process::id()));
    std::fs::create_dir_all(&sub).unwrap();
    let r = ca
        .certify(
            &ca.operator,
            agent,
            &csr(&sub, "ec-p256", &format!("/CN={agent}"), None),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let pem = sub.join("cert.pem");
    std::fs::write(&pem, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    let key = std::fs::read_dir(&sub)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "key"))
        .unwrap();
    (
        pem,
        r.body["serial_number"].as_str().unwrap().to_owned(),
        key,
    )
}

/// What `/v1/verify` says of an order signed now with `key` under `cert`.
async fn verify_now(ca: &Ca, cert: &std::path::Path, key: &std::path::Path) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = key.parent().unwrap();
    let payload = r#"{"action":"trade_execution","market":"BTC_EUR","counterparty":"exchange_a","region":"eu-west-1","size":"10","currency":"EUR"}"#;
    std::fs::write(dir.join("order.json"), payload).unwrap();
    run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg("-out")
        .arg(dir.join("order.sig"))
        .arg(dir.join("order.json")));
    let r =
        ca.d.post(
            &ca.auditor().await,
            "/v1/verify",
            &serde_json::json!({"certificate": std::fs::read_to_string(cert).unwrap(),
                "signature": b64.encode(std::fs::read(dir.join("order.sig")).unwrap()),
                "payload": b64.encode(payload)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body
}

fn no_hours() -> Value {
    let mut m = full_mandate();
    m.as_object_mut().unwrap().remove("tradingHours");
    m
}

#[tokio::test]
async fn a_narrower_mandate_revokes_the_older_certificates_at_once() {
    let ca = Ca::start().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    std::fs::write(
        dir.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    ca.approved_agent("bot-n", no_hours()).await;
    let (cert, serial, key) = certified_key(&ca, "bot-n", dir).await;
    assert_eq!(verify_now(&ca, &cert, &key).await["valid"], true);
    let ocsp = |cert: &std::path::Path| {
        crate::harness::ocsp_status(
            &ca.d.base,
            &dir.join("int.pem"),
            cert,
            &dir.join("root.pem"),
            &dir.join("int.pem"),
        )
    };
    assert_eq!(ocsp(&cert), "good");
    // v2 takes a market away and lowers the size: narrower.
    let mut v2 = no_hours();
    v2["allowedMarkets"] = serde_json::json!(["EUR_USD"]);
    v2["maxTransactionSize"]["amount"] = "20000".into();
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-n/mandate",
            &serde_json::json!({"mandate": v2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    // Until v2 is approved, v1's certificate is good.
    assert_eq!(ocsp(&cert), "good");
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-n/approve",
            &serde_json::json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // At once: the record, OCSP, the CRL and the verifier.
    let c =
        ca.d.get(&ca.operator, &format!("/v1/certificates/{serial}"))
            .await;
    assert_eq!(c.body["status"], "revoked", "{c:?}");
    assert_eq!(c.body["revocation_reason"], "superseded", "{c:?}");
    assert_eq!(ocsp(&cert), "revoked");
    let crl_url = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
        .arg(&cert));
    let url = crl_url
        .split_whitespace()
        .find_map(|w| w.strip_prefix("URI:"))
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let crl = crate::crl::fetch_crl(&ca, &url, dir).await;
        let text = run(Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(&crl));
        if text
            .to_ascii_lowercase()
            .contains(&serial.trim_start_matches('0').to_ascii_lowercase())
        {
            assert!(text.contains("Superseded"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not in the CRL: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let v = verify_now(&ca, &cert, &key).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["revocation"]["revocation_reason"], "superseded", "{v}");
    assert_eq!(v["revocation"]["revocation_reason_code"], 4, "{v}");
    // The agent renews (it is not stopped): the pre-trade check asks for a valid certificate.
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-n/preflight",
            &serde_json::json!({"action": "trade_execution", "market": "EUR_USD",
                "counterparty": "exchange_a", "region": "eu-west-1", "size": "10", "currency": "EUR"}),
        )
        .await;
    assert_eq!(
        r.body["reasons"][0]["code"], "no_valid_certificate",
        "{r:?}"
    );
    let (cert2, _, key2) = certified_key(&ca, "bot-n", dir).await;
    assert_eq!(
        verify_now(&ca, &cert2, &key2).await["valid"],
        false,
        "BTC_EUR is gone in v2"
    );
}

#[tokio::test]
async fn a_wider_mandate_lets_the_older_certificates_run_out_a_grace_while_ari_says_renew() {
    let ca = Ca::start_with_config("[ca]\nsupersede_grace_secs = 2\n").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let port = crate::harness::free_port();
    let receiver = crate::receiver::Receiver::start(port).await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/webhooks",
            &serde_json::json!({"url": format!("http://127.0.0.1:{port}/hook"),
                                "events": ["certificate.superseded", "certificate.revoked"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    *receiver.secret.lock().unwrap() = r.body["secret"].as_str().unwrap().to_owned();
    ca.approved_agent("bot-w", no_hours()).await;
    let (cert, serial, key) = certified_key(&ca, "bot-w", dir).await;
    let pem = std::fs::read_to_string(&cert).unwrap();
    let ari = || async {
        let r =
            ca.d.raw()
                .get(format!(
                    "{}/acme/renewal-info/{}",
                    ca.d.base,
                    crate::acme::cert_id(&pem)
                ))
                .send()
                .await
                .unwrap();
        let (status, path) = (r.status().as_u16(), r.url().path().to_owned());
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let v: Value = r.json().await.unwrap();
        crate::contract::assert_documented("GET", &path, status, &content_type, &v);
        let end = v["suggestedWindow"]["end"].as_str().unwrap().to_owned();
        time::OffsetDateTime::parse(&end, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    assert!(
        ari().await > now_unix() + 86_400,
        "renew in two thirds of the lifetime"
    );
    // v2 only widens: a larger size and one more market.
    let mut v2 = no_hours();
    v2["allowedMarkets"] = serde_json::json!(["EUR_USD", "BTC_EUR", "ETH_EUR"]);
    v2["maxTransactionSize"]["amount"] = "60000".into();
    v2["maxDailyVolume"] = serde_json::json!({"amount": "2000000", "currency": "EUR"});
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-w/mandate",
            &serde_json::json!({"mandate": v2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-w/approve",
            &serde_json::json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // Still valid during the grace, but ARI says renew now and the bot is told.
    let c =
        ca.d.get(&ca.operator, &format!("/v1/certificates/{serial}"))
            .await;
    assert_eq!(c.body["status"], "issued", "{c:?}");
    assert!(ari().await <= now_unix(), "renew now");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while receiver
        .received
        .of_type("certificate.superseded")
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no certificate.superseded webhook"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let hook = &receiver.received.of_type("certificate.superseded")[0];
    assert_eq!(hook["data"]["serial_number"], serial.as_str());
    assert_eq!(hook["data"]["renew"], "now");
    // After the grace: revoked superseded, and the verifier refuses it.
    loop {
        let c =
            ca.d.get(&ca.operator, &format!("/v1/certificates/{serial}"))
                .await;
        if c.body["status"] == "revoked" {
            assert_eq!(c.body["revocation_reason"], "superseded", "{c:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not retired after the grace: {c:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let v = verify_now(&ca, &cert, &key).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["revocation"]["status"], "revoked", "{v}");
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn every_version_2_control_is_accepted_within_its_bounds() {
    let ca = Ca::start().await;
    let mut m = full_mandate();
    m["maxOpenOrders"] = serde_json::json!(5);
    m["maxNetPosition"] = serde_json::json!({"quantity": "2"});
    m["maxOrderToTradeRatio"] = serde_json::json!({"maxRatio": 10, "windowSecs": 60});
    m["shortSellingAllowed"] = serde_json::json!(false);
    m["marketControls"] = serde_json::json!([{"market": "BTC_EUR", "controls": {"maxDailyLoss": {"amount": "10", "currency": "EUR"}}}]);
    let r = ca.register("bot-v2", m).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    // No more open orders than the daemon tracks per agent.
    let mut m = full_mandate();
    m["maxOpenOrders"] = serde_json::json!(100_001);
    let r = ca.register("bot-v2-many", m).await;
    r.assert_problem(422, "invalid-mandate");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("maxOpenOrders: must be 1 to 100000"),
        "{r:?}"
    );
    // A rationale alone is kept with the version.
    let mut m = full_mandate();
    m["rationale"] = serde_json::json!({"maxTransactionSize": "the desk's largest order in 2026"});
    let r = ca.register("bot-why", m).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(
        r.body["mandate"]["rationale"]["maxTransactionSize"],
        "the desk's largest order in 2026"
    );
}

#[tokio::test]
async fn json_output_is_asked_for_in_the_usual_words_and_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mandate = || {
        let mut c = Command::new(BIN);
        c.env("MANDATE_DATA_DIR", dir.path())
            .env_remove("MANDATE_CONFIG")
            .env_remove("MANDATE_JSON")
            .env("MANDATE_LOG", "warn");
        c
    };
    run(mandate().args(["--json", "init"]));
    for yes in ["1", "true", "yes", "on", "TRUE"] {
        let out = run(mandate().env("MANDATE_JSON", yes).args(["people", "list"]));
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{yes}: {e}: {out}"));
        assert!(v["items"].is_array(), "{v}");
    }
    for no in ["0", "false", "no", "off"] {
        let out = run(mandate().env("MANDATE_JSON", no).args(["people", "list"]));
        assert!(serde_json::from_str::<Value>(&out).is_err(), "{no}: {out}");
    }
    // A reader that stops early (`| head -1`) ends the output quietly, with success.
    let mut child = mandate()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The whole CA on a second, independent PKCS#11 implementation: Kryoptic (Rust, OpenSSL 3,
//! SQLite storage) instead of SoftHSM2. The test prepares the token itself, as an operator
//! would prepare a hardware HSM (`hsm.dev_token = false`, `hsm.module`, `hsm.token_label`,
//! `hsm.pin_file`), then runs the key ceremony (`mandate init`), issuance (a CSR and a key made
//! in the token), OCSP, signed audit checkpoints anchored in the token, an intermediate
//! rotation from the CLI beside the running daemon, and HSM sessions dropped (SIGUSR1) under
//! concurrent issuance. Every result is checked with openssl and with pkcs11-tool reading the
//! token directly.
//!
//! It skips itself only when Kryoptic is not installed and `MANDATE_TEST_ALLOW_MISSING_TOKEN=1`
//! (`scripts/deps.sh test` builds it, so the test command always runs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use mandate_hsm::testing::{TokenHarness, TokenKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, Daemon, full_mandate, ocsp_status, run, test_config};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// pkcs11-tool logged in to the daemon's token: an independent reader of what is in it.
fn pkcs11_tool(token: &TokenHarness) -> Command {
    let mut cmd = Command::new("pkcs11-tool");
    cmd.env(token.kind().conf_env(), token.conf_path())
        .arg("--module")
        .arg(token.module_path())
        .args(["--token-label", token.token_label(), "--login", "--pin"])
        .arg(token.user_pin());
    cmd
}

/// `openssl verify -x509_strict` of the PEM `cert` against `root` with `chain` as helpers.
fn verify_chain(dir: &Path, root: &str, chain: &str, cert: &str) {
    let root = write(dir, "verify-root.pem", root);
    let chain = write(dir, "verify-chain.pem", chain);
    let cert = write(dir, "verify-cert.pem", cert);
    let out = run(Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&root)
        .arg("-untrusted")
        .arg(&chain)
        .arg(&cert));
    assert!(out.contains(": OK"), "{out}");
}

/// What the daemon's OCSP responder says of `cert` (PEM) issued by `issuer` (PEM).
fn ocsp(ca: &Ca, dir: &Path, issuer: &str, root: &str, cert: &str) -> String {
    ocsp_status(
        &ca.d.base,
        &write(dir, "ocsp-issuer.pem", issuer),
        &write(dir, "ocsp-cert.pem", cert),
        &write(dir, "ocsp-root.pem", root),
        &write(dir, "ocsp-other.pem", issuer),
    )
}

/// Certifies `agent` for a fresh openssl key; (certificate PEM, chain PEM, serial).
async fn issue(ca: &Ca, dir: &Path, agent: &str) -> (String, String, String) {
    let r = ca.certify_new_key(agent, dir).await;
    (
        r.body["certificate_pem"].as_str().unwrap().to_owned(),
        r.body["chain_pem"].as_str().unwrap().to_owned(),
        r.body["serial_number"].as_str().unwrap().to_owned(),
    )
}

/// Waits (20 s) until the daemon has signed an audit checkpoint covering more than `size`
/// records; returns its size.
async fn checkpoint_beyond(d: &Daemon, size: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = d
            .raw()
            .get(format!("{}/v1/audit/checkpoint", d.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let body: Option<Value> = if r.status() == StatusCode::OK {
            r.json().await.ok()
        } else {
            None
        };
        if let Some(n) = body.as_ref().and_then(|v| v["tree_size"].as_u64())
            && n > size
        {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint beyond {size}: {body:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_ca_runs_on_kryoptic() {
    if TokenKind::Kryoptic.skip_if_missing() {
        return;
    }
    // The token, made and initialised here (C_InitToken, C_InitPIN), as for a real HSM.
    let token = TokenHarness::new(TokenKind::Kryoptic, "mandate-e2e-kryoptic").unwrap();
    let data = tempfile::tempdir().unwrap();
    let pin_file = write(data.path(), "token.pin", &format!("{}\n", token.user_pin()));
    let config = format!(
        "[hsm]\nmodule = \"{}\"\ntoken_label = \"{}\"\ndev_token = false\npin_file = \"{}\"\n\n\
         [audit]\ncheckpoint_secs = 1\n",
        token.module_path().display(),
        token.token_label(),
        pin_file.display()
    );
    std::fs::write(data.path().join("mandate.toml"), test_config(&config)).unwrap();
    let db_url = mandate_testkit::database_url(data.path());
    let env = vec![(
        token.kind().conf_env().to_owned(),
        token.conf_path().display().to_string(),
    )];
    let mut d = Daemon::unstarted(Arc::new(data), db_url, env);

    // --- The key ceremony, from the CLI: root and intermediate generated in Kryoptic.
    let ceremony: Value = serde_json::from_str(&run(d.command().arg("init"))).unwrap();
    assert_eq!(ceremony["root"]["key_type"], "ec-p384", "{ceremony}");
    assert_eq!(
        ceremony["intermediate"]["key_type"], "ec-p256",
        "{ceremony}"
    );
    // `init` prints the first admin key once; the harness reads it from the data dir.
    write(
        d.data_dir(),
        "admin.key",
        ceremony["admin_api_key"].as_str().unwrap(),
    );
    let privkeys = run(pkcs11_tool(&token).args(["--list-objects", "--type", "privkey"]));
    for which in ["root", "intermediate"] {
        let label = ceremony[which]["key_label"].as_str().unwrap();
        let id = ceremony[which]["key_id"].as_str().unwrap();
        assert!(
            privkeys.contains(label) && privkeys.contains(id),
            "{which}: {privkeys}"
        );
    }
    assert!(
        privkeys.contains("never extractable") && privkeys.contains("always sensitive"),
        "{privkeys}"
    );
    assert!(
        !privkeys.contains("decrypt") && !privkeys.contains("unwrap"),
        "a CA key may only sign: {privkeys}"
    );

    d.spawn().await;
    let ca = Ca::on(d).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let root = ca.d.get_text("/ca/root.pem").await;
    let int1 = ca.d.get_text("/ca/intermediate.pem").await;
    assert_eq!(root, ceremony["root"]["pem"].as_str().unwrap());

    // --- Issuance: a CSR's key, and a key made in the token for the agent.
    ca.approved_agent("bot-k", full_mandate()).await;
    let (a, a_chain, a_serial) = issue(&ca, dir, "bot-k").await;
    assert_eq!(a_chain, format!("{int1}{root}"));
    verify_chain(dir, &root, &a_chain, &a);
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-k/certify",
            &json!({"hsm_key_type": "ec-p384"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    verify_chain(
        dir,
        &root,
        r.body["chain_pem"].as_str().unwrap(),
        r.body["certificate_pem"].as_str().unwrap(),
    );
    let key_id = r.body["key_ref"]
        .as_str()
        .unwrap()
        .trim_start_matches("hsm:");
    let agent_key =
        run(pkcs11_tool(&token).args(["--list-objects", "--type", "privkey", "--id", key_id]));
    assert!(agent_key.contains("mandate-agent-bot-k-"), "{agent_key}");
    // EAB credentials: HMAC-SHA256 under a generic secret key made in the token.
    let eab =
        ca.d.post(&ca.operator, "/v1/agents/bot-k/eab", &json!({}))
            .await;
    assert_eq!(eab.status, StatusCode::CREATED, "{eab:?}");
    let secret = run(pkcs11_tool(&token).args(["--list-objects", "--type", "secrkey"]));
    assert!(secret.contains("mandate-eab-master"), "{secret}");

    // --- OCSP, signed in the token by the delegated responder key: good, then revoked.
    assert_eq!(ocsp(&ca, dir, &int1, &root, &a), "good");
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/certificates/{a_serial}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(ocsp(&ca, dir, &int1, &root, &a), "revoked");

    // --- A signed audit checkpoint, anchored in the token as a private data object.
    let size = checkpoint_beyond(&ca.d, 0).await;
    let report: Value =
        serde_json::from_str(&run(ca.d.command().args(["audit", "verify"]))).unwrap();
    assert!(report["first_broken"].is_null(), "{report}");
    assert!(
        report["checkpoints_verified"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let data = run(pkcs11_tool(&token).args(["--list-objects", "--type", "data"]));
        if data.contains("mandate-audit-anchor") {
            break;
        }
        assert!(Instant::now() < deadline, "no anchor in the token: {data}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // --- Rotation from the CLI while the daemon runs: a second process on the same token.
    let out: Value =
        serde_json::from_str(&run(ca.d.command().args(["ca", "rotate-intermediate"]))).unwrap();
    let int2 = out["intermediate"]["pem"].as_str().unwrap().to_owned();
    assert_eq!(out["retired_intermediate"]["pem"], int1);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ca.d.get_text("/ca/chain.pem").await.starts_with(&int2) {
        assert!(
            Instant::now() < deadline,
            "the daemon did not switch to the new intermediate:\n{}",
            ca.d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (b, b_chain, _) = issue(&ca, dir, "bot-k").await;
    assert_eq!(b_chain, format!("{int2}{root}"));
    verify_chain(dir, &root, &b_chain, &b);
    assert_eq!(ocsp(&ca, dir, &int2, &root, &b), "good");
    assert_eq!(ocsp(&ca, dir, &int1, &root, &a), "revoked");
    let keys: Value = serde_json::from_str(&run(ca.d.command().args(["hsm", "keys"]))).unwrap();
    let roles: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["role"].as_str())
        .collect();
    for role in ["root", "intermediate", "ocsp-signer", "agent"] {
        assert!(roles.contains(&role), "{role} missing: {keys}");
    }

    // --- Every session and the login dropped (SIGUSR1, as an HSM restart would) three times
    //     while four clients certify: C_Logout and the recoveries' C_Login meet signatures in
    //     flight on other sessions, which Kryoptic survives only because mandate runs them
    //     alone (`mandate_hsm` module gate). Every request is answered with a certificate.
    let csrs = crate::faults::csrs(dir, "bot-k", 30);
    let done = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(crate::faults::certify_load(
        ca.d.base.clone(),
        ca.operator.clone(),
        "bot-k",
        csrs,
        4,
        done.clone(),
    ));
    for round in 1..=3 {
        crate::faults::wait_count(&done, round * 8).await;
        run(Command::new("kill").args(["-USR1", &ca.d.pid().to_string()]));
    }
    let load = load.await.unwrap();
    assert_eq!(load.issued.len(), 30, "{load:?}\n{}", ca.d.log());
    assert!(load.refused.is_empty() && load.no_answer == 0, "{load:?}");
    // The last signal may be handled after the last answer: wait for the daemon to log it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ca.d.log().matches("every HSM session closed").count() < 3 {
        assert!(Instant::now() < deadline, "{}", ca.d.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = ca.d.get(&ca.operator, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let (_, last) = load.issued.last().unwrap();
    verify_chain(dir, &root, &int2, last);

    // --- A restart finds keys and anchor again (a new process, a new login), and the
    //     checkpoints go on past the rotation.
    let mut ca = ca;
    ca.d.restart().await;
    let after = checkpoint_beyond(&ca.d, size).await;
    assert!(after > size);
    let (c, c_chain, _) = issue(&ca, dir, "bot-k").await;
    verify_chain(dir, &root, &c_chain, &c);
    assert_eq!(ocsp(&ca, dir, &int2, &root, &c), "good");
    let report: Value =
        serde_json::from_str(&run(ca.d.command().args(["audit", "verify"]))).unwrap();
    assert!(report["first_broken"].is_null(), "{report}");
    ca.d.stop().await;
}

//! A restored older copy of the database: the HSM's audit anchor shows it is behind, the daemon
//! refuses to serve from it (it would answer `good` for a certificate revoked since), and the
//! documented recovery puts the revocation back from what the CA had published.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, full_mandate, run};

/// Waits until the daemon's newest signed checkpoint covers at least `records` records.
async fn checkpointed(ca: &Ca, records: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r =
            ca.d.raw()
                .get(format!("{}/v1/audit/checkpoint", ca.d.base))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
        if r.status() == StatusCode::OK {
            let v: Value = r.json().await.unwrap();
            if v["tree_size"].as_u64().unwrap() >= records {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of {records}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Records in the audit log now (as CA staff see it).
async fn records(ca: &Ca) -> u64 {
    let admin = ca.d.admin_key();
    let all = ca.d.list_all(&admin, "/v1/audit?limit=100").await;
    all.last().map_or(0, |last| last["seq"].as_u64().unwrap())
}

/// `openssl ocsp` for `cert`, keeping the DER response in `out`; "good" or "revoked".
fn ocsp(ca: &Ca, dir: &std::path::Path, cert: &std::path::Path, out: &std::path::Path) -> String {
    let text = run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(dir.join("int.pem"))
        .arg("-cert")
        .arg(cert)
        .args(["-url", &format!("{}/ocsp", ca.d.base), "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-verify_other")
        .arg(dir.join("int.pem"))
        .arg("-respout")
        .arg(out));
    if text.contains(": revoked") {
        "revoked".into()
    } else if text.contains(": good") {
        "good".into()
    } else {
        text
    }
}

#[tokio::test]
async fn a_restored_older_database_is_refused_until_recovery_puts_the_lost_revocation_back() {
    let mut ca = Ca::start_with_config("[audit]\ncheckpoint_secs = 1\n").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(
        dir.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    ca.approved_agent("restored-bot", full_mandate()).await;
    let r = ca.certify_new_key("restored-bot", dir).await;
    let serial = r.body["serial_number"].as_str().unwrap().to_owned();
    let pem = dir.join("leaf.pem");
    std::fs::write(&pem, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    checkpointed(&ca, records(&ca).await).await;

    // The nightly backup, then a revocation after it.
    ca.d.stop().await;
    let backup = ca.d.backup_database();
    ca.d.spawn().await;
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/certificates/{serial}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let resp = dir.join("revoked.ocsp.der");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ocsp(&ca, dir, &pem, &resp) != "revoked" {
        assert!(std::time::Instant::now() < deadline, "never revoked");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let crl_url = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
        .arg(&pem))
    .split_whitespace()
    .find_map(|w| w.strip_prefix("URI:"))
    .unwrap()
    .to_owned();
    let crl = crate::crl::fetch_crl(&ca, &crl_url, dir).await;
    let had = records(&ca).await;
    checkpointed(&ca, had).await;

    // The backup is put back: the daemon refuses to serve, and says what was lost.
    ca.d.stop().await;
    ca.d.restore_database(&backup);
    ca.d.spawn_unready();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let reason = loop {
        // The port opens at once; until then, connections are refused.
        let r = ca.d.raw().get(format!("{}/readyz", ca.d.base)).send().await;
        if let Ok(r) = r {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let detail = body["detail"].as_str().unwrap_or_default().to_owned();
            if detail.contains("older copy") {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
                break detail;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not refused:\n{}",
            ca.d.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        reason.contains("missing") && reason.contains("mandate recover"),
        "{reason}"
    );
    assert!(ca.d.log().contains("refusing to serve"), "{}", ca.d.log());
    // Nothing is served from it: not the revoked certificate's status, not the API.
    let r = ca.d.get(&ca.operator, "/v1/agents/restored-bot").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    // Nor by a stand-alone responder reading the same database: the refusal is marked in it.
    let port = crate::harness::free_port();
    let mut responder = crate::harness::Responder::command(&ca.d)
        .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = loop {
        if let Ok(r) =
            ca.d.raw()
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
        {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status == StatusCode::SERVICE_UNAVAILABLE && text.contains("older copy") {
                break text;
            }
            assert_ne!(
                status,
                StatusCode::OK,
                "the responder serves a refused database"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the responder never said why"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(refused.contains("mandate recover"), "{refused}");
    let answer = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(dir.join("int.pem"))
        .arg("-cert")
        .arg(&pem)
        .args(["-url", &format!("http://127.0.0.1:{port}/ocsp")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&answer.stdout).to_string()
        + &String::from_utf8_lossy(&answer.stderr);
    assert!(
        said.contains("trylater") && !said.contains(": good"),
        "{said}"
    );
    let _ = responder.kill();
    let _ = responder.wait();

    // The documented recovery, with what the CA had published.
    ca.d.stop().await;
    let bad =
        ca.d.command()
            .args(["recover", "--crl"])
            .arg(&pem)
            .output()
            .unwrap();
    assert!(
        !bad.status.success(),
        "a certificate is no revocation evidence"
    );
    let out: Value = serde_json::from_str(&run(ca
        .d
        .command()
        .args(["recover", "--crl"])
        .arg(&crl)
        .arg("--ocsp")
        .arg(&resp)))
    .unwrap();
    assert_eq!(out["status"], "recovered", "{out}");
    assert!(out["lost_records"].as_u64().unwrap() >= 1, "{out}");
    let reapplied = out["reapplied"].as_array().unwrap();
    assert_eq!(reapplied.len(), 1, "{out}");
    assert_eq!(reapplied[0]["serial_number"], serial.as_str());
    assert_eq!(reapplied[0]["revocation_reason"], "keyCompromise");
    // A second run finds nothing to do.
    let again: Value =
        serde_json::from_str(&run(ca.d.command().args(["recover", "--crl"]).arg(&crl))).unwrap();
    assert_eq!(again["status"], "current", "{again}");

    // Served again: the revocation made after the backup is back, and on record.
    ca.d.spawn().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ocsp(&ca, dir, &pem, &dir.join("after.der")) != "revoked" {
        assert!(
            std::time::Instant::now() < deadline,
            "OCSP is not revoked after recovery"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let admin = ca.d.admin_key();
    let mut found = None;
    for rec in ca.d.list_all(&admin, "/v1/audit?limit=100").await {
        if rec["action"] == "audit.recovered" {
            found = Some(rec);
        }
    }
    let rec = found.expect("the recovery is in the audit log");
    assert_eq!(rec["actor"], "cli:recover");
    assert_eq!(
        rec["details"]["reapplied"][0]["serial_number"],
        serial.as_str()
    );
    assert!(
        rec["details"]["anchor"]["note"]
            .as_str()
            .unwrap()
            .contains(&format!("\n{had}\n"))
    );
    let verify = ca.d.command().args(["audit", "verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn a_database_that_goes_back_under_a_running_node_is_refused_at_the_next_checkpoint() {
    let ca = Ca::start_with_config("[audit]\ncheckpoint_secs = 1\n").await;
    ca.approved_agent("live-bot", full_mandate()).await;
    let n = records(&ca).await;
    checkpointed(&ca, n).await;

    // What an older copy put back under the running node looks like: the newest records, their
    // leaves and their checkpoints are gone (the HSM's anchor is not).
    let keep = n - 3;
    let first_gone = tlog_tiles::tlog::stored_hash_index(0, keep);
    crate::harness::exec_sql(
        &ca.d,
        &format!(
            "DELETE FROM audit_leaves WHERE seq > {keep};
             DELETE FROM audit_tree WHERE idx >= {first_gone};
             DELETE FROM audit_checkpoints WHERE seq > {keep};
             DELETE FROM audit_events WHERE seq > {keep};"
        ),
        true,
    );
    // New activity makes a checkpoint due: the node finds itself behind and stops serving.
    let _ = ca.register("after-restore", full_mandate()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r =
            ca.d.raw()
                .get(format!("{}/readyz", ca.d.base))
                .send()
                .await
                .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("Refusing to serve"), "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never refused:\n{}",
            ca.d.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = ca.d.get(&ca.operator, "/v1/agents/live-bot").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    // The stand-alone responders are told through the database.
    let marked = crate::harness::query_sql(&ca.d, "SELECT reason FROM serving_refusal");
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(ca.d.log().contains("refusing to serve"));
}

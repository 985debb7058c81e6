//! The audit trail of a real run, read straight from the daemon's database (python's own
//! sqlite3 module on the SQLite file, psql on PostgreSQL): every state change left its record,
//! the database refuses to rewrite them, and every kind of tampering behind the database's back
//! is caught by `mandate audit verify`.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, csr, exec_sql, full_mandate, query_sql, run, try_sql};

#[tokio::test]
async fn every_state_change_is_in_the_audit_log_which_cannot_be_rewritten() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-audit", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let r = ca
        .certify(
            &ca.operator,
            "bot-audit",
            &csr(work.path(), "ec-p256", "/CN=bot-audit", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let serial = r.body["serial_number"].as_str().unwrap();
    let fingerprint = r.body["sha256_fingerprint"].as_str().unwrap();

    let rows = query_sql(
        &ca.d,
        "SELECT actor, action, subject, cert_fingerprint, details FROM audit_events ORDER BY seq",
    );
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"actor": r[0], "action": r[1], "subject": r[2],
                   "fingerprint": if r[3].is_empty() { Value::Null } else { json!(r[3]) },
                   "details": serde_json::from_str::<Value>(&r[4]).unwrap()})
        })
        .collect();
    let refused: Vec<Option<String>> = [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
    ]
    .iter()
    .map(|sql| try_sql(&ca.d, sql))
    .collect();
    let out = json!({"events": events, "refused": refused});
    // CRLs are issued in the background (at start, after revocations): checked apart, since
    // their place in the sequence depends on timing.
    let crls = events
        .iter()
        .filter(|e| e["action"] == "crl.issued")
        .count();
    assert!(crls >= 1, "the start-up CRL was not audited");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| *a != "crl.issued")
        .collect();
    assert_eq!(
        actions,
        [
            "hsm.key_generated",
            "hsm.key_generated",
            "ca.initialised",
            "api_key.created",    // bootstrap admin
            "ocsp_signer.issued", // delegated OCSP signer, at start-up
            "organization.created",
            "person.created",  // the operator
            "api_key.created", // their key
            "person.created",  // the compliance officer
            "api_key.created", // their key
            "agent.registered",
            "mandate.approved",
            "certificate.reserved",
            "certificate.issued",
        ]
    );
    let find = |action: &str| events.iter().rev().find(|e| e["action"] == action).unwrap();
    let issued = find("certificate.issued");
    assert_eq!(issued["subject"], serial);
    assert_eq!(issued["fingerprint"], fingerprint);
    assert_eq!(issued["details"]["agent_id"], "bot-audit");
    // Who did it: the operator's key for issuance, the compliance key for the approval.
    let operator_id = ca.operator.split('_').nth(1).unwrap();
    let compliance_id = ca.compliance.split('_').nth(1).unwrap();
    assert_eq!(issued["actor"], operator_id);
    assert_eq!(find("agent.registered")["actor"], operator_id);
    assert_eq!(find("mandate.approved")["actor"], compliance_id);
    // ...and the person behind each key, with the organization.
    let approved = &find("mandate.approved")["details"];
    assert_eq!(approved["version"], 1);
    assert_eq!(approved["comment"], Value::Null);
    assert_eq!(approved["approvals_required"], 1);
    assert_eq!(approved["by"]["organization"], "acme-trading");
    assert!(
        approved["by"]["person"]
            .as_str()
            .is_some_and(|p| p.starts_with("compliance-")),
        "{approved}"
    );
    assert_eq!(
        find("agent.registered")["details"]["by"]["organization"],
        "acme-trading"
    );
    assert_eq!(find("ca.initialised")["actor"], "system:first-start");

    for r in &refused {
        assert!(
            r.as_deref().is_some_and(|e| e.contains("append-only")),
            "{out}"
        );
    }
    // No API key secret or PIN ever reached the audit log.
    let text = out.to_string();
    assert!(!text.contains(&ca.operator) && !text.contains(&ca.d.user_pin()));
}

/// Runs `mandate audit verify` (on the database, or on `--file`); returns (success, stdout JSON,
/// stderr).
fn audit_verify(ca: &Ca, file: Option<&std::path::Path>) -> (bool, Value, String) {
    let mut cmd = ca.d.command();
    cmd.args(["audit", "verify"]);
    if let Some(f) = file {
        cmd.arg("--file").arg(f);
    }
    outcome(&mut cmd)
}

/// Runs a `mandate` command: (success, its JSON output, stderr).
fn outcome(cmd: &mut Command) -> (bool, Value, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs SQL on the daemon's database with the triggers that guard the audit log out of the
/// way (what someone with write access to the database could do).
fn tamper(ca: &Ca, sql: &str) {
    let sql = if ca.d.db_url.starts_with("postgres") {
        sql.replace("zeroblob(32)", "decode(repeat('00', 32), 'hex')")
    } else {
        sql.to_owned()
    };
    exec_sql(&ca.d, &sql, true);
}

/// A fresh daemon with some history, stopped, so the file can be changed under it.
async fn history() -> Ca {
    let mut ca = Ca::start().await;
    for i in 0..3 {
        ca.approved_agent(&format!("chain-{i}"), full_mandate())
            .await;
    }
    ca.d.stop().await;
    ca
}

#[tokio::test]
async fn the_audit_chain_verifies_and_every_kind_of_tampering_names_the_first_broken_record() {
    // Intact, online and from an export, offline.
    let ca = history().await;
    let (ok, report, err) = audit_verify(&ca, None);
    assert!(ok, "{report} {err}");
    assert_eq!(report["intact"], true);
    let n = report["records_verified"].as_i64().unwrap();
    assert!(n >= 10, "{report}");
    let export = ca.d.data_dir().join("audit.jsonl");
    run(ca
        .d
        .command()
        .args(["audit", "export", "--out"])
        .arg(&export));
    let (ok, offline, _) = audit_verify(&ca, Some(&export));
    assert!(ok);
    assert_eq!(offline["last_hash"], report["last_hash"]);
    // One byte changed in the export: caught offline.
    let text = std::fs::read_to_string(&export).unwrap();
    let changed = text.replacen("chain-1", "chain-X", 1);
    assert_ne!(text, changed);
    let bad = ca.d.data_dir().join("bad.jsonl");
    std::fs::write(&bad, changed).unwrap();
    let (ok, r, err) = audit_verify(&ca, Some(&bad));
    assert!(!ok && r["intact"] == false, "{r}");
    assert!(err.contains("broken at record"), "{err}");

    // The database refuses UPDATE and DELETE while the triggers stand.
    let refused: Vec<Option<String>> = [
        "UPDATE audit_events SET actor = 'x' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 2",
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, details) VALUES (999, 0, 'a', 'b', 'c', '{}')",
    ]
    .iter()
    .map(|sql| try_sql(&ca.d, sql))
    .collect();
    assert!(refused.iter().all(Option::is_some), "{refused:?}");
    let text = format!("{refused:?}");
    assert!(
        text.contains("append-only") && text.contains("hash chain"),
        "{text}"
    );

    // A record changed.
    tamper(
        &ca,
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 5;",
    );
    let (ok, r, _) = audit_verify(&ca, None);
    assert!(!ok);
    assert_eq!(r["first_broken"]["seq"], 5, "{r}");
    assert!(
        r["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("changed")
    );
    assert_eq!(r["records_verified"], 4);

    // A record deleted: the one after the gap is the first broken.
    let ca = history().await;
    tamper(&ca, "DELETE FROM audit_events WHERE seq = 4;");
    let (ok, r, _) = audit_verify(&ca, None);
    assert!(!ok);
    assert_eq!(r["first_broken"]["seq"], 5, "{r}");

    // A record inserted at the end, with a made-up hash.
    let ca = history().await;
    tamper(
        &ca,
        &format!(
            "INSERT INTO audit_events (seq, at_ms, actor, action, subject, details, prev_hash, hash)
             VALUES ({}, 0, 'mallory', 'agent.approved', 'x', '{{}}', zeroblob(32), zeroblob(32));",
            n + 1
        ),
    );
    let (ok, r, _) = audit_verify(&ca, None);
    assert!(!ok);
    assert_eq!(r["first_broken"]["seq"], n + 1, "{r}");

    // Two records swapped (contents and hashes, keeping the seq order).
    let ca = history().await;
    tamper(
        &ca,
        "CREATE TEMP TABLE s AS SELECT * FROM audit_events WHERE seq IN (6, 7);
         UPDATE audit_events SET at_ms = (SELECT at_ms FROM s WHERE seq = 7),
             actor = (SELECT actor FROM s WHERE seq = 7), action = (SELECT action FROM s WHERE seq = 7),
             subject = (SELECT subject FROM s WHERE seq = 7), details = (SELECT details FROM s WHERE seq = 7),
             prev_hash = (SELECT prev_hash FROM s WHERE seq = 7), hash = (SELECT hash FROM s WHERE seq = 7)
         WHERE seq = 6;
         UPDATE audit_events SET at_ms = (SELECT at_ms FROM s WHERE seq = 6),
             actor = (SELECT actor FROM s WHERE seq = 6), action = (SELECT action FROM s WHERE seq = 6),
             subject = (SELECT subject FROM s WHERE seq = 6), details = (SELECT details FROM s WHERE seq = 6),
             prev_hash = (SELECT prev_hash FROM s WHERE seq = 6), hash = (SELECT hash FROM s WHERE seq = 6)
         WHERE seq = 7;",
    );
    let (ok, r, _) = audit_verify(&ca, None);
    assert!(!ok);
    assert_eq!(r["first_broken"]["seq"], 6, "{r}");
}

#[tokio::test]
async fn auditors_page_through_the_chained_log_over_the_api() {
    let ca = Ca::start().await;
    ca.approved_agent("api-audit", full_mandate()).await;
    let auditor = ca.auditor().await;
    let first = ca.d.get(&auditor, "/v1/audit?limit=3").await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    let items = first.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["seq"], 1);
    assert_eq!(items[0]["prev_hash"], "0".repeat(64));
    assert_eq!(items[1]["prev_hash"], items[0]["hash"]);
    let next = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second =
        ca.d.get(&auditor, &format!("/v1/audit?cursor={next}&limit=100"))
            .await;
    let items2 = second.body["items"].as_array().unwrap();
    assert_eq!(items2[0]["seq"], items[2]["seq"].as_i64().unwrap() + 1);
    assert_eq!(items2[0]["prev_hash"], items[2]["hash"]);
    assert!(items2.iter().any(|r| r["action"] == "mandate.approved"));
    ca.d.get(&ca.operator, "/v1/audit")
        .await
        .assert_problem(403, "forbidden");
}

/// `mandate audit verify` with extra arguments; (success, report, stderr).
fn audit_verify_with(ca: &Ca, args: &[&std::ffi::OsStr]) -> (bool, Value, String) {
    outcome(ca.d.command().args(["audit", "verify"]).args(args))
}

#[tokio::test]
async fn signed_checkpoints_verify_offline_with_only_the_root_and_catch_truncation_and_forgery() {
    let mut ca = Ca::start_with_config("[audit]\ncheckpoint_secs = 1\n").await;
    let dir = ca.d.data_dir().to_path_buf();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    std::fs::write(
        dir.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    for i in 0..2 {
        ca.approved_agent(&format!("cp-{i}"), full_mandate()).await;
    }
    // Wait until a checkpoint covers the newest record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let n = loop {
        let (ok, r, err) = audit_verify(&ca, None);
        assert!(ok, "{r} {err}");
        if r["checkpoints_verified"].as_i64().unwrap() >= 1
            && r["last_checkpoint_seq"] == r["records_verified"]
        {
            break r["records_verified"].as_i64().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    ca.d.stop().await;

    // Offline, with only the root certificate.
    let export = dir.join("audit.jsonl");
    run(ca
        .d
        .command()
        .args(["audit", "export", "--out"])
        .arg(&export));
    let root = dir.join("root.pem");
    let (ok, r, err) = audit_verify_with(
        &ca,
        &[
            "--file".as_ref(),
            export.as_os_str(),
            "--root".as_ref(),
            root.as_os_str(),
        ],
    );
    assert!(ok, "{r} {err}");
    assert!(r["checkpoints_verified"].as_i64().unwrap() >= 1, "{r}");
    // Without the root, refused; with another root, the checkpoints do not verify.
    let (ok, _, err) = audit_verify_with(&ca, &["--file".as_ref(), export.as_os_str()]);
    assert!(!ok && err.contains("--root"), "{err}");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=Other Root", "-days", "1", "-keyout"])
        .arg(dir.join("other.key"))
        .arg("-out")
        .arg(dir.join("other.pem")));
    let other = dir.join("other.pem");
    let (ok, r, _) = audit_verify_with(
        &ca,
        &[
            "--file".as_ref(),
            export.as_os_str(),
            "--root".as_ref(),
            other.as_os_str(),
        ],
    );
    assert!(!ok, "{r}");
    assert!(
        r["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{r}"
    );

    // openssl agrees that the audit signer chains to the root and is for audit signing only.
    let signer_line = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .find(|l| l.contains("\"audit_signer\""))
        .unwrap()
        .to_owned();
    let v: Value = serde_json::from_str(&signer_line).unwrap();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["der"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("signer.der"), der).unwrap();
    run(Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(dir.join("signer.der"))
        .arg("-out")
        .arg(dir.join("signer.pem")));
    let out = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(dir.join("int.pem"))
        .arg(dir.join("signer.pem")));
    assert!(out.contains(": OK"), "{out}");
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.join("signer.pem")));
    assert!(text.contains("1.3.6.1.4.1.99999.1.2"), "{text}");

    // Records cut off the end: the checkpoint names what is missing.
    tamper(&ca, &format!("DELETE FROM audit_events WHERE seq = {n};"));
    let (ok, r, _) = audit_verify(&ca, None);
    assert!(!ok, "{r}");
    assert_eq!(r["first_broken"]["seq"], n, "{r}");
    assert!(
        r["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("cut off"),
        "{r}"
    );
}

#[tokio::test]
async fn an_altered_checkpoint_signature_is_caught() {
    let mut ca = Ca::start_with_config("[audit]\ncheckpoint_secs = 1\n").await;
    ca.approved_agent("cp-sig", full_mandate()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, r, _) = audit_verify(&ca, None);
        if r["checkpoints_verified"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ca.d.stop().await;
    // The last byte of the first checkpoint's signature flipped.
    let pg = ca.d.db_url.starts_with("postgres");
    let hex_of = if pg {
        "encode(signature, 'hex')"
    } else {
        "hex(signature)"
    };
    let sig = &query_sql(
        &ca.d,
        &format!("SELECT {hex_of} FROM audit_checkpoints WHERE id = 1"),
    )
    .first()
    .map(|r| r[0].clone())
    .unwrap_or_default();
    let mut bytes = hex::decode(sig).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let literal = if pg {
        format!("'\\x{}'::bytea", hex::encode(&bytes))
    } else {
        format!("x'{}'", hex::encode(&bytes))
    };
    exec_sql(
        &ca.d,
        &format!("UPDATE audit_checkpoints SET signature = {literal} WHERE id = 1;"),
        true,
    );
    let (ok, r, err) = audit_verify(&ca, None);
    assert!(!ok, "{r}");
    assert!(
        r["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("checkpoint 1 does not verify"),
        "{r}"
    );
    assert!(err.contains("broken at record"), "{err}");
}

/// Registers and approves `agent_id` in organization `org` (made if missing) by that
/// organization's own operator and compliance officer.
async fn agent_of(ca: &Ca, org: &str, agent_id: &str) {
    ca.d.ensure_org(org, &format!("{org} Ltd")).await;
    let mut mandate = full_mandate();
    mandate["operator"] = json!("Acme");
    let op = ca.d.person_key(Some(org), "operator").await;
    let comp = ca.d.person_key(Some(org), "compliance").await;
    let r =
        ca.d.post(
            &op,
            "/v1/agents",
            &json!({"agent_id": agent_id, "name": format!("Agent {agent_id}"),
                    "mandate": mandate}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r =
        ca.d.post(
            &comp,
            &format!("/v1/agents/{agent_id}/approve"),
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

/// `mandate audit export` of one subject to `out`.
fn export_subject(ca: &Ca, flag: &str, id: &str, out: &std::path::Path) -> String {
    run(ca
        .d
        .command()
        .args(["audit", "export", flag, id, "--out"])
        .arg(out))
}

#[tokio::test]
async fn an_export_holds_one_subjects_records_with_proofs_that_verify_offline_and_name_what_broke()
{
    let ca = Ca::start().await;
    let dir = ca.d.data_dir().to_path_buf();
    let root = dir.join("root.pem");
    std::fs::write(&root, ca.d.get_text("/ca/root.pem").await).unwrap();
    // Two firms' records interleaved in one log.
    for i in 0..2 {
        agent_of(&ca, "org-a", &format!("alpha-{i}")).await;
        agent_of(&ca, "org-b", &format!("beta-{i}")).await;
    }
    let r =
        ca.d.post(
            &ca.d.admin_key(),
            "/v1/agents/beta-0/revoke",
            &json!({"reason": "orders outside mandate"}),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");

    let verify = |file: &std::path::Path| {
        audit_verify_with(
            &ca,
            &[
                "--file".as_ref(),
                file.as_os_str(),
                "--root".as_ref(),
                root.as_os_str(),
            ],
        )
    };
    for (flag, id, own) in [
        ("--organization", "org-a", "org-a"),
        ("--agent", "alpha-1", "alpha-1"),
    ] {
        let out = dir.join(format!("{id}.jsonl"));
        let printed: Value = serde_json::from_str(&export_subject(&ca, flag, id, &out)).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        // Nothing of the other firm: no id, no agent, no record.
        for foreign in ["org-b", "beta-"] {
            assert!(!text.contains(foreign), "{id}: {foreign} in {text}");
        }
        let records: Vec<Value> = text
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!records.is_empty());
        assert_eq!(printed["records"], records.len(), "{printed}");
        assert!(
            records.iter().all(|r| r["organization"] == "org-a"),
            "{text}"
        );
        assert!(records.iter().any(|r| r["subject"] == own), "{text}");
        // The export itself is on record.
        assert!(records.iter().any(|r| r["action"] == "audit.exported") || flag == "--agent");
        let (ok, report, err) = verify(&out);
        assert!(ok, "{report} {err}");
        assert_eq!(report["records_verified"], records.len(), "{report}");
        assert_eq!(report["valid"], true);

        // One changed character: in a record, in a proof, in the checkpoint.
        let first = text.lines().nth(1).unwrap();
        let rec: Value = serde_json::from_str(first).unwrap();
        let seq = rec["seq"].as_i64().unwrap();
        for (what, from, to, expect) in [
            (
                "a record's action",
                format!("\"action\":{}", rec["action"]),
                format!("\"action\":\"{}x\"", rec["action"].as_str().unwrap()),
                format!("audit record {seq}: its inclusion proof does not lead"),
            ),
            (
                "a record's salt",
                format!("\"salt\":\"{}", &rec["salt"].as_str().unwrap()[..4]),
                format!("\"salt\":\"{}", flip(&rec["salt"].as_str().unwrap()[..4])),
                format!("audit record {seq}"),
            ),
            (
                "the checkpoint's tree size",
                "\\n".to_owned() + text.split("\\n").nth(1).unwrap() + "\\n",
                "\\n1".to_owned() + text.split("\\n").nth(1).unwrap() + "\\n",
                "the checkpoint does not verify".to_owned(),
            ),
        ] {
            assert!(text.contains(&from), "{what}: {from}");
            let bad = dir.join("tampered.jsonl");
            std::fs::write(&bad, text.replacen(&from, &to, 1)).unwrap();
            let (ok, report, err) = verify(&bad);
            assert!(!ok, "{what}: {report}");
            let problems = report["problems"].to_string();
            assert!(problems.contains(&expect), "{what}: {problems}");
            assert!(err.contains("does not verify"), "{what}: {err}");
        }
        // A record dropped from the file is noticed.
        let cut: Vec<&str> = text.lines().filter(|l| *l != first).collect();
        let bad = dir.join("cut.jsonl");
        std::fs::write(&bad, cut.join("\n") + "\n").unwrap();
        let (ok, report, _) = verify(&bad);
        assert!(
            !ok && report["problems"].to_string().contains("cut off"),
            "{report}"
        );
        // An existing export is not overwritten unless asked.
        let out2 =
            ca.d.command()
                .args(["audit", "export", flag, id, "--out"])
                .arg(&out)
                .output()
                .unwrap();
        assert!(!out2.status.success());
        assert!(String::from_utf8_lossy(&out2.stderr).contains("--force"));
    }
    // Over the API, for the firm's own auditor: the same proofs, which verify offline; the
    // other firm's are not found.
    let aud = ca.d.person_key(Some("org-a"), "auditor").await;
    let r = reqwest::Client::new()
        .get(format!("{}/v1/audit/export?agent=alpha-0", ca.d.base))
        .bearer_auth(&aud)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    crate::contract::assert_documented_raw("GET", &r);
    let body = r.text().await.unwrap();
    assert!(!body.contains("beta-") && !body.contains("org-b"), "{body}");
    let file = dir.join("api-export.jsonl");
    std::fs::write(&file, &body).unwrap();
    let (ok, report, err) = verify(&file);
    assert!(
        ok && report["records_verified"].as_u64().unwrap() >= 2,
        "{report} {err}"
    );
    for other in ["agent=beta-0", "organization=org-b"] {
        ca.d.get(&aud, &format!("/v1/audit/export?{other}"))
            .await
            .assert_problem(404, "not-found");
    }
    ca.d.get(&aud, "/v1/audit/export")
        .await
        .assert_problem(400, "invalid-request");
    // Another firm's subject, or no such one: refused, nothing written.
    let out = dir.join("none.jsonl");
    let r =
        ca.d.command()
            .args(["audit", "export", "--organization", "org-x", "--out"])
            .arg(&out)
            .output()
            .unwrap();
    assert!(!r.status.success());
    assert!(!out.exists());
}

/// The same base64 text with its first character changed.
fn flip(s: &str) -> String {
    let c = if s.starts_with('A') { 'B' } else { 'A' };
    format!("{c}{}", &s[1..])
}

/// Waits until the daemon's newest signed checkpoint covers more than `size` records; returns
/// its size.
async fn checkpoint_beyond(d: &crate::harness::Daemon, size: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/audit/checkpoint", d.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let r: Option<Value> = if r.status() == StatusCode::OK {
            r.json().await.ok()
        } else {
            None
        };
        if let Some(n) = r.as_ref().and_then(|v| v["tree_size"].as_u64())
            && n > size
        {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint beyond {size}: {r:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `mandate audit witness` against `d`; (success, report, stderr).
fn witness(ca: &Ca, d: &crate::harness::Daemon, state: &std::path::Path) -> (bool, Value, String) {
    let root = ca.d.data_dir().join("root.pem");
    outcome(
        ca.d.command()
            .args(["audit", "witness", "--url", &d.base])
            .arg("--state")
            .arg(state)
            .arg("--root")
            .arg(root),
    )
}

#[tokio::test]
async fn a_witness_accepts_an_honest_extension_and_fails_loudly_on_a_rolled_back_or_forked_log() {
    let mut ca = Ca::start_with_config("[audit]\ncheckpoint_secs = 1\n").await;
    let dir = ca.d.data_dir().to_path_buf();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    let state = tempfile::tempdir().unwrap();
    let state = state.path().join("witness.json");

    // The published checkpoint: a signed note as text, with its signer as JSON; public.
    ca.approved_agent("w-0", full_mandate()).await;
    let first = checkpoint_beyond(&ca.d, 0).await;
    let note = ca.d.get_text("/v1/audit/checkpoint").await;
    assert!(note.starts_with("mandate-audit/"), "{note}");
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(size >= first, "{note}");
    assert!(note.contains("\n\n\u{2014} mandate-audit/"), "{note}");
    let (ok, r, err) = witness(&ca, &ca.d, &state);
    assert!(ok, "{r} {err}");
    assert_eq!(r["status"], "first", "{r}");
    let seen = r["tree_size"].as_u64().unwrap();

    // A full copy of the CA as it is now (the backup an attacker, or a careless restore, uses).
    ca.d.stop().await;
    let mut fork = ca.d.copy_stopped();
    ca.d.spawn().await;

    // The real log grows: an honest extension.
    ca.approved_agent("w-1", full_mandate()).await;
    let grown = checkpoint_beyond(&ca.d, seen).await;
    let (ok, r, err) = witness(&ca, &ca.d, &state);
    assert!(ok, "{r} {err}");
    assert_eq!(
        (r["status"].as_str(), r["tree_size"].as_u64()),
        (Some("extended"), Some(grown))
    );
    let (ok, r, _) = witness(&ca, &ca.d, &state);
    assert!(ok && r["status"] == "unchanged", "{r}");
    let accepted = std::fs::read(&state).unwrap();

    // The copy, started: its log is the older one. A witness sees the log shrink.
    fork.spawn().await;
    let (ok, r, err) = witness(&ca, &fork, &state);
    assert!(!ok, "{r}");
    assert!(err.contains("ROLLBACK"), "{err}");
    // The copy writes another history past the real one's size: a fork.
    let forked = Ca {
        d: fork,
        operator: ca.operator.clone(),
        compliance: ca.compliance.clone(),
    };
    for i in 0..4 {
        forked
            .approved_agent(&format!("f-{i}"), full_mandate())
            .await;
    }
    checkpoint_beyond(&forked.d, grown).await;
    let (ok, r, err) = witness(&ca, &forked.d, &state);
    assert!(!ok, "{r}");
    assert!(err.contains("FORK") && err.contains("rewritten"), "{err}");
    // A failed run keeps what was accepted, so every later run fails too.
    assert_eq!(std::fs::read(&state).unwrap(), accepted);
    // The consistency endpoint refuses sizes it has not signed, as a problem document.
    for bad in [
        "/v1/audit/consistency?from=0&to=1".to_owned(),
        format!("/v1/audit/consistency?from=1&to={}", grown + 1000),
        "/v1/audit/consistency?from=2&to=1".to_owned(),
    ] {
        ca.d.request(reqwest::Method::GET, None, &bad, None)
            .await
            .assert_problem(400, "invalid-request");
    }
    let r =
        ca.d.request(
            reqwest::Method::GET,
            None,
            &format!("/v1/audit/consistency?from={seen}&to={grown}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(!r.body["proof"].as_array().unwrap().is_empty(), "{r:?}");
}

//! The audit trail of a real run, read from the daemon's SQLite file with python's own sqlite3
//! module: every state change left its record, and the database refuses to rewrite them.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, csr, full_mandate, run};

const QUERY: &str = r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT actor, action, subject, cert_fingerprint, details FROM audit_events ORDER BY seq").fetchall()
out = {"events": [{"actor": a, "action": b, "subject": c, "fingerprint": d, "details": json.loads(e)} for a, b, c, d, e in rows]}
refused = []
for sql in ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"]:
    try:
        db.execute(sql)
        db.commit()
    except sqlite3.DatabaseError as e:
        refused.append(str(e))
out["refused"] = refused
print(json.dumps(out))
"#;

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

    let db = ca.d.data_dir().join("mandate.db");
    let out: Value =
        serde_json::from_str(&run(Command::new("python3").args(["-c", QUERY]).arg(&db))).unwrap();
    let events = out["events"].as_array().unwrap();
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
            "api_key.created",    // operator
            "api_key.created",    // compliance
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
    assert_eq!(
        find("mandate.approved")["details"],
        json!({"version": 1, "comment": null})
    );
    assert_eq!(find("ca.initialised")["actor"], "system:first-start");

    let refused = out["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{out}");
    for r in refused {
        assert!(r.as_str().unwrap().contains("append-only"), "{out}");
    }
    // No API key secret or PIN ever reached the audit log.
    let text = out.to_string();
    assert!(!text.contains(&ca.operator) && !text.contains(&ca.d.user_pin()));
}

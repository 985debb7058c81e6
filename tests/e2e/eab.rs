//! ACME external account binding credentials: made by an operator for one agent, the HMAC key
//! shown once and kept nowhere (derived in the HSM from a secret key that never leaves it).

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Ca, full_mandate, run};
use crate::issuance::pkcs11_tool;

#[tokio::test]
async fn operators_get_single_agent_eab_credentials_whose_key_is_stored_nowhere() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-eab", full_mandate()).await;
    let made =
        ca.d.raw()
            .post(format!("{}/v1/agents/bot-eab/eab", ca.d.base))
            .bearer_auth(&ca.operator)
            .send()
            .await
            .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    assert_eq!(made.headers()["cache-control"], "no-store");
    let first: serde_json::Value = made.json().await.unwrap();
    let key_id = first["key_id"].as_str().unwrap().to_owned();
    let hmac_b64 = first["hmac_key"].as_str().unwrap().to_owned();
    assert!(key_id.starts_with("eab_"), "{first}");
    assert_eq!(first["agent_id"], "bot-eab");
    let hmac = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&hmac_b64)
        .unwrap();
    assert_eq!(hmac.len(), 32, "HMAC-SHA256 key");

    // Each call makes new credentials.
    let second =
        ca.d.post(&ca.operator, "/v1/agents/bot-eab/eab", &json!({}))
            .await;
    assert_eq!(second.status, StatusCode::CREATED, "{second:?}");
    assert_ne!(second.body["key_id"], first["key_id"]);
    assert_ne!(second.body["hmac_key"], first["hmac_key"]);

    // Only operators and admins; only for agents that exist.
    let compliance = ca.d.key("compliance", None).await;
    ca.d.post(&compliance, "/v1/agents/bot-eab/eab", &json!({}))
        .await
        .assert_problem(403, "forbidden");
    ca.d.post(&ca.operator, "/v1/agents/nobody/eab", &json!({}))
        .await
        .assert_problem(404, "not-found");

    // The HMAC key is in no file of the data dir (database, WAL, logs), in any encoding.
    let mut files = vec![];
    for entry in walk(ca.d.data_dir()) {
        files.push(entry);
    }
    if !mandate_testkit::on_postgres() {
        assert!(files.iter().any(|f| f.ends_with("mandate.db")));
    }
    let hex = hex::encode(&hmac);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&hmac_b64) && !text.contains(&hex),
            "HMAC key found in {}",
            f.display()
        );
        assert!(
            !bytes.windows(hmac.len()).any(|w| w == hmac.as_slice()),
            "raw HMAC key in {}",
            f.display()
        );
    }

    // The master key it was derived from is a secret key in the token: sensitive, never
    // extractable.
    let out = run(pkcs11_tool(&ca).args(["--list-objects", "--type", "secrkey"]));
    assert!(out.contains("mandate-eab-master"), "{out}");
    assert!(
        out.contains("never extractable") && out.contains("always sensitive"),
        "{out}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

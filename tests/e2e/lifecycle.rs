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
    let out: Value = serde_json::from_str(&run(mandate().arg("init"))).unwrap();
    let key = out["admin_api_key"].as_str().unwrap();
    assert!(key.starts_with("mk_"), "{out}");
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

    // Admin commands act on the same data: the printed key can make keys from the CLI too.
    let created: Value = serde_json::from_str(&run(mandate().args([
        "api-keys",
        "create",
        "--role",
        "compliance",
        "--label",
        "officer",
    ])))
    .unwrap();
    assert_eq!(created["role"], "compliance");
    let bad = mandate()
        .args(["api-keys", "create", "--role", "king", "--label", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));
    let shown: Value = serde_json::from_str(&run(mandate().args(["ca", "show"]))).unwrap();
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
    assert!(d.data_dir().join("mandate.db").exists());
}

#[tokio::test]
async fn a_bad_config_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "[ca]\nmax_validity_days = 900\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .env("MANDATE_DATA_DIR", dir.path())
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.max_validity_days"), "{err}");
}

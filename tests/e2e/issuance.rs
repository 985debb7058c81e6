//! Issuance: the chain verifies, independent parsers read the profile and the mandate, pkilint
//! finds nothing wrong, and the CA keys are never-extractable in the token.

use std::process::Command;

use mandate_policy::Mandate;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Ca, csr, full_mandate, here, run};

#[tokio::test]
async fn issued_chain_verifies_and_carries_the_approved_mandate() {
    check_issuance(Ca::start().await).await;
}

#[tokio::test]
async fn rsa_ca_keys_sign_chains_that_verify_too() {
    let ca =
        Ca::start_with_config("[ca]\nroot_key = \"rsa-3072\"\nintermediate_key = \"rsa-2048\"\n")
            .await;
    let int = ca.d.get_text("/ca/intermediate.pem").await;
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("int.pem");
    std::fs::write(&path, int).unwrap();
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&path));
    assert!(
        text.contains("Signature Algorithm: sha256WithRSAEncryption"),
        "{text}"
    );
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    check_issuance(ca).await;
}

async fn check_issuance(ca: Ca) {
    ca.approved_agent("trading-bot-v2", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let root_pem = ca.d.get_text("/ca/root.pem").await;
    let root = work.path().join("root.pem");
    std::fs::write(&root, &root_pem).unwrap();
    let int = work.path().join("intermediate.pem");
    std::fs::write(&int, ca.d.get_text("/ca/intermediate.pem").await).unwrap();

    for kind in ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"] {
        let req = csr(work.path(), kind, "/CN=trading-bot-v2", None);
        let r = ca.certify(&ca.operator, "trading-bot-v2", &req).await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {r:?}");
        let cert = work.path().join(format!("{kind}.pem"));
        let chain = work.path().join(format!("{kind}-chain.pem"));
        std::fs::write(&cert, r.body["certificate_pem"].as_str().unwrap()).unwrap();
        std::fs::write(&chain, r.body["chain_pem"].as_str().unwrap()).unwrap();
        assert!(
            r.body["chain_pem"]
                .as_str()
                .unwrap()
                .ends_with(root_pem.as_str())
        );

        let out = run(Command::new("openssl")
            .args(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile"])
            .arg(&root)
            .arg("-untrusted")
            .arg(&chain)
            .arg(&cert));
        assert!(out.trim().ends_with(": OK"), "{kind}: {out}");

        let parsed: Value = serde_json::from_str(&run(Command::new("python3")
            .arg(here("check_cert.py"))
            .arg(&cert)))
        .unwrap();
        assert_eq!(parsed["version"], "v3");
        assert_eq!(parsed["serial"], r.body["serial_number"]);
        assert!(
            parsed["serial"].as_str().unwrap().len() >= 16,
            "serial under 64 bits"
        );
        assert_eq!(parsed["cn"], "trading-bot-v2");
        assert_eq!(parsed["o"], "Acme Trading GmbH");
        assert_eq!(parsed["key_usage_critical"], true);
        assert_eq!(parsed["digital_signature"], true);
        assert_eq!(parsed["key_cert_sign"], false);
        assert_eq!(parsed["eku"], serde_json::json!(["1.3.6.1.5.5.7.3.2"]));
        assert_eq!(
            parsed["san_dns"],
            serde_json::json!(["trading-bot-v2.acme-trading.agents.example"])
        );
        assert_eq!(
            parsed["ocsp"],
            serde_json::json!([format!("{}/ocsp", ca.d.base)])
        );
        assert_eq!(
            parsed["ca_issuers"],
            serde_json::json!([format!(
                "{}/ca/issuers/{}.der",
                ca.d.base,
                parsed["aki"].as_str().unwrap()
            )])
        );
        // One CRL per issuer, named by the issuer's key identifier (= this certificate's AKI).
        assert_eq!(
            parsed["crl"],
            serde_json::json!([format!(
                "{}/crl/{}.crl",
                ca.d.base,
                parsed["aki"].as_str().unwrap()
            )])
        );
        // Both are served as documented: the issuer's certificate and its CRL.
        for url in [&parsed["ca_issuers"][0], &parsed["crl"][0]] {
            let r = ca.d.raw().get(url.as_str().unwrap()).send().await.unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK, "{url}");
            crate::contract::assert_documented_raw("GET", &r);
        }
        assert!(parsed["validity_days"].as_f64().unwrap() <= 365.0);
        assert_eq!(parsed["mandate_critical"], false);

        // The extension, as cryptography extracted it, decodes to the approved mandate.
        let der = hex::decode(parsed["mandate_der_hex"].as_str().unwrap()).unwrap();
        let in_cert = Mandate::from_der(&der).unwrap();
        let mut approved = full_mandate();
        approved["agentId"] = "trading-bot-v2".into();
        let approved: Mandate = serde_json::from_value(approved).unwrap();
        assert_eq!(in_cert, approved, "{kind}");

        pkilint(&cert);
    }
    for ca_cert in [&root, &int] {
        pkilint(ca_cert);
    }
    // openssl reads the intermediate's path length and CA flag as we meant them.
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&int));
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
}

#[tokio::test]
async fn agent_key_certifies_its_own_agent_with_a_san_request() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-a", full_mandate()).await;
    let key = ca.d.key("agent", Some("bot-a")).await;
    let work = tempfile::tempdir().unwrap();
    let req = csr(
        work.path(),
        "ec-p256",
        "/CN=bot-a",
        Some("DNS:bot-a.acme-trading.agents.example"),
    );
    let r = ca.certify(&key, "bot-a", &req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let serial = r.body["serial_number"].as_str().unwrap();
    let got = ca.d.get(&key, &format!("/v1/certificates/{serial}")).await;
    assert_eq!(got.status, StatusCode::OK, "{got:?}");
    assert_eq!(got.body["status"], "issued");
    assert_eq!(got.body["certificate_pem"], r.body["certificate_pem"]);
}

#[tokio::test]
async fn ca_private_keys_are_never_extractable() {
    let ca = Ca::start().await;
    let out = run(pkcs11_tool(&ca).args(["--list-objects", "--type", "privkey"]));
    let keys: Vec<&str> = out.split("Private Key Object").skip(1).collect();
    assert_eq!(
        keys.len(),
        3,
        "root, intermediate and OCSP signer expected:\n{out}"
    );
    for role in ["mandate-root-", "mandate-intermediate-", "mandate-ocsp-"] {
        assert!(out.contains(role), "no {role} key:\n{out}");
    }
    for key in keys {
        assert!(key.contains("never extractable"), "{out}");
        assert!(key.contains("always sensitive"), "{out}");
        assert!(key.contains("mandate-"), "{out}");
    }
}

/// pkilint on a certificate, which must also show that it really ran.
fn pkilint(cert: &std::path::Path) {
    let text = crate::harness::pkilint("lint_pkix_cert", &[], cert);
    // Our SKI method always draws this INFO note: proof that the linter parsed the certificate
    // and ran its validators, rather than failing quietly with no output.
    assert!(
        text.contains("subject_key_identifier_method_1_identified"),
        "pkilint did not lint {}: {text}",
        cert.display()
    );
}

/// `pkcs11-tool` logged in to the daemon's dev token; add the operation's arguments.
pub fn pkcs11_tool(ca: &Ca) -> Command {
    let mut cmd = Command::new("pkcs11-tool");
    cmd.env("SOFTHSM2_CONF", ca.d.softhsm_conf())
        .args([
            "--module",
            &softhsm_module(),
            "--token-label",
            "mandate-dev",
        ])
        .args(["--login", "--pin"])
        .arg(ca.d.user_pin());
    cmd
}

pub fn softhsm_module() -> String {
    mandate_hsm::softhsm::find_module()
        .expect("SoftHSM2 module not found")
        .display()
        .to_string()
}

#[tokio::test]
async fn certify_without_a_csr_keeps_the_agent_key_in_the_hsm() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-hsm", crate::harness::full_mandate())
        .await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-hsm/certify",
            &serde_json::json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let key_ref = r.body["key_ref"].as_str().unwrap();
    assert!(key_ref.starts_with("hsm:"), "{key_ref}");
    // The certificate's key is that HSM key: pkcs11-tool finds it, sensitive and never
    // extractable, labelled for the agent.
    let out = run(pkcs11_tool(&ca)
        .args(["--list-objects", "--type", "privkey", "--id"])
        .arg(key_ref.trim_start_matches("hsm:")));
    assert!(out.contains("mandate-agent-bot-hsm-"), "{out}");
    assert!(
        out.contains("never extractable") && out.contains("always sensitive"),
        "{out}"
    );
    let work = tempfile::tempdir().unwrap();
    let pem = work.path().join("c.pem");
    std::fs::write(&pem, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    let pubkey = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&pem));
    run(pkcs11_tool(&ca)
        .args(["--read-object", "--type", "pubkey", "--id"])
        .arg(key_ref.trim_start_matches("hsm:"))
        .args(["--output-file"])
        .arg(work.path().join("pub.der")));
    let from_hsm = run(Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(work.path().join("pub.der")));
    assert_eq!(
        pubkey.trim(),
        from_hsm.trim(),
        "the certificate certifies the HSM key"
    );

    // Exactly one of csr and hsm_key_type; a known key type; no key for an unapproved agent.
    for body in [
        serde_json::json!({}),
        serde_json::json!({"hsm_key_type": "ec-p256", "csr": "x"}),
        serde_json::json!({"hsm_key_type": "dsa-1024"}),
    ] {
        ca.d.post(&ca.operator, "/v1/agents/bot-hsm/certify", &body)
            .await
            .assert_problem(400, "invalid-request");
    }
    let r = ca
        .register("bot-unapproved", crate::harness::full_mandate())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let refused =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-unapproved/certify",
            &serde_json::json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
}

#[tokio::test]
async fn the_hsm_inventory_names_every_key_and_what_uses_it() {
    let ca = Ca::start().await;
    ca.approved_agent("inv-bot", crate::harness::full_mandate())
        .await;
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/inv-bot/certify",
            &serde_json::json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    // A webhook endpoint makes the webhook master key (HMAC) for its secret.
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/webhooks",
            &serde_json::json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let rows: serde_json::Value =
        serde_json::from_str(&run(ca.d.command().args(["hsm", "keys"]))).unwrap();
    let rows = rows.as_array().unwrap();
    let roles: Vec<&str> = rows.iter().map(|r| r["role"].as_str().unwrap()).collect();
    for role in [
        "root",
        "intermediate",
        "ocsp-signer",
        "agent",
        "webhook-master",
    ] {
        assert!(roles.contains(&role), "{role} missing: {rows:?}");
    }
    assert!(!roles.contains(&"unknown"), "{rows:?}");
    let agent = rows.iter().find(|r| r["role"] == "agent").unwrap();
    assert_eq!(agent["in_use_by"], "agent inv-bot");
    // Every key pair is sensitive and not extractable, and they are exactly the private keys
    // pkcs11-tool finds on the token.
    let pairs: Vec<&serde_json::Value> = rows.iter().filter(|r| !r["label"].is_null()).collect();
    for p in &pairs {
        assert_eq!(p["sensitive"], true, "{p}");
        assert_eq!(p["extractable"], false, "{p}");
    }
    let listed = run(pkcs11_tool(&ca).args(["--list-objects", "--type", "privkey"]));
    let ids: Vec<String> = listed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ID:"))
        .map(|id| id.trim().to_owned())
        .collect();
    let mut ours: Vec<String> = pairs
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let mut theirs = ids.clone();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "{listed}");
}

#[tokio::test]
async fn a_refused_certify_makes_no_hsm_key_and_writes_nothing() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-v", full_mandate()).await;
    let before = crate::harness::footprint(&ca.d);
    for days in [0, 100_000] {
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-v/certify",
            &serde_json::json!({"hsm_key_type": "ec-p256", "validity_days": days}),
        )
        .await
        .assert_problem(400, "invalid-request");
    }
    assert_eq!(crate::harness::footprint(&ca.d), before);
}

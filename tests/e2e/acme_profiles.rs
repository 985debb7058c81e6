//! Certificate profiles (draft-ietf-acme-profiles) with real ACME clients over HTTPS: the
//! directory lists them, certbot (`--preferred-profile`) and instant-acme order one and get a
//! certificate whose lifetime is the profile's, lego gets its organization's default profile,
//! and the REST API takes a profile too, within the organization's maximum.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use instant_acme::{Account, ExternalAccountKey, Identifier, NewAccount, NewOrder, RetryPolicy};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, csr, free_port, full_mandate, run};

/// notAfter − notBefore + 1 of the first certificate in a PEM file or string, via openssl.
fn lifetime_secs(pem: &Path) -> i64 {
    let out = run(Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-startdate",
            "-enddate",
            "-dateopt",
            "iso_8601",
            "-in",
        ])
        .arg(pem));
    let time = |key: &str| {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {out}"));
        time::OffsetDateTime::parse(
            &line.trim().replace(' ', "T"),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp()
    };
    time("notAfter=") - time("notBefore=") + 1
}

/// A daemon with HTTPS (ACME) and a three-minute test profile.
async fn ca_with_profiles() -> (Ca, u16) {
    let tls_port = free_port();
    let ca = Ca::start_with_config(&format!(
        "[http]\ntls_listen = \"127.0.0.1:{tls_port}\"\n\n[ca.profiles.three-minutes]\nvalidity_secs = 180\ndescription = \"For tests\"\n"
    ))
    .await;
    (ca, tls_port)
}

/// EAB credentials of `agent` as (key id, base64url HMAC key).
async fn eab(ca: &Ca, key: &str, agent: &str) -> (String, String) {
    let r =
        ca.d.post(key, &format!("/v1/agents/{agent}/eab"), &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    (
        r.body["key_id"].as_str().unwrap().to_owned(),
        r.body["hmac_key"].as_str().unwrap().to_owned(),
    )
}

fn root_file(dir: &Path, pem: &str) -> PathBuf {
    let root = dir.join("root.pem");
    std::fs::write(&root, pem).unwrap();
    root
}

/// certbot from PyPI in the venv scripts/deps.sh makes, else on PATH.
fn certbot() -> PathBuf {
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/mandate-tools/certbot/bin/certbot");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("certbot")
    }
}

#[tokio::test]
async fn the_directory_lists_profiles_and_instant_acme_orders_one() {
    let (ca, tls_port) = ca_with_profiles().await;
    let dir = format!("https://127.0.0.1:{tls_port}/acme/directory");
    let d: Value = ca.d.get(&ca.operator, "/acme/directory").await.body;
    let profiles = d["meta"]["profiles"].as_object().unwrap();
    for name in ["agent", "shortlived", "extended", "three-minutes"] {
        assert!(profiles.contains_key(name), "{name}: {d}");
    }
    assert_eq!(profiles["three-minutes"], "For tests");

    ca.approved_agent("bot-pr", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = root_file(w, &ca.d.get_text("/ca/root.pem").await);
    let (kid, hmac) = eab(&ca, &ca.operator, "bot-pr").await;
    let hmac = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(hmac)
        .unwrap();
    let (account, _) = Account::builder_with_root(&root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            dir,
            Some(&ExternalAccountKey::new(kid, &hmac)),
        )
        .await
        .unwrap();
    let names: Vec<String> = account.profiles().map(|p| p.name.to_owned()).collect();
    assert!(names.contains(&"shortlived".to_owned()), "{names:?}");
    let dns = "bot-pr.acme-trading.agents.example";
    let ids = [Identifier::Dns(dns.to_owned())];
    // An unknown profile: invalidProfile, and nothing is ordered.
    let err = match account
        .new_order(&NewOrder::new(&ids).profile("forever"))
        .await
    {
        Ok(_) => panic!("an unknown profile was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("invalidProfile") || err.contains("profile"),
        "{err}"
    );
    for (profile, secs) in [("three-minutes", 180), ("shortlived", 86_400)] {
        let mut order = account
            .new_order(&NewOrder::new(&ids).profile(profile))
            .await
            .unwrap();
        assert_eq!(order.state().profile.as_deref(), Some(profile), "echoed");
        let pem = csr(w, "ec-p256", "/CN=bot-pr", Some(&format!("DNS:{dns}")));
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        order.finalize_csr(&der).await.unwrap();
        let chain = order
            .poll_certificate(&RetryPolicy::default())
            .await
            .unwrap();
        let file = w.join(format!("{profile}.pem"));
        std::fs::write(&file, chain).unwrap();
        assert_eq!(lifetime_secs(&file), secs, "{profile}");
    }
}

#[tokio::test]
async fn certbot_gets_the_profile_it_prefers() {
    let (ca, tls_port) = ca_with_profiles().await;
    ca.approved_agent("bot-cb", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = root_file(w, &ca.d.get_text("/ca/root.pem").await);
    let (kid, hmac) = eab(&ca, &ca.operator, "bot-cb").await;
    let dns = "bot-cb.acme-trading.agents.example";
    let mut cmd = Command::new(certbot());
    cmd.env("REQUESTS_CA_BUNDLE", &root)
        .args([
            "certonly",
            "--non-interactive",
            "--agree-tos",
            "--no-eff-email",
        ])
        .args(["--register-unsafely-without-email", "--server"])
        .arg(format!("https://127.0.0.1:{tls_port}/acme/directory"))
        .arg(format!("--eab-kid={kid}"))
        .arg(format!("--eab-hmac-key={hmac}"))
        .args(["--preferred-profile", "shortlived", "--key-type", "ecdsa"])
        // The authorization is valid from the start (EAB is the proof): no challenge is run.
        .args(["--standalone", "--http-01-port", &free_port().to_string()])
        .arg("--config-dir")
        .arg(w.join("config"))
        .arg("--work-dir")
        .arg(w.join("work"))
        .arg("--logs-dir")
        .arg(w.join("logs"))
        .args(["-d", dns]);
    let out = cmd
        .output()
        .expect("certbot (scripts/deps.sh test installs it)");
    assert!(
        out.status.success(),
        "certbot: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        ca.d.log()
    );
    let cert = w.join(format!("config/live/{dns}/cert.pem"));
    assert_eq!(lifetime_secs(&cert), 86_400);
    crate::acme::check_chain(
        w,
        &root,
        &std::fs::read_to_string(w.join(format!("config/live/{dns}/fullchain.pem"))).unwrap(),
        dns,
    );
}

#[tokio::test]
async fn lego_gets_its_organization_s_default_profile_and_rest_certify_takes_one() {
    let (ca, tls_port) = ca_with_profiles().await;
    // A desk whose agents get 24-hour certificates unless they ask, and never more than a day.
    let admin = ca.d.admin_key();
    let r =
        ca.d.post(
            &admin,
            "/v1/organizations",
            &json!({"id": "short-desk", "legal_name": "Short Desk Ltd",
                    "default_profile": "shortlived", "max_validity_secs": 86_400}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["default_profile"], "shortlived");
    assert_eq!(r.body["max_validity_secs"], 86_400);
    // A default profile longer than the maximum is refused.
    ca.d.post(
        &admin,
        "/v1/organizations",
        &json!({"id": "odd-desk", "legal_name": "Odd Desk Ltd",
                "default_profile": "extended", "max_validity_secs": 86_400}),
    )
    .await
    .assert_problem(400, "invalid-request");
    let op = ca.d.person_key(Some("short-desk"), "operator").await;
    let comp = ca.d.person_key(Some("short-desk"), "compliance").await;
    let mut m = full_mandate();
    m["operator"] = json!("Short Desk Ltd");
    let r =
        ca.d.post(
            &op,
            "/v1/agents",
            &json!({"agent_id": "bot-lg", "name": "L", "mandate": m}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r =
        ca.d.post(&comp, "/v1/agents/bot-lg/approve", &json!({"version": 1}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = root_file(w, &ca.d.get_text("/ca/root.pem").await);
    let (kid, hmac) = eab(&ca, &op, "bot-lg").await;
    let dns = "bot-lg.short-desk.agents.example";
    let out = Command::new("lego")
        .env("LEGO_CA_CERTIFICATES", &root)
        .arg("--server")
        .arg(format!("https://127.0.0.1:{tls_port}/acme/directory"))
        .args(["--email", "desk@example.com", "--accept-tos", "--eab"])
        .arg(format!("--kid={kid}"))
        .arg(format!("--hmac={hmac}"))
        .args(["--key-type", "ec256"])
        .args(["--domains", dns])
        // The authorization is valid from the start: no challenge is run.
        .args([
            "--http",
            "--http.port",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .arg("--path")
        .arg(w.join("lego"))
        .arg("run")
        .output()
        .expect("lego (scripts/deps.sh test installs it)");
    assert!(
        out.status.success(),
        "lego: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        ca.d.log()
    );
    let cert = w.join(format!("lego/certificates/{dns}.crt"));
    assert_eq!(lifetime_secs(&cert), 86_400, "the organization's default");

    // REST: a profile by name, within the organization's maximum.
    let req = csr(w, "ec-p256", "/CN=bot-lg", None);
    let r =
        ca.d.post(
            &op,
            "/v1/agents/bot-lg/certify",
            &json!({"csr": req, "profile": "three-minutes"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["profile"], "three-minutes");
    let file = w.join("rest.pem");
    std::fs::write(&file, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime_secs(&file), 180);
    let c =
        ca.d.get(
            &op,
            &format!(
                "/v1/certificates/{}",
                r.body["serial_number"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(c.body["profile"], "three-minutes", "{c:?}");
    // Longer than the desk allows, an unknown profile, or both ways at once: refused.
    for (body, detail) in [
        (
            json!({"csr": req, "profile": "extended"}),
            "at most 86400 s",
        ),
        (
            json!({"csr": req, "profile": "forever"}),
            "no certificate profile",
        ),
        (json!({"csr": req, "validity_days": 2}), "at most 86400 s"),
        (
            json!({"csr": req, "profile": "agent", "validity_days": 1}),
            "at most one of",
        ),
    ] {
        let r = ca.d.post(&op, "/v1/agents/bot-lg/certify", &body).await;
        r.assert_problem(400, "invalid-request");
        assert!(
            r.body["detail"].as_str().unwrap().contains(detail),
            "{body}: {r:?}"
        );
    }
    // Without a profile, an agent of the CA's default organization gets 7 days (agent).
    ca.approved_agent("bot-def", full_mandate()).await;
    let r = ca.certify_new_key("bot-def", w).await;
    assert_eq!(r.body["profile"], "agent");
    let file = w.join("default.pem");
    std::fs::write(&file, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime_secs(&file), 7 * 86_400);
}

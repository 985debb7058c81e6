//! OCSP: `openssl ocsp` against the URL in the certificate's AIA says good, then revoked (SHA-1
//! and SHA-256 CertIDs, with and without a nonce, POST and GET); python `cryptography` verifies
//! the signature; pkilint finds nothing wrong; refusals carry the right OCSP status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, csr, full_mandate, here, run};

const VISIBLE_WITHIN: Duration = Duration::from_secs(15);

struct Setup {
    ca: Ca,
    dir: tempfile::TempDir,
    cert: PathBuf,
    serial: String,
    ocsp_url: String,
}

async fn setup() -> Setup {
    let ca = Ca::start().await;
    ca.approved_agent("bot-o", full_mandate()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        ca.d.get_text("/ca/root.pem").await,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    let r = ca
        .certify(
            &ca.operator,
            "bot-o",
            &csr(dir.path(), "ec-p256", "/CN=bot-o", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let cert = dir.path().join("bot.pem");
    std::fs::write(&cert, r.body["certificate_pem"].as_str().unwrap()).unwrap();
    let parsed: Value = serde_json::from_str(&run(Command::new("python3")
        .arg(here("check_cert.py"))
        .arg(&cert)))
    .unwrap();
    Setup {
        serial: r.body["serial_number"].as_str().unwrap().to_owned(),
        ocsp_url: parsed["ocsp"][0].as_str().unwrap().to_owned(),
        ca,
        dir,
        cert,
    }
}

/// `openssl ocsp` as a relying party would run it, verifying the response against the root.
fn openssl_ocsp(s: &Setup, extra: &[&str]) -> Output {
    let d = s.dir.path();
    // openssl wants the digest option before -cert.
    Command::new("openssl")
        .arg("ocsp")
        .args(extra)
        .arg("-issuer")
        .arg(d.join("int.pem"))
        .arg("-cert")
        .arg(&s.cert)
        .args(["-url", &s.ocsp_url, "-CAfile"])
        .arg(d.join("root.pem"))
        .arg("-verify_other")
        .arg(d.join("int.pem"))
        .output()
        .unwrap()
}

fn says(out: &Output, status: &str) -> bool {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.contains(&format!(": {status}")) && text.contains("Response verify OK")
}

fn check_with_python(s: &Setup, resp: &Path) -> Value {
    serde_json::from_str(&run(Command::new("python3")
        .arg(here("check_ocsp.py"))
        .arg(resp)
        .arg(s.dir.path().join("int.pem"))))
    .unwrap()
}

fn lint(resp: &Path) {
    crate::harness::pkilint("lint_ocsp_response", &[], resp);
}

#[tokio::test]
async fn openssl_sees_good_then_revoked_with_sha1_sha256_nonce_and_get() {
    let s = setup().await;
    let d = s.dir.path();
    assert_eq!(s.ocsp_url, format!("{}/ocsp", s.ca.d.base));

    // Good: SHA-1 CertID with a nonce (openssl's default), SHA-256, and no nonce.
    for extra in [&[][..], &["-sha256"][..], &["-no_nonce"][..]] {
        let out = openssl_ocsp(&s, extra);
        assert!(says(&out, "good"), "{extra:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("WARNING: no nonce"), "{extra:?}: {text}");
    }
    let resp = d.join("good.der");
    let out = openssl_ocsp(&s, &["-respout", resp.to_str().unwrap()]);
    assert!(says(&out, "good"), "{out:?}");
    let py = check_with_python(&s, &resp);
    assert_eq!(py["response_status"], "SUCCESSFUL");
    assert_eq!(py["signature_verified"], true);
    assert_eq!(
        py["delegated"], true,
        "signed by the delegated OCSP signer: {py}"
    );
    assert_eq!(py["cert_status"], "GOOD");
    assert_eq!(py["serial"], s.serial.trim_start_matches('0'));
    assert_eq!(py["has_next_update"], true);
    assert!(py["nonce"].as_str().is_some(), "nonce not echoed: {py}");
    lint(&resp);

    // RFC 5019 GET with the base64 request in the path, cacheable.
    let req = d.join("req.der");
    run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join("int.pem"))
        .arg("-cert")
        .arg(&s.cert)
        .arg("-reqout")
        .arg(&req));
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let url = format!(
        "{}/{}",
        s.ocsp_url,
        b64.replace('/', "%2F").replace('+', "%2B")
    );
    let got = s.ca.d.raw().get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "application/ocsp-response");
    let cc = got.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cc.contains("max-age="), "{cc}");
    for h in ["etag", "last-modified", "expires"] {
        assert!(got.headers().contains_key(h), "missing {h}");
    }
    let get_resp = d.join("get.der");
    std::fs::write(&get_resp, got.bytes().await.unwrap()).unwrap();
    assert_eq!(check_with_python(&s, &get_resp)["cert_status"], "GOOD");

    // Revoke: OCSP says revoked, with the reason, within the deadline.
    let r =
        s.ca.d
            .post(
                &s.ca.operator,
                &format!("/v1/certificates/{}/revoke", s.serial),
                &json!({"reason": "keyCompromise"}),
            )
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let deadline = Instant::now() + VISIBLE_WITHIN;
    let revoked = d.join("revoked.der");
    loop {
        // No nonce: the cached "good" from above must have been dropped by the revocation.
        let out = openssl_ocsp(&s, &["-no_nonce", "-respout", revoked.to_str().unwrap()]);
        if says(&out, "revoked") {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("Reason: keyCompromise"), "{text}");
            break;
        }
        assert!(says(&out, "good"), "{out:?}");
        assert!(
            Instant::now() < deadline,
            "OCSP not revoked within {VISIBLE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let py = check_with_python(&s, &revoked);
    assert_eq!(py["cert_status"], "REVOKED");
    assert_eq!(py["revocation_reason"], "key_compromise");
    lint(&revoked);
    assert!(says(
        &openssl_ocsp(&s, &["-sha256", "-no_nonce"]),
        "revoked"
    ));
}

#[tokio::test]
async fn a_revocation_by_the_cli_reaches_cached_ocsp_answers_too() {
    let s = setup().await;
    // Prime the cache with a nonce-less "good".
    assert!(says(&openssl_ocsp(&s, &["-no_nonce"]), "good"));
    assert!(says(&openssl_ocsp(&s, &["-no_nonce"]), "good"));
    run(s.ca.d.command().args([
        "revoke",
        "certificate",
        &s.serial,
        "--reason",
        "cessationOfOperation",
    ]));
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let out = openssl_ocsp(&s, &["-no_nonce"]);
        if says(&out, "revoked") {
            break;
        }
        assert!(says(&out, "good"), "{out:?}");
        assert!(
            Instant::now() < deadline,
            "CLI revocation not in OCSP within {VISIBLE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn garbage_oversize_multi_certificate_and_foreign_issuers_get_ocsp_refusals() {
    let s = setup().await;
    let d = s.dir.path();
    let post = |body: Vec<u8>| {
        let client = s.ca.d.raw().clone();
        let url = s.ocsp_url.clone();
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/ocsp-request")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "OCSP refusals are HTTP 200");
            r.bytes().await.unwrap().to_vec()
        }
    };
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } with no responseBytes.
    let malformed = vec![0x30, 0x03, 0x0a, 0x01, 0x01];
    let unauthorized = vec![0x30, 0x03, 0x0a, 0x01, 0x06];
    assert_eq!(post(b"hello".to_vec()).await, malformed);
    assert_eq!(post(vec![0x30; 10_000]).await, malformed);
    assert_eq!(post(Vec::new()).await, malformed);

    // Two certificates in one request.
    let req2 = d.join("two.der");
    run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join("int.pem"))
        .arg("-cert")
        .arg(&s.cert)
        .arg("-cert")
        .arg(&s.cert)
        .arg("-reqout")
        .arg(&req2));
    assert_eq!(post(std::fs::read(&req2).unwrap()).await, malformed);

    // A CertID naming an issuer we do not answer for (the root).
    let foreign = d.join("foreign.der");
    run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join("root.pem"))
        .arg("-cert")
        .arg(&s.cert)
        .arg("-reqout")
        .arg(&foreign));
    assert_eq!(post(std::fs::read(&foreign).unwrap()).await, unauthorized);

    // Bad base64 on GET.
    let r =
        s.ca.d
            .raw()
            .get(format!("{}/!!!not-base64", s.ocsp_url))
            .send()
            .await
            .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), malformed);

    // An unknown serial from our issuer: a signed "unknown".
    let req = d.join("unknown.der");
    run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join("int.pem"))
        .args(["-serial", "0x4fffffffffffffffffffffffffffffff", "-reqout"])
        .arg(&req));
    let resp = d.join("unknown-resp.der");
    std::fs::write(&resp, post(std::fs::read(&req).unwrap()).await).unwrap();
    let py = check_with_python(&s, &resp);
    assert_eq!(py["cert_status"], "UNKNOWN", "{py}");
}

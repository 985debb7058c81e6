//! OCSP: `openssl ocsp` against the URL in the certificate's AIA says good, then revoked (SHA-1
//! and SHA-256 CertIDs, with and without a nonce, POST and GET); python `cryptography` verifies
//! the signature; pkilint finds nothing wrong; refusals carry the right OCSP status, strict
//! request extensions (bad or repeated nonces, unknown critical extensions) included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, Responder, csr, full_mandate, here, run};

const VISIBLE_WITHIN: Duration = Duration::from_secs(15);
/// A serial this CA never issued.
const UNKNOWN_SERIAL: &str = "0x4fffffffffffffffffffffffffffffff";

struct Setup {
    ca: Ca,
    dir: tempfile::TempDir,
    cert: PathBuf,
    serial: String,
    ocsp_url: String,
    crl_url: String,
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
        crl_url: parsed["crl"][0].as_str().unwrap().to_owned(),
        ca,
        dir,
        cert,
    }
}

/// `openssl ocsp` as a relying party would run it, verifying the response against the root.
fn openssl_ocsp(s: &Setup, extra: &[&str]) -> Output {
    openssl_ocsp_at(s, &s.ocsp_url, extra)
}

/// The same against another responder.
fn openssl_ocsp_at(s: &Setup, url: &str, extra: &[&str]) -> Output {
    let d = s.dir.path();
    // openssl wants the digest option before -cert.
    Command::new("openssl")
        .arg("ocsp")
        .args(extra)
        .arg("-issuer")
        .arg(d.join("int.pem"))
        .arg("-cert")
        .arg(&s.cert)
        .args(["-url", url, "-CAfile"])
        .arg(d.join("root.pem"))
        .arg("-verify_other")
        .arg(d.join("int.pem"))
        .output()
        .unwrap()
}

/// A nonce-less DER request from `openssl ocsp -reqout`, naming `issuer` (a PEM file in the
/// setup's dir) and either the setup's certificate or, given one, a serial (`0x...`).
fn request_der(s: &Setup, issuer: &str, serial: Option<&str>) -> Vec<u8> {
    let d = s.dir.path();
    let out = d.join(format!("req-{issuer}-{}.der", serial.unwrap_or("cert")));
    let mut cmd = Command::new("openssl");
    cmd.args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join(issuer));
    match serial {
        Some(serial) => cmd.args(["-serial", serial]),
        None => cmd.arg("-cert").arg(&s.cert),
    };
    run(cmd.arg("-reqout").arg(&out));
    std::fs::read(&out).unwrap()
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
    let b64 = base64::engine::general_purpose::STANDARD.encode(request_der(&s, "int.pem", None));
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
    let resp = s.dir.path().join("cli-revoked.der");
    wait_for(&s, &s.ocsp_url, "revoked", "good", &resp).await;
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
            let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
            crate::contract::assert_documented("POST", "/ocsp", 200, &content_type, &Value::Null);
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
    let foreign = request_der(&s, "root.pem", None);
    assert_eq!(post(foreign).await, unauthorized);

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
    let req = request_der(&s, "int.pem", Some(UNKNOWN_SERIAL));
    let resp = d.join("unknown-resp.der");
    std::fs::write(&resp, post(req).await).unwrap();
    let py = check_with_python(&s, &resp);
    assert_eq!(py["cert_status"], "UNKNOWN", "{py}");
}

/// POSTs an OCSP request to `url`; the answer must be HTTP 200 (refusals included).
async fn post_ocsp(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Vec<u8> {
    let r = http
        .post(url)
        .header("content-type", "application/ocsp-request")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "OCSP refusals are HTTP 200");
    r.bytes().await.unwrap().to_vec()
}

/// The setup's nonce-less request from openssl, re-encoded with these requestExtensions and
/// the one Request's singleRequestExtensions.
fn with_extensions(
    s: &Setup,
    request: Option<Vec<x509_cert::ext::Extension>>,
    single: Option<Vec<x509_cert::ext::Extension>>,
) -> Vec<u8> {
    use der::{Decode, Encode};
    let mut req = x509_ocsp::OcspRequest::from_der(&request_der(s, "int.pem", None)).unwrap();
    req.tbs_request.request_extensions = request;
    req.tbs_request.request_list[0].single_request_extensions = single;
    req.to_der().unwrap()
}

/// An extension whose extnValue holds exactly `value`.
fn extension(oid: &str, critical: bool, value: &[u8]) -> x509_cert::ext::Extension {
    x509_cert::ext::Extension {
        extn_id: const_oid::ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: der::asn1::OctetString::new(value).unwrap(),
    }
}

const NONCE_OID: &str = "1.3.6.1.5.5.7.48.1.2";

/// A nonce as RFC 6960 §4.4.1 wants it: the octets wrapped in an OCTET STRING.
fn nonce(octets: &[u8]) -> x509_cert::ext::Extension {
    let wrapped = [&[0x04, u8::try_from(octets.len()).unwrap()][..], octets].concat();
    extension(NONCE_OID, false, &wrapped)
}

#[tokio::test]
async fn bad_nonces_repeated_and_unknown_critical_extensions_are_malformed_requests() {
    let s = setup().await;
    let http = s.ca.d.raw().clone();
    let malformed = vec![0x30, 0x03, 0x0a, 0x01, 0x01];
    let unknown_oid = "1.3.6.1.4.1.99999.42";

    // A good nonce is still echoed in a signed "good".
    let good = with_extensions(&s, Some(vec![nonce(&[0x5a; 16])]), None);
    let resp = s.dir.path().join("nonce-good.der");
    std::fs::write(&resp, post_ocsp(&http, &s.ocsp_url, good.clone()).await).unwrap();
    let py = check_with_python(&s, &resp);
    assert_eq!(py["cert_status"], "GOOD", "{py}");
    assert_eq!(py["nonce"], "5a".repeat(16), "{py}");
    // So is one next to a non-critical extension we do not know (ignored, as RFC 5280 says).
    let beside = with_extensions(
        &s,
        Some(vec![
            extension(unknown_oid, false, &[5, 0]),
            nonce(&[0x5b; 8]),
        ]),
        None,
    );
    std::fs::write(&resp, post_ocsp(&http, &s.ocsp_url, beside).await).unwrap();
    assert_eq!(check_with_python(&s, &resp)["nonce"], "5b".repeat(8));

    let bad = [
        (
            "nonce not wrapped in an OCTET STRING",
            with_extensions(
                &s,
                Some(vec![extension(NONCE_OID, false, &[0x31; 16])]),
                None,
            ),
        ),
        (
            "nonce of 33 octets",
            with_extensions(&s, Some(vec![nonce(&[0x5a; 33])]), None),
        ),
        (
            "two nonces",
            with_extensions(&s, Some(vec![nonce(&[1; 16]), nonce(&[2; 16])]), None),
        ),
        (
            "an unknown critical request extension",
            with_extensions(
                &s,
                Some(vec![nonce(&[1; 16]), extension(unknown_oid, true, &[5, 0])]),
                None,
            ),
        ),
        (
            "an unknown critical singleRequestExtension",
            with_extensions(&s, None, Some(vec![extension(unknown_oid, true, &[5, 0])])),
        ),
        (
            "one extension twice",
            with_extensions(
                &s,
                Some(vec![
                    extension(unknown_oid, false, &[5, 0]),
                    extension(unknown_oid, false, &[5, 0]),
                ]),
                None,
            ),
        ),
    ];
    // The embedded responder, by POST and by GET, and the stand-alone one: the same parser.
    let r = Responder::start(&s.ca.d).await;
    for (what, der) in &bad {
        assert_eq!(
            post_ocsp(&http, &s.ocsp_url, der.clone()).await,
            malformed,
            "{what}"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let get_url = format!(
            "{}/{}",
            s.ocsp_url,
            b64.replace('/', "%2F").replace('+', "%2B")
        );
        let got = http.get(&get_url).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::OK, "{what}");
        assert_eq!(
            got.bytes().await.unwrap().to_vec(),
            malformed,
            "GET: {what}"
        );
        assert_eq!(
            post_ocsp(&http, &r.url, der.clone()).await,
            malformed,
            "stand-alone: {what}"
        );
    }
    // The refusals left the responder as it was: the good request is answered again.
    std::fs::write(&resp, post_ocsp(&http, &s.ocsp_url, good).await).unwrap();
    assert_eq!(check_with_python(&s, &resp)["cert_status"], "GOOD");
}

/// Waits until `openssl ocsp` against `url` says `want`, allowing only `also` meanwhile.
async fn wait_for(s: &Setup, url: &str, want: &str, also: &str, resp: &Path) -> Output {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let out = openssl_ocsp_at(s, url, &["-no_nonce", "-respout", resp.to_str().unwrap()]);
        if says(&out, want) {
            return out;
        }
        // Before the first pre-signed response is stored: unauthorized.
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(says(&out, also) || text.contains("unauthorized"), "{out:?}");
        assert!(
            Instant::now() < deadline,
            "{url} did not say {want} within {VISIBLE_WITHIN:?}: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_stand_alone_responder_serves_presigned_answers_and_follows_revocations() {
    let s = setup().await;
    let d = s.dir.path();
    let r = Responder::start(&s.ca.d).await;

    // The daemon pre-signs the new certificate's responses; the responder, with no HSM at all,
    // serves them.
    let good = d.join("sa-good.der");
    wait_for(&s, &r.url, "good", "good", &good).await;
    let py = check_with_python(&s, &good);
    assert_eq!(py["signature_verified"], true, "{py}");
    assert_eq!(py["delegated"], true, "{py}");
    assert_eq!(py["cert_status"], "GOOD");
    assert_eq!(py["has_next_update"], true);
    lint(&good);
    assert!(says(
        &openssl_ocsp_at(&s, &r.url, &["-sha256", "-no_nonce"]),
        "good"
    ));
    // A nonce cannot be echoed by a pre-signed response: openssl warns and still accepts it.
    let out = openssl_ocsp_at(&s, &r.url, &[]);
    assert!(says(&out, "good"), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING: no nonce in response"));

    // POST and GET give the same pre-signed bytes, with cache headers.
    let req = request_der(&s, "int.pem", None);
    let http = s.ca.d.raw();
    let posted = http
        .post(&r.url)
        .header("content-type", "application/ocsp-request")
        .body(req.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    for h in ["etag", "last-modified", "expires", "cache-control"] {
        assert!(posted.headers().contains_key(h), "missing {h}");
    }
    let etag = posted.headers()["etag"].clone();
    let posted = posted.bytes().await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&req);
    let get_url = format!("{}/{}", r.url, b64.replace('/', "%2F").replace('+', "%2B"));
    let got = http.get(&get_url).send().await.unwrap();
    assert_eq!(got.headers()["etag"], etag);
    assert_eq!(posted, got.bytes().await.unwrap());
    // An HTTP cache revalidating with the ETag gets 304 and no body.
    let revalidated = http
        .get(&get_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes().await.unwrap().is_empty());

    // Refusals: garbage, a foreign issuer, a serial with no pre-signed response.
    let malformed = vec![0x30, 0x03, 0x0a, 0x01, 0x01];
    let unauthorized = vec![0x30, 0x03, 0x0a, 0x01, 0x06];
    let post = |body: Vec<u8>| {
        let (http, url) = (http.clone(), r.url.clone());
        async move {
            let resp = http.post(url).body(body).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.bytes().await.unwrap().to_vec()
        }
    };
    assert_eq!(post(b"garbage".to_vec()).await, malformed);
    assert_eq!(post(vec![0x30; 10_000]).await, malformed);
    let unknown = request_der(&s, "int.pem", Some(UNKNOWN_SERIAL));
    assert_eq!(post(unknown).await, unauthorized);
    assert_eq!(post(request_der(&s, "root.pem", None)).await, unauthorized);

    // Revoke on the daemon: the stand-alone responder, the daemon's own OCSP and the CRL all
    // say so within the target, each waited on.
    let revoked_at = Instant::now();
    let rv =
        s.ca.d
            .post(
                &s.ca.operator,
                &format!("/v1/certificates/{}/revoke", s.serial),
                &json!({"reason": "keyCompromise"}),
            )
            .await;
    assert_eq!(rv.status, StatusCode::OK, "{rv:?}");
    let revoked = d.join("sa-revoked.der");
    let out = wait_for(&s, &r.url, "revoked", "good", &revoked).await;
    eprintln!(
        "stand-alone responder saw the revocation after {:?}",
        revoked_at.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Reason: keyCompromise"));
    let py = check_with_python(&s, &revoked);
    assert_eq!(py["cert_status"], "REVOKED", "{py}");
    assert_eq!(py["revocation_reason"], "key_compromise");
    lint(&revoked);
    assert!(says(
        &openssl_ocsp_at(&s, &r.url, &["-sha256", "-no_nonce"]),
        "revoked"
    ));
    wait_for(&s, &s.ocsp_url, "revoked", "good", &d.join("embedded.der")).await;
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let crl = crate::crl::fetch_crl(&s.ca, &s.crl_url, d).await;
        let v = crate::crl::verify_with_crl(d, &crl, &s.cert);
        if String::from_utf8_lossy(&v.stderr).contains("certificate revoked")
            || String::from_utf8_lossy(&v.stdout).contains("certificate revoked")
        {
            break;
        }
        assert!(v.status.success(), "{v:?}");
        assert!(
            Instant::now() < deadline,
            "not in the CRL within {VISIBLE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "stand-alone, embedded OCSP and CRL all revoked after {:?}",
        revoked_at.elapsed()
    );
}

#[tokio::test]
async fn the_stand_alone_responder_refuses_to_start_without_a_ca() {
    let s = setup().await;
    // Point it at a data dir with no database: a clear error, and no database file created.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Responder::command(&s.ca.d);
    cmd.env("MANDATE_DATA_DIR", empty.path())
        .env("MANDATE_LISTEN", "127.0.0.1:0");
    // PostgreSQL: a database that exists but holds no CA.
    let pg = mandate_testkit::on_postgres();
    if pg {
        let other = tempfile::tempdir().unwrap();
        cmd.env(
            "MANDATE_DATABASE_URL",
            mandate_testkit::database_url(other.path()),
        );
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = if pg {
        "no CA in the database"
    } else {
        "not found"
    };
    assert!(
        err.contains("mandate-ocsp:") && err.contains(expected),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

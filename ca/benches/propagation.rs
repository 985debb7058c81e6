//! Revocation propagation: from the revoke call returning to the embedded OCSP responder
//! answering "revoked", over N revocations (default 500), each polled without pause.
//!
//! `cargo bench -p mandate-ca --bench propagation -- [N]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use der::asn1::OctetString;
use der::{Decode, Encode};
use serde_json::{Value, json};
use sha1::Digest;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, Request, TbsRequest, Version,
};

const BIN: &str = env!("CARGO_BIN_EXE_mandate");

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(500, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(dir.path().join("m.toml"), "log = \"warn\"\n").unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("m.toml"))
        .arg("serve")
        .env("MANDATE_DATA_DIR", dir.path())
        .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "daemon not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = std::fs::read_to_string(dir.path().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let post = |key: &str, path: &str, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let op = post(
        &admin,
        "/v1/api-keys",
        json!({"role": "operator", "label": "op"}),
    )
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let co = post(
        &admin,
        "/v1/api-keys",
        json!({"role": "compliance", "label": "co"}),
    )
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &op,
        "/v1/agents",
        json!({"agent_id": "prop-bot", "name": "p", "organization": "bench",
        "mandate": {"operator": "Bench Ltd"}}),
    )
    .await;
    post(&co, "/v1/agents/prop-bot/approve", json!({})).await;
    let csr_path = dir.path().join("bot.csr");
    assert!(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-subj",
                "/CN=prop-bot",
                "-keyout"
            ])
            .arg(dir.path().join("bot.key"))
            .arg("-out")
            .arg(&csr_path)
            .status()
            .unwrap()
            .success()
    );
    let csr = std::fs::read_to_string(&csr_path).unwrap();

    // The issuer's CertID hashes (SHA-1, as RFC 5019 clients send).
    let int_der = http
        .get(format!("{base}/ca/intermediate.der"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let int = x509_cert::Certificate::from_der(&int_der).unwrap();
    let name_hash = sha1::Sha1::digest(int.tbs_certificate.subject.to_der().unwrap()).to_vec();
    let key_hash = sha1::Sha1::digest(
        int.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .to_vec();
    let sha1_alg = spki::AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_1,
        parameters: None,
    };

    let mut serials = Vec::with_capacity(n);
    for _ in 0..n {
        let r = post(&op, "/v1/agents/prop-bot/certify", json!({"csr": csr})).await;
        serials.push(r["serial_number"].as_str().unwrap().to_owned());
    }
    let mut latencies = Vec::with_capacity(n);
    let mut polls = 0usize;
    for serial in &serials {
        let req = OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: CertId {
                        hash_algorithm: sha1_alg.clone(),
                        issuer_name_hash: OctetString::new(name_hash.clone()).unwrap(),
                        issuer_key_hash: OctetString::new(key_hash.clone()).unwrap(),
                        serial_number: SerialNumber::new(&hex::decode(serial).unwrap()).unwrap(),
                    },
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap();
        // Ask once first, so a cached "good" exists that the revocation must replace.
        assert!(!is_revoked(&http, &base, &req).await);
        post(
            &op,
            &format!("/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
        let returned = Instant::now();
        loop {
            polls += 1;
            if is_revoked(&http, &base, &req).await {
                break;
            }
            assert!(
                returned.elapsed() < Duration::from_secs(15),
                "not revoked within 15 s"
            );
        }
        latencies.push(returned.elapsed());
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    latencies.sort();
    let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "revocations={n} OCSP polls={polls} propagation p50={:.2} ms p99={:.2} ms max={:.2} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[n - 1].as_secs_f64() * 1e3
    );
}

async fn is_revoked(http: &reqwest::Client, base: &str, req: &[u8]) -> bool {
    let body = http
        .post(format!("{base}/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(req.to_vec())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp = OcspResponse::from_der(&body).unwrap();
    let bytes = resp.response_bytes.expect("successful response");
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    matches!(
        basic.tbs_response_data.responses[0].cert_status,
        CertStatus::Revoked(_)
    )
}

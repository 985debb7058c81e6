//! Revocation propagation: from the revoke call returning to the embedded OCSP responder
//! answering "revoked", over N revocations (default 500), each polled without pause.
//!
//! `cargo bench -p mandate-ca --bench propagation -- [N]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use der::asn1::OctetString;
use der::{Decode, Encode};
use serde_json::json;
use sha1::Digest;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, Request, TbsRequest, Version,
};

mod common;

use common::Bench;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(500, |a| a.parse().unwrap());
    let bench = Bench::start("log = \"warn\"\n", "prop-bot").await;
    let (http, base, op) = (&bench.http, &bench.base, &bench.operator);

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
        let r = bench
            .post(op, "/v1/agents/prop-bot/certify", json!({"csr": bench.csr}))
            .await;
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
        assert!(!is_revoked(http, base, &req).await);
        bench
            .post(
                op,
                &format!("/v1/certificates/{serial}/revoke"),
                json!({"reason": "keyCompromise"}),
            )
            .await;
        let returned = Instant::now();
        loop {
            polls += 1;
            if is_revoked(http, base, &req).await {
                break;
            }
            assert!(
                returned.elapsed() < Duration::from_secs(15),
                "not revoked within 15 s"
            );
        }
        latencies.push(returned.elapsed());
    }
    bench.stop();
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

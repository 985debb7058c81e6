//! Revocation propagation: from the revoke call returning to the embedded OCSP responder, and to
//! a stand-alone `mandate-ocsp` on the same store, answering "revoked", over N revocations
//! (default 500), both polled without pause. Each revocation comes 0-49 ms (random) after the
//! previous one was seen, so that it does not fall in step with the stand-alone responder's
//! feed reads.
//!
//! `cargo bench -p mandate-ca --bench propagation -- [N]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::json;

mod common;

use common::{Bench, OcspProbe, ocsp_status as status};

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(500, |a| a.parse().unwrap());
    let bench = Bench::start(
        "log = \"warn\"\n[http]\nrate_limit_per_minute = 0\n",
        "prop-bot",
    )
    .await;
    let (http, base, op) = (&bench.http, &bench.base, &bench.operator);

    let probe = OcspProbe::new(&bench).await;

    let mut serials = Vec::with_capacity(n);
    for _ in 0..n {
        let r = bench
            .post(op, "/v1/agents/prop-bot/certify", json!({"csr": bench.csr}))
            .await;
        serials.push(r["serial_number"].as_str().unwrap().to_owned());
    }
    let (mut responder, standalone) = bench.start_responder().await;
    let embedded = format!("{base}/ocsp");
    let mut latencies = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut polls = 0usize;
    for serial in &serials {
        let req = probe.request(serial);
        // Both say "good" first (the stand-alone one once the daemon pre-signed it), so a
        // cached "good" exists that the revocation must replace.
        assert_eq!(status(http, &embedded, &req).await, Some(false));
        let deadline = Instant::now() + Duration::from_secs(15);
        while status(http, &standalone, &req).await != Some(false) {
            assert!(Instant::now() < deadline, "never pre-signed");
        }
        // Revocations come at random moments, not in step with the stand-alone responder's
        // feed reads (which the loop would otherwise fall into): wait 0-49 ms first.
        let mut jitter = [0u8; 1];
        getrandom::fill(&mut jitter).unwrap();
        tokio::time::sleep(Duration::from_millis(u64::from(jitter[0] % 50))).await;
        bench
            .post(
                op,
                &format!("/v1/certificates/{serial}/revoke"),
                json!({"reason": "keyCompromise"}),
            )
            .await;
        let returned = Instant::now();
        let mut seen = [None, None];
        while seen.iter().any(Option::is_none) {
            for (i, url) in [&embedded, &standalone].into_iter().enumerate() {
                if seen[i].is_none() {
                    polls += 1;
                    if status(http, url, &req).await == Some(true) {
                        seen[i] = Some(returned.elapsed());
                    }
                }
            }
            assert!(
                returned.elapsed() < Duration::from_secs(15),
                "not revoked within 15 s"
            );
        }
        for (l, s) in latencies.iter_mut().zip(seen) {
            l.push(s.unwrap());
        }
    }
    let _ = responder.kill();
    let _ = responder.wait();
    bench.stop();
    println!("revocations={n} OCSP polls={polls}");
    for (name, l) in ["embedded", "stand-alone"].iter().zip(latencies.iter_mut()) {
        common::print_propagation(name, l);
    }
}

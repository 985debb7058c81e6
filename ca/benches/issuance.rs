//! Issuance throughput and latency of the real daemon on loopback, beside the raw signing rate of
//! the same key type on a SoftHSM token measured in the same run.
//!
//! `cargo bench -p mandate-ca --bench issuance -- [KIND] [SECONDS] [CONCURRENCY] [PRESIGN]`
//! KIND: ec-p256 (default), ec-p384, rsa-2048, ...; SECONDS: per phase (default 10);
//! CONCURRENCY: client tasks and signing tasks (default 16); PRESIGN: `presign` (default, the
//! daemon pre-signs OCSP responses for stand-alone responders as it issues) or `no-presign`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mandate_hsm::testing::SoftHsmHarness;
use mandate_hsm::{Hsm, KeyKind};
use serde_json::json;

mod common;

use common::Bench;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let kind: KeyKind = args
        .first()
        .map_or("ec-p256", String::as_str)
        .parse()
        .unwrap();
    let secs: u64 = args.get(1).map_or(10, |s| s.parse().unwrap());
    let conc: usize = args.get(2).map_or(16, |s| s.parse().unwrap());
    let presign = args.get(3).is_none_or(|a| a != "no-presign");
    let pool = 4; // the daemon's default hsm.pool_size

    let raw = raw_sign_rate(kind, pool, conc, Duration::from_secs(secs)).await;
    let (rate, p50, p99, n) = issuance(kind, conc, Duration::from_secs(secs), presign).await;
    println!("key={kind} sessions={pool} concurrency={conc} seconds={secs} ocsp_presign={presign}");
    println!("raw HSM signing:   {raw:.0} signs/s");
    println!(
        "issuance:          {rate:.0} certs/s ({n} certificates), p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    println!(
        "ratio:             {:.0}% of the raw signing rate",
        100.0 * rate / raw
    );
}

/// Signs a 700-byte message (about a TBSCertificate) as fast as `conc` tasks can.
async fn raw_sign_rate(kind: KeyKind, pool: usize, conc: usize, dur: Duration) -> f64 {
    let harness = SoftHsmHarness::new("bench-raw").unwrap();
    let mut cfg = harness.hsm_config();
    cfg.pool_size = pool;
    let hsm = Hsm::connect(cfg).await.unwrap();
    let key = hsm.generate_key(kind, "bench").await.unwrap();
    let alg = kind.default_signature_algorithm();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let msg = vec![0x5a_u8; 700];
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (hsm, id, count, stop, msg) = (
                hsm.clone(),
                key.id.clone(),
                count.clone(),
                stop.clone(),
                msg.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    hsm.sign(&id, alg, &msg).await.unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    hsm.shutdown().await;
    rate
}

async fn issuance(
    kind: KeyKind,
    conc: usize,
    dur: Duration,
    presign: bool,
) -> (f64, Duration, Duration, usize) {
    let bench = Bench::start(
        &format!(
            "log = \"warn\"\n[ca]\nroot_key = \"{kind}\"\nintermediate_key = \"{kind}\"\n\
             ocsp_presign = {presign}\n[http]\nrate_limit_per_minute = 0\n"
        ),
        "bench-bot",
    )
    .await;
    // One CSR reused: each request still gets its own serial, TBS, signature and rows.
    let body = Arc::new(json!({"csr": bench.csr}));
    let (http, base, op) = (
        bench.http.clone(),
        bench.base.clone(),
        bench.operator.clone(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (http, base, op, body, stop) = (
                http.clone(),
                base.clone(),
                op.clone(),
                body.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/v1/agents/bench-bot/certify"))
                        .bearer_auth(&op)
                        .json(&*body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                    r.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    bench.stop();
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)];
    (n as f64 / elapsed.as_secs_f64(), pct(0.50), pct(0.99), n)
}

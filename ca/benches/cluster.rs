//! Several nodes on one PostgreSQL (a private server started here, Debian's binaries):
//! 1. issuance throughput with one daemon, then with two daemons on the same database and
//!    token, for the same total number of clients;
//! 2. revocation propagation across nodes: revoked on node A, seen by node B's embedded OCSP
//!    responder and by a stand-alone `mandate-ocsp`, each polled without pause (N revocations,
//!    each 0-49 ms after the previous one was seen).
//!
//! `cargo bench -p mandate-ca --bench cluster -- [N] [SECONDS] [CLIENTS]` (defaults 200, 10, 16)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mandate_testkit::PgServer;
use serde_json::json;

mod common;

use common::{Bench, OcspProbe, ocsp_status as status};

const CONFIG: &str = "log = \"warn\"\n[http]\nrate_limit_per_minute = 0\n";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().map_or(200, |s| s.parse().unwrap());
    let secs: u64 = args.get(1).map_or(10, |s| s.parse().unwrap());
    let clients: usize = args.get(2).map_or(16, |s| s.parse().unwrap());
    let server = PgServer::start();
    let url = mandate_testkit::create_database(&server.url("postgres"));
    let a = Bench::start_with_env(
        CONFIG,
        "cluster-bot",
        vec![("MANDATE_DATABASE_URL".into(), url)],
    )
    .await;
    let dur = Duration::from_secs(secs);

    let (one, n1) = throughput(&[&a], clients, dur).await;
    let b = a.another_node().await;
    let (two, n2) = throughput(&[&a, &b], clients, dur).await;
    println!("database=postgresql clients={clients} seconds={secs}");
    println!("issuance, 1 daemon:  {one:.0} certs/s ({n1} certificates)");
    println!("issuance, 2 daemons: {two:.0} certs/s ({n2} certificates)");

    let probe = OcspProbe::new(&a).await;
    let (mut responder, standalone) = a.start_responder().await;
    let embedded_b = format!("{}/ocsp", b.base);
    let http = &a.http;
    let mut latencies = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        let r = a
            .post(
                &a.operator,
                "/v1/agents/cluster-bot/certify",
                json!({"csr": a.csr}),
            )
            .await;
        let serial = r["serial_number"].as_str().unwrap().to_owned();
        let req = probe.request(&serial);
        let deadline = Instant::now() + Duration::from_secs(15);
        for url in [&embedded_b, &standalone] {
            while status(http, url, &req).await != Some(false) {
                assert!(Instant::now() < deadline, "{url}: never good");
            }
        }
        let mut jitter = [0u8; 1];
        getrandom::fill(&mut jitter).unwrap();
        tokio::time::sleep(Duration::from_millis(u64::from(jitter[0] % 50))).await;
        a.post(
            &a.operator,
            &format!("/v1/certificates/{serial}/revoke"),
            json!({"reason": "keyCompromise"}),
        )
        .await;
        let returned = Instant::now();
        let mut seen = [None, None];
        while seen.iter().any(Option::is_none) {
            for (i, url) in [&embedded_b, &standalone].into_iter().enumerate() {
                if seen[i].is_none() && status(http, url, &req).await == Some(true) {
                    seen[i] = Some(returned.elapsed());
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
    b.stop();
    a.stop();
    println!("revocations={n} (revoked on node A)");
    for (name, l) in ["node B embedded", "stand-alone"]
        .iter()
        .zip(latencies.iter_mut())
    {
        common::print_propagation(name, l);
    }
    drop(server);
}

/// Certifies as fast as `clients` tasks can, spread evenly over `nodes`, for `dur`.
async fn throughput(nodes: &[&Bench], clients: usize, dur: Duration) -> (f64, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let node = nodes[i % nodes.len()];
            let (http, base, op, stop) = (
                node.http.clone(),
                node.base.clone(),
                node.operator.clone(),
                stop.clone(),
            );
            let body = json!({"csr": node.csr});
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .post(format!("{base}/v1/agents/cluster-bot/certify"))
                        .bearer_auth(&op)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                    r.bytes().await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total as f64 / start.elapsed().as_secs_f64(), total)
}

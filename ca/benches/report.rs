//! How long a compliance report over many audit records takes to build, and how much memory
//! the `mandate report` process needs for it.
//!
//! `cargo bench -p mandate-ca --bench report -- [RECORDS]` (default 200000): a daemon with one
//! approved agent; RECORDS audit records about that agent are appended through the store (the
//! same append path the daemon's writes use); once the daemon's audit tree covers them, `mandate
//! report` runs under `/usr/bin/time -v` and its wall time and peak resident memory are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use mandate_store::{AuditEvent, Store};
use serde_json::json;

mod common;

use common::Bench;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let records: usize = args.first().map_or(200_000, |s| s.parse().unwrap());
    let bench = Bench::start("[audit]\ncheckpoint_secs = 1\n", "big-bot").await;
    let dir = bench.dir().to_path_buf();

    // The records: about the agent, with details of a realistic size.
    let store = Store::open(&format!("sqlite://{}", dir.join("mandate.db").display()))
        .await
        .unwrap();
    let started = Instant::now();
    let tasks = 64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for i in (t..records).step_by(tasks) {
                let event = AuditEvent::new(
                    "bench",
                    "certificate.issued",
                    "big-bot",
                    json!({"agent_id": "big-bot", "n": i, "mandate_version": 1,
                           "profile": "agent", "not_after": 1_800_000_000}),
                )
                .by(Some("bench"), None);
                store.record_audit_event(&event).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let appended = started.elapsed();
    store.close().await;

    // Wait until the daemon's checkpointer has made them leaves and signed a checkpoint.
    let deadline = Instant::now() + Duration::from_secs(900);
    let tip = records as u64;
    loop {
        let r = bench
            .http
            .get(format!("{}/v1/audit/checkpoint", bench.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            let v: serde_json::Value = r.json().await.unwrap();
            if v["tree_size"].as_u64().unwrap_or(0) >= tip {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the tree never caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tree = started.elapsed();

    let out = dir.join("report");
    let day = mandate_ca::rfc3339(mandate_store::now_unix());
    let day = &day[..10];
    let run = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(BIN)
        .arg("--config")
        .arg(dir.join("mandate.toml"))
        .args([
            "report", "--agent", "big-bot", "--from", day, "--to", day, "--out",
        ])
        .arg(&out)
        .env("MANDATE_DATA_DIR", &dir)
        .env("MANDATE_JSON", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let field = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let printed: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let size = |f: &str| std::fs::metadata(out.join(f)).map_or(0, |m| m.len());
    println!(
        "records={records} appended in {:.1} s, tree and checkpoint after {:.1} s",
        appended.as_secs_f64(),
        tree.as_secs_f64()
    );
    println!(
        "report: {} audit records proven; wall {}; peak RSS {} KiB; report.json {} bytes, report.pdf {} bytes",
        printed["audit_records"],
        field("Elapsed (wall clock) time (h:mm:ss or m:ss):"),
        field("Maximum resident set size (kbytes):"),
        size("report.json"),
        size("report.pdf"),
    );
    bench.stop();
}

//! What the dashboard and `/metrics` cost: sequential page loads over HTTP on loopback with 100
//! registered agents (each with certificates and scored events would only add reads per row;
//! the agents page reads each agent's risk and certificate summary).
//!
//! `cargo bench -p mandate-ca --bench dashboard -- [AGENTS=100] [LOADS=200]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::json;

mod common;

use common::Bench;

/// Signs in through the form and returns the session cookie (`name=value`).
async fn sign_in(b: &Bench, key: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/dashboard/login", b.base))
        .send()
        .await
        .unwrap();
    let login_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let token = html
        .split("name=\"login_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{}/dashboard/login", b.base))
        .header("cookie", login_cookie)
        .form(&[("api_key", key), ("login_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("mandate_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn time(b: &Bench, label: &str, path: &str, header: (&str, &str), loads: usize) {
    let mut took: Vec<Duration> = Vec::with_capacity(loads);
    let mut bytes = 0;
    for _ in 0..loads {
        let t = Instant::now();
        let r = b
            .http
            .get(format!("{}{path}", b.base))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        bytes = r.bytes().await.unwrap().len();
        took.push(t.elapsed());
    }
    took.sort();
    let pct = |p: f64| took[((loads as f64 * p) as usize).min(loads - 1)].as_secs_f64() * 1e3;
    println!(
        "{label:>22}: p50={:.2} ms p99={:.2} ms max={:.2} ms ({} KiB)",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        bytes / 1024
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let agents: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let loads: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let b = Bench::start("", "agent-0").await;
    for i in 1..agents {
        let mandate = json!({"operator": "Bench Ltd", "allowedMarkets": ["EUR_USD"]});
        b.approved_agent(&format!("agent-{i}"), "bench", mandate)
            .await;
    }
    let r = b
        .http
        .post(format!("{}/v1/agents/agent-0/certify", b.base))
        .bearer_auth(&b.operator)
        .json(&json!({"csr": b.csr}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = sign_in(&b, &b.compliance).await;
    println!("{agents} agents, {loads} sequential loads each");
    time(
        &b,
        "dashboard agents page",
        "/dashboard",
        ("cookie", &cookie),
        loads,
    )
    .await;
    time(
        &b,
        "dashboard agent page",
        "/dashboard/agents/agent-0",
        ("cookie", &cookie),
        loads,
    )
    .await;
    // CA-wide figures are CA staff's: the bootstrap admin's key.
    let bearer = format!("Bearer {}", b.admin);
    time(
        &b,
        "GET /metrics",
        "/metrics",
        ("authorization", &bearer),
        loads,
    )
    .await;
    time(
        &b,
        "GET /v1/agents (JSON)",
        "/v1/agents?limit=100",
        ("authorization", &bearer),
        loads,
    )
    .await;
    b.stop();
}

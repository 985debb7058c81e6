//! Pre-trade decisions and event ingestion with scoring over HTTP on loopback, driven by `wrk`
//! (one thread: the daemon gets the rest of the machine). 100 agents, each with an approved
//! baseline, so that every event is scored.
//!
//! `cargo bench -p mandate-ca --bench behaviour -- [SECONDS=10] [CONNECTIONS=32] [controls]`
//!
//! With `controls`, every mandate also sets every version-2 control (maxOrderQuantity and
//! allowedOrderTypes as defaults and per market, a price collar against posted reference
//! prices, maxOpenOrders, maxNetPosition, shortSellingAllowed, maxMessagesPerSecond,
//! maxOrderToTradeRatio, maxDailyLoss and the repeated-execution throttle, each set out of
//! reach so that the run measures the steady state), every agent is certified (so preflight
//! answers `allowed`), the orders carry quantity, price, order type and side, and the events
//! are order events: with 2 or more per request, pairs of `new` and `filled` (a client order id
//! per request and pair), with 1 per request `filled` events, so every event moves the book,
//! the positions, the order flow and the day's P&L (each fill realises a loss of 1 EUR). Every
//! fill is a buy: wrk's concurrent connections may deliver a sell before the buy it closes, and
//! a short position would be a breach (shortSellingAllowed is false) that suspends the agent.
//!
//! The load is thousands of events a second per agent, far above any baseline, so the
//! frequency feature would score every event 1 and revoke each agent at its first event: the
//! bench sets its weight to 0 (the feature is still computed) to measure the steady state, not
//! 100 kill switches. Needs `wrk`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use serde_json::{Value, json};

mod common;

use common::Bench;

const AGENTS: usize = 100;

fn lua(key: &str, path_fmt: &str, body: &str) -> String {
    format!(
        r#"local i = 0
local body = [=[{body}]=]
local headers = {{["Authorization"] = "Bearer {key}", ["Content-Type"] = "application/json"}}
request = function()
  i = (i % {AGENTS}) + 1
  return wrk.format("POST", string.format("{path_fmt}", i - 1), headers, body)
end
"#
    )
}

/// Runs wrk; returns (requests/s, p50 ms, p99 ms, non-2xx).
fn wrk(script: &std::path::Path, url: &str, secs: u32, conns: u32) -> (f64, f64, f64, u64) {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ms = |line: &str| -> f64 {
        let v = line.split_whitespace().last().unwrap();
        if let Some(us) = v.strip_suffix("us") {
            us.parse::<f64>().unwrap() / 1000.0
        } else if let Some(ms) = v.strip_suffix("ms") {
            ms.parse().unwrap()
        } else {
            v.trim_end_matches('s').parse::<f64>().unwrap() * 1000.0
        }
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no Requests/sec in:\n{text}"))
        .parse()
        .unwrap();
    let p50 = text
        .lines()
        .find(|l| l.trim().starts_with("50%"))
        .map(ms)
        .unwrap();
    let p99 = text
        .lines()
        .find(|l| l.trim().starts_with("99%"))
        .map(ms)
        .unwrap();
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0, |n| n.parse().unwrap());
    (rps, p50, p99, non2xx)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let secs: u32 = args.first().map_or(10, |a| a.parse().unwrap());
    let conns: u32 = args.get(1).map_or(32, |a| a.parse().unwrap());
    let controls = args.get(2).is_some_and(|a| a == "controls");
    let bench = Bench::start(
        "log = \"warn\"\n[http]\nrate_limit_per_minute = 0\n[scoring]\nauto_learn = false\n\
         [scoring.weights]\nfrequency = 0.0\n",
        "warmup",
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let markets = ["BTC_EUR", "ETH_EUR"];
    for a in 0..AGENTS {
        let id = format!("bench-{a:03}");
        let mut mandate = json!({"operator": "Bench Ltd", "allowedMarkets": markets,
                             "allowedRegions": ["eu-west-1"],
                             "maxTransactionSize": {"amount": "100000", "currency": "EUR"},
                             "maxDailyVolume": {"amount": "999999999999", "currency": "EUR"},
                             "permittedActions": ["trade_execution"]});
        if controls {
            mandate["maxOrderQuantity"] = json!("100");
            mandate["allowedOrderTypes"] = json!(["limit", "market"]);
            mandate["priceCollar"] = json!({"buyBps": 500, "sellBps": 500});
            mandate["referencePriceMaxAge"] = json!(3600);
            mandate["repeatedExecutionThrottle"] = json!({"executions": 1000000, "withinSecs": 1});
            mandate["maxOpenOrders"] = json!(100000);
            mandate["maxNetPosition"] = json!({"quantity": "1000000000"});
            mandate["shortSellingAllowed"] = json!(false);
            mandate["maxMessagesPerSecond"] = json!(1000000);
            mandate["maxOrderToTradeRatio"] = json!({"maxRatio": 1000000, "windowSecs": 60});
            mandate["maxDailyLoss"] = json!({"amount": "999999999", "currency": "EUR"});
            mandate["marketControls"] = json!([{"market": "ETH_EUR", "controls":
                {"maxOrderQuantity": {"value": "50", "enforcement": "soft"}}}]);
        }
        bench.approved_agent(&id, "bench", mandate).await;
        if controls {
            bench
                .post(
                    &bench.operator,
                    &format!("/v1/agents/{id}/certify"),
                    json!({"hsm_key_type": "ec-p256"}),
                )
                .await;
        }
        // Two days of history around the clock, so that any hour is a usual one.
        let history: Vec<Value> = (0..192)
            .map(|k| {
                json!({"agent_id": id, "action": "trade_execution",
                       "market": markets[k % 2], "size": format!("{}", 90 + k % 20),
                                    "currency": "EUR", "region": "eu-west-1",
                                    "quantity": "1", "price": "100", "order_type": "limit",
                                    "timestamp": now - 2 * 86_400 + (k as i64) * 900})
            })
            .collect();
        bench
            .post(&bench.operator, "/v1/events", Value::Array(history))
            .await;
        bench
            .post(
                &bench.operator,
                &format!("/v1/agents/{id}/baseline"),
                json!({}),
            )
            .await;
        bench
            .post(
                &bench.compliance,
                &format!("/v1/agents/{id}/baseline/approve"),
                json!({}),
            )
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = &bench.operator;
    let mut order = json!({"action": "trade_execution", "market": "BTC_EUR", "size": "100",
                       "currency": "EUR", "side": "buy", "region": "eu-west-1"});
    if controls {
        bench
            .post(
                &bench.operator,
                "/v1/reference-prices",
                json!({"prices": [{"market": "BTC_EUR", "price": "100"}, {"market": "ETH_EUR", "price": "100"}]}),
            )
            .await;
        order["quantity"] = json!("1");
        order["price"] = json!("101");
        order["order_type"] = json!("limit");
        let probe = bench
            .post(
                &bench.operator,
                "/v1/agents/bench-000/preflight",
                order.clone(),
            )
            .await;
        println!("one preflight with every enforced control: {probe}");
        assert_eq!(probe["allowed"], true, "{probe}");
    }
    let preflight = dir.path().join("preflight.lua");
    std::fs::write(
        &preflight,
        lua(key, "/v1/agents/bench-%03d/preflight", &order.to_string()),
    )
    .unwrap();
    println!("wrk -t1 -c{conns} -d{secs}s, {AGENTS} agents with approved baselines");
    let (rps, p50, p99, bad) = wrk(&preflight, &bench.base, secs, conns);
    println!("preflight: {rps:.0} decisions/s, p50 {p50:.2} ms, p99 {p99:.2} ms, non-2xx {bad}");
    for batch in [1usize, 10, 100] {
        // The agent id (and, for order events, the request's sequence number) is filled in
        // per request by the script.
        let events: Vec<Value> = (0..batch)
            .map(|k| {
                let mut e = json!({"agent_id": "AGENT", "action": "trade_execution",
                       "market": markets[k % 2], "size": format!("{}", 95 + k % 10),
                                    "currency": "EUR", "side": "buy", "region": "eu-west-1",
                                    "quantity": "1", "price": "101", "order_type": "limit"});
                if controls {
                    let m = &mut e;
                    let pair = if batch == 1 { 0 } else { k / 2 };
                    m["market"] = json!(markets[pair % 2]);
                    m["client_order_id"] = json!(format!("SEQ-{pair}"));
                    if batch == 1 || k % 2 == 1 {
                        m["order_state"] = json!("filled");
                        m["fill_quantity"] = json!("1");
                        m["fill_price"] = json!("101");
                        m["realised_pnl"] = json!("-1");
                    } else {
                        m["order_state"] = json!("new");
                        m.as_object_mut().unwrap().remove("size");
                    }
                }
                e
            })
            .collect();
        let body = Value::Array(events).to_string();
        let script = dir.path().join(format!("events-{batch}.lua"));
        let text = format!(
            r#"local i = 0
local template = [=[{body}]=]
local headers = {{["Authorization"] = "Bearer {key}", ["Content-Type"] = "application/json"}}
local n = 0
request = function()
  i = (i % {AGENTS}) + 1
  n = n + 1
  local body = string.gsub(template, "AGENT", string.format("bench-%03d", i - 1))
  body = string.gsub(body, "SEQ", "r" .. n)
  return wrk.format("POST", "/v1/events", headers, body)
end
"#
        );
        std::fs::write(&script, text).unwrap();
        let (rps, p50, p99, bad) = wrk(&script, &bench.base, secs, conns);
        println!(
            "events, {batch:>3} per request: {:.0} events/s ({rps:.0} requests/s), p50 {p50:.2} ms, p99 {p99:.2} ms, non-2xx {bad}",
            rps * batch as f64
        );
    }
    let incidents = bench
        .http
        .get(format!("{}/v1/incidents", bench.base))
        .bearer_auth(&bench.operator)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    println!(
        "incidents opened during the run: {}",
        incidents["items"].as_array().map_or(0, Vec::len)
    );
    bench.stop();
}

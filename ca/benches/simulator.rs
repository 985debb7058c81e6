//! The trading-bot simulator: a population of agents trades normally through a seven-day
//! observation window (events with past timestamps), their baselines are learnt and approved,
//! then a live day is played in time order in which every fifth agent goes rogue in one of four
//! ways (oversized orders, a new market, an off-hours burst, a new region). It reports how many
//! rogue agents were revoked, how many normal ones were (false revocations) or warned, and the
//! time from posting the triggering event to the daemon's OCSP responder saying "revoked".
//!
//! `cargo bench -p mandate-ca --bench simulator -- [AGENTS=100] [SEED=1]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{Bench, OcspProbe, ocsp_status};

const DAY: i64 = 86_400;
const MARKETS: [&str; 8] = [
    "BTC_EUR", "ETH_EUR", "SOL_EUR", "EUR_USD", "GBP_USD", "XRP_EUR", "ADA_EUR", "DOT_EUR",
];
const REGIONS: [&str; 4] = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"];

/// xorshift64*: deterministic for a seed, so a run can be repeated exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Poisson by inversion (small means).
    fn poisson(&mut self, mean: f64) -> u32 {
        let (l, mut k, mut p) = ((-mean).exp(), 0, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Rogue {
    Oversized,
    NewMarket,
    OffHoursBurst,
    NewRegion,
}

struct Agent {
    id: String,
    serial: String,
    markets: Vec<(usize, f64)>,
    median: f64,
    start_hour: i64,
    hours: i64,
    region: usize,
    rate: f64,
    rogue: Option<Rogue>,
}

impl Agent {
    fn market(&self, rng: &mut Rng) -> &'static str {
        let mut x = rng.unit();
        for (m, w) in &self.markets {
            if x < *w {
                return MARKETS[*m];
            }
            x -= w;
        }
        MARKETS[self.markets[0].0]
    }
    fn size(&self, rng: &mut Rng) -> String {
        format!("{:.2}", self.median * (0.35 * rng.normal()).exp())
    }
    fn event(&self, at: i64, size: String, market: &str, region: &str) -> Value {
        json!({"agent_id": self.id, "action": "trade_execution",
               "market": market, "size": size, "currency": "EUR",
                            "side": "buy", "counterparty": "exchange_a", "region": region,
                            "timestamp": at, "success": true})
    }
    /// A normal day's events from `day_start` (UTC midnight).
    fn normal_day(&self, rng: &mut Rng, day_start: i64) -> Vec<(i64, Value)> {
        let mut out = Vec::new();
        for h in 0..self.hours {
            let hour = day_start + (self.start_hour + h) * 3600;
            for _ in 0..rng.poisson(self.rate) {
                let at = hour + rng.below(3600) as i64;
                let size = self.size(rng);
                let market = self.market(rng);
                out.push((at, self.event(at, size, market, REGIONS[self.region])));
            }
        }
        out
    }
}

async fn post_events(bench: &Bench, batch: &[Value]) -> Value {
    bench
        .post(&bench.operator, "/v1/events", Value::Array(batch.to_vec()))
        .await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().map_or(100, |a| a.parse().unwrap());
    let seed: u64 = args.get(1).map_or(1, |a| a.parse().unwrap());
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let bench = Bench::start(
        "log = \"warn\"\n[http]\nrate_limit_per_minute = 0\n[scoring]\nauto_learn = false\n",
        "sim-warmup",
    )
    .await;
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let midnight = now - now.rem_euclid(DAY);
    let kinds = [
        Rogue::Oversized,
        Rogue::NewMarket,
        Rogue::OffHoursBurst,
        Rogue::NewRegion,
    ];

    // The population: each agent its own markets, sizes, hours, region and pace.
    let mut agents = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("sim-{i:03}");
        let k = 2 + rng.below(2);
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < k {
            let m = rng.below(MARKETS.len());
            if !picked.contains(&m) {
                picked.push(m);
            }
        }
        let weights: Vec<f64> = (0..k).map(|_| 0.5 + rng.unit()).collect();
        let total: f64 = weights.iter().sum();
        let agent = Agent {
            id: id.clone(),
            serial: String::new(),
            markets: picked
                .into_iter()
                .zip(weights.iter().map(|w| w / total))
                .collect(),
            median: 50.0 * (1.0 + rng.below(100) as f64),
            start_hour: 5 + rng.below(6) as i64,
            hours: 6 + rng.below(5) as i64,
            region: rng.below(REGIONS.len()),
            rate: 3.0 + rng.below(6) as f64,
            rogue: (i % 5 == 4).then(|| kinds[(i / 5) % 4]),
        };
        let mandate = json!({"operator": "Sim Trading Ltd", "allowedMarkets": MARKETS,
                             "allowedRegions": REGIONS, "permittedActions": ["trade_execution"],
                             "maxTransactionSize": {"amount": "100000000", "currency": "EUR"}});
        bench.approved_agent(&id, "bench", mandate).await;
        let cert = bench
            .post(
                &bench.operator,
                &format!("/v1/agents/{id}/certify"),
                json!({"hsm_key_type": "ec-p256"}),
            )
            .await;
        agents.push(Agent {
            serial: cert["serial_number"].as_str().unwrap().to_owned(),
            ..agent
        });
    }

    // The observation window: days 8 to 2 ago.
    let mut observed = 0usize;
    for a in &agents {
        let mut events = Vec::new();
        for day in 2..9 {
            events.extend(a.normal_day(&mut rng, midnight - day * DAY));
        }
        for chunk in events.chunks(500) {
            let batch: Vec<Value> = chunk.iter().map(|(_, e)| e.clone()).collect();
            post_events(&bench, &batch).await;
        }
        observed += events.len();
        let b = bench
            .post(
                &bench.operator,
                &format!("/v1/agents/{}/baseline", a.id),
                json!({}),
            )
            .await;
        assert_eq!(b["status"], "pending_approval");
        bench
            .post(
                &bench.compliance,
                &format!("/v1/agents/{}/baseline/approve", a.id),
                json!({}),
            )
            .await;
    }
    let setup = started.elapsed();

    // The live day (yesterday), in time order across agents. A rogue agent trades normally
    // until its turn, then misbehaves; each of its rogue events is posted on its own, and the
    // time from posting the one that revokes it to OCSP saying "revoked" is measured.
    let live_day = midnight - DAY;
    let mut timeline: Vec<(i64, usize, Value)> = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        for (at, e) in a.normal_day(&mut rng, live_day) {
            timeline.push((at, i, e));
        }
    }
    let mut rogue_events: Vec<(i64, usize, Value)> = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let Some(kind) = a.rogue else { continue };
        let turn = live_day + (a.start_hour + a.hours / 2) * 3600;
        let region = REGIONS[a.region];
        match kind {
            Rogue::Oversized => {
                for k in 0..3 {
                    let size = format!("{:.2}", a.median * 25.0);
                    let market = a.market(&mut rng);
                    rogue_events.push((
                        turn + k * 60,
                        i,
                        a.event(turn + k * 60, size, market, region),
                    ));
                }
            }
            Rogue::NewMarket => {
                let new = MARKETS
                    .iter()
                    .enumerate()
                    .find(|(m, _)| !a.markets.iter().any(|(x, _)| x == m))
                    .map(|(_, m)| *m)
                    .unwrap();
                for k in 0..3 {
                    let size = a.size(&mut rng);
                    rogue_events.push((
                        turn + k * 60,
                        i,
                        a.event(turn + k * 60, size, new, region),
                    ));
                }
            }
            Rogue::OffHoursBurst => {
                // Three hours after its day ends, fifty orders in ten minutes.
                let at0 = live_day + (a.start_hour + a.hours + 3) % 24 * 3600;
                for k in 0..50 {
                    let size = a.size(&mut rng);
                    let market = a.market(&mut rng);
                    let at = at0 + k * 12;
                    rogue_events.push((at, i, a.event(at, size, market, region)));
                }
            }
            Rogue::NewRegion => {
                let other = REGIONS[(a.region + 1) % REGIONS.len()];
                for k in 0..3 {
                    let size = a.size(&mut rng);
                    let market = a.market(&mut rng);
                    rogue_events.push((
                        turn + k * 60,
                        i,
                        a.event(turn + k * 60, size, market, other),
                    ));
                }
            }
        }
    }
    let live_normal = timeline.len();
    timeline.sort_by_key(|(at, i, _)| (*at, *i));
    rogue_events.sort_by_key(|(at, i, _)| (*at, *i));

    let probe = OcspProbe::new(&bench).await;
    let ocsp_url = format!("{}/ocsp", bench.base);
    let mut revoked_at: Vec<Option<Duration>> = vec![None; n];
    let mut latencies = Vec::new();
    let mut pending: Vec<Value> = Vec::new();
    let mut r = rogue_events.into_iter().peekable();
    let mut warnings = vec![0usize; n];
    let note = |body: &Value, warnings: &mut Vec<usize>| {
        for inc in body["incidents"].as_array().unwrap() {
            if inc["kind"] == "risk_warning" {
                let id = inc["agent_id"].as_str().unwrap();
                let i: usize = id.trim_start_matches("sim-").parse().unwrap();
                warnings[i] += 1;
            }
        }
    };
    for (at, _, e) in timeline {
        while r.peek().is_some_and(|(rat, _, _)| *rat <= at) {
            let (_, i, ev) = r.next().unwrap();
            if !pending.is_empty() {
                let body = post_events(&bench, &pending).await;
                note(&body, &mut warnings);
                pending.clear();
            }
            let t0 = Instant::now();
            let body = post_events(&bench, &[ev]).await;
            note(&body, &mut warnings);
            let auto = body["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["kind"] == "auto_revocation");
            if auto && revoked_at[i].is_none() {
                let req = probe.request(&agents[i].serial);
                let deadline = Instant::now() + Duration::from_secs(15);
                while ocsp_status(&bench.http, &ocsp_url, &req).await != Some(true) {
                    assert!(
                        Instant::now() < deadline,
                        "{} not revoked in OCSP",
                        agents[i].id
                    );
                }
                let d = t0.elapsed();
                revoked_at[i] = Some(d);
                latencies.push(d);
            }
        }
        pending.push(e);
        if pending.len() >= 200 {
            let body = post_events(&bench, &pending).await;
            note(&body, &mut warnings);
            pending.clear();
        }
    }
    for (_, i, ev) in r {
        let t0 = Instant::now();
        let body = post_events(&bench, &[ev]).await;
        note(&body, &mut warnings);
        if revoked_at[i].is_none()
            && body["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["kind"] == "auto_revocation")
        {
            let req = probe.request(&agents[i].serial);
            while ocsp_status(&bench.http, &ocsp_url, &req).await != Some(true) {}
            let d = t0.elapsed();
            revoked_at[i] = Some(d);
            latencies.push(d);
        }
    }
    if !pending.is_empty() {
        let body = post_events(&bench, &pending).await;
        note(&body, &mut warnings);
    }

    // The verdict, from OCSP itself for every agent.
    let mut by_kind: Vec<(Rogue, usize, usize)> = kinds.iter().map(|k| (*k, 0, 0)).collect();
    let (mut rogue, mut caught, mut normal, mut false_revoked, mut normal_warned) = (0, 0, 0, 0, 0);
    for (i, a) in agents.iter().enumerate() {
        let revoked =
            ocsp_status(&bench.http, &ocsp_url, &probe.request(&a.serial)).await == Some(true);
        match a.rogue {
            Some(kind) => {
                rogue += 1;
                let slot = by_kind.iter_mut().find(|(k, _, _)| *k == kind).unwrap();
                slot.1 += 1;
                if revoked {
                    caught += 1;
                    slot.2 += 1;
                }
            }
            None => {
                normal += 1;
                if revoked {
                    false_revoked += 1;
                    println!("false revocation: {}", a.id);
                }
                if warnings[i] > 0 {
                    normal_warned += 1;
                }
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "agents={n} seed={seed} observation events={observed} live normal events={live_normal} setup={:.1}s",
        setup.as_secs_f64()
    );
    println!(
        "rogue agents revoked: {caught}/{rogue}; normal agents revoked: {false_revoked}/{normal}; normal agents warned: {normal_warned}/{normal}"
    );
    for (k, total, got) in by_kind {
        println!("  {k:?}: {got}/{total} revoked");
    }
    println!(
        "triggering event -> OCSP revoked: p50={:.2} ms p99={:.2} ms max={:.2} ms (n={})",
        pct(0.5),
        pct(0.99),
        latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        latencies.len()
    );
    bench.stop();
}

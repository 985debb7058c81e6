//! The baseline and the anomaly score: a usual event scores low, each kind of rogue behaviour
//! scores high, and the contributions explain the score.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_policy::{Baseline, Observation, Weights, score};

const DAY: i64 = 86_400;
const START: i64 = 1_700_000_000 - 1_700_000_000 % DAY; // a UTC midnight

fn obs(at: i64, size: f64, market: &str, region: &str) -> Observation {
    Observation {
        at,
        size: Some(size),
        market: Some(market.into()),
        region: Some(region.into()),
    }
}

/// Seven days of trading 09:00-17:00 UTC, ten events an hour, sizes 50..150, two markets.
fn week() -> Vec<Observation> {
    let mut out = Vec::new();
    for day in 0..7 {
        for hour in 9..17 {
            for i in 0..10 {
                let at = START + day * DAY + hour * 3600 + i * 300;
                let size =
                    50.0 + f64::from(u32::try_from((day * 31 + hour * 7 + i * 13) % 101).unwrap());
                let market = if i % 3 == 0 { "ETH_EUR" } else { "BTC_EUR" };
                out.push(obs(at, size, market, "eu-west-1"));
            }
        }
    }
    out
}

fn learnt() -> Baseline {
    Baseline::learn(&week(), START, START + 7 * DAY, 20).unwrap()
}

fn feature(s: &mandate_policy::Score, name: &str) -> f64 {
    s.contributions
        .iter()
        .find(|c| c.feature == name)
        .unwrap()
        .value
}

#[test]
fn learns_the_week() {
    let b = learnt();
    assert_eq!(b.events, 560);
    assert!((b.hourly_mean - 10.0).abs() < 1e-9);
    assert!(b.hourly_stddev.abs() < 1e-9);
    let p50 = b.size_p50.unwrap();
    assert!((90.0..=110.0).contains(&p50), "{p50}");
    assert!(b.size_p99.unwrap() <= 150.0);
    assert!((b.markets["BTC_EUR"] - 0.6).abs() < 0.01, "{:?}", b.markets);
    assert_eq!(b.regions.len(), 1);
    assert!(b.active_hours[3] == 0.0 && b.active_hours[10] > 0.1);
}

#[test]
fn too_few_events_are_refused() {
    let err = Baseline::learn(&week()[..5], START, START + 7 * DAY, 20).unwrap_err();
    assert!(err.to_string().contains("at least 20"), "{err}");
}

#[test]
fn a_usual_event_scores_low() {
    let b = learnt();
    let e = obs(START + 8 * DAY + 10 * 3600, 120.0, "BTC_EUR", "eu-west-1");
    let s = score(&b, &Weights::default(), &e, 9);
    assert!(s.score < 0.05, "{s:?}");
}

#[test]
fn each_rogue_behaviour_scores_high_and_is_explained() {
    let b = learnt();
    let w = Weights::default();
    let at = START + 8 * DAY + 10 * 3600;
    let cases = [
        ("size", obs(at, 5_000.0, "BTC_EUR", "eu-west-1"), 5),
        ("instrument", obs(at, 100.0, "DOGE_EUR", "eu-west-1"), 5),
        ("geography", obs(at, 100.0, "BTC_EUR", "ap-south-1"), 5),
        ("frequency", obs(at, 100.0, "BTC_EUR", "eu-west-1"), 200),
    ];
    for (name, e, last_hour) in cases {
        let s = score(&b, &w, &e, last_hour);
        assert!(s.score >= 0.85, "{name}: {s:?}");
        assert!(feature(&s, name) > 0.99, "{name}: {s:?}");
        let sum: f64 = s.contributions.iter().map(|c| c.contribution).sum();
        assert!(
            (sum - s.score).abs() < 1e-9,
            "contributions sum to the score"
        );
        let top = s
            .contributions
            .iter()
            .max_by(|a, b| a.contribution.total_cmp(&b.contribution))
            .unwrap();
        assert_eq!(top.feature, name);
    }
}

#[test]
fn off_hours_alone_is_a_warning_and_with_a_burst_more() {
    let b = learnt();
    let w = Weights::default();
    let night = START + 8 * DAY + 3 * 3600;
    let alone = score(&b, &w, &obs(night, 100.0, "BTC_EUR", "eu-west-1"), 1);
    assert!((0.75..0.85).contains(&alone.score), "{alone:?}");
    let burst = score(&b, &w, &obs(night, 100.0, "BTC_EUR", "eu-west-1"), 100);
    assert!(burst.score >= 0.85, "{burst:?}");
}

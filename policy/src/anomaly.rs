//! The anomaly score: how far one event is from the agent's approved baseline, 0 to 1, with the
//! share of each feature so that every decision can be explained.
//!
//! Each feature gives a value `v` in 0..=1 (0: as usual, 1: never seen or far out) and has a
//! weight `w` < 1: the score one fully anomalous feature reaches on its own. Features combine as
//! a noisy-OR, `score = 1 - Π(1 - w·v)`, so one strong anomaly is enough to act on and several
//! weak ones add up without ever passing 1. The score is split among the features in proportion
//! to `-ln(1 - w·v)`, the exact additive decomposition of that product.

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, Observation, utc_hour};

/// Weight of each feature (0 to 0.999).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Order size.
    pub size: f64,
    /// Events in the last hour.
    pub frequency: f64,
    /// Market.
    pub instrument: f64,
    /// Hour of day.
    pub time_of_day: f64,
    /// Region.
    pub geography: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            size: 0.95,
            frequency: 0.9,
            instrument: 0.9,
            time_of_day: 0.8,
            geography: 0.9,
        }
    }
}

/// One feature's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contribution {
    /// `size`, `frequency`, `instrument`, `time_of_day` or `geography`.
    #[schema(pattern = "^(size|frequency|instrument|time_of_day|geography)$")]
    pub feature: String,
    /// How anomalous the feature is, 0 to 1.
    pub value: f64,
    /// Its weight.
    pub weight: f64,
    /// Its share of the score (the contributions sum to the score).
    pub contribution: f64,
    /// What the event showed.
    pub observed: String,
    /// What the baseline expects.
    pub expected: String,
}

/// A score with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 0 (usual) to 1 (anomalous).
    pub score: f64,
    /// Every feature, in a fixed order.
    pub contributions: Vec<Contribution>,
}

/// A share below this counts as rare: the value rises linearly to 1 as the share falls to 0.
const RARE_MARKET: f64 = 0.02;
const RARE_HOUR: f64 = 0.01;
const RARE_REGION: f64 = 0.01;

fn rarity(share: f64, rare_below: f64) -> f64 {
    (1.0 - share / rare_below).clamp(0.0, 1.0)
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// Scores `event` against `baseline`; `events_last_hour` counts the agent's events in the hour
/// up to and including this one.
pub fn score(
    baseline: &Baseline,
    weights: &Weights,
    event: &Observation,
    events_last_hour: u32,
) -> Score {
    let mut parts: Vec<(String, f64, f64, String, String)> = Vec::with_capacity(5);
    // Size: 0 up to p99, 1 at five times p99.
    let (v, observed, expected) = match (event.size, baseline.size_p99) {
        (Some(s), Some(p99)) if p99 > 0.0 && s.is_finite() => (
            ((s / p99 - 1.0) / 4.0).clamp(0.0, 1.0),
            format!("{s}"),
            format!("p50 {} / p99 {p99}", baseline.size_p50.unwrap_or_default()),
        ),
        _ => (0.0, "-".into(), "-".into()),
    };
    parts.push(("size".into(), v, weights.size, observed, expected));
    // Frequency: a z-score of the hour's count; 0 up to 3 spreads above the mean, 1 at 6.
    let spread = baseline
        .hourly_stddev
        .max(baseline.hourly_mean.sqrt())
        .max(1.0);
    let z = (f64::from(events_last_hour) - baseline.hourly_mean) / spread;
    parts.push((
        "frequency".into(),
        ((z - 3.0) / 3.0).clamp(0.0, 1.0),
        weights.frequency,
        format!("{events_last_hour} in the last hour"),
        format!(
            "{:.1} ± {:.1} per active hour",
            baseline.hourly_mean, baseline.hourly_stddev
        ),
    ));
    // Instrument concentration: how rare the market was.
    let (v, observed, expected) = match &event.market {
        Some(m) if !baseline.markets.is_empty() => {
            let share = baseline.markets.get(m).copied().unwrap_or(0.0);
            (
                rarity(share, RARE_MARKET),
                m.clone(),
                format!("{} of events", pct(share)),
            )
        }
        _ => (0.0, "-".into(), "-".into()),
    };
    parts.push((
        "instrument".into(),
        v,
        weights.instrument,
        observed,
        expected,
    ));
    // Time of day: how rare the hour was.
    let hour = utc_hour(event.at);
    let share = baseline.active_hours.get(hour).copied().unwrap_or(0.0);
    parts.push((
        "time_of_day".into(),
        rarity(share, RARE_HOUR),
        weights.time_of_day,
        format!("{hour:02}:00 UTC"),
        format!("{} of events in that hour", pct(share)),
    ));
    // Geographic origin: how rare the region was.
    let (v, observed, expected) = match &event.region {
        Some(r) if !baseline.regions.is_empty() => {
            let share = baseline.regions.get(r).copied().unwrap_or(0.0);
            (
                rarity(share, RARE_REGION),
                r.clone(),
                format!("{} of events", pct(share)),
            )
        }
        _ => (0.0, "-".into(), "-".into()),
    };
    parts.push(("geography".into(), v, weights.geography, observed, expected));

    let logs: Vec<f64> = parts
        .iter()
        .map(|(_, v, w, _, _)| -(1.0 - (w.clamp(0.0, 0.999) * v)).ln())
        .collect();
    let total: f64 = logs.iter().sum();
    let score = (1.0 - (-total).exp()).clamp(0.0, 1.0);
    let contributions = parts
        .into_iter()
        .zip(logs)
        .map(
            |((feature, value, weight, observed, expected), l)| Contribution {
                feature,
                value,
                weight,
                contribution: if total > 0.0 { score * l / total } else { 0.0 },
                observed,
                expected,
            },
        )
        .collect();
    Score {
        score,
        contributions,
    }
}

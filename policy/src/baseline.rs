//! The behavioural baseline: what an agent's normal activity looked like over an observation
//! window, in the five dimensions the anomaly model compares against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// One reported event, as far as the baseline and the score care.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// When, unix seconds.
    pub at: i64,
    /// Order size (any currency: the baseline compares an agent with itself).
    pub size: Option<f64>,
    /// Instrument, e.g. `BTC_EUR`.
    pub market: Option<String>,
    /// Region, e.g. `eu-west-1`.
    pub region: Option<String>,
}

/// An agent's learnt normal behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Baseline {
    /// Events it was learnt from.
    pub events: u64,
    /// Start of the observation window, unix seconds (JSON: RFC 3339; unix seconds are read
    /// too, as baselines stored before were written).
    #[serde(with = "window_time")]
    #[schema(value_type = String, format = DateTime)]
    pub window_start: i64,
    /// End of the observation window, unix seconds (JSON as `window_start`).
    #[serde(with = "window_time")]
    #[schema(value_type = String, format = DateTime)]
    pub window_end: i64,
    /// Median order size, when events carried sizes.
    #[schema(required = true)]
    pub size_p50: Option<f64>,
    /// 99th percentile of order sizes.
    #[schema(required = true)]
    pub size_p99: Option<f64>,
    /// Mean number of events per active hour (an hour with at least one event).
    pub hourly_mean: f64,
    /// Standard deviation of events per active hour.
    pub hourly_stddev: f64,
    /// Share of events per market (0 to 1).
    pub markets: BTreeMap<String, f64>,
    /// Share of events per hour of the day, UTC, 24 entries.
    #[schema(min_items = 24, max_items = 24)]
    pub active_hours: Vec<f64>,
    /// Share of events per region.
    pub regions: BTreeMap<String, f64>,
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn shares<'a>(values: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for v in values {
        *counts.entry(v.to_owned()).or_default() += 1;
        total += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| (k, n as f64 / total.max(1) as f64))
        .collect()
}

/// Hour of the day (0..24, UTC) of unix seconds.
pub fn utc_hour(at: i64) -> usize {
    usize::try_from(at.rem_euclid(86_400) / 3600).unwrap_or(0)
}

impl Baseline {
    /// Learns a baseline from the events of the window `[start, end)`; events outside it are
    /// ignored. Refused with fewer than `min_events` events in the window.
    pub fn learn(
        events: &[Observation],
        start: i64,
        end: i64,
        min_events: usize,
    ) -> Result<Baseline, PolicyError> {
        let inside: Vec<&Observation> = events
            .iter()
            .filter(|e| e.at >= start && e.at < end)
            .collect();
        if inside.len() < min_events.max(1) {
            return Err(PolicyError::invalid(
                "baseline",
                format!(
                    "{} events in the observation window; at least {min_events} are needed",
                    inside.len()
                ),
            ));
        }
        let mut sizes: Vec<f64> = inside
            .iter()
            .filter_map(|e| e.size)
            .filter(|s| s.is_finite())
            .collect();
        sizes.sort_by(f64::total_cmp);
        let mut per_hour: BTreeMap<i64, u64> = BTreeMap::new();
        let mut hours = [0u64; 24];
        for e in &inside {
            *per_hour.entry(e.at.div_euclid(3600)).or_default() += 1;
            if let Some(h) = hours.get_mut(utc_hour(e.at)) {
                *h += 1;
            }
        }
        let n = per_hour.len().max(1) as f64;
        let mean = per_hour.values().map(|&c| c as f64).sum::<f64>() / n;
        let var = per_hour
            .values()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let total = inside.len() as f64;
        Ok(Baseline {
            events: inside.len() as u64,
            window_start: start,
            window_end: end,
            size_p50: quantile(&sizes, 0.5),
            size_p99: quantile(&sizes, 0.99),
            hourly_mean: mean,
            hourly_stddev: var.sqrt(),
            markets: shares(inside.iter().filter_map(|e| e.market.as_deref())),
            active_hours: hours.iter().map(|&c| c as f64 / total).collect(),
            regions: shares(inside.iter().filter_map(|e| e.region.as_deref())),
        })
    }
}
/// A window bound in JSON: RFC 3339 out, RFC 3339 or unix seconds in.
mod window_time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(unix: &i64, s: S) -> Result<S::Ok, S::Error> {
        let text = time::OffsetDateTime::from_unix_timestamp(*unix)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .ok_or_else(|| serde::ser::Error::custom(format!("time {unix} out of range")))?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Unix(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Unix(u) => Ok(u),
            Raw::Text(t) => {
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map(time::OffsetDateTime::unix_timestamp)
                    .map_err(|e| serde::de::Error::custom(format!("{t:?} is not RFC 3339: {e}")))
            }
        }
    }
}

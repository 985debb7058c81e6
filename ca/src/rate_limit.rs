//! Per-API-key rate limits: a token bucket per key, refilled at `http.rate_limit_per_minute`
//! and holding up to `http.rate_limit_burst` requests. Kept in this process (one daemon's view).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most buckets kept; past it, full ones (idle keys) are dropped.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every key seen.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_minute` = 0 turns limiting off.
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_sec: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket: `Err(seconds)` to wait when it is empty.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / self.per_sec).ceil();
            // Whole seconds, at least 1 (Retry-After has no fractions).
            Err(if wait.is_finite() && wait >= 1.0 {
                wait as u64
            } else {
                1
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bursts_then_refills_per_key() {
        let r = RateLimiter::new(60, 3); // one per second, bursts of 3
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(r.check_at("a", t0), Ok(()));
        }
        assert_eq!(r.check_at("a", t0), Err(1));
        assert_eq!(r.check_at("b", t0), Ok(()), "keys do not share buckets");
        assert_eq!(r.check_at("a", t0 + Duration::from_millis(1100)), Ok(()));
        assert_eq!(r.check_at("a", t0 + Duration::from_millis(1200)), Err(1));
        let off = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert_eq!(off.check_at("a", t0), Ok(()));
        }
    }
}

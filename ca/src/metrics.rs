//! Prometheus metrics: one process-wide registry, updated where things happen and written out
//! in the text exposition format (version 0.0.4) by `GET /metrics`.
//!
//! Hand-rolled instead of a metrics crate: a dozen series of three kinds need little code, and
//! every label takes values from a small fixed set (route templates, status codes, error
//! kinds), so no series can grow without bound.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The registry every part of the daemon writes to.
pub(crate) static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::new);

/// Bucket bounds (seconds) for request-scale durations.
const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds (seconds) for the scorer, which takes microseconds.
const SCORING_BUCKETS: &[f64] = &[
    0.000_001, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005,
    0.01,
];
/// Bucket bounds (seconds) for revocation propagation (target: well under 15 s).
const PROPAGATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
];

/// A histogram of durations: cumulative buckets, a sum and a count.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One count per bound (not cumulative here; summed when written), then the overflow.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        if let Some(last) = self.counts.last() {
            cumulative += last.load(Ordering::Relaxed);
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Separates label values inside a series key: a control character no label value has (route
/// templates, methods, codes and kinds are all printable).
const SEP: char = '\u{1f}';

thread_local! {
    /// The key being looked up, reused so that counting a series that exists allocates nothing
    /// (every HTTP request counts one).
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` with the series key of `values`.
fn with_key<R>(values: &[&str], f: impl FnOnce(&str) -> R) -> R {
    KEY.with(|k| {
        let mut k = k.borrow_mut();
        k.clear();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                k.push(SEP);
            }
            k.push_str(v);
        }
        f(&k)
    })
}

/// A series map's entries sorted by key (for a stable exposition), keys split into values.
fn sorted<T>(m: &HashMap<String, T>) -> Vec<(Vec<String>, &T)> {
    let mut rows: Vec<(Vec<String>, &T)> = m
        .iter()
        .map(|(k, v)| (k.split(SEP).map(str::to_owned).collect(), v))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Counters told apart by label values; the label names are fixed per family.
#[derive(Debug)]
pub(crate) struct Counters {
    names: &'static [&'static str],
    values: Mutex<HashMap<String, u64>>,
}

impl Counters {
    fn new(names: &'static [&'static str]) -> Counters {
        Counters {
            names,
            values: Mutex::new(HashMap::new()),
        }
    }

    /// Adds one to the series with these label values (in the order of the names).
    pub(crate) fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Adds `n` to the series with these label values.
    pub(crate) fn add(&self, values: &[&str], n: u64) {
        with_key(values, |key| {
            if let Ok(mut m) = self.values.lock() {
                match m.get_mut(key) {
                    Some(c) => *c += n,
                    None => {
                        m.insert(key.to_owned(), n);
                    }
                }
            }
        });
    }

    fn write(&self, out: &mut String, name: &str) {
        let Ok(m) = self.values.lock() else { return };
        for (values, n) in sorted(&m) {
            let _ = writeln!(out, "{name}{{{}}} {n}", labels(self.names, &values));
        }
    }
}

/// Histograms told apart by label values.
#[derive(Debug)]
pub(crate) struct Histograms {
    names: &'static [&'static str],
    bounds: &'static [f64],
    values: Mutex<HashMap<String, Histogram>>,
}

impl Histograms {
    fn new(names: &'static [&'static str], bounds: &'static [f64]) -> Histograms {
        Histograms {
            names,
            bounds,
            values: Mutex::new(HashMap::new()),
        }
    }

    /// Records one duration in the series with these label values.
    pub(crate) fn observe(&self, values: &[&str], d: Duration) {
        with_key(values, |key| {
            if let Ok(mut m) = self.values.lock() {
                match m.get(key) {
                    Some(h) => h.observe(d),
                    None => {
                        let h = Histogram::new(self.bounds);
                        h.observe(d);
                        m.insert(key.to_owned(), h);
                    }
                }
            }
        });
    }

    fn write(&self, out: &mut String, name: &str) {
        let Ok(m) = self.values.lock() else { return };
        for (values, h) in sorted(&m) {
            h.write(out, name, &labels(self.names, &values));
        }
    }
}

/// `a="x",b="y"`, with values escaped as the exposition format wants.
fn labels(names: &[&str], values: &[String]) -> String {
    let mut s = String::new();
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{n}=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

/// Every series the daemon keeps in memory. Gauges read from the store or the HSM at scrape
/// time are added by the `/metrics` handler.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// HTTP requests by route template, method and status code.
    pub http_requests: Counters,
    /// HTTP latency by route template.
    pub http_seconds: Histograms,
    /// Certificates issued, by channel (`api`, `acme`).
    pub issued: Counters,
    /// Issuance attempts that failed, by channel and problem kind.
    pub issuance_failures: Counters,
    /// Time to issue one certificate (checks, HSM signature, commit), by channel.
    pub issuance_seconds: Histograms,
    /// OCSP requests by outcome (`good`, `revoked`, `unknown`, or the refusal).
    pub ocsp_requests: Counters,
    /// OCSP requests answered from the cache of signed responses.
    pub ocsp_cache_hits: AtomicU64,
    /// OCSP requests that needed a fresh signature.
    pub ocsp_cache_misses: AtomicU64,
    /// HSM signature latency, by key use (`ok` only).
    pub hsm_sign_seconds: Histogram,
    /// HSM operations that failed, by operation and error kind.
    pub hsm_errors: Counters,
    /// From the moment this node learnt of a revocation (its own commit, a change notification
    /// or its poll) until its CRLs carried it; OCSP answers are dropped at the first moment.
    pub revocation_propagation_seconds: Histogram,
    /// Revocations by how they came (`api`, `acme`, `cli`, `kill_switch`, `auto`).
    pub revocations: Counters,
    /// Committed changes this node applied (`source`: `commit` of its own, `notify` from
    /// PostgreSQL, `poll` of the store; `kind`: what changed).
    pub changes: Counters,
    /// Time to score one event against its baseline.
    pub scoring_seconds: Histogram,
    /// Events scored, by the band of their score.
    pub scored_events: Counters,
    /// Webhook delivery attempts, by outcome (`delivered`, `retry`, `failed`).
    pub webhook_attempts: Counters,
    /// Dashboard sign-ins by outcome.
    pub dashboard_logins: Counters,
    /// What the plain HTTP listener refused and cut off.
    pub http_listener: std::sync::Arc<mandate_listener::Stats>,
    /// What the HTTPS listener refused and cut off.
    pub https_listener: std::sync::Arc<mandate_listener::Stats>,
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            http_requests: Counters::new(&["route", "method", "status"]),
            http_seconds: Histograms::new(&["route"], REQUEST_BUCKETS),
            issued: Counters::new(&["channel"]),
            issuance_failures: Counters::new(&["channel", "kind"]),
            issuance_seconds: Histograms::new(&["channel"], REQUEST_BUCKETS),
            ocsp_requests: Counters::new(&["outcome"]),
            ocsp_cache_hits: AtomicU64::new(0),
            ocsp_cache_misses: AtomicU64::new(0),
            hsm_sign_seconds: Histogram::new(REQUEST_BUCKETS),
            hsm_errors: Counters::new(&["operation", "kind"]),
            revocation_propagation_seconds: Histogram::new(PROPAGATION_BUCKETS),
            revocations: Counters::new(&["via"]),
            changes: Counters::new(&["source", "kind"]),
            scoring_seconds: Histogram::new(SCORING_BUCKETS),
            scored_events: Counters::new(&["band"]),
            webhook_attempts: Counters::new(&["outcome"]),
            dashboard_logins: Counters::new(&["outcome"]),
            http_listener: std::sync::Arc::default(),
            https_listener: std::sync::Arc::default(),
        }
    }

    /// The in-memory series in the text exposition format.
    pub(crate) fn render(&self, out: &mut String) {
        let counters: [(&str, &str, &Counters); 10] = [
            (
                "mandate_http_requests_total",
                "HTTP requests by route template, method and status code.",
                &self.http_requests,
            ),
            (
                "mandate_certificates_issued_total",
                "Agent certificates issued, by channel.",
                &self.issued,
            ),
            (
                "mandate_issuance_failures_total",
                "Certificate requests refused or failed, by channel and problem kind.",
                &self.issuance_failures,
            ),
            (
                "mandate_ocsp_requests_total",
                "OCSP requests by outcome.",
                &self.ocsp_requests,
            ),
            (
                "mandate_hsm_errors_total",
                "HSM operations that failed, by operation and error kind.",
                &self.hsm_errors,
            ),
            (
                "mandate_revocations_total",
                "Certificates revoked by this node, by path.",
                &self.revocations,
            ),
            (
                "mandate_changes_total",
                "Committed changes applied to this node's caches and workers, by source and kind.",
                &self.changes,
            ),
            (
                "mandate_scored_events_total",
                "Events scored against a baseline, by risk band of the score.",
                &self.scored_events,
            ),
            (
                "mandate_webhook_attempts_total",
                "Webhook delivery attempts, by outcome.",
                &self.webhook_attempts,
            ),
            (
                "mandate_dashboard_logins_total",
                "Dashboard sign-ins, by outcome.",
                &self.dashboard_logins,
            ),
        ];
        for (name, help, c) in counters {
            header(out, name, help, "counter");
            c.write(out, name);
        }
        let plain: [(&str, &str, &AtomicU64); 2] = [
            (
                "mandate_ocsp_cache_hits_total",
                "OCSP requests answered from the cache of signed responses.",
                &self.ocsp_cache_hits,
            ),
            (
                "mandate_ocsp_cache_misses_total",
                "OCSP requests that needed a fresh signature.",
                &self.ocsp_cache_misses,
            ),
        ];
        for (name, help, c) in plain {
            header(out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        self.render_listeners(out);
        header(
            out,
            "mandate_http_request_duration_seconds",
            "HTTP request latency by route template.",
            "histogram",
        );
        self.http_seconds
            .write(out, "mandate_http_request_duration_seconds");
        header(
            out,
            "mandate_issuance_duration_seconds",
            "Time to issue one agent certificate, by channel.",
            "histogram",
        );
        self.issuance_seconds
            .write(out, "mandate_issuance_duration_seconds");
        let single: [(&str, &str, &Histogram); 3] = [
            (
                "mandate_hsm_sign_duration_seconds",
                "HSM signature latency (successful signatures).",
                &self.hsm_sign_seconds,
            ),
            (
                "mandate_revocation_propagation_seconds",
                "From a revocation known to this node to its CRLs carrying it.",
                &self.revocation_propagation_seconds,
            ),
            (
                "mandate_scoring_duration_seconds",
                "Time to score one event against the agent's baseline.",
                &self.scoring_seconds,
            ),
        ];
        for (name, help, h) in single {
            header(out, name, help, "histogram");
            h.write(out, name, "");
        }
    }
}

impl Metrics {
    /// The listeners' open connections and what they refused or cut off.
    fn render_listeners(&self, out: &mut String) {
        let listeners = [
            ("http", &self.http_listener),
            ("https", &self.https_listener),
        ];
        let name = "mandate_http_connections_open";
        header(out, name, "Connections open now, by listener.", "gauge");
        for (listener, stats) in listeners {
            let open = stats.open.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{listener=\"{listener}\"}} {open}");
        }
        let name = "mandate_http_connections_cut_total";
        header(
            out,
            name,
            "Connections and requests a listener refused or cut off (caps, timeouts, unparsable requests), by listener and reason.",
            "counter",
        );
        for (listener, stats) in listeners {
            for (reason, n) in stats.counters() {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{listener}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
    }
}

/// `# HELP` and `# TYPE` lines of a family.
pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One unlabelled or labelled gauge sample.
pub(crate) fn gauge(out: &mut String, name: &str, label_pairs: &[(&str, &str)], value: f64) {
    let names: Vec<&str> = label_pairs.iter().map(|(n, _)| *n).collect();
    let values: Vec<String> = label_pairs.iter().map(|(_, v)| (*v).to_owned()).collect();
    if names.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", labels(&names, &values));
    }
}

/// Feeds the HSM crate's per-operation reports into the registry.
#[derive(Debug)]
pub(crate) struct HsmObserver;

impl mandate_hsm::Observer for HsmObserver {
    fn signed(&self, elapsed: Duration) {
        METRICS.hsm_sign_seconds.observe(elapsed);
    }

    fn failed(&self, operation: &'static str, error: &mandate_hsm::HsmError) {
        METRICS.hsm_errors.inc(&[operation, error.kind()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_escape_labels() {
        let m = Metrics::new();
        m.scoring_seconds.observe(Duration::from_micros(3));
        m.scoring_seconds.observe(Duration::from_micros(30));
        m.scoring_seconds.observe(Duration::from_secs(1));
        m.http_requests.inc(&["/v1/x\"y", "GET", "200"]);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("mandate_scoring_duration_seconds_bucket{le=\"0.000005\"} 1\n"));
        assert!(out.contains("mandate_scoring_duration_seconds_bucket{le=\"0.00005\"} 2\n"));
        assert!(out.contains("mandate_scoring_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(out.contains("mandate_scoring_duration_seconds_count 3\n"));
        assert!(out.contains(
            "mandate_http_requests_total{route=\"/v1/x\\\"y\",method=\"GET\",status=\"200\"} 1\n"
        ));
        assert!(out.contains("# TYPE mandate_hsm_sign_duration_seconds histogram\n"));
    }
}

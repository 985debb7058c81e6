//! One v1 dialect, checked over the whole API: every list walked with the same cursor loop,
//! every time field read with one RFC 3339 parser, no time in another unit, scores rounded.

use serde_json::{Value, json};

use crate::harness::{Ca, full_mandate};

/// Names of fields that hold a time.
fn is_time_field(key: &str) -> bool {
    key.ends_with("_at")
        || matches!(
            key,
            "timestamp" | "not_before" | "not_after" | "expires" | "at"
        )
}

/// Every time field is RFC 3339 UTC (or null); no field counts time in other units; scores
/// have at most 4 decimals and no negative zero. Returns what breaks, by path.
fn offences(path: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = format!("{path}.{k}");
                if is_time_field(k) && !x.is_null() {
                    let ok = x.as_str().is_some_and(|s| {
                        s.ends_with('Z')
                            && time::OffsetDateTime::parse(
                                s,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .is_ok()
                    });
                    if !ok {
                        out.push(format!("{here}: {x} is not RFC 3339 UTC"));
                    }
                }
                if k.ends_with("_ms") || k.ends_with("_unix") || k.ends_with("_secs_since_epoch") {
                    out.push(format!("{here}: a time in another unit"));
                }
                if k.contains("score")
                    && let Some(f) = x.as_f64()
                {
                    let text = x.to_string();
                    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
                    if decimals > 4 || (f == 0.0 && text.starts_with('-')) {
                        out.push(format!("{here}: score {text} not rounded to 4 decimals"));
                    }
                }
                offences(&here, x, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                offences(&format!("{path}[{i}]"), x, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_list_pages_alike_and_every_time_is_rfc3339() {
    let ca = Ca::start().await;
    ca.approved_agent("dialect-bot", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let issued = ca.certify_new_key("dialect-bot", work.path()).await;
    let serial = issued.body["serial_number"].as_str().unwrap().to_owned();
    let second = ca.certify_new_key("dialect-bot", work.path()).await;
    let revoked = second.body["serial_number"].as_str().unwrap().to_owned();
    let auditor = ca.auditor().await;
    let admin = ca.d.admin_key();
    let mut answers: Vec<(String, Value)> = vec![
        ("certify".into(), issued.body.clone()),
        ("certify".into(), second.body.clone()),
    ];
    let posts = [
        (
            ca.operator.clone(),
            format!("/v1/certificates/{revoked}/revoke"),
            json!({"reason": "keyCompromise"}),
        ),
        (
            ca.operator.clone(),
            "/v1/agents/dialect-bot/eab".into(),
            json!({}),
        ),
        (
            ca.operator.clone(),
            "/v1/agents/dialect-bot/preflight".into(),
            json!({"action": "trade_execution", "market": "BTC_EUR", "size": "10", "currency": "EUR"}),
        ),
        (
            ca.operator.clone(),
            "/v1/events".into(),
            json!({"agent_id": "dialect-bot", "action": "trade_execution", "market": "BTC_EUR", "size": "10", "currency": "EUR"}),
        ),
    ];
    for (key, path, body) in posts {
        let r = ca.d.post(&key, &path, &body).await;
        assert!(r.status.is_success(), "{path}: {r:?}");
        answers.push((path, r.body));
    }
    // Every list: the one cursor loop, page size 1 so that the cursor is used.
    for (key, path) in [
        (&admin, "/v1/organizations?limit=1"),
        (&admin, "/v1/people?limit=1"),
        (&admin, "/v1/api-keys?limit=1"),
        (&ca.operator, "/v1/agents?limit=1"),
        (&ca.operator, "/v1/agents/dialect-bot/certificates?limit=1"),
        (&ca.operator, "/v1/agents/dialect-bot/mandates"),
        (&ca.operator, "/v1/agents/dialect-bot/baseline"),
        (&ca.operator, "/v1/agents/dialect-bot/overrides"),
        (&auditor, "/v1/audit?limit=1"),
        (&ca.operator, "/v1/incidents?limit=1"),
        (&ca.operator, "/v1/webhooks?limit=1"),
    ] {
        let items = ca.d.list_all(key, path).await;
        answers.push((path.to_owned(), Value::Array(items)));
    }
    for (key, path) in [
        (&ca.operator, "/v1/agents/dialect-bot".to_owned()),
        (&ca.operator, format!("/v1/certificates/{serial}")),
        (&ca.operator, format!("/v1/certificates/{revoked}")),
        (&ca.operator, "/v1/agents/dialect-bot/risk-score".to_owned()),
        (&ca.operator, "/v1/agents/dialect-bot/usage".to_owned()),
        (&admin, "/v1/organizations/acme-trading".to_owned()),
    ] {
        let r = ca.d.get(key, &path).await;
        assert!(r.status.is_success(), "{path}: {r:?}");
        answers.push((path, r.body));
    }
    let mut found = Vec::new();
    for (path, body) in &answers {
        offences(path, body, &mut found);
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[tokio::test]
async fn the_daemon_s_address_in_a_browser_leads_to_the_dashboard() {
    let d = crate::harness::Daemon::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(format!("{}/", d.base)).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()["location"], "/dashboard");
    crate::contract::assert_documented("GET", "/", 307, "", &serde_json::Value::Null);
}

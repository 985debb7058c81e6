//! The dashboard in a real browser (Debian's Chromium driven through ChromeDriver), and the
//! Prometheus `/metrics` scraped and parsed; against the real daemon on loopback.
//! Screenshots land in `target/tmp/browser-artifacts/`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::behaviour::{DAY, day, event, events, history, midnight, open_mandate};
use crate::harness::{Ca, Daemon, full_mandate};
use crate::webdriver::Browser;

const WAIT: Duration = Duration::from_secs(15);

fn artifacts(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("browser-artifacts")
        .join(test)
}

/// Signs in through the form with `key`; the page after it must show `role`.
async fn sign_in(b: &Browser, base: &str, key: &str, role: &str) {
    b.goto(&format!("{base}/dashboard")).await;
    // Not signed in: the dashboard sends the browser to the sign-in form.
    b.wait_for("#api_key", WAIT).await.send_keys(key).await;
    b.find("#sign-in").await.click().await;
    b.wait_until_text("#who-role", role, WAIT).await;
}

/// Signs out and waits for the sign-in form it lands on.
async fn sign_out(b: &Browser) {
    b.find("#sign-out").await.click().await;
    b.wait_for("#api_key", WAIT).await;
}

async fn text(b: &Browser, css: &str) -> String {
    b.find(css).await.text().await
}

/// The browser's session cookie as a `Cookie` header value; it must be HttpOnly and
/// SameSite=Strict.
async fn session_cookie(b: &Browser) -> String {
    let cookie = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "mandate_session")
        .expect("session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    format!("mandate_session={}", cookie["value"].as_str().unwrap())
}

/// Scrolls the page so that `css` is at the top (screenshots show the viewport).
async fn scroll_to(b: &Browser, css: &str) {
    b.execute(
        "document.querySelector(arguments[0]).scrollIntoView();",
        vec![json!(css)],
    )
    .await;
}

/// Posts a form built in the page, as a forged or replayed submission would come from it, and
/// waits for the page it lands on.
async fn post_form_from_page(b: &Browser, action: &str, fields: Value) {
    b.execute(
        "const f = document.createElement('form');
         f.method = 'post'; f.action = arguments[0];
         for (const [k, v] of Object.entries(arguments[1])) {
             const i = document.createElement('input');
             i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
         }
         document.body.appendChild(f); f.submit();",
        vec![json!(action), fields],
    )
    .await;
    b.wait_for("section.card h1", WAIT).await;
}

#[tokio::test]
async fn compliance_approves_watches_a_rogue_agent_get_revoked_and_an_operator_pulls_the_kill_switch()
 {
    let ca = Ca::start_with_config(
        "log_format = \"json\"\n[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n",
    )
    .await;
    let base = ca.d.base.clone();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    // rogue-bot waits for approval; other-bot trades under an approved mandate; waiting-bot
    // stays pending (the operator must not be able to approve it).
    let r = ca.register("rogue-bot", open_mandate()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    ca.approved_agent("other-bot", full_mandate()).await;
    ca.certify_new_key("other-bot", dir).await;
    let r = ca.register("waiting-bot", full_mandate()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");

    let b = Browser::start(&artifacts("dashboard")).await;

    // A compliance officer signs in and approves rogue-bot's mandate.
    sign_in(&b, &base, &ca.compliance, "compliance").await;
    assert_eq!(text(&b, "#pending-count").await, "2");
    b.screenshot("01-compliance-agents").await;
    b.goto(&format!("{base}/dashboard/approvals")).await;
    b.find("tr[data-agent='rogue-bot'] button.approve")
        .await
        .click()
        .await;
    b.wait_until_text("#notice", "Mandate approved", WAIT).await;
    assert!(text(&b, "#mandate h2").await.contains("approved"));
    b.screenshot("02-mandate-approved").await;
    let a = ca.d.get(&ca.operator, "/v1/agents/rogue-bot").await;
    assert_eq!(a.body["mandate_status"], "approved", "{a:?}");

    // A change to other-bot's mandate: the approvals page sends the officer to read it, and
    // the agent page shows each change, the widened limit marked, before the button.
    let mut v2 = full_mandate();
    v2["maxTransactionSize"] = json!({"amount": "80000", "currency": "EUR"});
    v2["allowedMarkets"] = json!(["BTC_EUR"]);
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/other-bot/mandate",
            &json!({"mandate": v2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    b.goto(&format!("{base}/dashboard/approvals")).await;
    assert!(
        b.try_find("tr[data-agent='other-bot'] button.approve")
            .await
            .is_none()
    );
    b.find("tr[data-agent='other-bot'] a.review")
        .await
        .click()
        .await;
    b.wait_until_text("#mandate-changes", "maxTransactionSize", WAIT)
        .await;
    let changes = text(&b, "#mandate-changes").await;
    assert!(
        changes.contains("50000 EUR") && changes.contains("80000 EUR"),
        "{changes}"
    );
    assert!(
        text(&b, "tr.change-widened")
            .await
            .contains("maxTransactionSize")
    );
    assert!(
        text(&b, "tr.change-narrowed")
            .await
            .contains("allowedMarkets")
    );
    b.screenshot("02b-mandate-changes").await;
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/other-bot/reject",
            &json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // The bot is certified, trades for a week, and its baseline is learnt; compliance
    // approves the baseline in the browser.
    ca.certify_new_key("rogue-bot", dir).await;
    events(&ca, &ca.operator, Value::Array(history("rogue-bot"))).await;
    let r =
        ca.d.post(&ca.operator, "/v1/agents/rogue-bot/baseline", &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    b.goto(&format!("{base}/dashboard/approvals")).await;
    b.find("#pending-baselines button.approve-baseline")
        .await
        .click()
        .await;
    b.wait_until_text("#notice", "Baseline approved", WAIT)
        .await;

    // The rogue's risk climbs while the officer watches its page.
    b.goto(&format!("{base}/dashboard/agents/rogue-bot")).await;
    assert_eq!(b.find_all("#risk-chart circle").await.len(), 0);
    // What it used today, beside its limits.
    assert!(text(&b, "#usage").await.contains("Daily volume"));
    let yesterday = midnight() - DAY;
    let steps = [
        // An ordinary trade: low.
        (
            event(
                "rogue-bot",
                yesterday + 10 * 3600,
                "100",
                "BTC_EUR",
                "eu-west-1",
                true,
            ),
            "low",
        ),
        // At 03:00, an hour it never trades: past the warning threshold.
        (
            event(
                "rogue-bot",
                yesterday + 3 * 3600,
                "100",
                "BTC_EUR",
                "eu-west-1",
                true,
            ),
            "high",
        ),
        // Fifty times its usual size: past the auto-revoke threshold.
        (
            event(
                "rogue-bot",
                yesterday + 11 * 3600,
                "5000",
                "BTC_EUR",
                "eu-west-1",
                true,
            ),
            "high",
        ),
    ];
    let mut scores = Vec::new();
    for (i, (e, band)) in steps.into_iter().enumerate() {
        let r = events(&ca, &ca.operator, e).await;
        let score = r["events"][0]["score"].as_f64().unwrap();
        scores.push(score);
        let points = (i + 1).to_string();
        b.wait_for_after_reload("#risk-chart-points", &points, WAIT)
            .await;
        assert!(text(&b, "#risk-band").await.contains(band), "step {i}");
        scroll_to(&b, "#risk").await;
        b.screenshot(&format!("03-risk-step-{}", i + 1)).await;
    }
    assert!(
        scores[0] < 0.5 && scores[1] >= 0.75 && scores[2] >= 0.85,
        "{scores:?}"
    );
    // Revoked with no human in the loop: the page shows it.
    b.wait_for_after_reload("h1", "suspended", WAIT).await;
    assert!(
        text(&b, "#certificates .cert-status")
            .await
            .contains("revoked")
    );
    assert!(
        text(&b, "#agent-incidents")
            .await
            .contains("auto revocation")
    );
    let chart = b.find("#risk-chart").await;
    assert_eq!(chart.attr("data-points").await.as_deref(), Some("3"));
    assert_eq!(
        b.find("#auto-revoke-line")
            .await
            .attr("data-threshold")
            .await
            .as_deref(),
        Some("0.85")
    );
    assert_eq!(
        b.find("#warning-line")
            .await
            .attr("data-threshold")
            .await
            .as_deref(),
        Some("0.75")
    );
    assert!(text(&b, "#contributions").await.contains("size"));
    b.screenshot("04-rogue-revoked").await;
    scroll_to(&b, "#risk").await;
    b.screenshot("04-rogue-revoked-risk").await;
    let cert =
        ca.d.get(&ca.operator, "/v1/agents/rogue-bot/certificates")
            .await;
    assert_eq!(cert.body["items"][0]["status"], "revoked", "{cert:?}");

    // The incidents page explains it; the revocations page lists it.
    b.goto(&format!("{base}/dashboard/incidents")).await;
    assert!(text(&b, "table.incidents").await.contains("size"));
    b.screenshot("05-incidents").await;

    // Not reinstated while its auto-revocation incident is open; resolved, it is.
    b.goto(&format!("{base}/dashboard/agents/rogue-bot")).await;
    b.find("#reinstate-agent").await.click().await;
    b.wait_until_text("section.card h1", "409", WAIT).await;
    assert!(text(&b, ".problem").await.contains("resolve it first"));
    b.goto(&format!("{base}/dashboard/incidents?status=open"))
        .await;
    let row = b.find("table.incidents tbody tr").await;
    assert!(row.text().await.contains("auto revocation"));
    row.find("input[name=resolution]")
        .await
        .send_keys("Fat-finger order size; limits reviewed with the desk")
        .await;
    row.find("form[action$='/resolve'] button")
        .await
        .click()
        .await;
    b.wait_until_text("#notice", "Incident resolved", WAIT)
        .await;
    b.goto(&format!("{base}/dashboard/agents/rogue-bot")).await;
    b.find("#reinstate-agent").await.click().await;
    b.wait_until_text("#notice", "Agent reinstated", WAIT).await;
    assert!(text(&b, "h1").await.contains("active"));
    let a = ca.d.get(&ca.operator, "/v1/agents/rogue-bot").await;
    assert_eq!(a.body["status"], "active", "{a:?}");

    // The compliance report downloads with the session, as the signed JSON bundle.
    let session = session_cookie(&b).await;
    let (from, to) = (day(midnight() - 10 * DAY), day(midnight()));
    let report = reqwest::Client::new()
        .get(format!(
            "{base}/dashboard/agents/rogue-bot/report?from={from}&to={to}&format=json"
        ))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    assert!(
        report.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("mandate-report-rogue-bot.json")
    );
    let bundle: Value = report.json().await.unwrap();
    assert!(bundle.to_string().contains("auto_revocation"));

    // The officer signs out; an operator signs in.
    b.find("#sign-out").await.click().await;
    b.wait_for("#api_key", WAIT).await;
    b.goto(&format!("{base}/dashboard")).await;
    b.wait_for("#api_key", WAIT).await;
    sign_in(&b, &base, &ca.operator, "operator").await;

    // No approve button for an operator, and no audit log in the menu.
    b.goto(&format!("{base}/dashboard/agents/waiting-bot"))
        .await;
    assert!(b.try_find("#approve-mandate").await.is_none());
    assert!(b.try_find("#no-approve").await.is_some());
    assert!(b.try_find("a[href='/dashboard/audit']").await.is_none());
    b.screenshot("06-operator-no-approve").await;
    // A forged approval with the operator's own valid token: the role rule refuses it.
    let csrf = b
        .execute(
            "return document.querySelector('input[name=csrf]').value;",
            vec![],
        )
        .await;
    post_form_from_page(
        &b,
        "/dashboard/agents/waiting-bot/approve",
        json!({"csrf": csrf, "version": "1"}),
    )
    .await;
    assert!(text(&b, "section.card h1").await.starts_with("403"));
    assert!(text(&b, ".problem").await.contains("forbidden"));
    b.screenshot("07-forged-approve-refused").await;
    // Without the token, even a permitted action is refused.
    b.goto(&format!("{base}/dashboard/agents/other-bot")).await;
    post_form_from_page(
        &b,
        "/dashboard/agents/other-bot/kill",
        json!({"csrf": "0", "reason": "forged", "confirm": "other-bot"}),
    )
    .await;
    assert!(text(&b, "section.card h1").await.starts_with("403"));
    assert!(text(&b, ".problem").await.contains("csrf"));
    let a = ca.d.get(&ca.operator, "/v1/agents/waiting-bot").await;
    assert_eq!(a.body["mandate_status"], "pending_approval", "{a:?}");
    let a = ca.d.get(&ca.operator, "/v1/agents/other-bot").await;
    assert_eq!(a.body["status"], "active", "{a:?}");

    // The same session's cookie from another origin: refused before anything happens.
    let session = session_cookie(&b).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forged = no_redirects
        .post(format!("{base}/dashboard/agents/other-bot/kill"))
        .header("cookie", &session)
        .header("origin", "http://evil.example")
        .form(&[
            ("csrf", csrf.as_str().unwrap()),
            ("reason", "x"),
            ("confirm", "other-bot"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // An operator may not download compliance reports.
    let r = no_redirects
        .get(format!(
            "{base}/dashboard/agents/rogue-bot/report?from=2026-01-01&to=2026-01-02"
        ))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The kill switch, with its confirmation step: a wrong confirmation changes nothing.
    b.goto(&format!("{base}/dashboard/agents/other-bot")).await;
    b.find("#kill-switch").await.click().await;
    b.wait_for("#confirm-kill", WAIT).await;
    assert_eq!(text(&b, "#valid-certs").await, "1");
    b.find("#reason")
        .await
        .send_keys("Leaked key reported by the desk")
        .await;
    b.find("#confirm").await.send_keys("other-bo").await;
    b.screenshot("08-kill-confirm").await;
    b.find("#confirm-kill").await.click().await;
    b.wait_until_text("section.card h1", "400", WAIT).await;
    let a = ca.d.get(&ca.operator, "/v1/agents/other-bot").await;
    assert_eq!(a.body["status"], "active", "{a:?}");
    b.back().await;
    b.wait_for("#confirm-kill", WAIT).await;
    let confirm = b.find("#confirm").await;
    confirm.clear().await;
    confirm.send_keys("other-bot").await;
    b.find("#confirm-kill").await.click().await;
    b.wait_until_text("#notice", "Kill switch pulled", WAIT)
        .await;
    assert!(text(&b, "h1").await.contains("suspended"));
    assert!(
        text(&b, "#certificates .cert-status")
            .await
            .contains("revoked")
    );
    b.screenshot("09-killed").await;
    let a = ca.d.get(&ca.operator, "/v1/agents/other-bot").await;
    assert_eq!(a.body["status"], "suspended", "{a:?}");
    b.goto(&format!("{base}/dashboard/revocations")).await;
    assert!(
        text(&b, "#kill-switches")
            .await
            .contains("Leaked key reported by the desk")
    );
    assert_eq!(b.find_all("#revoked tbody tr").await.len(), 2);
    b.screenshot("10-revocations").await;

    // The audit log records both sign-ins and the kill switch, and verifies.
    let auditor = ca.auditor().await;
    b.find("#sign-out").await.click().await;
    b.wait_for("#api_key", WAIT).await;
    sign_in(&b, &base, &auditor, "auditor").await;
    b.goto(&format!("{base}/dashboard/audit")).await;
    assert!(text(&b, "#audit-status").await.contains("ok"));
    let records = text(&b, "#audit-records").await;
    assert!(records.contains("dashboard.signed_in"), "{records}");
    assert!(records.contains("kill_switch"), "{records}");
    b.screenshot("11-audit").await;
}

/// A scrape in the exposition format: `name{labels} value` per sample.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                series.to_owned(),
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}

fn sample(all: &[(String, f64)], series: &str) -> f64 {
    all.iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no sample {series}"))
}

#[tokio::test]
async fn metrics_expose_issuance_ocsp_hsm_revocation_scoring_webhooks_and_pools() {
    let d = Daemon::start_with_config(
        "log_format = \"json\"\n[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n",
    )
    .await;
    let ca = Ca::on(d).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    ca.approved_agent("metric-bot", open_mandate()).await;
    let cert = ca.certify_new_key("metric-bot", dir).await;
    let serial = cert.body["serial_number"].as_str().unwrap().to_owned();
    std::fs::write(
        dir.join("leaf.pem"),
        cert.body["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    std::fs::write(
        dir.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    let int = dir.join("int.pem");
    // Two OCSP requests: the second one is a cache hit.
    for _ in 0..2 {
        let s = crate::harness::ocsp_status(
            &ca.d.base,
            &int,
            &dir.join("leaf.pem"),
            &dir.join("root.pem"),
            &int,
        );
        assert_eq!(s, "good");
    }
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{}/hook", crate::harness::free_port())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    events(&ca, &ca.operator, Value::Array(history("metric-bot"))).await;
    ca.d.post(&ca.operator, "/v1/agents/metric-bot/baseline", &json!({}))
        .await;
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/metric-bot/baseline/approve",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let yesterday = midnight() - DAY;
    events(
        &ca,
        &ca.operator,
        event(
            "metric-bot",
            yesterday + 10 * 3600,
            "100",
            "BTC_EUR",
            "eu-west-1",
            true,
        ),
    )
    .await;
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/certificates/{serial}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // Who may scrape: no key 401, an agent key 403, an auditor key (what Prometheus gets) 200.
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", ca.d.base);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let agent_key = ca.d.key("agent", Some("metric-bot")).await;
    let r = http.get(&url).bearer_auth(&agent_key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let auditor = ca.auditor().await;

    // The CRL carrying the revocation is published within the deadline: its propagation is
    // then in the histogram.
    let deadline = std::time::Instant::now() + WAIT;
    let text = loop {
        let r = http
            .get(&url)
            .bearer_auth(&auditor)
            .header("x-request-id", "scrape-42")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-request-id"], "scrape-42");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let t = r.text().await.unwrap();
        if sample(&samples(&t), "mandate_revocation_propagation_seconds_count") >= 1.0 {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no propagation sample:\n{t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let all = samples(&text);
    assert_eq!(
        sample(&all, "mandate_certificates_issued_total{channel=\"api\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &all,
            "mandate_issuance_duration_seconds_count{channel=\"api\"}"
        ),
        1.0
    );
    assert!(
        sample(
            &all,
            "mandate_issuance_duration_seconds_sum{channel=\"api\"}"
        ) > 0.0
    );
    assert_eq!(
        sample(&all, "mandate_ocsp_requests_total{outcome=\"good\"}"),
        1.0
    );
    assert_eq!(
        sample(&all, "mandate_ocsp_requests_total{outcome=\"cached\"}"),
        1.0
    );
    assert_eq!(sample(&all, "mandate_ocsp_cache_hits_total"), 1.0);
    assert_eq!(sample(&all, "mandate_ocsp_cache_misses_total"), 1.0);
    assert!(sample(&all, "mandate_hsm_sign_duration_seconds_count") >= 3.0);
    assert_eq!(sample(&all, "mandate_revocations_total{via=\"api\"}"), 1.0);
    assert_eq!(sample(&all, "mandate_scoring_duration_seconds_count"), 1.0);
    assert_eq!(
        sample(&all, "mandate_scored_events_total{band=\"low\"}"),
        1.0
    );
    assert!(sample(&all, "mandate_webhook_backlog{kind=\"pending_deliveries\"}") >= 0.0);
    assert_eq!(
        sample(&all, "mandate_db_pool_max_connections{pool=\"writer\"}"),
        1.0
    );
    assert!(
        sample(
            &all,
            "mandate_db_pool_connections{pool=\"reader\",state=\"idle\"}"
        ) >= 0.0
    );
    assert_eq!(sample(&all, "mandate_hsm_session_recoveries_total"), 0.0);
    assert!(
        sample(
            &all,
            "mandate_http_requests_total{route=\"/v1/agents/{id}/certify\",method=\"POST\",status=\"201\"}"
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &all,
            "mandate_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"}"
        ),
        1.0
    );
    // Histogram buckets are cumulative and end at the count.
    let buckets: Vec<f64> = all
        .iter()
        .filter(|(s, _)| s.starts_with("mandate_hsm_sign_duration_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        buckets.last().copied(),
        Some(sample(&all, "mandate_hsm_sign_duration_seconds_count"))
    );

    // An independent parser reads the whole scrape: Prometheus' own python client.
    let file = dir.join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
             fams = {f.name: f.type for f in p(open(sys.argv[1]).read())}\n\
             print(len(fams), fams['mandate_hsm_sign_duration_seconds'], fams['mandate_webhook_backlog'])",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.trim().ends_with("histogram gauge"), "{printed}");

    // JSON log lines carry the request id of the request they were written for.
    let log = ca.d.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 5, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"].as_str().is_some()
                && l["fields"]["message"] == "certificate revoked"),
        "{log}"
    );
    // A request id the client chose is kept only if it is sane.
    let r = http
        .get(format!("{}/healthz", ca.d.base))
        .header("x-request-id", "bad id\"")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 24, "{id}");
}

#[tokio::test]
async fn the_agents_page_pages_past_a_hundred_and_searches_by_id_or_name() {
    let ca = Ca::start().await;
    // 105 agents: a full first page and five on the second; one with a name to search for.
    for i in 0..105 {
        let id = format!("bot-{i:03}");
        let mut mandate = full_mandate();
        mandate["agentId"] = json!(id);
        let name = if i == 104 {
            "Desk Gamma 100% Alpha".to_owned()
        } else {
            format!("Agent {id}")
        };
        let r =
            ca.d.post(
                &ca.operator,
                "/v1/agents",
                &json!({"agent_id": id, "name": name, "mandate": mandate}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    }
    let base = ca.d.base.clone();
    let b = Browser::start(&artifacts("dashboard-paging")).await;
    sign_in(&b, &base, &ca.compliance, "compliance").await;
    let first = rows(&b).await;
    assert_eq!(first.len(), 100);
    assert_eq!(first[0], "bot-000");
    assert_eq!(first[99], "bot-099");
    // Every registered agent waits: the tile says more than a page.
    assert_eq!(text(&b, "#pending-count").await, "100+");
    b.find("#next-page").await.click().await;
    b.wait_for("#first-page", WAIT).await;
    let second = rows(&b).await;
    assert_eq!(
        second,
        ["bot-100", "bot-101", "bot-102", "bot-103", "bot-104"]
    );
    assert!(
        b.try_find("#next-page").await.is_none(),
        "no page after the last"
    );
    b.screenshot("second-page").await;

    // Search by name (the % is a character, not a wildcard) and by part of an id.
    b.goto(&format!("{base}/dashboard")).await;
    b.wait_for("#agent-search input[name=q]", WAIT)
        .await
        .send_keys("100% alpha")
        .await;
    b.find("#agent-search button").await.click().await;
    b.wait_until("one match", WAIT, async || rows(&b).await.len() == 1)
        .await;
    assert_eq!(rows(&b).await, ["bot-104"]);
    b.goto(&format!("{base}/dashboard?q=BOT-10")).await;
    b.wait_for("#agents", WAIT).await;
    assert_eq!(
        rows(&b).await,
        ["bot-100", "bot-101", "bot-102", "bot-103", "bot-104"]
    );
    b.goto(&format!("{base}/dashboard?q=nothing-like-this"))
        .await;
    b.wait_for("#no-match", WAIT).await;

    // The whole list, not a page of it, as CSV; and as searched.
    let csv = |path: &'static str| {
        b.async_execute(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.text().then(t => done([r.status,
                 r.headers.get('content-type'), r.headers.get('content-disposition'), t])));",
            vec![json!(path)],
        )
    };
    let all = csv("/dashboard/export/agents.csv").await;
    assert_eq!(all[0], 200, "{all}");
    assert_eq!(all[1], "text/csv; charset=utf-8");
    assert_eq!(all[2], "attachment; filename=\"mandate-agents.csv\"");
    let text = all[3].as_str().unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 106, "a header and 105 agents");
    assert!(
        lines[0].starts_with("agent_id,name,organization,status"),
        "{}",
        lines[0]
    );
    assert!(
        lines[105].starts_with("bot-104,Desk Gamma 100% Alpha,acme-trading,"),
        "{}",
        lines[105]
    );
    let some = csv("/dashboard/export/agents.csv?q=100%25").await;
    assert_eq!(
        some[3].as_str().unwrap().matches("\r\n").count(),
        2,
        "{some}"
    );
    assert_eq!(csv("/dashboard/export/nothing.csv").await[0], 404);

    // Incidents page too: 101 of bot-000's, 100 a page, filtered by agent.
    let values: Vec<String> = (0..101)
        .map(|i| {
            format!(
                "('bot-000', 'risk_warning', 'open', 0.8, 0.75, '[]', {})",
                1_000 + i
            )
        })
        .collect();
    crate::harness::exec_sql(
        &ca.d,
        &format!(
            "INSERT INTO incidents (agent_id, kind, status, score, threshold, contributions,
                 created_at_ms) VALUES {}",
            values.join(", ")
        ),
        false,
    );
    let incidents = async || {
        b.execute(
            "return document.querySelectorAll('table.incidents tbody tr[data-incident]').length;",
            vec![],
        )
        .await
    };
    b.goto(&format!("{base}/dashboard/incidents")).await;
    b.wait_for("table.incidents", WAIT).await;
    assert_eq!(incidents().await, json!(100));
    b.find("#next-page").await.click().await;
    b.wait_for("#first-page", WAIT).await;
    assert_eq!(incidents().await, json!(1));
    b.goto(&format!("{base}/dashboard/incidents?agent=bot-001"))
        .await;
    b.wait_for("#incident-search", WAIT).await;
    assert_eq!(incidents().await, json!(0));

    // The approvals page lists every pending mandate, not those among the first agents only.
    b.goto(&format!("{base}/dashboard/approvals")).await;
    b.wait_for("#pending-mandates", WAIT).await;
    assert_eq!(b.find_all("#pending-mandates tbody tr").await.len(), 100);

    // The audit log (CA staff) pages back from the newest hundred records.
    let auditor = ca.auditor().await;
    sign_out(&b).await;
    sign_in(&b, &base, &auditor, "auditor").await;
    b.goto(&format!("{base}/dashboard/audit")).await;
    b.wait_for("#audit-records", WAIT).await;
    let seqs = async || -> Vec<i64> {
        let v = b
            .execute(
                "return Array.from(document.querySelectorAll('#audit-records tbody tr'))
                     .map(r => Number(r.cells[0].textContent));",
                vec![],
            )
            .await;
        serde_json::from_value(v).unwrap_or_default()
    };
    let newest = seqs().await;
    assert_eq!(newest.len(), 100, "{newest:?}");
    assert!(b.try_find("#newer-page").await.is_none());
    b.find("#older-page").await.click().await;
    b.wait_for("#newer-page", WAIT).await;
    let older = seqs().await;
    assert!(!older.is_empty() && older.len() <= 100, "{older:?}");
    assert_eq!(
        older.last(),
        Some(&1),
        "back to the first record: {older:?}"
    );
    assert!(b.try_find("#older-page").await.is_none());
    assert!(
        older.iter().max() < newest.iter().min(),
        "{older:?} / {newest:?}"
    );
}

/// The agent ids of the agents table, in order (read in one script: a page that is being
/// replaced cannot leave stale elements half-way).
async fn rows(b: &Browser) -> Vec<String> {
    let ids = b
        .execute(
            "return Array.from(document.querySelectorAll('#agents tbody tr'))
                 .map(r => r.dataset.agent);",
            vec![],
        )
        .await;
    serde_json::from_value(ids).unwrap_or_default()
}

#[tokio::test]
async fn pages_update_by_themselves_and_webhooks_are_registered_and_disabled_from_the_dashboard() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(
        dir.path().join("mandate.toml"),
        crate::harness::test_config(""),
    )
    .unwrap();
    let db_url = mandate_testkit::database_url(dir.path());
    let env = vec![("MANDATE_DASHBOARD_LIVE_MS".to_owned(), "300".to_owned())];
    let ca = Ca::on(Daemon::start_on(dir, db_url, env).await).await;
    ca.approved_agent("live-bot", full_mandate()).await;
    let base = ca.d.base.clone();
    let b = Browser::start(&artifacts("dashboard-live")).await;
    sign_in(&b, &base, &ca.operator, "operator").await;
    assert_eq!(text(&b, "#open-incidents").await, "0");
    // A mark only this page load carries: it survives only if the page is not reloaded.
    b.execute("window.__sameLoad = 42;", vec![]).await;

    // A breach arrives through the API; the open page shows its incident by itself.
    let breach = json!({"agent_id": "live-bot", "action": "trade_execution",
        "market": "DOGE_USD", "size": "60000", "currency": "EUR",
                     "counterparty": "exchange_a", "region": "eu-west-1"});
    let r = ca.d.post(&ca.operator, "/v1/events", &breach).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    b.wait_until_text("#open-incidents", "1", WAIT).await;
    b.wait_until_text("#agents tr[data-agent=live-bot]", "suspended", WAIT)
        .await;
    assert_eq!(
        b.execute("return window.__sameLoad;", vec![]).await,
        json!(42)
    );
    assert!(text(&b, "#live").await.starts_with("updated"));

    // Events are listed by when they happened: one reported late, an hour old, comes after.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let late = json!({"agent_id": "live-bot", "action": "data_access", "timestamp": now - 3600});
    let r = ca.d.post(&ca.operator, "/v1/events", &late).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let late_id = r.body["events"][0]["id"].as_i64().unwrap();
    b.goto(&format!("{base}/dashboard/agents/live-bot")).await;
    b.wait_for("#events tbody tr", WAIT).await;
    let order = b
        .execute(
            "return Array.from(document.querySelectorAll('#events tbody tr'))
                 .map(r => Number(r.dataset.event));",
            vec![],
        )
        .await;
    let order: Vec<i64> = serde_json::from_value(order).unwrap();
    assert_eq!(order.len(), 2, "{order:?}");
    assert_eq!(order[1], late_id, "the older event last: {order:?}");

    // The operator registers an endpoint; its secret is shown once.
    b.goto(&format!("{base}/dashboard/webhooks")).await;
    b.wait_for("#no-webhooks", WAIT).await;
    b.find("#new-webhook summary").await.click().await;
    b.find("#new-webhook input[name=url]")
        .await
        .send_keys("http://127.0.0.1:9/hook")
        .await;
    b.find("#new-webhook input[name=events]")
        .await
        .send_keys("incident.opened, certificate.revoked")
        .await;
    b.find("#create-webhook").await.click().await;
    let secret = b.wait_for("#webhook-secret", WAIT).await.text().await;
    assert!(secret.len() >= 32, "{secret}");
    // The page answers a form: it keeps the secret (it is not refreshed from its address).
    assert!(b.try_find("main [data-live=off]").await.is_some());
    b.screenshot("webhook-created").await;
    let hooks = ca.d.get(&ca.operator, "/v1/webhooks").await;
    let hook = &hooks.body["items"][0];
    assert_eq!(hook["url"], "http://127.0.0.1:9/hook", "{hooks:?}");
    assert_eq!(
        hook["events"],
        json!(["incident.opened", "certificate.revoked"])
    );
    assert_eq!(hook["operator"], "acme-trading");
    assert!(hook.get("secret").is_none(), "never listed again");

    // ... and disables it.
    b.find("#webhook-link").await.click().await;
    b.wait_until_text("#webhook-state", "active", WAIT).await;
    b.find("#disable-webhook").await.click().await;
    b.wait_until_text("#notice", "disabled", WAIT).await;
    b.wait_until_text("#webhook-state", "disabled", WAIT).await;
    assert!(b.try_find("#disable-webhook").await.is_none());
    let id = hook["id"].as_str().unwrap();
    let one = ca.d.get(&ca.operator, &format!("/v1/webhooks/{id}")).await;
    assert!(
        one.body["disabled_at"].as_str().unwrap().ends_with('Z'),
        "{one:?}"
    );

    // A compliance officer reads webhooks but is offered neither form.
    sign_out(&b).await;
    sign_in(&b, &base, &ca.compliance, "compliance").await;
    b.goto(&format!("{base}/dashboard/webhooks/{id}")).await;
    b.wait_for("#webhook-state", WAIT).await;
    assert!(b.try_find("#disable-webhook").await.is_none());
    b.goto(&format!("{base}/dashboard/webhooks")).await;
    b.wait_for("#webhooks", WAIT).await;
    assert!(b.try_find("#new-webhook").await.is_none());
}

#[tokio::test]
async fn an_operator_registers_and_changes_a_mandate_compliance_approves_the_diff_and_an_admin_adds_a_person_with_a_key()
 {
    let ca = Ca::start().await;
    let base = ca.d.base.clone();
    let b = Browser::start(&artifacts("dashboard-manage")).await;

    // The operator registers an agent from the dashboard, with a mandate typed as JSON.
    sign_in(&b, &base, &ca.operator, "operator").await;
    b.find("#register-agent summary").await.click().await;
    b.find("#register-agent input[name=agent_id]")
        .await
        .send_keys("desk-bot")
        .await;
    b.find("#register-agent input[name=name]")
        .await
        .send_keys("Desk bot")
        .await;
    let mandate = b.find("#register-agent textarea[name=mandate]").await;
    mandate.clear().await;
    mandate
        .send_keys(&serde_json::to_string(&full_mandate()).unwrap())
        .await;
    b.find("#register").await.click().await;
    b.wait_until_text("#notice", "waits for a compliance officer", WAIT)
        .await;
    let a = ca.d.get(&ca.operator, "/v1/agents/desk-bot").await;
    assert_eq!(a.body["mandate_status"], "pending_approval", "{a:?}");
    assert_eq!(a.body["name"], "Desk bot");
    // A mandate that is not JSON, or has an exponent, is refused by name and registers nothing.
    b.goto(&format!("{base}/dashboard")).await;
    b.find("#register-agent summary").await.click().await;
    b.find("#register-agent input[name=agent_id]")
        .await
        .send_keys("bad-bot")
        .await;
    b.find("#register-agent input[name=name]")
        .await
        .send_keys("Bad")
        .await;
    let mandate = b.find("#register-agent textarea[name=mandate]").await;
    mandate.clear().await;
    mandate
        .send_keys(r#"{"maxTransactionSize": {"amount": 1e3, "currency": "EUR"}}"#)
        .await;
    b.find("#register").await.click().await;
    let refusal = b
        .wait_for(".problem, #problem, .error", WAIT)
        .await
        .text()
        .await;
    assert!(
        refusal.contains("mandate") && refusal.contains("exponent"),
        "{refusal}"
    );
    assert_eq!(
        ca.d.get(&ca.operator, "/v1/agents/bad-bot").await.status,
        404
    );

    // Approved by compliance, then the operator asks for a higher limit.
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/desk-bot/approve",
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    b.goto(&format!("{base}/dashboard/agents/desk-bot")).await;
    b.find("#change-mandate summary").await.click().await;
    let mut v2 = full_mandate();
    v2["maxTransactionSize"]["amount"] = json!("80000");
    let area = b.find("#change-mandate textarea").await;
    area.clear().await;
    area.send_keys(&serde_json::to_string(&v2).unwrap()).await;
    b.find("#submit-mandate").await.click().await;
    b.wait_until_text("#notice", "Mandate change submitted", WAIT)
        .await;

    // Compliance sees what changes, and approves.
    sign_out(&b).await;
    sign_in(&b, &base, &ca.compliance, "compliance").await;
    assert!(
        b.try_find("#register-agent").await.is_none(),
        "compliance registers nothing"
    );
    b.goto(&format!("{base}/dashboard/agents/desk-bot")).await;
    let diff = b.wait_for("#mandate-changes", WAIT).await.text().await;
    assert!(diff.contains("maxTransactionSize"), "{diff}");
    assert!(diff.contains("50000") && diff.contains("80000"), "{diff}");
    assert!(b.try_find("#change-mandate").await.is_none());
    b.screenshot("mandate-diff").await;
    b.find("#approve-mandate").await.click().await;
    b.wait_until_text("#notice", "Mandate approved", WAIT).await;
    let a = ca.d.get(&ca.operator, "/v1/agents/desk-bot").await;
    assert_eq!(a.body["approved_mandate_version"], 2, "{a:?}");

    // An admin adds a person of the organization and gives them a key, which works.
    let admin = ca.d.admin_key();
    sign_out(&b).await;
    sign_in(&b, &base, &admin, "admin").await;
    b.goto(&format!("{base}/dashboard/people")).await;
    b.find("#new-person input[name=id]")
        .await
        .send_keys("carol")
        .await;
    b.find("#new-person input[name=name]")
        .await
        .send_keys("Carol Ruiz")
        .await;
    b.execute(
        "document.querySelector('#new-person select[name=organization]').value = 'acme-trading';",
        vec![],
    )
    .await;
    b.find("#new-person input[name=role_auditor]")
        .await
        .click()
        .await;
    b.find("#create-person").await.click().await;
    b.wait_until_text("#notice", "Person added", WAIT).await;
    b.wait_until_text("#people tr[data-person=carol]", "auditor", WAIT)
        .await;
    b.execute(
        "document.querySelector('#new-key select[name=person]').value = 'carol';
         document.querySelector('#new-key select[name=role]').value = 'auditor';",
        vec![],
    )
    .await;
    b.find("#new-key input[name=label]")
        .await
        .send_keys("laptop")
        .await;
    b.find("#create-key").await.click().await;
    let key = b.wait_for("#new-api-key", WAIT).await.text().await;
    assert!(b.try_find("main [data-live=off]").await.is_some());
    assert!(key.starts_with("mk_"), "{key}");
    let r = ca.d.get(&key, "/v1/agents").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["items"][0]["agent_id"], "desk-bot");
}

#[tokio::test]
async fn the_docs_page_renders_the_api_reference_from_the_daemon_alone() {
    let d = Daemon::start().await;
    let base = d.base.clone();
    // `/` is for people: it sends them to the dashboard.
    let r = d.raw().get(format!("{base}/")).send().await.unwrap();
    assert!(r.status().is_success(), "{r:?}");
    assert!(r.url().path().starts_with("/dashboard"), "{r:?}");
    let page = d.raw().get(format!("{base}/docs")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let missing = d
        .raw()
        .get(format!("{base}/docs/assets/0.0.1/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let b = Browser::start(&artifacts("docs")).await;
    b.goto(&format!("{base}/docs")).await;
    b.wait_for(".swagger-ui .info .title", WAIT).await;
    b.wait_until("the operations", WAIT, async || {
        b.find_all(".opblock").await.len() > 40
    })
    .await;
    let title = text(&b, ".swagger-ui .info .title").await;
    assert!(title.contains("mandate"), "{title}");
    b.screenshot("docs").await;
    // Everything the page loaded came from the daemon.
    let loaded = b
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)
                 .concat([location.href]);",
            vec![],
        )
        .await;
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(loaded.len() >= 4, "{loaded:?}");
    for url in &loaded {
        assert!(url.starts_with(&format!("{base}/")), "left loopback: {url}");
    }
    assert!(
        loaded.iter().any(|u| u.ends_with("/v1/openapi.json")),
        "{loaded:?}"
    );
}

/// The serials of the agent page's certificates table, in order.
async fn certificate_rows(b: &Browser) -> Vec<String> {
    let serials = b
        .execute(
            "return Array.from(document.querySelectorAll('#certificates tbody tr'))
                 .map(r => r.dataset.serial);",
            vec![],
        )
        .await;
    serde_json::from_value(serials).unwrap_or_default()
}

#[tokio::test]
async fn an_agent_s_certificates_page_past_a_hundred_and_any_certificate_is_found_by_serial() {
    let ca = Ca::start().await;
    let dir = tempfile::tempdir().unwrap();
    ca.approved_agent("busy-bot", full_mandate()).await;
    // 103 certificates: a full page and three more (one key, as a renewing bot might).
    let csr = crate::harness::csr(dir.path(), "ec-p256", "/CN=busy-bot", None);
    let mut serials = Vec::new();
    for _ in 0..103 {
        let r = ca.certify(&ca.operator, "busy-bot", &csr).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        serials.push(r.body["serial_number"].as_str().unwrap().to_owned());
    }
    let base = ca.d.base.clone();
    let b = Browser::start(&artifacts("dashboard-certificates")).await;
    sign_in(&b, &base, &ca.compliance, "compliance").await;
    b.goto(&format!("{base}/dashboard/agents/busy-bot")).await;
    b.wait_for("#certificates", WAIT).await;
    let first = certificate_rows(&b).await;
    assert_eq!(first.len(), 100);
    scroll_to(&b, "#older-certificates").await;
    b.find("#older-certificates").await.click().await;
    b.wait_until("the older page", WAIT, async || {
        certificate_rows(&b).await.len() == 3
    })
    .await;
    // The two pages hold every certificate once.
    let mut shown: Vec<String> = first
        .into_iter()
        .chain(certificate_rows(&b).await)
        .collect();
    shown.sort();
    let mut all = serials.clone();
    all.sort();
    assert_eq!(shown, all);
    assert!(b.try_find("#older-certificates").await.is_none());
    b.screenshot("older-certificates").await;

    // Any certificate by its serial (in any case), and a clear refusal for what is not one.
    b.goto(&format!(
        "{base}/dashboard/revocations?serial={}",
        serials[7].to_uppercase()
    ))
    .await;
    b.wait_for("#find-certificate", WAIT).await;
    let found = b
        .execute(
            "return Array.from(document.querySelectorAll('#find-certificate tbody tr'))
                 .map(r => r.dataset.serial);",
            vec![],
        )
        .await;
    assert_eq!(found, json!([serials[7]]));
    b.goto(&format!("{base}/dashboard/revocations?serial=zzz"))
        .await;
    b.wait_for("#find-certificate", WAIT).await;
    let shown = text(&b, "#find-certificate").await;
    assert!(shown.contains("hex"), "{shown}");
}

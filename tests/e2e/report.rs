//! The compliance report as a supervisor reads it: a killed agent's report names who pulled the
//! kill switch and why, reason names instead of codes, people instead of key ids, the approvers'
//! words, the events and the incidents; and its PDF is typeset so it can be read: no header
//! split inside a word, no heading left at the foot of a page, every page renders.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, full_mandate, run};

const COMMENT: &str = "Checked against the desk limits";
const WHY: &str = "orders outside mandate";

/// Every word of the PDF's table headers (at least 5 letters: shorter ones cannot split).
const HEADER_WORDS: &[&str] = &[
    "Serial",
    "Profile",
    "Status",
    "mandate",
    "Valid",
    "Revocation",
    "Pulled",
    "Scope",
    "Agents",
    "suspended",
    "Certificates",
    "revoked",
    "Incident",
    "Detail",
    "Limit",
    "Value",
    "Until",
    "Granted",
    "Ended",
    "Reason",
    "Denials",
    "Events",
    "Failed",
    "Market",
    "Order",
    "Quantity",
    "price",
    "State",
    "Decision",
    "Asked",
    "breaches",
    "Version",
    "Learnt",
    "Decided",
    "Endpoint",
    "Event",
    "Attempts",
    "Delivered",
    "Subject",
    "Approval",
    "Comment",
    "Field",
    "Before",
    "After",
    "Action",
];

/// Section headings of the PDF.
const HEADINGS: &[&str] = &[
    "Summary",
    "Mandate versions",
    "Certificates",
    "Kill switches",
    "Incidents",
    "Overrides of limits",
    "Pre-trade denials by reason",
    "Events and trades",
    "Orders and their decisions",
    "Behaviour baselines",
    "Webhook deliveries",
    "Audit records",
    "Sign-off",
    "Appendix: digests and signatures",
];

/// `mandate report verify` on the bundle in `out` against the root in `dir` must succeed.
fn verifies(ca: &Ca, out: &std::path::Path, dir: &std::path::Path) {
    let check =
        ca.d.command()
            .args(["report", "verify", "--file"])
            .arg(out.join("report.json"))
            .arg("--root")
            .arg(dir.join("root.pem"))
            .output()
            .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

fn pdf_text(pdf: &std::path::Path, page: Option<usize>) -> String {
    let mut cmd = Command::new("pdftotext");
    if let Some(p) = page {
        cmd.args(["-f", &p.to_string(), "-l", &p.to_string()]);
    }
    let out = cmd.arg(pdf).arg("-").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_killed_agents_report_names_who_stopped_it_and_why_and_is_typeset_to_be_read() {
    let ca = Ca::start().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    let mut mandate = full_mandate();
    mandate["onBreach"] = json!("warn");
    mandate.as_object_mut().unwrap().remove("tradingHours");
    let allowed_market = mandate["allowedMarkets"][0].as_str().unwrap().to_owned();
    let r = ca.register("stopped-bot", mandate).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/stopped-bot/approve",
            &json!({"version": 1, "comment": COMMENT}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    ca.certify_new_key("stopped-bot", dir).await;
    let now = mandate_store::now_unix();
    for (market, size) in [
        (allowed_market.as_str(), "10"),
        (allowed_market.as_str(), "12"),
        ("XRP_USD", "5"),
    ] {
        let e = json!({"agent_id": "stopped-bot", "action": "trade_execution",
            "market": market, "size": size, "currency": "EUR", "side": "buy",
                         "counterparty": "exchange_a", "region": "eu-west-1", "timestamp": now,
                         "success": true});
        let r = ca.d.post(&ca.operator, "/v1/events", &e).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    }
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/stopped-bot/revoke",
            &json!({"reason": WHY}),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");

    let out = dir.join("evidence");
    let day = |t: i64| {
        run(Command::new("date").args(["-u", "-d", &format!("@{t}"), "+%F"]))
            .trim()
            .to_owned()
    };
    let report = |force: bool| {
        let mut cmd = ca.d.command();
        cmd.args([
            "report",
            "--agent",
            "stopped-bot",
            "--from",
            &day(now - 86_400),
            "--to",
            &day(now),
            "--out",
        ])
        .arg(&out);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let first = report(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Not overwritten unless asked, and nothing recorded by the refusal.
    let bundle = std::fs::read(out.join("report.json")).unwrap();
    let again = report(false);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), bundle);

    let v: Value = serde_json::from_slice(&bundle).unwrap();
    let r = &v["report"];
    let people = &r["people"];
    let name_of = |key: &str| people[key]["name"].as_str().unwrap_or_default().to_owned();
    let compliance_name = name_of(ca.compliance.split('_').nth(1).unwrap());
    assert!(!compliance_name.is_empty(), "{people}");
    // The kill switch: who, why, what.
    let k = &r["kill_switches"][0];
    assert_eq!(k["reason"], WHY, "{r}");
    assert_eq!(name_of(k["pulled_by"].as_str().unwrap()), compliance_name);
    assert_eq!(k["certificates_revoked"], 1);
    // Reason names, the approver's words, the events, the incident and its timeline.
    assert_eq!(
        r["certificates"][0]["revocation_reason"],
        "privilegeWithdrawn"
    );
    assert_eq!(r["certificates"][0]["revocation_reason_code"], 9);
    let approval = &r["mandates"][0]["approvals"][0];
    assert_eq!(approval["comment"], COMMENT);
    assert_eq!(approval["decision"], "approved");
    assert_eq!(approval["role"], "compliance");
    assert!(r["agent"]["registered_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["signature"]["signed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        people[approval["person"].as_str().unwrap()]["name"],
        compliance_name.as_str()
    );
    assert!(
        r["mandates"][0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "allowedMarkets")
    );
    assert_eq!(r["events"]["count"], 3, "{}", r["events"]);
    let incident = &r["incidents"][0];
    assert_eq!(incident["kind"], "mandate_breach", "{r}");
    assert_eq!(incident["timeline"][0]["what"], "raised");
    assert!(r["root"]["sha256"].as_str().unwrap().len() == 64);
    assert!(r["id"].as_str().unwrap().starts_with("rep_"));
    assert_eq!(r["sign_off"]["prepared_by"], "cli:report");
    // Every event in the CSV too.
    let csv = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("agent_id,id,at,action,market"));
    // It still verifies offline.
    verifies(&ca, &out, dir);

    // The PDF says the same, in words.
    let pdf = out.join("report.pdf");
    let text = pdf_text(&pdf, None);
    for want in [
        WHY,
        "privilegeWithdrawn",
        COMMENT,
        compliance_name.as_str(),
        "mandate_breach",
        "Sign-off",
        "Reviewed by",
        "Page 1 of",
        r["id"].as_str().unwrap(),
    ] {
        assert!(text.contains(want), "{want} not in the PDF:\n{text}");
    }
    assert!(!text.contains("(ms)"), "times are RFC 3339");
    // No table header is broken inside a word.
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for word in HEADER_WORDS {
        for cut in 1..word.len() {
            let (head, tail) = word.split_at(cut);
            assert!(
                !lines
                    .windows(2)
                    .any(|w| w[0].ends_with(head) && w[1].starts_with(tail) && w[0].len() < 30),
                "the header word {word} is split after {cut} letters"
            );
        }
    }
    // Every heading has its content below it on the same page.
    let pages: usize = run(Command::new("pdfinfo").arg(&pdf))
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pages >= 2);
    for p in 1..=pages {
        let page = pdf_text(&pdf, Some(p));
        let body: Vec<&str> = page
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with("Compliance report:")
                    && !l.starts_with("Page ")
                    && !l.starts_with("Report rep_")
            })
            .collect();
        if let Some(last) = body.last() {
            assert!(
                !HEADINGS.contains(last),
                "page {p} ends with the heading {last:?}"
            );
        }
    }
    // `MANDATE_KEEP_REPORT=DIR` keeps the PDF (docs/report-page-*.png are made from it).
    if let Ok(keep) = std::env::var("MANDATE_KEEP_REPORT") {
        std::fs::copy(&pdf, std::path::Path::new(&keep).join("report.pdf")).unwrap();
    }
    // Every page renders.
    let png = dir.join("page");
    run(Command::new("pdftoppm")
        .args(["-png", "-r", "40"])
        .arg(&pdf)
        .arg(&png));
    let rendered = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("page")
        })
        .count();
    assert_eq!(rendered, pages);
}

#[tokio::test]
async fn an_organizations_report_covers_its_agents_and_nothing_of_another_firm() {
    let ca = Ca::start().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    for id in ["desk-1", "desk-2"] {
        ca.approved_agent(id, full_mandate()).await;
    }
    // Another firm on the same CA, busy at the same time.
    ca.d.ensure_org("other-firm", "Other Firm Ltd").await;
    let op = ca.d.person_key(Some("other-firm"), "operator").await;
    let mut m = full_mandate();
    m["operator"] = json!("Acme");
    let r =
        ca.d.post(
            &op,
            "/v1/agents",
            &json!({"agent_id": "foreign-bot", "name": "F", "mandate": m}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let now = mandate_store::now_unix();
    let day = |t: i64| {
        run(Command::new("date").args(["-u", "-d", &format!("@{t}"), "+%F"]))
            .trim()
            .to_owned()
    };
    let out = dir.join("org");
    run(ca
        .d
        .command()
        .args([
            "report",
            "--organization",
            "acme-trading",
            "--from",
            &day(now - 86_400),
            "--to",
            &day(now),
            "--out",
        ])
        .arg(&out));
    let bundle = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(
        !bundle.contains("foreign-bot") && !bundle.contains("other-firm"),
        "another firm's data"
    );
    let v: Value = serde_json::from_str(&bundle).unwrap();
    let r = &v["report"];
    assert_eq!(r["subject"], json!({"organization": "acme-trading"}));
    let agents: Vec<&str> = r["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["desk-1", "desk-2"]);
    assert!(
        r["audit"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["organization"] == "acme-trading")
    );
    verifies(&ca, &out, dir);
    let text = pdf_text(&out.join("report.pdf"), None);
    for want in [
        "Compliance report: organization acme-trading",
        "Agent desk-1",
        "Agent desk-2",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    assert!(!text.contains("foreign-bot"));
}

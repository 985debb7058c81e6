//! The report for people: a summary first, then tables, then the proofs.

use mandate_pdf::{Block, Document};
use serde_json::Value;

/// A JSON value as table text: strings bare, null as "-".
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Who a key id (or `cli:...`, `system...`) is: the person's name and id from the report's
/// `people`, else the text as it is.
fn who(people: &Value, v: &Value) -> String {
    match v.as_str().map(|k| &people[k]) {
        Some(p) if p["name"].is_string() => match p["organization"].as_str() {
            Some(org) => format!("{} ({}, {org})", text(&p["name"]), text(&p["person"])),
            None => format!("{} ({}, CA staff)", text(&p["name"]), text(&p["person"])),
        },
        _ => text(v),
    }
}

/// Table rows of `cols` of each item; the columns naming who acted (`*_by`, `actor`) show the
/// person's name.
fn rows(people: &Value, list: &Value, cols: &[&str]) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            cols.iter()
                .map(|c| {
                    if c.ends_with("_by") || *c == "actor" {
                        who(people, &item[*c])
                    } else {
                        text(&item[*c])
                    }
                })
                .collect()
        })
        .collect()
}

fn table(headers: &[&str], rows: Vec<Vec<String>>, widths: &[f32]) -> Block {
    Block::Table {
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        rows,
        widths: widths.to_vec(),
    }
}

fn count(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

/// Renders a bundle (as written by `build_report`) to PDF.
pub fn render(bundle: &Value) -> Vec<u8> {
    let r = &bundle["report"];
    let people = &r["people"];
    let agent = &r["agent"];
    let audit = &r["audit"];
    let title = format!("Compliance report: agent {}", text(&agent["id"]));
    let mut blocks = Vec::new();

    blocks.push(Block::Heading("Summary".into()));
    let active_mandate = r["mandates"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["status"] == "approved"));
    let unresolved = r["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"] != "resolved")
        .count();
    blocks.push(Block::KeyValues(vec![
        (
            "Agent".into(),
            format!("{} ({})", text(&agent["id"]), text(&agent["name"])),
        ),
        ("Operator organization".into(), text(&agent["organization"])),
        ("Status".into(), text(&agent["status"])),
        (
            "Registered".into(),
            format!(
                "{} by {}",
                crate::rfc3339(agent["created_at"].as_i64().unwrap_or(0)),
                who(people, &agent["created_by"])
            ),
        ),
        (
            "Period".into(),
            format!(
                "{} to {}",
                text(&r["period"]["from"]),
                text(&r["period"]["to"])
            ),
        ),
        (
            "Approved mandate".into(),
            active_mandate.map_or("none".into(), |m| {
                format!(
                    "version {} (approved by {} at {})",
                    text(&m["version"]),
                    who(people, &m["decided_by"]),
                    text(&m["decided_at"])
                )
            }),
        ),
        ("Mandate versions".into(), count(&r["mandates"]).to_string()),
        (
            "Certificates".into(),
            format!(
                "{} ({} revoked)",
                count(&r["certificates"]),
                count(&r["revocations"])
            ),
        ),
        (
            "Incidents in period".into(),
            format!("{} ({} not resolved)", count(&r["incidents"]), unresolved),
        ),
        (
            "Webhook deliveries".into(),
            count(&r["webhook_deliveries"]).to_string(),
        ),
        (
            "Audit records about the agent".into(),
            count(&audit["records"]).to_string(),
        ),
        (
            "Generated".into(),
            format!(
                "{} by {}",
                text(&r["generated_at"]),
                who(people, &r["generated_by"])
            ),
        ),
    ]));
    blocks.push(Block::Paragraph(
        "This document is a reading copy of the signed JSON bundle (report.json). The bundle, not \
         this PDF, is the evidence: `mandate report verify --file report.json --root root.pem` \
         checks its signature, the signed audit checkpoint and each audit record's proof \
         offline."
            .into(),
    ));

    blocks.push(Block::Heading("Mandate versions".into()));
    blocks.push(table(
        &["Version", "Status", "Submitted", "Decided by", "Decided at"],
        rows(
            people,
            &r["mandates"],
            &[
                "version",
                "status",
                "submitted_at",
                "decided_by",
                "decided_at",
            ],
        ),
        &[1.0, 1.5, 2.5, 2.0, 2.5],
    ));
    for m in r["mandates"].as_array().into_iter().flatten() {
        blocks.push(Block::Paragraph(format!(
            "Mandate version {}:",
            text(&m["version"])
        )));
        blocks.push(Block::Mono(
            serde_json::to_string_pretty(&m["mandate"]).unwrap_or_default(),
        ));
    }

    blocks.push(Block::Heading("Certificates".into()));
    blocks.push(table(
        &[
            "Serial",
            "Status",
            "Mandate",
            "Not before",
            "Not after",
            "SHA-256",
        ],
        rows(
            people,
            &r["certificates"],
            &[
                "serial",
                "status",
                "mandate_version",
                "not_before",
                "not_after",
                "sha256",
            ],
        ),
        &[3.0, 1.2, 1.0, 2.2, 2.2, 4.0],
    ));
    blocks.push(Block::Heading("Revocations".into()));
    blocks.push(table(
        &["Serial", "Revoked at", "Reason (RFC 5280)", "By"],
        rows(
            people,
            &r["revocations"],
            &["serial", "revoked_at", "reason", "revoked_by"],
        ),
        &[3.0, 2.2, 1.5, 2.5],
    ));
    blocks.push(Block::Heading("Behaviour baselines".into()));
    blocks.push(table(
        &["Version", "Status", "Learnt by", "Created", "Decided by"],
        rows(
            people,
            &r["baselines"],
            &["version", "status", "learnt_by", "created_at", "decided_by"],
        ),
        &[1.0, 1.5, 2.0, 2.5, 2.0],
    ));
    blocks.push(Block::Heading("Incidents".into()));
    blocks.push(table(
        &[
            "Id",
            "Kind",
            "Status",
            "Score",
            "Threshold",
            "Created",
            "Resolution",
        ],
        rows(
            people,
            &r["incidents"],
            &[
                "id",
                "kind",
                "status",
                "score",
                "threshold",
                "created_at",
                "resolution",
            ],
        ),
        &[0.7, 2.0, 1.4, 1.0, 1.0, 2.2, 2.5],
    ));
    blocks.push(Block::Heading("Webhook deliveries".into()));
    blocks.push(table(
        &["Id", "Endpoint", "Event", "Status", "Attempts", "Delivered"],
        rows(
            people,
            &r["webhook_deliveries"],
            &[
                "id",
                "webhook_id",
                "event_type",
                "status",
                "attempts",
                "delivered_at",
            ],
        ),
        &[0.7, 2.2, 2.2, 1.3, 1.0, 2.2],
    ));

    orders_section(&mut blocks, people, &r["orders"]);

    blocks.push(Block::Heading("Audit extract".into()));
    let audit_rows: Vec<Vec<String>> = audit["records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rec| {
            vec![
                text(&rec["seq"]),
                text(&rec["at"]),
                who(people, &rec["actor"]),
                text(&rec["action"]),
                text(&rec["subject"]),
                text(&rec["risk_score"]),
            ]
        })
        .collect();
    blocks.push(table(
        &["Seq", "Time", "Actor", "Action", "Subject", "Risk"],
        audit_rows,
        &[0.8, 2.2, 2.0, 2.5, 2.5, 0.8],
    ));

    blocks.push(Block::PageBreak);
    blocks.push(Block::Heading("Proofs".into()));
    let cp = &audit["checkpoint"];
    blocks.push(Block::Paragraph(format!(
        "Each of the {} audit records above is a leaf of the CA's audit log, a Merkle tree \
         (RFC 6962); the bundle carries, for each, the proof that it is in the tree whose size \
         and root the checkpoint below signs (a C2SP signed note, signed at {}). Leaves are \
         salted, so the proofs show nothing of any other record. The checkpoint and this report \
         are signed by audit signing keys held in the CA's HSM, certified by the CA for audit \
         signing only.",
        count(&audit["records"]),
        text(&cp["signed_at"])
    )));
    blocks.push(Block::Mono(text(&cp["note"])));
    blocks.push(Block::KeyValues(vec![(
        "Report signature".into(),
        text(&bundle["signature"]["value"]),
    )]));
    blocks.push(Block::Paragraph("Report signer certificate:".into()));
    blocks.push(Block::Mono(text(
        &bundle["signature"]["signer_certificate"],
    )));

    mandate_pdf::render(&Document {
        title,
        header: String::new(),
        blocks,
    })
}

/// Orders shown in the PDF at most; the bundle holds them all.
const PDF_ORDERS: usize = 2000;

/// "Orders and their decisions": each order with the decision that let it through.
fn orders_section(blocks: &mut Vec<Block>, people: &Value, orders: &Value) {
    blocks.push(Block::Heading("Orders and their decisions".into()));
    let all = orders.as_array().map_or(&[][..], Vec::as_slice);
    let decided = all.iter().filter(|o| o["decision"].is_object()).count();
    blocks.push(Block::Paragraph(format!(
        "{} orders reported in the period; {decided} name a pre-trade decision the daemon \
         recorded (preflight or custodial signing), shown with who asked for it and the soft \
         limits it went past.{}",
        all.len(),
        if all.len() > PDF_ORDERS {
            format!(" The first {PDF_ORDERS} are listed here; report.json holds every one.")
        } else {
            String::new()
        }
    )));
    let rows = all
        .iter()
        .take(PDF_ORDERS)
        .map(|o| {
            let d = &o["decision"];
            let soft: Vec<String> = d["soft_breaches"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| text(&b["code"]))
                .collect();
            vec![
                text(&o["client_order_id"]),
                format!("{} {}", text(&o["side"]), text(&o["market"])),
                format!("{} @ {}", text(&o["quantity"]), text(&o["price"])),
                text(&o["state"]),
                match d["id"].as_str() {
                    Some(id) => format!("{id} ({}, {})", text(&d["via"]), text(&d["at"])),
                    None => text(&o["decision_id"]),
                },
                if d.is_object() {
                    who(people, &d["decided_by"])
                } else {
                    "-".into()
                },
                if soft.is_empty() {
                    "-".into()
                } else {
                    soft.join(", ")
                },
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "Order",
            "Side, market",
            "Quantity @ price",
            "State",
            "Decision",
            "Asked by",
            "Soft breaches",
        ],
        rows,
        &[1.6, 1.6, 1.5, 1.2, 3.2, 1.8, 1.8],
    ));
}

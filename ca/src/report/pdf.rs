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
    let audit = &r["audit"];
    // An organization's report holds a section per agent; an agent's, its own at the top.
    let sections: Vec<&Value> = match r["agents"].as_array() {
        Some(agents) => agents.iter().collect(),
        None => vec![r],
    };
    let title = match r["agents"].as_array() {
        Some(_) => format!(
            "Compliance report: organization {}",
            text(&r["organization"]["id"])
        ),
        None => format!("Compliance report: agent {}", text(&r["agent"]["id"])),
    };
    let header = format!(
        "Report {} | generated {}",
        text(&r["id"]),
        text(&r["generated_at"])
    );
    let mut blocks = Vec::new();

    if r["agents"].is_array() {
        organization_summary(&mut blocks, r, people, &sections);
        for a in &sections {
            blocks.push(Block::PageBreak);
            blocks.push(Block::Heading(format!(
                "Agent {} ({})",
                text(&a["agent"]["id"]),
                text(&a["agent"]["name"])
            )));
            agent_blocks(&mut blocks, people, a);
        }
    } else {
        summary(&mut blocks, r, people);
        agent_blocks(&mut blocks, people, r);
    }
    blocks.push(Block::Heading("Audit records".into()));
    let all = audit["records"].as_array().map_or(&[][..], Vec::as_slice);
    blocks.push(Block::Paragraph(format!(
        "The {} audit records of the subject in the period. Each is a leaf of the CA's audit \
         log, a Merkle tree (RFC 6962); report.json carries, for each, the proof that it is in \
         the tree whose size and root the checkpoint in the appendix signs. Leaves are salted, \
         so the proofs show nothing of any other record.{}",
        all.len(),
        if all.len() > PDF_AUDIT_RECORDS {
            format!(" The first {PDF_AUDIT_RECORDS} are listed here; report.json holds every one.")
        } else {
            String::new()
        }
    )));
    blocks.push(table(
        &["Seq", "Time", "Who", "Action", "Subject"],
        all.iter()
            .take(PDF_AUDIT_RECORDS)
            .map(|rec| {
                vec![
                    text(&rec["seq"]),
                    text(&rec["at"]),
                    match rec["person"].as_str() {
                        Some(_) => who(people, &rec["person"]),
                        None => who(people, &rec["actor"]),
                    },
                    text(&rec["action"]),
                    text(&rec["subject"]),
                ]
            })
            .collect(),
        &[0.6, 2.6, 2.4, 2.0, 2.4],
    ));

    blocks.push(Block::Heading("Sign-off".into()));
    blocks.push(Block::KeyValues(vec![
        (
            "Prepared by".into(),
            format!(
                "{}, {}",
                who(people, &r["sign_off"]["prepared_by"]),
                text(&r["generated_at"])
            ),
        ),
        (
            "Reviewed by".into(),
            "Name: ______________________________".into(),
        ),
        ("".into(), "Role: ______________________________".into()),
        ("".into(), "Date: ______________________________".into()),
        ("".into(), "Signature: _________________________".into()),
    ]));

    blocks.push(Block::PageBreak);
    blocks.push(Block::Heading("Appendix: digests and signatures".into()));
    blocks.push(Block::Paragraph(
        "SHA-256 fingerprints of the root certificate and of each certificate, the signed audit \
         checkpoint (a C2SP signed note) and the report signature, for checking by machine: \
         `mandate report verify --file report.json --root root.pem`."
            .into(),
    ));
    let mut digests = format!(
        "root  {}\n      {}\n",
        text(&r["root"]["sha256"]),
        text(&r["root"]["subject"])
    );
    for c in sections
        .iter()
        .flat_map(|a| a["certificates"].as_array().into_iter().flatten())
    {
        digests.push_str(&format!(
            "cert  {}\n      serial {}\n",
            text(&c["sha256"]),
            text(&c["serial_number"])
        ));
    }
    blocks.push(Block::Mono(digests));
    blocks.push(Block::Paragraph(format!(
        "Audit checkpoint, signed at {}:",
        text(&audit["checkpoint"]["signed_at"])
    )));
    blocks.push(Block::Mono(text(&audit["checkpoint"]["note"])));
    blocks.push(Block::Paragraph(format!(
        "Report signature (ECDSA P-256, SHA-256), signed at {}:",
        text(&bundle["signature"]["signed_at"])
    )));
    blocks.push(Block::Mono(text(&bundle["signature"]["value"])));

    mandate_pdf::render(&Document {
        title,
        header,
        blocks,
    })
}

/// The sections about one agent: its mandate versions, certificates, kill switches, incidents,
/// overrides, denials, events, orders, baselines and webhook deliveries.
fn agent_blocks(blocks: &mut Vec<Block>, people: &Value, a: &Value) {
    mandates_section(blocks, people, &a["mandates"]);

    blocks.push(Block::Heading("Certificates".into()));
    let certs: Vec<Vec<String>> = a["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                text(&c["serial_number"]),
                text(&c["profile"]),
                format!("{} (v{})", text(&c["status"]), text(&c["mandate_version"])),
                format!("{} to {}", text(&c["not_before"]), text(&c["not_after"])),
                if c["revoked_at"].is_string() {
                    format!(
                        "{} at {} by {}",
                        text(&c["revocation_reason"]),
                        text(&c["revoked_at"]),
                        who(people, &c["revoked_by"])
                    )
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "Serial",
            "Profile",
            "Status (mandate)",
            "Valid",
            "Revocation",
        ],
        certs,
        &[2.6, 1.0, 1.4, 2.6, 2.6],
    ));

    blocks.push(Block::Heading("Kill switches".into()));
    blocks.push(table(
        &[
            "When",
            "Pulled by",
            "Why",
            "Scope",
            "Agents suspended",
            "Certificates revoked",
        ],
        a["kill_switches"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| {
                vec![
                    text(&k["at"]),
                    who(people, &k["pulled_by"]),
                    text(&k["reason"]),
                    format!("{} {}", text(&k["scope"]), text(&k["target"])),
                    text(&k["agents_suspended"]),
                    text(&k["certificates_revoked"]),
                ]
            })
            .collect(),
        &[2.4, 2.0, 2.4, 1.6, 1.1, 1.1],
    ));

    blocks.push(Block::Heading("Incidents".into()));
    let mut timeline = Vec::new();
    for i in a["incidents"].as_array().into_iter().flatten() {
        for t in i["timeline"].as_array().into_iter().flatten() {
            timeline.push(vec![
                format!("#{} {}", text(&i["id"]), text(&i["kind"])),
                text(&t["at"]),
                text(&t["what"]),
                text(&t["detail"]),
                who(people, &t["by"]),
            ]);
        }
    }
    blocks.push(table(
        &["Incident", "When", "What", "Detail", "By"],
        timeline,
        &[1.6, 2.4, 1.1, 3.0, 1.8],
    ));

    blocks.push(Block::Heading("Overrides of limits".into()));
    blocks.push(table(
        &[
            "Limit",
            "Value",
            "From",
            "Until",
            "Granted by",
            "Why",
            "Ended",
        ],
        a["overrides"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let granted: Vec<String> = o["granted_by"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| who(people, g))
                    .collect();
                vec![
                    match o["market"].as_str() {
                        Some(m) => format!("{} ({m})", text(&o["limit"])),
                        None => text(&o["limit"]),
                    },
                    text(&o["value"]),
                    text(&o["from"]),
                    text(&o["until"]),
                    granted.join("; "),
                    text(&o["reason"]),
                    match o["ended_at"].as_str() {
                        Some(at) => format!("{at} by {}", who(people, &o["ended_by"])),
                        None => "-".into(),
                    },
                ]
            })
            .collect(),
        &[1.6, 0.9, 1.5, 1.5, 2.0, 2.0, 1.5],
    ));

    let pre = &a["pretrade"];
    blocks.push(Block::Heading("Pre-trade denials by reason".into()));
    blocks.push(Block::Paragraph(format!(
        "{} pre-trade decisions in the period (preflight and custodial signing), {} denied. \
         A denial counts under each hard limit it broke.",
        text(&pre["decisions"]),
        text(&pre["denied"])
    )));
    blocks.push(table(
        &["Reason", "Denials"],
        rows(people, &pre["denials_by_reason"], &["reason", "count"]),
        &[4.0, 1.0],
    ));

    let events = &a["events"];
    blocks.push(Block::Heading("Events and trades".into()));
    blocks.push(Block::Paragraph(format!(
        "{} events reported in the period. Every one is in report.json and events.csv; here by \
         kind and by market.",
        text(&events["count"])
    )));
    blocks.push(table(
        &["Kind", "Events", "Failed"],
        rows(people, &events["by_kind"], &["action", "count", "failed"]),
        &[3.0, 1.0, 1.0],
    ));
    blocks.push(table(
        &["Market", "Events"],
        rows(people, &events["markets"], &["market", "count"]),
        &[3.0, 1.0],
    ));

    orders_section(blocks, people, &a["orders"]);

    blocks.push(Block::Heading("Behaviour baselines".into()));
    blocks.push(table(
        &[
            "Version",
            "Status",
            "Learnt by",
            "Learnt at",
            "Decided by",
            "Decided at",
        ],
        rows(
            people,
            &a["baselines"],
            &[
                "version",
                "status",
                "learnt_by",
                "created_at",
                "decided_by",
                "decided_at",
            ],
        ),
        &[0.8, 1.1, 2.0, 1.8, 2.0, 1.8],
    ));
    blocks.push(Block::Heading("Webhook deliveries".into()));
    blocks.push(table(
        &["Id", "Endpoint", "Event", "Status", "Attempts", "Delivered"],
        rows(
            people,
            &a["webhook_deliveries"],
            &[
                "id",
                "webhook_id",
                "event_type",
                "status",
                "attempts",
                "delivered_at",
            ],
        ),
        &[0.7, 1.0, 2.2, 1.2, 1.0, 2.2],
    ));
}

/// The first page of an organization's report: the organization, and each agent in a row.
fn organization_summary(blocks: &mut Vec<Block>, r: &Value, people: &Value, agents: &[&Value]) {
    let sum = |f: &dyn Fn(&Value) -> usize| agents.iter().map(|a| f(a)).sum::<usize>();
    let mut kills: Vec<&Value> = agents
        .iter()
        .flat_map(|a| a["kill_switches"].as_array().into_iter().flatten())
        .collect();
    kills.sort_by_key(|k| k["id"].as_i64());
    kills.dedup_by_key(|k| k["id"].as_i64());
    blocks.push(Block::Heading("Summary".into()));
    blocks.push(Block::KeyValues(
        vec![
            ("Report".into(), text(&r["id"])),
            (
                "Organization".into(),
                format!(
                    "{} ({})",
                    text(&r["organization"]["legal_name"]),
                    text(&r["organization"]["id"])
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
            ("Agents".into(), agents.len().to_string()),
            (
                "Certificates".into(),
                format!(
                    "{} ({} revoked)",
                    sum(&|a| count(&a["certificates"])),
                    sum(&|a| count(&a["revocations"]))
                ),
            ),
            (
                "Kill switches".into(),
                if kills.is_empty() {
                    "none".into()
                } else {
                    kills.len().to_string()
                },
            ),
            (
                "Incidents".into(),
                sum(&|a| count(&a["incidents"])).to_string(),
            ),
            (
                "Events".into(),
                sum(&|a| usize::try_from(a["events"]["count"].as_u64().unwrap_or(0)).unwrap_or(0))
                    .to_string(),
            ),
        ]
        .into_iter()
        .chain(provenance(r, people))
        .collect(),
    ));
    blocks.push(Block::Heading("Agents".into()));
    blocks.push(table(
        &[
            "Agent",
            "Status",
            "Approved mandate",
            "Certificates (revoked)",
            "Incidents",
            "Events",
            "Denied",
        ],
        agents
            .iter()
            .map(|a| {
                let approved = a["mandates"]
                    .as_array()
                    .and_then(|m| m.iter().rev().find(|m| m["status"] == "approved"))
                    .map_or("none".into(), |m| format!("v{}", text(&m["version"])));
                vec![
                    format!(
                        "{} ({})",
                        text(&a["agent"]["id"]),
                        text(&a["agent"]["name"])
                    ),
                    text(&a["agent"]["status"]),
                    approved,
                    format!(
                        "{} ({})",
                        count(&a["certificates"]),
                        count(&a["revocations"])
                    ),
                    count(&a["incidents"]).to_string(),
                    text(&a["events"]["count"]),
                    text(&a["pretrade"]["denied"]),
                ]
            })
            .collect(),
        &[2.6, 1.1, 1.2, 1.4, 1.0, 0.9, 0.9],
    ));
    blocks.push(Block::Heading("Kill switches".into()));
    blocks.push(table(
        &["When", "Pulled by", "Why", "Scope", "Certificates revoked"],
        kills
            .iter()
            .map(|k| {
                vec![
                    text(&k["at"]),
                    who(people, &k["pulled_by"]),
                    text(&k["reason"]),
                    format!("{} {}", text(&k["scope"]), text(&k["target"])),
                    text(&k["certificates_revoked"]),
                ]
            })
            .collect(),
        &[2.4, 2.0, 2.6, 1.8, 1.2],
    ));
    blocks.push(Block::Paragraph(
        "This document is a reading copy of the signed JSON bundle (report.json), with a section \
         per agent below. `mandate report verify --file report.json --root root.pem` checks the \
         bundle offline. Times are UTC (RFC 3339)."
            .into(),
    ));
}

/// The summary's last rows, the same in every report: the proven records, the root, who made it.
fn provenance(r: &Value, people: &Value) -> [(String, String); 3] {
    [
        (
            "Audit records".into(),
            format!(
                "{}, each proven to the signed checkpoint",
                count(&r["audit"]["records"])
            ),
        ),
        (
            "Root certificate".into(),
            format!("{} (SHA-256 in the appendix)", text(&r["root"]["subject"])),
        ),
        (
            "Generated".into(),
            format!(
                "{} by {}",
                text(&r["generated_at"]),
                who(people, &r["generated_by"])
            ),
        ),
    ]
}

/// The first page: what the report is about, in one table.
fn summary(blocks: &mut Vec<Block>, r: &Value, people: &Value) {
    let agent = &r["agent"];
    blocks.push(Block::Heading("Summary".into()));
    let active = r["mandates"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["status"] == "approved"));
    let unresolved = r["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"] != "resolved")
        .count();
    let org = match r["organization"]["legal_name"].as_str() {
        Some(name) => format!("{name} ({})", text(&agent["organization"])),
        None => text(&agent["organization"]),
    };
    blocks.push(Block::KeyValues(
        vec![
            ("Report".into(), text(&r["id"])),
            (
                "Agent".into(),
                format!("{} ({})", text(&agent["id"]), text(&agent["name"])),
            ),
            ("Organization".into(), org),
            ("Status now".into(), text(&agent["status"])),
            (
                "Registered".into(),
                format!(
                    "{} by {}",
                    text(&agent["registered_at"]),
                    who(people, &agent["registered_by"])
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
                active.map_or("none".into(), |m| {
                    format!(
                        "version {}, approved {} by {}",
                        text(&m["version"]),
                        text(&m["decided_at"]),
                        who(people, &m["decided_by"])
                    )
                }),
            ),
            (
                "Certificates".into(),
                format!(
                    "{} ({} revoked)",
                    count(&r["certificates"]),
                    count(&r["revocations"])
                ),
            ),
            ("Kill switches".into(), none_or_count(&r["kill_switches"])),
            (
                "Incidents".into(),
                if count(&r["incidents"]) == 0 {
                    "none".into()
                } else {
                    format!("{} ({unresolved} not resolved)", count(&r["incidents"]))
                },
            ),
            ("Overrides of limits".into(), none_or_count(&r["overrides"])),
            ("Events".into(), text(&r["events"]["count"])),
            (
                "Pre-trade decisions".into(),
                format!(
                    "{} ({} denied)",
                    text(&r["pretrade"]["decisions"]),
                    text(&r["pretrade"]["denied"])
                ),
            ),
        ]
        .into_iter()
        .chain(provenance(r, people))
        .collect(),
    ));
    blocks.push(Block::Paragraph(
        "This document is a reading copy of the signed JSON bundle (report.json). The bundle, not \
         this PDF, is the evidence: `mandate report verify --file report.json --root root.pem` \
         checks its signature, the signed audit checkpoint and each audit record's proof \
         offline. Times are UTC (RFC 3339)."
            .into(),
    ));
}

fn none_or_count(v: &Value) -> String {
    match count(v) {
        0 => "none".into(),
        n => n.to_string(),
    }
}

/// Each mandate version: when and by whom submitted and decided, every person's decision
/// with their words, and the mandate itself (the first version) or what it changed.
fn mandates_section(blocks: &mut Vec<Block>, people: &Value, mandates: &Value) {
    blocks.push(Block::Heading("Mandate versions".into()));
    let all = mandates.as_array().map_or(&[][..], Vec::as_slice);
    if all.is_empty() {
        blocks.push(Block::Paragraph("None.".into()));
    }
    for (i, m) in all.iter().enumerate() {
        blocks.push(Block::Heading(format!(
            "Mandate version {} ({})",
            text(&m["version"]),
            text(&m["status"])
        )));
        blocks.push(Block::KeyValues(vec![
            (
                "Submitted".into(),
                format!(
                    "{} by {}",
                    text(&m["submitted_at"]),
                    who(people, &m["submitted_by"])
                ),
            ),
            (
                "Decided".into(),
                match m["decided_at"].as_str() {
                    Some(at) => format!("{at} by {}", who(people, &m["decided_by"])),
                    None => "not yet".into(),
                },
            ),
        ]));
        blocks.push(table(
            &["Approval by", "Role", "Decision", "When", "Comment"],
            m["approvals"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    vec![
                        who(people, &a["person"]),
                        text(&a["role"]),
                        text(&a["decision"]),
                        text(&a["at"]),
                        text(&a["comment"]),
                    ]
                })
                .collect(),
            &[2.2, 1.1, 1.0, 1.8, 3.2],
        ));
        if i == 0 {
            blocks.push(table(
                &["Field", "Value"],
                rows(people, &m["fields"], &["field", "value"]),
                &[2.0, 3.0],
            ));
        } else {
            blocks.push(Block::Paragraph(format!(
                "Changes from version {}:",
                text(&all[i - 1]["version"])
            )));
            blocks.push(table(
                &["Field", "Before", "After"],
                rows(people, &m["changes"], &["field", "before", "after"]),
                &[2.0, 2.0, 2.0],
            ));
        }
    }
}

/// Audit records listed in the PDF at most; the bundle holds them all.
const PDF_AUDIT_RECORDS: usize = 2000;

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

//! Checking a report bundle offline, with only the root certificate(s).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mandate_store::{AuditRow, ChainCheck, checkpoint_message};
use serde::Serialize;
use serde_json::Value;

use crate::CaError;
use crate::x509::AUDIT_SIGNING_EKU;

/// What a check of a report found.
#[derive(Debug, Serialize)]
pub struct ReportCheck {
    /// True if nothing is wrong.
    pub valid: bool,
    /// The agent the report is about.
    pub agent_id: Option<String>,
    /// The period, as written in the report.
    pub period: Value,
    /// Audit records about the agent.
    pub extract_records: usize,
    /// Audit records whose chain was followed to the checkpoint (the extract and its proof).
    pub audit_records_verified: usize,
    /// The signed checkpoint the audit records lead to.
    pub checkpoint_seq: Option<i64>,
    /// Everything wrong, in the order found.
    pub problems: Vec<String>,
}

fn pem_der(v: &Value) -> Option<Vec<u8>> {
    mandate_verify::pem_to_der_chain(v.as_str()?)
        .ok()?
        .into_iter()
        .next()
}

/// Checks a signature by an audit signer: its certificate must chain to `roots` through the
/// intermediate that issued it, directly or through a cross-certificate.
fn check_signed(
    ctx: &Context<'_>,
    signer: &Value,
    issuer_id: &Value,
    message: &[u8],
    signature_b64: &Value,
    at: i64,
) -> Result<(), String> {
    let cert = pem_der(signer).ok_or("the signer certificate is missing or unreadable")?;
    let signature = signature_b64
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .ok_or("the signature is missing or not base64")?;
    let chain: Vec<Vec<u8>> = issuer_id
        .as_i64()
        .and_then(|id| ctx.intermediates.iter().find(|(i, _)| *i == id))
        .map(|(_, der)| der.clone())
        .into_iter()
        .collect();
    let check = |chain: &[Vec<u8>]| {
        mandate_verify::verify_signed_by(
            &cert,
            chain,
            ctx.roots,
            AUDIT_SIGNING_EKU,
            message,
            &signature,
            at,
        )
    };
    let first = check(&chain);
    if first.is_empty() {
        return Ok(());
    }
    for cross in &ctx.cross {
        let mut via = chain.clone();
        via.push(cross.clone());
        if check(&via).is_empty() {
            return Ok(());
        }
    }
    Err(first
        .iter()
        .map(|r| r.detail.clone())
        .collect::<Vec<_>>()
        .join("; "))
}

struct Context<'a> {
    roots: &'a [Vec<u8>],
    intermediates: Vec<(i64, Vec<u8>)>,
    cross: Vec<Vec<u8>>,
}

/// Checks a bundle: canonical form, the report signature, the audit checkpoint signature, and
/// the audit records' hash chain up to the checkpoint. Only an unreadable file is an error;
/// everything else is a problem in the answer.
pub fn verify(bytes: &[u8], roots: &[Vec<u8>]) -> Result<ReportCheck, CaError> {
    let bundle: Value = serde_json::from_slice(bytes)
        .map_err(|e| CaError::InvalidRequest(format!("not a report bundle (JSON): {e}")))?;
    let mut problems = Vec::new();
    let canonical = serde_json::to_vec(&bundle).map_err(|e| CaError::Internal(e.to_string()))?;
    if canonical != bytes {
        problems.push(
            "the file is not in the canonical form it was written in: it was altered".to_owned(),
        );
    }
    if bundle["format"] != super::FORMAT {
        problems.push(format!(
            "unknown format {}: expected {}",
            bundle["format"],
            super::FORMAT
        ));
    }
    let report = &bundle["report"];
    let sig = &bundle["signature"];
    if roots.is_empty() {
        problems.push("no trusted root certificate given (--root root.pem)".to_owned());
    }
    let ctx = Context {
        roots,
        intermediates: report["ca_certificates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["role"] == "intermediate")
            .filter_map(|c| Some((c["id"].as_i64()?, pem_der(&c["pem"])?)))
            .collect(),
        cross: report["cross_certificates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| pem_der(&c["pem"]))
            .collect(),
    };

    // The report signature.
    let message = super::signed_message(report)?;
    if let Err(why) = check_signed(
        &ctx,
        &sig["signer_certificate"],
        &sig["signer_issuer_id"],
        &message,
        &sig["value"],
        sig["signed_at"].as_i64().unwrap_or(0),
    ) {
        problems.push(format!("the report signature does not verify: {why}"));
    }

    // The checkpoint, and the audit records' chain up to it.
    let audit = &report["audit"];
    let cp = &audit["checkpoint"];
    let cp_seq = cp["seq"].as_i64();
    let cp_hash = cp["hash"].as_str().unwrap_or_default();
    match (cp_seq, hex::decode(cp_hash)) {
        (Some(seq), Ok(hash)) => {
            let at_ms = cp["signed_at_ms"].as_i64().unwrap_or(0);
            if let Err(why) = check_signed(
                &ctx,
                &cp["signer_certificate"],
                &cp["signer_issuer_id"],
                &checkpoint_message(seq, &hash, at_ms),
                &cp["signature"],
                at_ms / 1000,
            ) {
                problems.push(format!("the audit checkpoint does not verify: {why}"));
            }
        }
        _ => problems.push("the audit checkpoint is missing".to_owned()),
    }
    let records: Vec<AuditRow> = audit["records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(record)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|why: String| {
            problems.push(format!("an audit record is unreadable: {why}"));
            Vec::new()
        });
    let mut verified = 0;
    if let Some(first) = records.first() {
        match hex::decode(&first.prev_hash) {
            Ok(prev) => {
                let mut chain = ChainCheck::resume(first.seq, prev);
                for r in &records {
                    if let Err(b) = chain.check(r) {
                        problems.push(format!("audit record {}: {}", b.seq, b.reason));
                        break;
                    }
                    verified += 1;
                }
                if verified == records.len()
                    && (records.last().map(|r| r.seq) != cp_seq || chain.last_hash() != cp_hash)
                {
                    problems
                        .push("the audit records do not end at the signed checkpoint".to_owned());
                }
            }
            Err(_) => problems.push(format!("audit record {}: bad previous-hash", first.seq)),
        }
    }
    let extract: Vec<i64> = audit["extract"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    if let Some(missing) = extract
        .iter()
        .find(|s| !records.iter().any(|r| r.seq == **s))
    {
        problems.push(format!(
            "audit record {missing} is in the extract but not in the records"
        ));
    }
    Ok(ReportCheck {
        valid: problems.is_empty(),
        agent_id: report["agent"]["id"].as_str().map(str::to_owned),
        period: report["period"].clone(),
        extract_records: extract.len(),
        audit_records_verified: verified,
        checkpoint_seq: cp_seq,
        problems,
    })
}

fn record(v: &Value) -> Result<AuditRow, String> {
    let text = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("field {k} missing"))
    };
    let int = |k: &str| v[k].as_i64().ok_or_else(|| format!("field {k} missing"));
    Ok(AuditRow {
        seq: int("seq")?,
        at_ms: int("at_ms")?,
        actor: text("actor")?,
        action: text("action")?,
        subject: text("subject")?,
        cert_fingerprint: v["cert_fingerprint"].as_str().map(str::to_owned),
        details: Value::Null,
        details_text: text("details")?,
        risk_score: v["risk_score"].as_f64(),
        organization: v["organization"].as_str().map(str::to_owned),
        person: v["person"].as_str().map(str::to_owned),
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
    })
}

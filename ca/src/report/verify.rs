//! Checking a report bundle offline, with only the root certificate(s).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;

use crate::CaError;
use crate::audit_note::SignerTrust;
use crate::audit_proof::{ProvedRecord, SignedCheckpoint};

/// What a check of a report found.
#[derive(Debug, Serialize)]
pub struct ReportCheck {
    /// True if nothing is wrong.
    pub valid: bool,
    /// The agent the report is about (an agent's report).
    pub agent_id: Option<String>,
    /// What the report is about: `{"agent": id}` or `{"organization": id}`.
    pub subject: Value,
    /// The period, as written in the report.
    pub period: Value,
    /// Audit records about the agent.
    pub audit_records: usize,
    /// Audit records whose inclusion proof leads to the signed checkpoint.
    pub audit_records_verified: usize,
    /// The size of the signed audit tree the records are proven in.
    pub checkpoint_tree_size: Option<u64>,
    /// Everything wrong, in the order found.
    pub problems: Vec<String>,
}

fn pem_der(v: &Value) -> Option<Vec<u8>> {
    mandate_verify::pem_to_der_chain(v.as_str()?)
        .ok()?
        .into_iter()
        .next()
}

/// Checks a bundle: canonical form, the report signature, the audit checkpoint signature, and
/// each audit record's inclusion proof to the checkpoint. Only an unreadable file is an error;
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
    let trust = SignerTrust {
        roots: roots.to_vec(),
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
    let signed = || -> Result<(), String> {
        let cert = pem_der(&sig["signer_certificate"])
            .ok_or("the signer certificate is missing or unreadable")?;
        let value = sig["value"]
            .as_str()
            .and_then(|s| B64.decode(s).ok())
            .ok_or("the signature is missing or not base64")?;
        let issuer = sig["signer_issuer_id"]
            .as_i64()
            .ok_or("the signer's issuer is not named")?;
        trust.check(
            &cert,
            issuer,
            &message,
            &value,
            sig["signed_at"]
                .as_str()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or(0, time::OffsetDateTime::unix_timestamp),
        )
    };
    if let Err(why) = signed() {
        problems.push(format!("the report signature does not verify: {why}"));
    }

    // The checkpoint, and each audit record's proof to it.
    let audit = &report["audit"];
    let cp = match serde_json::from_value::<SignedCheckpoint>(audit["checkpoint"].clone()) {
        Ok(cp) => match cp.check(&trust) {
            Ok(opened) => Some(opened),
            Err(why) => {
                problems.push(format!("the audit checkpoint does not verify: {why}"));
                None
            }
        },
        Err(e) => {
            problems.push(format!(
                "the audit checkpoint is missing or unreadable: {e}"
            ));
            None
        }
    };
    let records = audit["records"].as_array().map_or(&[][..], Vec::as_slice);
    let mut verified = 0;
    for (i, v) in records.iter().enumerate() {
        let rec: ProvedRecord = match serde_json::from_value(v.clone()) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("audit record {} is unreadable: {e}", i + 1));
                continue;
            }
        };
        if let Some(cp) = &cp {
            match rec.check(cp) {
                Ok(()) => verified += 1,
                Err(why) => problems.push(format!("audit record {}: {why}", rec.seq)),
            }
        }
    }
    Ok(ReportCheck {
        valid: problems.is_empty(),
        agent_id: report["agent"]["id"].as_str().map(str::to_owned),
        subject: report["subject"].clone(),
        period: report["period"].clone(),
        audit_records: records.len(),
        audit_records_verified: verified,
        checkpoint_tree_size: cp.map(|c| c.size),
        problems,
    })
}

//! `GET /v1/audit`: the audit log, oldest first, with each record's hashes.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::{ApiError, ApiQuery, AppState, Caller, page_limit};

/// `?after=&limit=`: `after` is the seq of the last record of the previous page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /v1/audit` (auditor, compliance, admin): CA staff read the whole log, an
/// organization's people the records that concern their organization.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let (rows, names) = crate::ra::audit::list(
        &state.node.store,
        &caller,
        super::after_cursor(q.after)?,
        limit,
    )
    .await?;
    let next = super::next_before(&rows, limit, |r| r.seq);
    // The chain's hashes link each record to the one before it, often another organization's:
    // with both, a reader could test guesses of that record. An organization's people get their
    // records without them, and prove them with `GET /v1/audit/export` instead.
    let chained = caller.org_filter().is_none();
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "seq": r.seq, "at": crate::rfc3339(r.at_ms / 1000), "at_ms": r.at_ms,
                "actor": r.actor, "action": r.action, "subject": r.subject,
                "cert_fingerprint": r.cert_fingerprint, "risk_score": r.risk_score,
                "details": r.details, "organization": r.organization,
                "person_name": r.person.as_ref().and_then(|p| names.get(p)), "person": r.person,
            });
            if chained {
                v["prev_hash"] = r.prev_hash.into();
                v["hash"] = r.hash.into();
            }
            v
        })
        .collect();
    Ok(Json(
        serde_json::json!({"items": items, "next_after": next}),
    ))
}

//! `GET /v1/audit`: the audit log, oldest first, with each record's hashes.

use axum::Json;
use axum::extract::State;

use super::{ApiError, ApiQuery, AppState, Caller, page_limit};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// `GET /v1/audit` (auditor, compliance, admin): CA staff read the whole log, an
/// organization's people the records that concern their organization.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<super::PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let (rows, names) = crate::ra::audit::list(
        &state.node.store,
        &caller,
        super::number_cursor(q.cursor.as_deref(), 0, 0)?,
        limit,
    )
    .await?;
    let next_cursor = super::next_number_cursor(&rows, limit, |r| r.seq);
    // The chain's hashes link each record to the one before it, often another organization's:
    // with both, a reader could test guesses of that record. An organization's people get their
    // records without them, and prove them with `GET /v1/audit/export` instead.
    let chained = caller.org_filter().is_none();
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "seq": r.seq, "at": crate::rfc3339_ms(r.at_ms),
                "actor": r.actor, "action": r.action, "subject": r.subject,
                "cert_fingerprint": r.cert_fingerprint, "risk_score": r.risk_score.map(crate::score4),
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
    Ok(Json(serde_json::json!(super::Page { items, next_cursor })))
}

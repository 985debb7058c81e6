//! `GET /crl/{issuer key id}.crl`: the issuer's current CRL, DER, for any relying party (no key).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, http_date};

/// Longest time an HTTP cache may keep a CRL: short, so a revocation is seen within seconds
/// even through caches; never past nextUpdate.
const MAX_AGE: i64 = 10;

/// Serves the CRL with Cache-Control, ETag, Last-Modified and Expires; answers 304 to a
/// matching If-None-Match.
pub async fn get(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such CRL");
    let ski = file.strip_suffix(".crl").ok_or_else(not_found)?;
    let crl = state
        .node
        .crls
        .get(&ski.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    let now = mandate_store::now_unix();
    let max_age = (crl.next_update - now).clamp(0, MAX_AGE);
    let mut out = HeaderMap::new();
    let mut put = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    };
    put(header::CACHE_CONTROL, format!("public, max-age={max_age}"));
    put(header::ETAG, crl.etag.clone());
    put(header::LAST_MODIFIED, http_date(crl.this_update));
    put(header::EXPIRES, http_date(now + max_age));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == crl.etag || t.trim() == "*")
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    put(header::CONTENT_TYPE, "application/pkix-crl".to_owned());
    Ok((StatusCode::OK, out, crl.der.clone()).into_response())
}

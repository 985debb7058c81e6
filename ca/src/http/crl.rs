//! `GET /crl/{issuer key id}.crl`: the issuer's current CRL, DER, for any relying party (no key).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{ApiError, ApiPath, AppState};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

/// Serves the CRL with Cache-Control (max-age at most 10 s, so a revocation is seen within
/// seconds even through caches), ETag, Last-Modified and Expires; answers 304 to a matching
/// If-None-Match.
pub async fn get(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such CRL");
    let ski = file.strip_suffix(".crl").ok_or_else(not_found)?;
    let crl = state
        .node
        .crls
        .get(&ski.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    Ok(mandate_ocsp::http::cacheable(
        &crl.der,
        "application/pkix-crl",
        (crl.this_update, crl.next_update),
        &crl.etag,
        mandate_store::now_unix(),
        &headers,
    ))
}

//! `GET /crl/{issuer key id}.crl`: the issuer's current CRL, DER, for any relying party (no key).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{ApiError, ApiPath, AppState};

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(get))]
pub struct Doc;

/// A DER document, for the API document.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
struct Der(Vec<u8>);

/// Serves the CRL with Cache-Control (max-age at most 10 s, so a revocation is seen within
/// seconds even through caches), ETag, Last-Modified and Expires; answers 304 to a matching
/// If-None-Match.
#[utoipa::path(get, path = "/crl/{file}", operation_id = "getCrl", tag = "pki",
    summary = "CRL of an issuer: <issuer key id hex>.crl (304 for a matching If-None-Match)",
    description = "No key. The issuer's current CRL, DER, as certificates name it in their CRL \
        distribution point. Cacheable for at most 10 seconds (never past nextUpdate), so a \
        revocation is seen within seconds even through caches.",
    security(),
    params(("file" = String, Path, description = "`<issuer key id, hex>.crl` (any case)",
        pattern = "^[0-9A-Fa-f]+\\.crl$", example = "5b0c6f1e2d7a94c3b8e1f06a2d5c9b7e4f1a3c8d.crl")),
    responses(
        (status = 200, description = "DER CRL", body = inline(Der),
            content_type = "application/pkix-crl", headers(
                ("Cache-Control" = String, description = "public, max-age (at most 10 s), \
                    no-transform, must-revalidate"),
                ("ETag" = String, description = "for If-None-Match"),
                ("Last-Modified" = String, description = "the CRL's thisUpdate"),
                ("Expires" = String, description = "when the max-age runs out"))),
        (status = 304, description = "Not Modified: If-None-Match named the current CRL's ETag \
            (no body)"),
        (status = "4XX", description = "RFC 9457 problem: 404 `not-found` for an unknown \
            issuer", body = super::problem::Body<'static>, content_type = "application/problem+json",
            example = json!({"type": "urn:mandate:problem:not-found", "title": "Not Found",
                "status": 404, "detail": "no such CRL"})),
        (status = "5XX", description = "RFC 9457 problem", body = super::problem::Body<'static>,
            content_type = "application/problem+json")))]
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

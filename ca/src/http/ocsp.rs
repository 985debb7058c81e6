//! The embedded OCSP responder (RFC 6960, RFC 5019 profile) at the URL certificates name in
//! their AIA: `POST /ocsp` with `application/ocsp-request`, and `GET /ocsp/{base64 request}`.
//! It holds the signing keys, so it answers from its cache or signs on the spot; a nonce gets
//! a response signed for that request alone.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use der::Encode;
use mandate_ocsp::http::{ReadyResponse, decode_get, read_post, refused, uncacheable};
use mandate_ocsp::{OcspIssuer, Query, Refusal, Status, parse_request, sign_response};
use mandate_store::CertStatus;

use super::AppState;
use crate::metrics::METRICS;
use std::sync::atomic::Ordering;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(post, get))]
pub struct Doc;

/// A DER document, for the API document.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
struct Der(Vec<u8>);

/// The smallest OCSP response, base64 for the document: the unsigned `malformedRequest`
/// refusal (`30 03 0a 01 01`).
const EXAMPLE_REFUSAL: &str = "MAMKAQE=";

/// A refusal, counted by its kind.
fn refuse(why: Refusal) -> Response {
    METRICS.ocsp_requests.inc(&[match why {
        Refusal::MalformedRequest => "malformed_request",
        Refusal::Unauthorized => "unauthorized",
        Refusal::TryLater => "try_later",
    }]);
    refused(why)
}

/// `POST /ocsp`.
#[utoipa::path(post, path = "/ocsp", operation_id = "ocspPost", tag = "pki",
    summary = "OCSP (RFC 6960, RFC 5019 profile); refusals are OCSP responses with HTTP 200",
    description = "No key. One certificate per request. A request with a nonce gets a response \
        signed for it alone (never cached); without, a cached response with Cache-Control, \
        ETag, Last-Modified and Expires, and 304 for a matching If-None-Match. A request that \
        does not parse, names an issuer this CA does not have, or comes while the responder \
        cannot sign gets an unsigned refusal (malformedRequest, unauthorized, tryLater), \
        still HTTP 200.",
    security(),
    request_body(content = inline(Der), content_type = "application/ocsp-request",
        description = "DER OCSPRequest"),
    responses(
        (status = 200, description = "OCSP response, DER (the example, in base64: the \
            malformedRequest refusal)", body = inline(Der),
            content_type = "application/ocsp-response", example = json!(EXAMPLE_REFUSAL)),
        (status = 304, description = "Not Modified: If-None-Match named the cached response's \
            ETag (no body)")))]
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match read_post(body).await {
        Ok(der) => answer(&state, &der, &headers).await,
        Err(why) => refuse(why),
    }
}

/// `GET /ocsp/{base64}`. A path that does not decode (not even as UTF-8) is an OCSP
/// `malformedRequest`, like any other bad request: OCSP clients read OCSP responses.
#[utoipa::path(get, path = "/ocsp/{request}", operation_id = "ocspGet", tag = "pki",
    summary = "OCSP GET: base64 of the DER request in the path",
    description = "No key. As POST /ocsp, for a request small enough for a URL (RFC 5019 \
        §5): cacheable by HTTP caches.",
    security(),
    params(("request" = String, Path, description = "base64 (standard or URL-safe alphabet) \
        of the DER OCSPRequest, URL-encoded",
        example = "MFEwTzBNMEswSTAJBgUrDgMCGgUABBTQnLIGNFXOG4oIxFS0GY5jZO7YrQQUJnCHFZxFArbfQW9tFWtkPsD8xXACEE8cmgt9LmOoWxDE6fLXpjE%3D")),
    responses(
        (status = 200, description = "OCSP response, DER (the example, in base64: the \
            malformedRequest refusal)", body = inline(Der),
            content_type = "application/ocsp-response", example = json!(EXAMPLE_REFUSAL)),
        (status = 304, description = "Not Modified: If-None-Match named the cached response's \
            ETag (no body)")))]
pub async fn get(
    State(state): State<AppState>,
    request: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(request)) = request else {
        return refuse(Refusal::MalformedRequest);
    };
    match decode_get(&request) {
        Ok(der) => answer(&state, &der, &headers).await,
        Err(why) => refuse(why),
    }
}

async fn answer(state: &AppState, der: &[u8], headers: &HeaderMap) -> Response {
    let query = match parse_request(der) {
        Ok(q) => q,
        Err(why) => return refuse(why),
    };
    let issuer = match state.node.ocsp_issuers.find(&query.cert_id) {
        Ok(i) => i,
        Err(why) => return refuse(why),
    };
    match respond(state, &issuer, &query, headers).await {
        Ok(resp) => resp,
        Err(why) => refuse(why),
    }
}

async fn respond(
    state: &AppState,
    issuer: &OcspIssuer,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let node = &state.node;
    let now = mandate_store::now_unix();
    // A nonce asks for a response made for this request alone: never cached.
    let key = match query.nonce {
        None => query.cert_id.to_der().ok(),
        Some(_) => None,
    };
    if let Some(hit) = key.as_deref().and_then(|k| node.ocsp_cache.get(k, now)) {
        METRICS.ocsp_cache_hits.fetch_add(1, Ordering::Relaxed);
        METRICS.ocsp_requests.inc(&["cached"]);
        return Ok(hit.to_http(now, headers));
    }
    METRICS.ocsp_cache_misses.fetch_add(1, Ordering::Relaxed);
    let generation = node.ocsp_cache.generation();
    let serial = hex::encode(query.cert_id.serial_number.as_bytes());
    let row = node.store.certificate(&serial).await.map_err(|e| {
        tracing::warn!(error = %e, "OCSP: store unavailable");
        Refusal::TryLater
    })?;
    let status = match row {
        Some(r) if r.issuer_id == issuer.id => match r.status {
            CertStatus::Issued => Status::Good,
            CertStatus::Revoked => Status::Revoked {
                at: r.revoked_at.unwrap_or(0),
                reason: r.revocation_reason.unwrap_or(0),
            },
            // Reserved: signing was never confirmed and nothing reached a client.
            CertStatus::Reserved => Status::Unknown,
        },
        _ => Status::Unknown,
    };
    METRICS.ocsp_requests.inc(&[match status {
        Status::Good => "good",
        Status::Revoked { .. } => "revoked",
        Status::Unknown => "unknown",
    }]);
    let next_update = now + i64::from(node.cfg.ca.ocsp_validity_secs);
    let der = sign_response(
        &node.hsm,
        issuer,
        &query.cert_id,
        query.nonce.as_deref(),
        status,
        now,
        next_update,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "OCSP response not signed");
        Refusal::TryLater
    })?;
    let Some(key) = key else {
        return Ok(uncacheable(der));
    };
    let response = Arc::new(ReadyResponse::new(der, now, next_update));
    node.ocsp_cache.insert(key, response.clone(), generation);
    Ok(response.to_http(now, headers))
}

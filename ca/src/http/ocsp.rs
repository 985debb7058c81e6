//! The OCSP responder (RFC 6960, RFC 5019 profile) at the URL certificates name in their AIA:
//! `POST /ocsp` with `application/ocsp-request`, and `GET /ocsp/{base64 request}`. Every answer
//! is an OCSP response with HTTP 200: refusals are `malformedRequest`, `unauthorized` or
//! `tryLater`, never an error page.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use der::Encode;
use mandate_ocsp::{OcspIssuer, Query, Refusal, Status, parse_request, refusal, sign_response};
use mandate_store::CertStatus;
use sha2::Digest;

use super::{AppState, http_date};
use crate::ocsp_cache::CachedResponse;

/// Longest time an HTTP cache may keep a response: a revocation must show within seconds.
const MAX_AGE: i64 = 10;

/// `POST /ocsp`.
pub async fn post(State(state): State<AppState>, body: Bytes) -> Response {
    answer(&state, &body).await
}

/// `GET /ocsp/{base64}` (RFC 6960 A.1: the DER request, base64, URL-encoded; the router has
/// already undone the URL encoding).
pub async fn get(State(state): State<AppState>, Path(request): Path<String>) -> Response {
    let b64: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let engine = base64::engine::general_purpose::STANDARD;
    match engine
        .decode(&b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&b64))
    {
        Ok(der) => answer(&state, &der).await,
        Err(_) => refused(Refusal::MalformedRequest),
    }
}

async fn answer(state: &AppState, der: &[u8]) -> Response {
    let query = match parse_request(der) {
        Ok(q) => q,
        Err(why) => return refused(why),
    };
    let issuer = match OcspIssuer::find(&state.node.ocsp_issuers, &query.cert_id) {
        Ok(i) => i,
        Err(why) => return refused(why),
    };
    match respond(state, issuer, &query).await {
        Ok(resp) => resp,
        Err(why) => refused(why),
    }
}

async fn respond(
    state: &AppState,
    issuer: &OcspIssuer,
    query: &Query,
) -> Result<Response, Refusal> {
    let node = &state.node;
    let now = mandate_store::now_unix();
    // A nonce asks for a response made for this request alone: never cached.
    let key = match query.nonce {
        None => query.cert_id.to_der().ok(),
        Some(_) => None,
    };
    if let Some(hit) = key.as_deref().and_then(|k| node.ocsp_cache.get(k, now)) {
        return Ok(cacheable(&hit, now));
    }
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
    let next_update = now + i64::from(node.cfg.ca.ocsp_validity_secs);
    let der = sign_response(&node.hsm, issuer, query, status, now, next_update)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "OCSP response not signed");
            Refusal::TryLater
        })?;
    let Some(key) = key else {
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/ocsp-response"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            der,
        )
            .into_response());
    };
    let response = Arc::new(CachedResponse {
        etag: format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&der)[..12])),
        der: der.into(),
        this_update: now,
        next_update,
    });
    node.ocsp_cache.insert(key, response.clone(), generation);
    Ok(cacheable(&response, now))
}

/// A response any HTTP cache may keep for a few seconds (RFC 5019 §6).
fn cacheable(r: &CachedResponse, now: i64) -> Response {
    let max_age = MAX_AGE.min(r.next_update - now).max(0);
    let mut headers = HeaderMap::new();
    let mut put = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, "application/ocsp-response".to_owned());
    put(
        header::CACHE_CONTROL,
        format!("public, max-age={max_age}, no-transform, must-revalidate"),
    );
    put(header::LAST_MODIFIED, http_date(r.this_update));
    put(header::EXPIRES, http_date(now + max_age));
    put(header::ETAG, r.etag.clone());
    (StatusCode::OK, headers, r.der.clone()).into_response()
}

fn refused(why: Refusal) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/ocsp-response")],
        refusal(why),
    )
        .into_response()
}

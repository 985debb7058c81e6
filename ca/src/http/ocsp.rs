//! The OCSP responder (RFC 6960, RFC 5019 profile) at the URL certificates name in their AIA:
//! `POST /ocsp` with `application/ocsp-request`, and `GET /ocsp/{base64 request}`. Every answer
//! is an OCSP response with HTTP 200: refusals are `malformedRequest`, `unauthorized` or
//! `tryLater`, never an error page.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mandate_ocsp::{OcspIssuer, Query, Refusal, Status, parse_request, refusal, sign_response};
use mandate_store::CertStatus;
use sha2::Digest;

use super::{AppState, http_date};

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
    let serial = hex::encode(query.cert_id.serial_number.as_bytes());
    let row = state.node.store.certificate(&serial).await.map_err(|e| {
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
    let now = mandate_store::now_unix();
    let next_update = now + i64::from(state.node.cfg.ca.ocsp_validity_secs);
    let der = sign_response(&state.node.hsm, issuer, query, status, now, next_update)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "OCSP response not signed");
            Refusal::TryLater
        })?;
    let mut headers = HeaderMap::new();
    let mut put = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, "application/ocsp-response".to_owned());
    if query.nonce.is_some() {
        // Made for this request alone.
        put(header::CACHE_CONTROL, "no-store".to_owned());
    } else {
        let max_age = MAX_AGE.min(next_update - now);
        put(
            header::CACHE_CONTROL,
            format!("public, max-age={max_age}, no-transform, must-revalidate"),
        );
        put(header::LAST_MODIFIED, http_date(now));
        put(header::EXPIRES, http_date(now + max_age));
        put(
            header::ETAG,
            format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&der)[..12])),
        );
    }
    Ok((StatusCode::OK, headers, der).into_response())
}

fn refused(why: Refusal) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/ocsp-response")],
        refusal(why),
    )
        .into_response()
}

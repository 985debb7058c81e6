//! What the embedded and the stand-alone responder share on the wire: reading a request from
//! POST or GET (RFC 6960 appendix A), and the HTTP answers of RFC 5019 §6 — every answer is an
//! OCSP response with HTTP 200, refusals included, never an error page.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::Digest;

use crate::{MAX_REQUEST_BYTES, Refusal, refusal};

/// Longest time an HTTP cache may keep a response: a revocation must show within seconds.
pub const MAX_AGE_SECS: i64 = 10;

/// A signed response ready to serve, with what HTTP caches need to know about it.
#[derive(Debug)]
pub struct ReadyResponse {
    /// The OCSP response, DER; shared, so serving it copies no bytes.
    pub der: Bytes,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// Strong validator for HTTP caches.
    pub etag: String,
}

impl ReadyResponse {
    /// Wraps a signed response.
    pub fn new(der: impl Into<Bytes>, this_update: i64, next_update: i64) -> ReadyResponse {
        let der = der.into();
        ReadyResponse {
            etag: format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&der)[..12])),
            der,
            this_update,
            next_update,
        }
    }

    /// The response as any HTTP cache may keep it for a few seconds (never past nextUpdate);
    /// `304 Not Modified` when the request's If-None-Match names it.
    pub fn to_http(&self, now: i64, request: &HeaderMap) -> Response {
        cacheable(
            &self.der,
            "application/ocsp-response",
            (self.this_update, self.next_update),
            &self.etag,
            now,
            request,
        )
    }
}

/// A signed document (OCSP response, CRL) as HTTP caches may keep it: `Cache-Control` max-age
/// at most [`MAX_AGE_SECS`] and never past nextUpdate, `ETag`, `Last-Modified` (thisUpdate),
/// `Expires`; `304 Not Modified` (no body) for a matching `If-None-Match`.
pub fn cacheable(
    der: &Bytes,
    content_type: &str,
    (this_update, next_update): (i64, i64),
    etag: &str,
    now: i64,
    request: &HeaderMap,
) -> Response {
    let max_age = MAX_AGE_SECS.min(next_update - now).max(0);
    let mut headers = HeaderMap::new();
    let mut put = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(
        header::CACHE_CONTROL,
        format!("public, max-age={max_age}, no-transform, must-revalidate"),
    );
    put(header::LAST_MODIFIED, http_date(this_update));
    put(header::EXPIRES, http_date(now + max_age));
    put(header::ETAG, etag.to_owned());
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    put(header::CONTENT_TYPE, content_type.to_owned());
    (StatusCode::OK, headers, der.clone()).into_response()
}

/// A response made for one request (it echoes a nonce): no cache may keep it.
pub fn uncacheable(der: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/ocsp-response"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        der,
    )
        .into_response()
}

/// The unsigned refusal (`malformedRequest`, `unauthorized`, `tryLater`).
pub fn refused(why: Refusal) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/ocsp-response")],
        refusal(why),
    )
        .into_response()
}

/// The body of `POST /ocsp`; past [`MAX_REQUEST_BYTES`] it is not read further and the request
/// is malformed.
pub async fn read_post(body: Body) -> Result<Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| Refusal::MalformedRequest)
}

/// The request of `GET /ocsp/{base64}`: the DER request, base64 (standard or URL-safe
/// alphabet), the URL encoding already undone by the router.
pub fn decode_get(path: &str) -> Result<Vec<u8>, Refusal> {
    if path.len() > 2 * MAX_REQUEST_BYTES {
        return Err(Refusal::MalformedRequest);
    }
    let b64: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&b64))
        .map_err(|_| Refusal::MalformedRequest)
}

/// An HTTP-date (RFC 9110 §5.6.7) for Last-Modified and Expires.
pub fn http_date(unix: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// The answer to a request the HTTP layer refused before routing, when it was for `/ocsp`:
/// an OCSP response (`malformedRequest`, or `tryLater` when the server is full), since OCSP
/// clients read nothing else. `None` for other paths.
pub fn listener_refusal(r: &mandate_listener::Refusal<'_>) -> Option<mandate_listener::Answer> {
    if r.path != "/ocsp" && !r.path.starts_with("/ocsp/") {
        return None;
    }
    let why = if r.status == StatusCode::SERVICE_UNAVAILABLE {
        Refusal::TryLater
    } else {
        Refusal::MalformedRequest
    };
    Some(mandate_listener::Answer {
        status: StatusCode::OK,
        content_type: "application/ocsp-response",
        body: refusal(why),
        retry_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_get_paths() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(decode_get("MAM=").ok(), Some(vec![0x30, 0x03]));
        assert_eq!(decode_get("-_8=").ok(), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_get("%%%"), Err(Refusal::MalformedRequest));
        assert_eq!(
            decode_get(&"A".repeat(3 * MAX_REQUEST_BYTES)),
            Err(Refusal::MalformedRequest)
        );
    }

    #[test]
    fn cache_headers_never_outlive_next_update() {
        let r = ReadyResponse::new(vec![1, 2, 3], 1000, 1004);
        let http = r.to_http(1000, &HeaderMap::new());
        assert_eq!(http.status(), StatusCode::OK);
        let cc = http
            .headers()
            .get(header::CACHE_CONTROL)
            .map(|v| v.to_str().ok());
        assert_eq!(
            cc,
            Some(Some("public, max-age=4, no-transform, must-revalidate"))
        );
        assert!(r.etag.starts_with('"') && r.etag.len() == 26);
        let mut conditional = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&format!("\"other\", {}", r.etag)) {
            conditional.insert(header::IF_NONE_MATCH, v);
        }
        let cached = r.to_http(1000, &conditional);
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert!(cached.headers().contains_key(header::ETAG));
    }
}

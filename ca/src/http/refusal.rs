//! The documents for refusals made below the routes (by the listener: a header too large or
//! too slow, a request hyper cannot parse, a stalled body, the connection cap), chosen by
//! path like every other answer: OCSP responses on `/ocsp`, RFC 8555 problems on `/acme`,
//! problem+json everywhere else.

use std::sync::Arc;

use axum::http::StatusCode;
use mandate_listener::{Answer, Refusal, Refuser};

use super::problem::PROBLEM_BASE;

/// The daemon's refuser.
pub fn refuser() -> Refuser {
    Arc::new(answer)
}

fn answer(r: &Refusal<'_>) -> Answer {
    if let Some(ocsp) = mandate_ocsp::http::listener_refusal(r) {
        return ocsp;
    }
    if r.path.starts_with("/acme/") {
        let kind = if r.status.is_server_error() {
            "serverInternal"
        } else {
            "malformed"
        };
        return Answer::problem(
            r.status,
            &format!("urn:ietf:params:acme:error:{kind}"),
            r.detail,
        );
    }
    Answer::problem(
        r.status,
        &format!("{PROBLEM_BASE}{}", problem_kind(r.status)),
        r.detail,
    )
}

/// The problem type of each status the listener refuses with (listed in docs/API.md).
pub fn problem_kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::TOO_MANY_REQUESTS => "rate-limited",
        StatusCode::REQUEST_TIMEOUT => "request-timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::URI_TOO_LONG => "uri-too-long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "header-too-large",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded",
        s if s.is_server_error() => "internal",
        _ => "invalid-request",
    }
}

/// Longest framework rejection text carried over into a problem's detail.
const MAX_DETAIL: usize = 1024;

/// Makes every error answer a document: the framework's own rejections (a form or query that
/// does not deserialize, a body over the limit, a wrong media type, a bare status from a
/// handler) come as `text/plain` or with no body; they are rewritten as the path's document
/// with the text as the detail. Answers that already are documents pass untouched.
pub async fn documents_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Only the path's kind matters below; no copy of the path on the hot path.
    let p = req.uri().path();
    let path = if p == "/ocsp" || p.starts_with("/ocsp/") {
        "/ocsp"
    } else if p.starts_with("/acme/") {
        "/acme/"
    } else {
        ""
    };
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !plain {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_DETAIL * 4)
        .await
        .unwrap_or_default();
    let mut detail: String = String::from_utf8_lossy(&text)
        .trim()
        .chars()
        .take(MAX_DETAIL)
        .collect();
    if detail.is_empty() {
        detail = status.canonical_reason().unwrap_or("error").to_owned();
    }
    let answer = answer(&Refusal {
        status,
        path,
        detail: &detail,
    });
    let mut out = axum::response::Response::new(axum::body::Body::from(answer.body));
    *out.status_mut() = answer.status;
    let headers = out.headers_mut();
    // Keep what the original said besides its body (Allow, WWW-Authenticate, Retry-After, …).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            headers.append(name, value.clone());
        }
    }
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(answer.content_type),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &str, status: StatusCode) -> Answer {
        answer(&Refusal {
            status,
            path,
            detail: "why",
        })
    }

    #[test]
    fn each_path_gets_the_document_its_clients_read() {
        let ocsp = refused("/ocsp/MEow", StatusCode::URI_TOO_LONG);
        assert_eq!(ocsp.content_type, "application/ocsp-response");
        assert_eq!(ocsp.body, vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
        let acme = refused("/acme/new-order", StatusCode::REQUEST_TIMEOUT);
        assert!(String::from_utf8_lossy(&acme.body).contains("acme:error:malformed"));
        let api = refused("/v1/agents", StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(api.content_type, "application/problem+json");
        assert!(
            String::from_utf8_lossy(&api.body).contains("urn:mandate:problem:header-too-large")
        );
        let full = refused("", StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.retry_after, Some(1));
    }
}

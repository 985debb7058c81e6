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
        StatusCode::REQUEST_TIMEOUT => "request-timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::URI_TOO_LONG => "uri-too-long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "header-too-large",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded",
        _ => "invalid-request",
    }
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

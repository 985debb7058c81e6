//! RFC 9457 problem details: every error the API returns.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_store::StoreError;
use serde::Serialize;

use crate::CaError;
use crate::csr::CsrError;

/// Prefix of every problem type URI; the suffixes are listed in docs/API.md.
pub const PROBLEM_BASE: &str = "urn:mandate:problem:";

/// An error answer: status, a stable type, a short title and a specific detail.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Problem type suffix, e.g. `mandate-not-approved`.
    pub kind: &'static str,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
    /// Extension members (RFC 9457 §3.2), e.g. the `reasons` of a refused signing.
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    /// A problem with the given status, type and detail.
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            detail: detail.into(),
            retry_after: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// The same problem with an extension member.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// 429 `rate-limited`, with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many requests with this API key; retry in {retry_after} s"),
            )
        }
    }

    /// 400 `invalid-request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Body {
            kind: format!("{PROBLEM_BASE}{}", self.kind),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            extensions: &self.extensions,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, json).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<CaError> for ApiError {
    fn from(e: CaError) -> Self {
        use StatusCode as S;
        match e {
            CaError::Csr(c) => {
                let kind = match c {
                    CsrError::Malformed(_) => "bad-csr",
                    CsrError::BadSignature => "bad-csr-signature",
                    CsrError::WeakKey(_) => "weak-key",
                    CsrError::UnsupportedKey(_) => "unsupported-key",
                    CsrError::WrongName(_) => "name-not-allowed",
                };
                ApiError::new(S::BAD_REQUEST, kind, c.to_string())
            }
            CaError::Mandate(p) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid-mandate", p.to_string())
            }
            CaError::NotApproved(d) => ApiError::new(S::CONFLICT, "mandate-not-approved", d),
            CaError::InvalidRequest(d) => ApiError::bad_request(d),
            CaError::InvalidOrder(d) => ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid-order", d),
            CaError::InvalidMandate(d) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid-mandate", d)
            }
            CaError::Forbidden(d) => ApiError::new(S::FORBIDDEN, "forbidden", d),
            CaError::SegregationOfDuties(d) => {
                ApiError::new(S::FORBIDDEN, "segregation-of-duties", d)
            }
            CaError::Conflict(d) => ApiError::new(S::CONFLICT, "conflict", d),
            CaError::NotFound(what) => {
                ApiError::new(S::NOT_FOUND, "not-found", format!("{what} not found"))
            }
            CaError::NotInitialised => {
                ApiError::new(S::SERVICE_UNAVAILABLE, "not-ready", e.to_string())
            }
            CaError::Store(s) => match s {
                StoreError::NotFound(what) => {
                    ApiError::new(S::NOT_FOUND, "not-found", format!("{what} not found"))
                }
                StoreError::Conflict(what) => {
                    ApiError::new(S::CONFLICT, "conflict", format!("{what} already exists"))
                }
                StoreError::WrongState(d) => ApiError::new(S::CONFLICT, "wrong-state", d),
                other if other.is_unavailable() => {
                    tracing::error!(error = %other, "database unavailable");
                    ApiError::new(
                        S::SERVICE_UNAVAILABLE,
                        "database-unavailable",
                        "the database did not answer; retry later",
                    )
                }
                other => internal(other.to_string()),
            },
            CaError::Hsm(h) => {
                tracing::error!(error = %h, "HSM operation failed");
                if h.is_temporary() {
                    ApiError::new(
                        S::SERVICE_UNAVAILABLE,
                        "hsm-unavailable",
                        "the HSM did not answer; retry later",
                    )
                } else {
                    internal(h.to_string())
                }
            }
            other => internal(other.to_string()),
        }
    }
}

fn internal(detail: String) -> ApiError {
    tracing::error!(error = %detail, "internal error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; see the server log",
    )
}

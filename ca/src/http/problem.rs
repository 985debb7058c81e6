//! RFC 9457 problem details: every error the API returns.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_store::StoreError;
use serde::Serialize;

use crate::CaError;
use crate::csr::CsrError;

/// Prefix of every problem type URI; the suffixes are listed in docs/API.md.
pub const PROBLEM_BASE: &str = "urn:mandate:problem:";

/// Every problem type the daemon answers with, and the statuses each comes with: the one list
/// docs/API.md's error table is checked against (`the_error_table_is_the_code_s`), and every
/// answer against it (a debug build stops at a pair that is not listed, so the suite finds it).
pub const PROBLEM_TYPES: &[(&str, &[u16])] = &[
    ("invalid-request", &[400]),
    ("invalid-json", &[400, 422]),
    ("invalid-order", &[422]),
    ("body-too-large", &[413]),
    ("unsupported-media-type", &[415]),
    ("invalid-mandate", &[422]),
    ("bad-csr", &[400]),
    ("bad-csr-signature", &[400]),
    ("weak-key", &[400]),
    ("unsupported-key", &[400]),
    ("name-not-allowed", &[400]),
    ("unauthorized", &[401]),
    ("forbidden", &[403]),
    ("csrf", &[403]),
    ("segregation-of-duties", &[403]),
    ("out-of-mandate", &[403]),
    ("not-found", &[404]),
    ("method-not-allowed", &[405]),
    ("request-timeout", &[408]),
    ("conflict", &[409]),
    ("wrong-state", &[409]),
    ("mandate-not-approved", &[409]),
    ("no-custodial-key", &[409]),
    ("uri-too-long", &[414]),
    ("header-too-large", &[431]),
    ("rate-limited", &[429]),
    ("internal", &[500]),
    ("not-ready", &[503]),
    ("database-unavailable", &[503]),
    ("hsm-unavailable", &[503]),
    ("overloaded", &[503]),
];

/// True if `kind` with `status` is in [`PROBLEM_TYPES`].
pub fn is_listed(kind: &str, status: StatusCode) -> bool {
    PROBLEM_TYPES
        .iter()
        .any(|(k, s)| *k == kind && s.contains(&status.as_u16()))
}

/// 404 under the tenant rule, for the API document.
#[derive(utoipa::ToResponse)]
#[response(
    description = "not-found: unknown, or another organization's (the tenant rule: a principal \
        outside CA staff gets exactly the answer of a missing object)",
    content_type = "application/problem+json"
)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
pub struct NotFoundOrOtherOrganization(#[to_schema] Body<'static>);

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

/// An RFC 9457 problem document; it may carry extension members (§3.2), e.g. `reasons`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct Body<'a> {
    /// `urn:mandate:problem:<kind>` (REST) or `urn:ietf:params:acme:error:<type>` (ACME).
    #[serde(rename = "type")]
    kind: String,
    /// Short, the same for every problem of the type.
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// What went wrong this time, naming the field or object.
    detail: &'a str,
    #[serde(flatten)]
    #[schema(ignore)]
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
        debug_assert!(
            is_listed(self.kind, self.status),
            "problem type {} with status {} is not in PROBLEM_TYPES (and docs/API.md)",
            self.kind,
            self.status
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of docs/API.md's `## Errors` table: type and statuses.
    fn documented() -> Vec<(String, Vec<u16>)> {
        let doc = include_str!("../../../docs/API.md");
        let section = doc
            .split("\n## Errors\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_default();
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let kind = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let statuses = cells
                    .get(2)?
                    .split('/')
                    .map(|s| s.trim().parse::<u16>())
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                Some((kind.to_owned(), statuses))
            })
            .collect()
    }

    #[test]
    fn the_error_table_is_the_code_s() {
        let doc = documented();
        let code: Vec<(String, Vec<u16>)> = PROBLEM_TYPES
            .iter()
            .map(|(k, s)| ((*k).to_owned(), s.to_vec()))
            .collect();
        for row in &code {
            assert!(
                doc.contains(row),
                "{row:?} is answered but not in docs/API.md's error table"
            );
        }
        for row in &doc {
            assert!(
                code.contains(row),
                "{row:?} is in docs/API.md's error table but not in PROBLEM_TYPES"
            );
        }
        // What the listener and the catch-all layer answer with is listed too.
        for status in 400..=599u16 {
            if let Ok(status) = StatusCode::from_u16(status)
                && (status.is_client_error() || status.is_server_error())
            {
                let kind = super::super::refusal::problem_kind(status);
                assert!(
                    PROBLEM_TYPES.iter().any(|(k, _)| *k == kind),
                    "{status} → {kind}"
                );
            }
        }
    }
}

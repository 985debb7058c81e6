//! ACME errors as RFC 8555 §6.7 problem documents (`urn:ietf:params:acme:error:<type>`), served
//! as `application/problem+json` (RFC 9457).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An RFC 8555 §6.7 problem document.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeProblem)]
pub(crate) struct Body<'a> {
    /// `urn:ietf:params:acme:error:<type>` (RFC 8555 §6.7); a refusal made before the request
    /// reached the ACME server (the connection cap) is `urn:mandate:problem:overloaded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status text; only on refusals made below the ACME server (by the listener: a
    /// header too large or too slow, the connection cap), never on the server's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub title: Option<&'a str>,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: &'a str,
}

/// An ACME example problem: the answer to a stale nonce.
const EXAMPLE_BAD_NONCE: &str =
    "unknown, used or expired nonce; use the one in this answer's Replay-Nonce";

/// An RFC 8555 refusal, for the API document.
#[derive(utoipa::ToResponse)]
#[response(
    description = "RFC 8555 problem (`urn:ietf:params:acme:error:*`): 400 `malformed`, \
        `badNonce` (retry with this answer's Replay-Nonce), `badSignatureAlgorithm`, \
        `badPublicKey`, `externalAccountRequired`, `accountDoesNotExist`, `badCSR`, \
        `rejectedIdentifier`, `badRevocationReason`, `alreadyRevoked`, `invalidProfile`; 403 \
        `unauthorized`, `orderNotReady`",
    content_type = "application/problem+json",
    headers(("Replay-Nonce" = String, description = "A fresh nonce for the next request")),
    example = json!({"type": "urn:ietf:params:acme:error:badNonce", "status": 400,
        "detail": EXAMPLE_BAD_NONCE})
)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
pub(crate) struct Refusal(#[to_schema] Body<'static>);

/// An RFC 8555 server failure, for the API document.
#[derive(utoipa::ToResponse)]
#[response(
    description = "RFC 8555 problem: 500 `serverInternal` (try again later); 503 when the \
        daemon holds as many connections as it serves (`urn:mandate:problem:overloaded`, \
        before the request is read)",
    content_type = "application/problem+json",
    headers(("Replay-Nonce" = String, description = "A fresh nonce, on the ACME server's own \
        answers")),
    example = json!({"type": "urn:ietf:params:acme:error:serverInternal", "status": 500,
        "detail": "internal error; try again later"})
)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
pub(crate) struct Failure(#[to_schema] Body<'static>);

/// The RFC 8555 error types this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeErrorType {
    /// The request message was malformed.
    Malformed,
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm,
    /// The client sent an unacceptable anti-replay nonce.
    BadNonce,
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey,
    /// The client lacks sufficient authorization.
    Unauthorized,
    /// The request must include a value for the `externalAccountBinding` field.
    ExternalAccountRequired,
    /// The request specified an account that does not exist.
    AccountDoesNotExist,
    /// The CSR is unacceptable (e.g. due to a short key).
    BadCsr,
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier,
    /// The request attempted to finalize an order that is not ready.
    OrderNotReady,
    /// The revocation reason is not allowed by the server.
    BadRevocationReason,
    /// The certificate is already revoked.
    AlreadyRevoked,
    /// The server experienced an internal error.
    ServerInternal,
    /// The order names a profile the server does not offer (draft-ietf-acme-profiles).
    InvalidProfile,
}

impl AcmeErrorType {
    /// The name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        match self {
            AcmeErrorType::Malformed => "malformed",
            AcmeErrorType::InvalidProfile => "invalidProfile",
            AcmeErrorType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            AcmeErrorType::BadNonce => "badNonce",
            AcmeErrorType::BadPublicKey => "badPublicKey",
            AcmeErrorType::Unauthorized => "unauthorized",
            AcmeErrorType::ExternalAccountRequired => "externalAccountRequired",
            AcmeErrorType::AccountDoesNotExist => "accountDoesNotExist",
            AcmeErrorType::BadCsr => "badCSR",
            AcmeErrorType::RejectedIdentifier => "rejectedIdentifier",
            AcmeErrorType::OrderNotReady => "orderNotReady",
            AcmeErrorType::BadRevocationReason => "badRevocationReason",
            AcmeErrorType::AlreadyRevoked => "alreadyRevoked",
            AcmeErrorType::ServerInternal => "serverInternal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            AcmeErrorType::Unauthorized => StatusCode::FORBIDDEN,
            AcmeErrorType::OrderNotReady => StatusCode::FORBIDDEN,
            AcmeErrorType::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An ACME error: its type and what happened (a response, like the REST API's `ApiError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeError {
    /// The RFC 8555 type.
    pub kind: AcmeErrorType,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
}

impl AcmeError {
    /// An error of this type.
    pub fn new(kind: AcmeErrorType, detail: impl Into<String>) -> AcmeError {
        AcmeError {
            kind,
            detail: detail.into(),
        }
    }

    /// `malformed`.
    pub fn malformed(detail: impl Into<String>) -> AcmeError {
        AcmeError::new(AcmeErrorType::Malformed, detail)
    }
}

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        let body = Body {
            kind: format!("urn:ietf:params:acme:error:{}", self.kind.name()),
            title: None,
            status: self.kind.status().as_u16(),
            detail: &self.detail,
        };
        (
            self.kind.status(),
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response()
    }
}

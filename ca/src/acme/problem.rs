//! ACME errors as RFC 8555 §6.7 problem documents (`urn:ietf:params:acme:error:<type>`), served
//! as `application/problem+json` (RFC 9457).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
        let body = serde_json::json!({
            "type": format!("urn:ietf:params:acme:error:{}", self.kind.name()),
            "status": self.kind.status().as_u16(),
            "detail": self.detail,
        });
        (
            self.kind.status(),
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

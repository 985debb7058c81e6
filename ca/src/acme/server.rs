//! The ACME endpoints under `/acme/` (RFC 8555): directory, newNonce, newAccount (external
//! account binding required) and the account resource. Every answer carries a fresh
//! `Replay-Nonce` and a `Link` to the directory; every error is an RFC 8555 problem.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mandate_store::{AcmeAccountRow, AcmeOrderRow, StoreError, now_unix};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::jws::{self, Jwk, KeyRef, MAX_JWS_BYTES};
use super::problem::{AcmeError, AcmeErrorType};
use crate::CaError;
use crate::http::AppState;
use crate::node::Node;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    directory,
    new_nonce,
    new_nonce_head,
    new_account,
    account,
    orders,
    new_order,
    order,
    finalize,
    authz,
    certificate,
    revoke_cert,
    key_change,
    renewal_info
))]
pub struct Doc;

/// The ACME base URL of the examples.
const EXAMPLE_BASE: &str = "https://ca.example.com/acme";
/// An example nonce.
const EXAMPLE_NONCE: &str = "oFvnlFP1wIhRlYS2jTaXbA";
/// An example account id.
const EXAMPLE_ACCOUNT: &str = "hV3kP0qZ7mXw2RtY9sLc4A";
/// An example order id.
const EXAMPLE_ORDER: &str = "Qm9rT2xWc3pYa0J1eUdOcA";
/// An example certificate serial.
const EXAMPLE_SERIAL: &str = "4f1c9a0b7d2e63a85b10c4e9f2d7a631";
/// The description of a JWS-signed operation: what it does, then what every one shares.
macro_rules! signed {
    ($what:literal) => {
        concat!(
            $what,
            " RFC 8555; JWS body (application/jose+json); errors are \
             urn:ietf:params:acme:error:* problems. Every answer carries a fresh Replay-Nonce \
             and a Link to the directory."
        )
    };
}

/// An example request: a flattened JWS to `path` (under the ACME base) with `payload` (none:
/// POST-as-GET), signed by the example account, or by a new key when `jwk`.
fn example_jws(path: &str, payload: Option<Value>, jwk: bool) -> Value {
    let url = format!("{EXAMPLE_BASE}/{path}");
    let mut protected = json!({"alg": "ES256", "nonce": EXAMPLE_NONCE, "url": url});
    if jwk {
        protected["jwk"] = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    } else {
        protected["kid"] = json!(format!("{EXAMPLE_BASE}/acct/{EXAMPLE_ACCOUNT}"));
    }
    json!({
        "protected": B64.encode(protected.to_string()),
        "payload": payload.map(|p| B64.encode(p.to_string())).unwrap_or_default(),
        "signature": "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    })
}

/// An example `newAccount` payload, with its external account binding (RFC 8555 §7.3.4).
fn example_new_account() -> Value {
    let url = format!("{EXAMPLE_BASE}/new-account");
    let eab = json!({"alg": "HS256", "kid": "eab_3Jx9Qm2VtKp7", "url": url});
    let jwk = json!({"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    json!({
        "termsOfServiceAgreed": true,
        "contact": ["mailto:ops@acme.example"],
        "externalAccountBinding": {
            "protected": B64.encode(eab.to_string()),
            "payload": B64.encode(jwk.to_string()),
            "signature": "s6kD2n9lQW0mZ4yXc7VbR1tHf8JuE3aPo5GiLqNwKxA"
        }
    })
}

/// An example `keyChange` payload: the inner JWS, signed by the new key (RFC 8555 §7.3.5).
fn example_key_change() -> Value {
    let url = format!("{EXAMPLE_BASE}/key-change");
    let protected = json!({"alg": "ES256", "url": url, "jwk": {"kty": "EC", "crv": "P-256",
        "x": "b2yK0x6a4LQ8pRsmU1vNq3tWfXhJcZ9eDgA7iTlOu5E",
        "y": "Vr5sT0nL2kM8qP4jX7cY1wZ9bH3fD6gA0eU5iO8lKcQ"}});
    let payload = json!({"account": format!("{EXAMPLE_BASE}/acct/{EXAMPLE_ACCOUNT}"),
        "oldKey": {"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}});
    json!({
        "protected": B64.encode(protected.to_string()),
        "payload": B64.encode(payload.to_string()),
        "signature": "N0tVj8rX2qL5mZ9cW3yB6hF1dS4gK7pA0eT8uI2oRxQvC5nJ1lM3kH6wY9zD4bG7fE0aP2sU8tO5rL1qN3jWe2"
    })
}

/// An example certificate chain: the agent's certificate, then its issuer's.
const EXAMPLE_CHAIN: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIICBDCCAaugAwIBAgIQTxyaC30uY6hbEMTp8temMTAKBggqhkjOPQQDAjAxMRAw\n\
DgYDVQQKDAdNYW5kYXRlMR0wGwYDVQQDDBRNYW5kYXRlIElzc3VpbmcgQ0EgMTAe\n\
Fw0yNjEyMDcyMzA0MjlaFw0yNjEyMTQyMzA0MjlaMEMxGTAXBgNVBAoMEEFjbWUg\n\
Q2FwaXRhbCBMdGQxJjAkBgNVBAMMHWJvdC0xLmFjbWUuYWdlbnRzLmV4YW1wbGUu\n\
Y29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBE0ODweCGToVl2QEgIuHzAqZ\n\
ggVUDeOEHHtSIXAv88qEZoB2LL2MB97+N7FEjqYOH9qASWBpw7ispZwKjqNpIKOB\n\
kjCBjzAoBgNVHREEITAfgh1ib3QtMS5hY21lLmFnZW50cy5leGFtcGxlLmNvbTAT\n\
BgNVHSUEDDAKBggrBgEFBQcDAjAOBgNVHQ8BAf8EBAMCB4AwHQYDVR0OBBYEFE5y\n\
xMZS1LcotI1ksCNgvxj0PZ4OMB8GA1UdIwQYMBaAFI5RNMMN7eFjeL/KNV1yxdPL\n\
VQYnMAoGCCqGSM49BAMCA0cAMEQCICcQRwwT5LFeh6ieJMNCCzSCwOw5TDQ+BXi4\n\
4qwVE0GtAiBxGbwFGt8Vjy/tiuMaTZBjkK8vdW1O8BBPmJYRIm0WOA==\n\
-----END CERTIFICATE-----\n\
-----BEGIN CERTIFICATE-----\n\
MIIBtzCCAV2gAwIBAgIUJIM8rpFkVmrwZMmU33BbpDJyI+UwCgYIKoZIzj0EAwIw\n\
MTEQMA4GA1UECgwHTWFuZGF0ZTEdMBsGA1UEAwwUTWFuZGF0ZSBJc3N1aW5nIENB\n\
IDEwHhcNMjYxMjA3MjMwNDI5WhcNMzYxMjA0MjMwNDI5WjAxMRAwDgYDVQQKDAdN\n\
YW5kYXRlMR0wGwYDVQQDDBRNYW5kYXRlIElzc3VpbmcgQ0EgMTBZMBMGByqGSM49\n\
AgEGCCqGSM49AwEHA0IABHpTTv01x2nk+betnV+xGsDUcyErzSHaVB3rkgvKC2q2\n\
rXyiLILUbR39Sd9YlpHgP8k7wJs69gaEwcs7r8dwd5ijUzBRMB0GA1UdDgQWBBSO\n\
UTTDDe3hY3i/yjVdcsXTy1UGJzAfBgNVHSMEGDAWgBSOUTTDDe3hY3i/yjVdcsXT\n\
y1UGJzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCICG4uiJeYrnk\n\
tRfKz1Yi+VDZtHxTgiVND92zP84jRbufAiEApeP8e8lDxvxIlgGJdYOIkKEZ+Ajd\n\
Rserfn+yoITuLj4=\n\
-----END CERTIFICATE-----\n\
";

/// An example CSR for the agent's DNS name, base64url DER.
const EXAMPLE_CSR: &str = "MIIBHjCBxQIBADAoMSYwJAYDVQQDDB1ib3QtMS5hY21lLmFnZW50cy5leGFtcGxlLmNvbTBZMBMGByqGSM49AgEGCC\
    qGSM49AwEHA0IABARNDg8Hghk6FZdkBICLh8wKmYIFVA3jhBx7UiFwL_PKhGaAdiy9jAfe_jexRI6mDh_agElgacO4\
    rKWcCo6jaSCgOzA5BgkqhkiG9w0BCQ4xLDAqMCgGA1UdEQQhMB-CHWJvdC0xLmFjbWUuYWdlbnRzLmV4YW1wbGUuY2\
    9tMAoGCCqGSM49BAMCA0gAMEUCIDsL_lLWVFGOId-2UWW1fztic7oYPyBz0pdq5KR-xk-vAiEAzATzo5Zn3Sz1HB_9\
    Osud6BROHOG4qTTKBHKrNPbmhOY";

/// The example certificate, base64url DER.
const EXAMPLE_CERTIFICATE: &str = "MIICBDCCAaugAwIBAgIQTxyaC30uY6hbEMTp8temMTAKBggqhkjOPQQDAjAxMRAwDgYDVQQKDAdNYW5kYXRlMR0wGw\
    YDVQQDDBRNYW5kYXRlIElzc3VpbmcgQ0EgMTAeFw0yNjEyMDcyMzA0MjlaFw0yNjEyMTQyMzA0MjlaMEMxGTAXBgNV\
    BAoMEEFjbWUgQ2FwaXRhbCBMdGQxJjAkBgNVBAMMHWJvdC0xLmFjbWUuYWdlbnRzLmV4YW1wbGUuY29tMFkwEwYHKo\
    ZIzj0CAQYIKoZIzj0DAQcDQgAEBE0ODweCGToVl2QEgIuHzAqZggVUDeOEHHtSIXAv88qEZoB2LL2MB97-N7FEjqYO\
    H9qASWBpw7ispZwKjqNpIKOBkjCBjzAoBgNVHREEITAfgh1ib3QtMS5hY21lLmFnZW50cy5leGFtcGxlLmNvbTATBg\
    NVHSUEDDAKBggrBgEFBQcDAjAOBgNVHQ8BAf8EBAMCB4AwHQYDVR0OBBYEFE5yxMZS1LcotI1ksCNgvxj0PZ4OMB8G\
    A1UdIwQYMBaAFI5RNMMN7eFjeL_KNV1yxdPLVQYnMAoGCCqGSM49BAMCA0cAMEQCICcQRwwT5LFeh6ieJMNCCzSCwO\
    w5TDQ-BXi44qwVE0GtAiBxGbwFGt8Vjy_tiuMaTZBjkK8vdW1O8BBPmJYRIm0WOA";

/// An example account.
fn example_account() -> Value {
    json!({"status": "valid", "contact": ["mailto:ops@acme.example"],
        "orders": format!("{EXAMPLE_BASE}/acct/{EXAMPLE_ACCOUNT}/orders")})
}

/// An example order in `status`, with its certificate once `valid`.
fn example_order(status: &str) -> Value {
    let mut order = json!({
        "status": status, "expires": "2026-12-14T09:30:00Z",
        "identifiers": [{"type": "dns", "value": "bot-1.acme.agents.example.com"}],
        "authorizations": [format!("{EXAMPLE_BASE}/authz/{EXAMPLE_ORDER}")],
        "finalize": format!("{EXAMPLE_BASE}/order/{EXAMPLE_ORDER}/finalize"),
        "profile": "agent"
    });
    if status == "valid" {
        order["certificate"] = json!(format!("{EXAMPLE_BASE}/cert/{EXAMPLE_SERIAL}"));
    }
    order
}

/// The ACME directory (RFC 8555 §7.1.1): the URL of each resource, and what this CA asks.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AcmeDirectory)]
struct Directory {
    /// Where to get a fresh nonce.
    #[schema(format = "uri")]
    new_nonce: String,
    /// Where to make an account.
    #[schema(format = "uri")]
    new_account: String,
    /// Where to order a certificate.
    #[schema(format = "uri")]
    new_order: String,
    /// Where to revoke a certificate.
    #[schema(format = "uri")]
    revoke_cert: String,
    /// Where to change an account's key.
    #[schema(format = "uri")]
    key_change: String,
    /// RFC 9773: the base of the renewal information URLs (`/<certID>` appended).
    #[schema(format = "uri")]
    renewal_info: String,
    /// What the CA says of itself.
    meta: DirectoryMeta,
}

/// What the directory says of the CA.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AcmeDirectoryMeta)]
struct DirectoryMeta {
    /// Always true: a new account needs external account binding credentials (made with
    /// `POST /v1/agents/{id}/eab`).
    external_account_required: bool,
    /// The CA's public URL.
    #[schema(format = "uri")]
    website: String,
    /// draft-ietf-acme-profiles: the certificate profiles an order may name, each with its
    /// description.
    profiles: std::collections::BTreeMap<String, String>,
}

/// The states of an account.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[schema(as = AcmeAccountStatus)]
#[expect(
    dead_code,
    reason = "a type for the document's sake; the state is stored as text"
)]
enum AccountStatus {
    /// In use.
    Valid,
    /// Deactivated by its holder: refused from then on.
    Deactivated,
    /// Revoked by the CA.
    Revoked,
}

/// An ACME account (RFC 8555 §7.1.2), bound to one agent by its external account binding.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeAccount)]
struct AccountView {
    /// Its state.
    #[schema(value_type = AccountStatus)]
    status: String,
    /// `mailto:` URLs (at most 4, of at most 256 characters each).
    #[schema(max_items = 4)]
    contact: Vec<String>,
    /// Where its orders are listed.
    #[schema(format = "uri")]
    orders: String,
}

/// The states of an order.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[schema(as = AcmeOrderStatus)]
#[expect(
    dead_code,
    reason = "a type for the document's sake; the state is stored as text"
)]
enum OrderStatus {
    /// Ready to finalize (authorized from the start).
    Ready,
    /// Being issued.
    Processing,
    /// Issued: `certificate` is set.
    Valid,
    /// Failed for good.
    Invalid,
}

/// The only identifier type.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[schema(as = AcmeIdentifierType)]
#[expect(dead_code, reason = "a type for the document's sake; always `dns`")]
enum IdentifierType {
    /// A DNS name.
    Dns,
}

/// An identifier: always the agent's own DNS name.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeIdentifier)]
struct IdentifierView {
    /// Always `dns`.
    #[serde(rename = "type")]
    #[schema(value_type = IdentifierType)]
    kind: &'static str,
    /// `<agent>.<organization>.<agent domain>`.
    #[schema(format = Hostname)]
    value: String,
}

/// An ACME order (RFC 8555 §7.1.3) for the agent's own DNS name.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeOrder)]
struct OrderView {
    /// Its state.
    #[schema(value_type = OrderStatus)]
    status: String,
    /// When it stops being usable (7 days after it was made).
    #[schema(format = DateTime)]
    expires: String,
    /// Exactly one: the agent's DNS name.
    #[schema(min_items = 1, max_items = 1)]
    identifiers: Vec<IdentifierView>,
    /// Its one authorization, valid from the start.
    #[schema(min_items = 1, max_items = 1)]
    authorizations: Vec<String>,
    /// Where to send the CSR.
    #[schema(format = "uri")]
    finalize: String,
    /// The certificate, once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri", nullable = false)]
    certificate: Option<String>,
    /// RFC 9773: the certID of the certificate this order renews.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    replaces: Option<String>,
    /// draft-ietf-acme-profiles: the certificate profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    profile: Option<String>,
}

/// The only authorization state.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[schema(as = AcmeAuthorizationStatus)]
#[expect(dead_code, reason = "a type for the document's sake; always `valid`")]
enum AuthorizationStatus {
    /// Valid from the start.
    Valid,
}

/// An authorization (RFC 8555 §7.1.4): valid from the start, with no challenge to solve (the
/// external account binding proved that the account speaks for the agent).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeAuthorization)]
struct AuthorizationView {
    /// Always `valid`.
    #[schema(value_type = AuthorizationStatus)]
    status: &'static str,
    /// The order's expiry.
    #[schema(format = DateTime)]
    expires: String,
    /// The agent's DNS name.
    identifier: IdentifierView,
    /// Always empty.
    #[schema(value_type = Vec<Object>, max_items = 0)]
    challenges: Vec<Value>,
}

/// An account's orders (RFC 8555 §7.1.2.1).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeOrderList)]
struct OrderList {
    /// Their URLs, newest first (up to 100).
    #[schema(max_items = 100)]
    orders: Vec<String>,
}

/// RFC 9773 renewal information.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeRenewalInfo)]
struct RenewalInfo {
    /// When to renew: from two thirds to five sixths of the validity; already past for a
    /// revoked certificate, or one retiring because a newer mandate version was approved.
    #[serde(rename = "suggestedWindow")]
    suggested_window: RenewalWindow,
}

/// A time window.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcmeRenewalWindow)]
struct RenewalWindow {
    /// Its start.
    #[schema(format = DateTime)]
    start: String,
    /// Its end.
    #[schema(format = DateTime)]
    end: String,
}

/// Most contact URLs on an account, and longest one.
const MAX_CONTACTS: usize = 4;
const MAX_CONTACT_LEN: usize = 256;

/// The ACME routes, to merge into the daemon's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/acme/directory", get(directory))
        .route("/acme/new-nonce", get(new_nonce).head(new_nonce_head))
        .route("/acme/new-account", post(new_account))
        .route("/acme/acct/{id}", post(account))
        .merge(order_routes())
}

/// Where ACME lives: on the HTTPS listener when there is one (ACME clients want HTTPS).
fn base(node: &Node) -> String {
    let http = &node.cfg.http;
    let root = if http.tls_listen.is_some() {
        &http.tls_public_url
    } else {
        &node.cfg.ca.public_url
    };
    format!("{}/acme", root.trim_end_matches('/'))
}

/// Adds what every ACME answer carries: a fresh nonce and the directory link.
fn finish(node: &Node, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Some(nonce) = node.acme_nonces.issue()
        && let Ok(v) = HeaderValue::from_str(&nonce)
    {
        headers.insert("replay-nonce", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{}/directory>;rel=\"index\"", base(node))) {
        headers.append(header::LINK, v);
    }
    response
}

fn internal(e: CaError) -> AcmeError {
    tracing::error!(error = %e, "ACME request failed");
    AcmeError::new(
        AcmeErrorType::ServerInternal,
        "internal error; try again later",
    )
}

/// `GET /acme/directory`.
#[utoipa::path(get, path = "/acme/directory", operation_id = "acmeDirectory", tag = "acme",
    summary = "ACME directory",
    description = "No key, no JWS. RFC 8555 §7.1.1: the URL of every ACME resource; `meta` says \
        that a new account needs external account binding and names the certificate profiles \
        an order may ask for.",
    security(),
    responses(
        (status = 200, description = "directory", body = Directory, example = json!({
            "newNonce": format!("{EXAMPLE_BASE}/new-nonce"),
            "newAccount": format!("{EXAMPLE_BASE}/new-account"),
            "newOrder": format!("{EXAMPLE_BASE}/new-order"),
            "revokeCert": format!("{EXAMPLE_BASE}/revoke-cert"),
            "keyChange": format!("{EXAMPLE_BASE}/key-change"),
            "renewalInfo": format!("{EXAMPLE_BASE}/renewal-info"),
            "meta": {"externalAccountRequired": true, "website": "https://ca.example.com",
                "profiles": {"agent": "Agent certificate, 7 days (the default)",
                    "shortlived": "Short-lived agent certificate, 24 hours"}}})),
        (status = "4XX", description = "RFC 8555 problem: `malformed`, for a request the \
            listener refuses (a header too large or too slow, a URI too long)",
            body = super::problem::Body<'static>, content_type = "application/problem+json"),
        (status = "5XX", description = "503 when the daemon holds as many connections as it \
            serves (`urn:mandate:problem:overloaded`)", body = super::problem::Body<'static>,
            content_type = "application/problem+json")))]
async fn directory(State(state): State<AppState>) -> Response {
    let b = base(&state.node);
    let body = Directory {
        new_nonce: format!("{b}/new-nonce"),
        new_account: format!("{b}/new-account"),
        new_order: format!("{b}/new-order"),
        revoke_cert: format!("{b}/revoke-cert"),
        key_change: format!("{b}/key-change"),
        renewal_info: format!("{b}/renewal-info"),
        meta: DirectoryMeta {
            external_account_required: true,
            website: state.node.cfg.ca.public_url.clone(),
            // draft-ietf-acme-profiles: name → description.
            profiles: state
                .node
                .cfg
                .ca
                .all_profiles()
                .into_iter()
                .map(|(name, p)| (name, p.description))
                .collect(),
        },
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `GET /acme/new-nonce`: 204 with a fresh nonce.
#[utoipa::path(get, path = "/acme/new-nonce", operation_id = "acmeNewNonce", tag = "acme",
    summary = "A fresh nonce (204)",
    description = "No key, no JWS. RFC 8555 §7.2: the nonce is in Replay-Nonce, good for one \
        request within 10 minutes.",
    security(),
    responses(
        (status = 204, description = "Replay-Nonce header", headers(
            ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
            ("Cache-Control" = String, description = "no-store"),
            ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`"))),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn new_nonce(State(state): State<AppState>) -> Response {
    nonce(&state.node, StatusCode::NO_CONTENT)
}

/// `HEAD /acme/new-nonce`: 200 with a fresh nonce.
#[utoipa::path(head, path = "/acme/new-nonce", operation_id = "acmeNewNonceHead", tag = "acme",
    summary = "A fresh nonce",
    description = "No key, no JWS. RFC 8555 §7.2: the nonce is in Replay-Nonce, good for one \
        request within 10 minutes.",
    security(),
    responses(
        (status = 200, description = "Replay-Nonce header", headers(
            ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
            ("Cache-Control" = String, description = "no-store"),
            ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`"))),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn new_nonce_head(State(state): State<AppState>) -> Response {
    nonce(&state.node, StatusCode::OK)
}

/// An answer with no body but a fresh nonce, never cached.
fn nonce(node: &Node, status: StatusCode) -> Response {
    finish(
        node,
        (status, [(header::CACHE_CONTROL, "no-store")]).into_response(),
    )
}

/// A request whose JWS checked out: signature, nonce and URL.
struct Verified {
    jws: jws::Jws,
    /// The signing key (the account's, for `kid` requests).
    key: Jwk,
    /// The account, for `kid` requests.
    account: Option<AcmeAccountRow>,
}

/// Reads and checks a JWS POST to `url`: content type, size, nonce (single use), the `url`
/// header, the key (`jwk` only where `jwk_allowed`, else an existing valid account's `kid`)
/// and the signature.
async fn verify(
    node: &Node,
    headers: &HeaderMap,
    body: Body,
    url: &str,
    jwk_allowed: bool,
) -> Result<Verified, AcmeError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype != "application/jose+json" {
        return Err(AcmeError::malformed(format!(
            "Content-Type must be application/jose+json (got {ctype:?})"
        )));
    }
    let body = axum::body::to_bytes(body, MAX_JWS_BYTES)
        .await
        .map_err(|_| AcmeError::malformed(format!("request body over {MAX_JWS_BYTES} bytes")))?;
    let jws = jws::parse(&body)?;
    let nonce = jws.header.nonce.as_deref().unwrap_or("");
    if !node.acme_nonces.consume(nonce) {
        return Err(AcmeError::new(
            AcmeErrorType::BadNonce,
            "unknown, used or expired nonce; use the one in this answer's Replay-Nonce",
        ));
    }
    if jws.header.url != url {
        return Err(AcmeError::new(
            AcmeErrorType::Unauthorized,
            format!(
                "the JWS url header {:?} is not this URL ({url})",
                jws.header.url
            ),
        ));
    }
    let (key, account) = match &jws.header.key {
        KeyRef::Jwk(k) if jwk_allowed => (k.clone(), None),
        KeyRef::Jwk(_) => {
            return Err(AcmeError::malformed(
                "this request must be signed by an account (kid), not a bare jwk",
            ));
        }
        KeyRef::Kid(kid) if !jwk_allowed => {
            let id = kid
                .strip_prefix(&format!("{}/acct/", base(node)))
                .ok_or_else(|| {
                    AcmeError::new(
                        AcmeErrorType::AccountDoesNotExist,
                        "kid is not an account URL",
                    )
                })?;
            let account = node
                .store
                .acme_account(id)
                .await
                .map_err(|e| internal(e.into()))?
                .ok_or_else(|| {
                    AcmeError::new(AcmeErrorType::AccountDoesNotExist, "no such account")
                })?;
            if account.status != "valid" {
                return Err(AcmeError::new(
                    AcmeErrorType::Unauthorized,
                    format!("account is {}", account.status),
                ));
            }
            let value: Value = serde_json::from_str(&account.jwk)
                .map_err(|e| internal(CaError::Internal(format!("stored account key: {e}"))))?;
            (Jwk::from_json(&value)?, Some(account))
        }
        KeyRef::Kid(_) => {
            return Err(AcmeError::malformed(
                "this request must carry the new key as jwk, not a kid",
            ));
        }
    };
    jws.verify(&key)?;
    Ok(Verified { jws, key, account })
}

/// Contact URLs: a few `mailto:` addresses of reasonable length.
fn check_contacts(contact: &[String]) -> Result<(), AcmeError> {
    if contact.len() > MAX_CONTACTS
        || contact
            .iter()
            .any(|c| c.len() > MAX_CONTACT_LEN || !c.starts_with("mailto:"))
    {
        return Err(AcmeError::malformed(format!(
            "contact: at most {MAX_CONTACTS} mailto: URLs of at most {MAX_CONTACT_LEN} characters"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountUpdate {
    contact: Option<Vec<String>>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    terms_of_service_agreed: bool,
    #[serde(default)]
    only_return_existing: bool,
    external_account_binding: Option<Value>,
}

fn account_body(node: &Node, a: &AcmeAccountRow) -> AccountView {
    AccountView {
        status: a.status.clone(),
        // Stored as the JSON text of the list it was given.
        contact: serde_json::from_str(&a.contact).unwrap_or_default(),
        orders: format!("{}/acct/{}/orders", base(node), a.id),
    }
}

fn with_location(node: &Node, status: StatusCode, a: &AcmeAccountRow) -> Response {
    let location = format!("{}/acct/{}", base(node), a.id);
    (
        status,
        [(header::LOCATION, location)],
        axum::Json(account_body(node, a)),
    )
        .into_response()
}

/// `POST /acme/new-account`.
#[utoipa::path(post, path = "/acme/new-account", operation_id = "acmeNewAccount", tag = "acme",
    summary = "Create or find an account (external account binding required)",
    description = signed!("Signed by the account's key (jwk). A key that has an account gets \
        it back (200); otherwise externalAccountBinding (RFC 8555 §7.3.4, HS256 with \
        credentials from POST /v1/agents/{id}/eab, single use) binds the new account to the \
        agent (201). `onlyReturnExisting` looks up without making one."),
    security(),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws("new-account", Some(example_new_account()), true))),
    responses(
        (status = 200, description = "the account of this key, which existed already",
            body = AccountView, headers(
                ("Location" = String, description = "the account's URL (its kid)"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_account())),
        (status = 201, description = "created", body = AccountView, headers(
                ("Location" = String, description = "the account's URL (its kid)"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_account())),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn new_account(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let node = Arc::clone(&state.node);
    let answer = create_account(&node, &headers, body).await;
    finish(&node, answer.unwrap_or_else(IntoResponse::into_response))
}

async fn create_account(
    node: &Node,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, AcmeError> {
    let url = format!("{}/new-account", base(node));
    let v = verify(node, headers, body, &url, true).await?;
    let req: NewAccount = serde_json::from_value(v.jws.json_payload()?)
        .map_err(|e| AcmeError::malformed(format!("newAccount payload: {e}")))?;
    let thumbprint = v.key.thumbprint();
    let store = &node.store;
    if let Some(existing) = store
        .acme_account_by_thumbprint(&thumbprint)
        .await
        .map_err(|e| internal(e.into()))?
    {
        return Ok(with_location(node, StatusCode::OK, &existing));
    }
    if req.only_return_existing {
        return Err(AcmeError::new(
            AcmeErrorType::AccountDoesNotExist,
            "no account for this key",
        ));
    }
    let Some(binding) = req.external_account_binding else {
        return Err(AcmeError::new(
            AcmeErrorType::ExternalAccountRequired,
            "this CA requires external account binding: ask your operator for EAB credentials \
             (POST /v1/agents/{id}/eab)",
        ));
    };
    if !req.terms_of_service_agreed {
        tracing::debug!(
            "newAccount without termsOfServiceAgreed (this CA has no terms to agree to)"
        );
    }
    check_contacts(&req.contact)?;

    let kid = binding
        .get("protected")
        .and_then(Value::as_str)
        .and_then(|p| B64.decode(p).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| AcmeError::malformed("externalAccountBinding has no readable kid"))?;
    let found = crate::eab::hmac_key(&node.hsm, store, &kid)
        .await
        .map_err(internal)?;
    let (eab_row, hmac) = match found {
        Some((row, key)) => (Some(row), Some(key)),
        None => (None, None),
    };
    jws::verify_eab(&binding, &v.key, &url, |k| {
        (k == kid).then_some(hmac).flatten()
    })?;
    let eab_row = eab_row.ok_or_else(|| {
        AcmeError::new(
            AcmeErrorType::Unauthorized,
            "unknown or already used external account key id",
        )
    })?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)
        .map_err(|e| internal(CaError::Internal(format!("no randomness: {e}"))))?;
    let account = AcmeAccountRow {
        id: B64.encode(id),
        thumbprint,
        jwk: v.key.to_json().to_string(),
        agent_id: eab_row.agent_id.clone(),
        eab_key_id: eab_row.key_id.clone(),
        status: "valid".into(),
        contact: json!(req.contact).to_string(),
        created_at: now_unix(),
    };
    match crate::ra::acme::open_account(store, &account).await {
        Ok(()) => {}
        Err(StoreError::WrongState(d)) => {
            return Err(AcmeError::new(AcmeErrorType::Unauthorized, d));
        }
        Err(StoreError::Conflict(_)) => {
            // The same key made an account meanwhile: answer with it.
            if let Some(existing) = store
                .acme_account_by_thumbprint(&account.thumbprint)
                .await
                .map_err(|e| internal(e.into()))?
            {
                return Ok(with_location(node, StatusCode::OK, &existing));
            }
            return Err(internal(CaError::Internal("account vanished".into())));
        }
        Err(e) => return Err(internal(e.into())),
    }
    tracing::info!(account = %account.id, agent = %account.agent_id, "ACME account created");
    Ok(with_location(node, StatusCode::CREATED, &account))
}

/// `POST /acme/acct/{id}`: POST-as-GET (or an empty update) returns the account.
#[utoipa::path(post, path = "/acme/acct/{id}", operation_id = "acmeAccount", tag = "acme",
    summary = "Account: POST-as-GET, contact update, deactivation",
    description = signed!("Signed by the account itself (kid). An empty payload reads the \
        account; `contact` replaces its mailto: URLs; `status: deactivated` ends it for good."),
    security(),
    params(("id" = String, Path, description = "account id (the end of its kid URL)")),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws(&format!("acct/{EXAMPLE_ACCOUNT}"),
            Some(json!({"contact": ["mailto:ops@acme.example"]})), false))),
    responses(
        (status = 200, description = "the account", body = AccountView, headers(
                ("Location" = String, description = "the account's URL (its kid)"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_account())),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn account(
    State(state): State<AppState>,
    AcmePath(id): AcmePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let node = Arc::clone(&state.node);
    let answer = async {
        let url = format!("{}/acct/{id}", base(&node));
        let v = verify(&node, &headers, body, &url, false).await?;
        let account = v
            .account
            .ok_or_else(|| AcmeError::new(AcmeErrorType::Unauthorized, "no account"))?;
        if account.id != id {
            return Err(AcmeError::new(
                AcmeErrorType::Unauthorized,
                "an account may only read itself",
            ));
        }
        if v.jws.payload.is_empty() {
            return Ok(with_location(&node, StatusCode::OK, &account));
        }
        let req: AccountUpdate = serde_json::from_value(v.jws.json_payload()?)
            .map_err(|e| AcmeError::malformed(format!("account update: {e}")))?;
        let status = match req.status.as_deref() {
            None => None,
            Some("deactivated") => Some("deactivated"),
            Some(other) => {
                return Err(AcmeError::malformed(format!(
                    "an account can only be set to deactivated (not {other:?})"
                )));
            }
        };
        let contact = match &req.contact {
            Some(c) => {
                check_contacts(c)?;
                Some(json!(c).to_string())
            }
            None => None,
        };
        if status.is_none() && contact.is_none() {
            return Ok(with_location(&node, StatusCode::OK, &account));
        }
        let updated =
            crate::ra::acme::update_account(&node.store, &account, contact.as_deref(), status)
                .await
                .map_err(|e| match e {
                    StoreError::WrongState(d) => AcmeError::new(AcmeErrorType::Unauthorized, d),
                    other => internal(other.into()),
                })?;
        Ok(with_location(&node, StatusCode::OK, &updated))
    }
    .await;
    finish(&node, answer.unwrap_or_else(IntoResponse::into_response))
}

/// How long an order stays usable.
const ORDER_LIFETIME_SECS: i64 = 7 * 86_400;

/// The order, authorization, finalize and certificate routes.
pub fn order_routes() -> Router<AppState> {
    Router::new()
        .route("/acme/new-order", post(new_order))
        .route("/acme/order/{id}", post(order))
        .route("/acme/order/{id}/finalize", post(finalize))
        .route("/acme/authz/{id}", post(authz))
        .route("/acme/cert/{serial}", post(certificate))
        .route("/acme/acct/{id}/orders", post(orders))
        .route("/acme/revoke-cert", post(revoke_cert))
        .route("/acme/key-change", post(key_change))
        .route("/acme/renewal-info/{cert_id}", get(renewal_info))
}

fn order_body(node: &Node, o: &AcmeOrderRow) -> OrderView {
    let b = base(node);
    OrderView {
        status: o.status.clone(),
        expires: crate::rfc3339(o.expires_at),
        identifiers: vec![IdentifierView {
            kind: "dns",
            value: o.identifier.clone(),
        }],
        authorizations: vec![format!("{b}/authz/{}", o.id)],
        finalize: format!("{b}/order/{}/finalize", o.id),
        certificate: o.cert_serial.as_ref().map(|s| format!("{b}/cert/{s}")),
        replaces: o.replaces.clone(),
        profile: o.profile.clone(),
    }
}

/// The lifetime an order's certificate gets, as an ACME problem when refused: an unknown
/// profile is `invalidProfile`, one longer than the organization allows `rejectedIdentifier`
/// would mislead, so `malformed` with the reason.
async fn order_lifetime(
    node: &Node,
    agent_id: &str,
    profile: Option<&str>,
) -> Result<crate::ra::certify::Lifetime, AcmeError> {
    match crate::ra::acme::order_lifetime(&node.store, &node.cfg, agent_id, profile).await {
        Ok(Ok(l)) => Ok(l),
        Ok(Err(crate::ra::certify::LifetimeError::UnknownProfile(d))) => {
            Err(AcmeError::new(AcmeErrorType::InvalidProfile, d))
        }
        Ok(Err(crate::ra::certify::LifetimeError::Invalid(d))) => Err(AcmeError::malformed(d)),
        Err(e) => Err(internal(e)),
    }
}

/// An order object with its URL in `Location`.
fn order_response(node: &Node, status: StatusCode, o: &AcmeOrderRow) -> Response {
    let location = format!("{}/order/{}", base(node), o.id);
    (
        status,
        [(header::LOCATION, location)],
        axum::Json(order_body(node, o)),
    )
        .into_response()
}

/// Runs `f` on a verified kid-signed request to `url` and finishes the answer.
async fn with_account<F, Fut>(
    state: &AppState,
    headers: HeaderMap,
    body: Body,
    url: String,
    f: F,
) -> Response
where
    F: FnOnce(Arc<Node>, Verified, AcmeAccountRow) -> Fut,
    Fut: std::future::Future<Output = Result<Response, AcmeError>>,
{
    let node = Arc::clone(&state.node);
    let answer = async {
        let v = verify(&node, &headers, body, &url, false).await?;
        let account = v
            .account
            .clone()
            .ok_or_else(|| AcmeError::new(AcmeErrorType::Unauthorized, "no account"))?;
        f(Arc::clone(&node), v, account).await
    }
    .await;
    finish(&node, answer.unwrap_or_else(IntoResponse::into_response))
}

/// The account's order with this id, or `malformed` (no such order for this account).
async fn own_order(
    node: &Node,
    account: &AcmeAccountRow,
    id: &str,
) -> Result<AcmeOrderRow, AcmeError> {
    node.store
        .acme_order(id)
        .await
        .map_err(|e| internal(e.into()))?
        .filter(|o| o.account_id == account.id)
        .ok_or_else(|| AcmeError::malformed("no such order for this account"))
}

/// Checks the agent may get a certificate now: approved mandate, not suspended.
async fn agent_dns_name(node: &Node, agent_id: &str) -> Result<String, AcmeError> {
    match node.issuer.eligible(agent_id).await {
        Ok((agent, _)) => Ok(node.issuer.dns_name(agent_id, &agent.organization)),
        Err(CaError::NotApproved(d)) => Err(AcmeError::new(AcmeErrorType::Unauthorized, d)),
        Err(CaError::NotFound(_)) => Err(AcmeError::new(
            AcmeErrorType::Unauthorized,
            "the account's agent is gone",
        )),
        Err(e) => Err(internal(e)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewOrder {
    identifiers: Vec<Identifier>,
    /// RFC 9773: the certID of the certificate this order renews.
    replaces: Option<String>,
    /// draft-ietf-acme-profiles: the profile of the certificate (one of `meta.profiles`).
    profile: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// `POST /acme/new-order`: only the account's agent's own DNS name.
#[utoipa::path(post, path = "/acme/new-order", operation_id = "acmeNewOrder", tag = "acme",
    summary = "Order the agent's own DNS name",
    description = signed!("Signed by an account (kid). Exactly one identifier, dns \
        `<agent>.<organization>.<agent domain>`; the agent needs an approved mandate. \
        `profile` names one of the directory's profiles; `replaces` (RFC 9773) the certID of \
        the agent's certificate this one renews; notBefore/notAfter are refused (the \
        validity comes from the CA's policy). The order is ready at once."),
    security(),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws("new-order", Some(json!({
            "identifiers": [{"type": "dns", "value": "bot-1.acme.agents.example.com"}],
            "profile": "agent"})), false))),
    responses(
        (status = 201, description = "created", body = OrderView, headers(
                ("Location" = String, description = "the order's URL"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_order("ready"))),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn new_order(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let url = format!("{}/new-order", base(&state.node));
    with_account(&state, headers, body, url, |node, v, account| async move {
        let req: NewOrder = serde_json::from_value(v.jws.json_payload()?)
            .map_err(|e| AcmeError::malformed(format!("newOrder payload: {e}")))?;
        if req.not_before.is_some() || req.not_after.is_some() {
            return Err(AcmeError::malformed(
                "notBefore/notAfter are not supported: the validity comes from the CA's policy",
            ));
        }
        let dns = agent_dns_name(&node, &account.agent_id).await?;
        let lifetime = order_lifetime(&node, &account.agent_id, req.profile.as_deref()).await?;
        if let Some(replaced) = &req.replaces {
            let old = certificate_by_cert_id(&node, replaced).await?;
            if old.agent_id != account.agent_id {
                return Err(AcmeError::malformed(
                    "replaces names a certificate of another agent",
                ));
            }
        }
        match req.identifiers.as_slice() {
            [one] if one.kind == "dns" && one.value.eq_ignore_ascii_case(&dns) => {}
            _ => {
                return Err(AcmeError::new(
                    AcmeErrorType::RejectedIdentifier,
                    format!("this account may order exactly one identifier: dns {dns}"),
                ));
            }
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| internal(CaError::Internal(format!("no randomness: {e}"))))?;
        let now = now_unix();
        let order = AcmeOrderRow {
            id: B64.encode(id),
            account_id: account.id.clone(),
            agent_id: account.agent_id.clone(),
            identifier: dns,
            status: "ready".into(),
            expires_at: now + ORDER_LIFETIME_SECS,
            cert_serial: None,
            created_at: now,
            replaces: req.replaces.clone(),
            profile: lifetime.profile,
        };
        crate::ra::acme::open_order(&node.store, &order)
            .await
            .map_err(|e| internal(e.into()))?;
        Ok(order_response(&node, StatusCode::CREATED, &order))
    })
    .await
}

/// `POST /acme/order/{id}` (POST-as-GET).
#[utoipa::path(post, path = "/acme/order/{id}", operation_id = "acmeOrder", tag = "acme",
    summary = "Order (POST-as-GET)",
    description = signed!("Signed by the account that made the order (kid), empty payload."),
    security(),
    params(("id" = String, Path, description = "order id")),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws(&format!("order/{EXAMPLE_ORDER}"), None, false))),
    responses(
        (status = 200, description = "the order", body = OrderView, headers(
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_order("valid"))),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn order(
    State(state): State<AppState>,
    AcmePath(id): AcmePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let url = format!("{}/order/{id}", base(&state.node));
    with_account(&state, headers, body, url, |node, _, account| async move {
        let o = own_order(&node, &account, &id).await?;
        Ok((StatusCode::OK, axum::Json(order_body(&node, &o))).into_response())
    })
    .await
}

/// `POST /acme/authz/{id}` (POST-as-GET): valid from the start, with no challenge to solve —
/// the external account binding proved that the account speaks for this agent.
#[utoipa::path(post, path = "/acme/authz/{id}", operation_id = "acmeAuthorization", tag = "acme",
    summary = "Authorization (valid at once; no challenge)",
    description = signed!("Signed by the account that made the order (kid), empty payload. \
        Valid from the start with no challenge to solve: the external account binding proved \
        that the account speaks for the agent."),
    security(),
    params(("id" = String, Path, description = "authorization id (its order's)")),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws(&format!("authz/{EXAMPLE_ORDER}"), None, false))),
    responses(
        (status = 200, description = "the authorization", body = AuthorizationView, headers(
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!({"status": "valid", "expires": "2026-12-14T09:30:00Z",
                "identifier": {"type": "dns", "value": "bot-1.acme.agents.example.com"},
                "challenges": []})),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn authz(
    State(state): State<AppState>,
    AcmePath(id): AcmePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let url = format!("{}/authz/{id}", base(&state.node));
    with_account(&state, headers, body, url, |node, _, account| async move {
        let o = own_order(&node, &account, &id).await?;
        Ok((
            StatusCode::OK,
            axum::Json(AuthorizationView {
                status: "valid",
                expires: crate::rfc3339(o.expires_at),
                identifier: IdentifierView {
                    kind: "dns",
                    value: o.identifier,
                },
                challenges: Vec::new(),
            }),
        )
            .into_response())
    })
    .await
}

/// `POST /acme/order/{id}/finalize` `{csr}`: issues through the same pipeline as the REST API
/// (approved mandate, CSR checks, HSM), so the certificate carries the agent's mandate.
#[utoipa::path(post, path = "/acme/order/{id}/finalize", operation_id = "acmeFinalize",
    tag = "acme", summary = "Finalize with a CSR",
    description = signed!("Signed by the account that made the order (kid); payload `csr`, \
        base64url DER. Issues through the same pipeline as POST /v1/agents/{id}/certify \
        (approved mandate, CSR checks, HSM), so the certificate carries the agent's mandate; \
        answers the valid order with its certificate URL. A refused CSR (badCSR) leaves the \
        order ready for a better one."),
    security(),
    params(("id" = String, Path, description = "order id")),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws(&format!("order/{EXAMPLE_ORDER}/finalize"), Some(json!({
            "csr": EXAMPLE_CSR})),
            false))),
    responses(
        (status = 200, description = "the order, valid, with its certificate", body = OrderView,
            headers(
                ("Location" = String, description = "the order's URL"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_order("valid"))),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn finalize(
    State(state): State<AppState>,
    AcmePath(id): AcmePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let url = format!("{}/order/{id}/finalize", base(&state.node));
    with_account(&state, headers, body, url, |node, v, account| async move {
        let o = own_order(&node, &account, &id).await?;
        let payload = v.jws.json_payload()?;
        let csr_b64 = payload
            .get("csr")
            .and_then(Value::as_str)
            .ok_or_else(|| AcmeError::malformed("finalize payload needs csr"))?;
        let csr_der = B64
            .decode(csr_b64)
            .map_err(|_| AcmeError::new(AcmeErrorType::BadCsr, "csr is not base64url DER"))?;
        if o.expires_at <= now_unix() {
            return Err(AcmeError::new(
                AcmeErrorType::OrderNotReady,
                "the order expired",
            ));
        }
        agent_dns_name(&node, &o.agent_id).await?;
        let store = &node.store;
        if !crate::ra::acme::move_order(store, &o.id, "ready", "processing", None)
            .await
            .map_err(|e| internal(e.into()))?
        {
            return Err(AcmeError::new(
                AcmeErrorType::OrderNotReady,
                format!("the order is {}, not ready", o.status),
            ));
        }
        // The pipeline takes PEM, which wants lines of 64 characters.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&csr_der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            lines.join("\n")
        );
        let lifetime = match order_lifetime(&node, &o.agent_id, o.profile.as_deref()).await {
            Ok(l) => l,
            Err(e) => {
                let _ =
                    crate::ra::acme::move_order(store, &o.id, "processing", "ready", None).await;
                return Err(e);
            }
        };
        let issued = node
            .issuer
            .certify(
                &o.agent_id,
                crate::issuance::AgentKey::Csr(&pem),
                &lifetime,
                &format!("acme:{}", account.id),
                None,
            )
            .await;
        let issued = match issued {
            Ok(i) => i,
            Err(e) => {
                // Back to ready: the client may send a better CSR.
                let _ =
                    crate::ra::acme::move_order(store, &o.id, "processing", "ready", None).await;
                return Err(match e {
                    CaError::Csr(c) => AcmeError::new(AcmeErrorType::BadCsr, c.to_string()),
                    CaError::NotApproved(d) => AcmeError::new(AcmeErrorType::Unauthorized, d),
                    CaError::InvalidRequest(d) => AcmeError::new(AcmeErrorType::BadCsr, d),
                    other => internal(other),
                });
            }
        };
        crate::ra::acme::move_order(
            store,
            &o.id,
            "processing",
            "valid",
            Some(&issued.serial_number),
        )
        .await
        .map_err(|e| internal(e.into()))?;
        let done = own_order(&node, &account, &id).await?;
        tracing::info!(order = %o.id, serial = %issued.serial_number, "ACME order finalized");
        Ok(order_response(&node, StatusCode::OK, &done))
    })
    .await
}

/// `POST /acme/cert/{serial}` (POST-as-GET): the certificate and its chain, PEM.
#[utoipa::path(post, path = "/acme/cert/{serial}", operation_id = "acmeCertificate", tag = "acme",
    summary = "Certificate chain, PEM (POST-as-GET)",
    description = signed!("Signed by the account whose order issued it (kid), empty payload. \
        The certificate, then its issuer's chain."),
    security(),
    params(("serial" = String, Path,
        description = "the serial as the order's `certificate` URL gives it: lowercase hex")),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws(&format!("cert/{EXAMPLE_SERIAL}"), None, false))),
    responses(
        (status = 200, description = "the certificate and its chain", body = String,
            content_type = "application/pem-certificate-chain", headers(
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(EXAMPLE_CHAIN)),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn certificate(
    State(state): State<AppState>,
    AcmePath(serial): AcmePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let url = format!("{}/cert/{serial}", base(&state.node));
    with_account(&state, headers, body, url, |node, _, account| async move {
        let store = &node.store;
        let mine = store
            .acme_order_by_serial(&serial)
            .await
            .map_err(|e| internal(e.into()))?
            .is_some_and(|o| o.account_id == account.id);
        let (der, issuer_id) = store
            .certificate(&serial)
            .await
            .map_err(|e| internal(e.into()))?
            .and_then(|c| Some((c.der?, c.issuer_id)))
            .filter(|_| mine)
            .ok_or_else(|| AcmeError::malformed("no such certificate for this account"))?;
        let pem = crate::x509::cert_pem(&der).map_err(internal)?;
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
            format!("{pem}{}", node.issuer.chain_pem_of(issuer_id)),
        )
            .into_response())
    })
    .await
}

/// `POST /acme/acct/{id}/orders` (POST-as-GET): the account's orders, newest first (up to 100).
#[utoipa::path(post, path = "/acme/acct/{id}/orders", operation_id = "acmeAccountOrders",
    tag = "acme", summary = "The account's orders",
    description = signed!("Signed by the account itself (kid), empty payload. Newest first, up \
        to 100."),
    security(),
    params(("id" = String, Path, description = "account id (the end of its kid URL)")),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws(&format!("acct/{EXAMPLE_ACCOUNT}/orders"), None, false))),
    responses(
        (status = 200, description = "the order URLs", body = OrderList, headers(
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!({"orders": [format!("{EXAMPLE_BASE}/order/{EXAMPLE_ORDER}")]})),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn orders(
    State(state): State<AppState>,
    AcmePath(id): AcmePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let url = format!("{}/acct/{id}/orders", base(&state.node));
    with_account(&state, headers, body, url, |node, _, account| async move {
        if account.id != id {
            return Err(AcmeError::new(
                AcmeErrorType::Unauthorized,
                "not this account's orders",
            ));
        }
        let ids = node
            .store
            .acme_order_ids(&account.id, 100)
            .await
            .map_err(|e| internal(e.into()))?;
        let b = base(&node);
        let orders: Vec<String> = ids.iter().map(|i| format!("{b}/order/{i}")).collect();
        Ok((StatusCode::OK, axum::Json(OrderList { orders })).into_response())
    })
    .await
}

/// `POST /acme/revoke-cert` `{certificate, reason?}`: signed by an account of the certificate's
/// agent (kid), or by the certificate's own key (jwk). Visible in OCSP and the CRL at once,
/// like every revocation.
#[utoipa::path(post, path = "/acme/revoke-cert", operation_id = "acmeRevokeCertificate",
    tag = "acme", summary = "Revoke a certificate",
    description = signed!("Signed by an account of the certificate's agent (kid), or by the \
        certificate's own key (jwk). Payload `certificate` (base64url DER) and `reason` (RFC \
        5280 CRLReason: 0 unspecified, the default; 1 keyCompromise; 4 superseded; 5 \
        cessationOfOperation; 3 and 9 are for operators and compliance, through the REST \
        API: badRevocationReason). Seen in OCSP and the CRL at once."),
    security(),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws("revoke-cert", Some(json!({
            "certificate": EXAMPLE_CERTIFICATE,
            "reason": 4})), false))),
    responses(
        (status = 200, description = "revoked (no body)", headers(
            ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
            ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`"))),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn revoke_cert(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let node = Arc::clone(&state.node);
    let answer = async {
        let url = format!("{}/revoke-cert", base(&node));
        // Either kind of signer: try as an account first when the header names a kid.
        let v = verify_any(&node, &headers, body, &url).await?;
        let payload = v.jws.json_payload()?;
        let der = payload
            .get("certificate")
            .and_then(Value::as_str)
            .and_then(|c| B64.decode(c).ok())
            .ok_or_else(|| AcmeError::malformed("revokeCert needs certificate (base64url DER)"))?;
        let reason = match payload.get("reason") {
            None => crate::revocation::RevocationReason::Unspecified,
            Some(r) => r
                .as_i64()
                .and_then(crate::revocation::RevocationReason::from_code)
                .ok_or_else(|| {
                    AcmeError::new(
                        AcmeErrorType::BadRevocationReason,
                        "reason must be 0, 1, 3, 4, 5 or 9 (RFC 5280 CRLReason)",
                    )
                })?,
        };
        if !reason.open_to_agents() {
            return Err(AcmeError::new(
                AcmeErrorType::BadRevocationReason,
                format!(
                    "{} is for operators and compliance officers (REST API), not for the agent",
                    reason.name()
                ),
            ));
        }
        let cert = {
            use der::Decode;
            x509_cert::Certificate::from_der(&der)
                .map_err(|_| AcmeError::malformed("certificate is not DER X.509"))?
        };
        let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
        let stored = node
            .store
            .certificate(&serial)
            .await
            .map_err(|e| internal(e.into()))?
            .filter(|c| c.der.as_deref() == Some(der.as_slice()))
            .ok_or_else(|| {
                AcmeError::new(AcmeErrorType::Unauthorized, "not a certificate this CA issued")
            })?;
        let allowed = match &v.account {
            Some(account) => account.agent_id == stored.agent_id,
            None => v.key.is_key_of(&cert.tbs_certificate.subject_public_key_info),
        };
        if !allowed {
            return Err(AcmeError::new(
                AcmeErrorType::Unauthorized,
                "only an account of the certificate's agent, or the certificate's own key, may revoke it",
            ));
        }
        let account = v.account.as_ref().map(|a| a.id.as_str());
        let outcome = crate::ra::acme::revoke(&node.store, account, &serial, reason)
            .await
            .map_err(|e| internal(e.into()))?;
        match outcome {
            mandate_store::Revocation::Revoked(_) => {
                tracing::info!(serial = %serial, reason = reason.name(), "certificate revoked over ACME");
                Ok(StatusCode::OK.into_response())
            }
            mandate_store::Revocation::AlreadyRevoked(_) => Err(AcmeError::new(
                AcmeErrorType::AlreadyRevoked,
                "the certificate was revoked before",
            )),
        }
    }
    .await;
    finish(&node, answer.unwrap_or_else(IntoResponse::into_response))
}

/// [`verify`] for endpoints that take either an account (kid) or a bare key (jwk).
async fn verify_any(
    node: &Node,
    headers: &HeaderMap,
    body: Body,
    url: &str,
) -> Result<Verified, AcmeError> {
    let body = axum::body::to_bytes(body, MAX_JWS_BYTES)
        .await
        .map_err(|_| AcmeError::malformed(format!("request body over {MAX_JWS_BYTES} bytes")))?;
    let by_account = matches!(jws::parse(&body)?.header.key, KeyRef::Kid(_));
    verify(node, headers, Body::from(body), url, !by_account).await
}

/// `POST /acme/key-change` (RFC 8555 §7.3.5): the outer JWS is signed by the account's key, the
/// inner one (its payload) by the new key, and names the account and the old key.
#[utoipa::path(post, path = "/acme/key-change", operation_id = "acmeKeyChange", tag = "acme",
    summary = "Change the account key",
    description = signed!("RFC 8555 §7.3.5: the outer JWS is signed by the account (kid); its \
        payload is a JWS signed by the new key (jwk, no nonce, the same url) whose payload \
        names the account and its old key. A new key that another account has answers 409 \
        with that account in Location."),
    security(),
    request_body(content = super::jws::Flattened, content_type = "application/jose+json",
        example = json!(example_jws("key-change", Some(example_key_change()), false))),
    responses(
        (status = 200, description = "the account, with its new key", body = AccountView,
            headers(
                ("Location" = String, description = "the account's URL (its kid)"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!(example_account())),
        (status = 409, description = "another account uses the new key (a `malformed` \
            problem with status 409)", body = super::problem::Body<'static>,
            content_type = "application/problem+json", headers(
                ("Location" = String, description = "the account that has the key"),
                ("Replay-Nonce" = String, description = "A fresh nonce for the next request"),
                ("Link" = String, description = "The directory: `<https://…/acme/directory>;rel=\"index\"`")),
            example = json!({"type": "urn:ietf:params:acme:error:malformed", "status": 409,
                "detail": "another account uses the new key"})),
        (status = "4XX", response = inline(super::problem::Refusal)),
        (status = "5XX", response = inline(super::problem::Failure))))]
async fn key_change(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let url = format!("{}/key-change", base(&state.node));
    let outer_url = url.clone();
    with_account(&state, headers, body, url, |node, v, account| async move {
        let inner = jws::parse(&v.jws.payload)?;
        let KeyRef::Jwk(new_key) = &inner.header.key else {
            return Err(AcmeError::malformed(
                "the inner JWS must carry the new key as jwk",
            ));
        };
        if inner.header.nonce.is_some() {
            return Err(AcmeError::malformed("the inner JWS must not have a nonce"));
        }
        if inner.header.url != outer_url {
            return Err(AcmeError::malformed(
                "the inner JWS url must be the keyChange URL",
            ));
        }
        inner.verify(new_key)?;
        let payload = inner.json_payload()?;
        let kid = format!("{}/acct/{}", base(&node), account.id);
        if payload.get("account").and_then(Value::as_str) != Some(kid.as_str()) {
            return Err(AcmeError::malformed(
                "inner payload account is not the signing account",
            ));
        }
        let old = Jwk::from_json(payload.get("oldKey").unwrap_or(&Value::Null))?;
        if old != v.key {
            return Err(AcmeError::malformed(
                "inner payload oldKey is not the account's key",
            ));
        }
        let new_thumbprint = new_key.thumbprint();
        let in_use = |node: &Node, tp: String| {
            let node_base = base(node);
            let store = node.store.clone();
            async move {
                let other = store
                    .acme_account_by_thumbprint(&tp)
                    .await
                    .map_err(|e| internal(e.into()))?;
                Ok::<_, AcmeError>(other.map(|o| {
                    let problem = super::problem::Body {
                        kind: "urn:ietf:params:acme:error:malformed".to_owned(),
                        title: None,
                        status: 409,
                        detail: "another account uses the new key",
                    };
                    (
                        StatusCode::CONFLICT,
                        [
                            (header::LOCATION, format!("{node_base}/acct/{}", o.id)),
                            (header::CONTENT_TYPE, "application/problem+json".to_owned()),
                        ],
                        serde_json::to_string(&problem).unwrap_or_default(),
                    )
                        .into_response()
                }))
            }
        };
        if let Some(conflict) = in_use(&node, new_thumbprint.clone()).await? {
            return Ok(conflict);
        }
        match crate::ra::acme::change_key(
            &node.store,
            &account,
            &new_thumbprint,
            &new_key.to_json().to_string(),
        )
        .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                if let Some(conflict) = in_use(&node, new_thumbprint).await? {
                    return Ok(conflict);
                }
                return Err(internal(CaError::Internal("key conflict vanished".into())));
            }
            Err(StoreError::WrongState(d)) => {
                return Err(AcmeError::new(AcmeErrorType::Unauthorized, d));
            }
            Err(e) => return Err(internal(e.into())),
        }
        tracing::info!(account = %account.id, "ACME account key changed");
        let updated = node
            .store
            .acme_account(&account.id)
            .await
            .map_err(|e| internal(e.into()))?
            .ok_or_else(|| internal(CaError::Internal("account vanished".into())))?;
        Ok(with_location(&node, StatusCode::OK, &updated))
    })
    .await
}

/// The certificate an RFC 9773 certID names: base64url(AKI keyIdentifier) "."
/// base64url(serial), checked against the issuer's key identifier.
async fn certificate_by_cert_id(
    node: &Node,
    cert_id: &str,
) -> Result<mandate_store::CertificateRow, AcmeError> {
    let (aki, serial) = cert_id
        .split_once('.')
        .and_then(|(a, s)| Some((B64.decode(a).ok()?, B64.decode(s).ok()?)))
        .ok_or_else(|| {
            AcmeError::malformed("certID must be base64url(AKI keyIdentifier).base64url(serial)")
        })?;
    let not_found = || AcmeError::malformed("no certificate of this CA has that certID");
    let cert = node
        .store
        .certificate(&hex::encode(&serial))
        .await
        .map_err(|e| internal(e.into()))?
        .ok_or_else(not_found)?;
    let issuer = node
        .store
        .ca_certificate(cert.issuer_id)
        .await
        .map_err(|e| internal(e.into()))?
        .ok_or_else(not_found)?;
    if issuer.ski != aki {
        return Err(not_found());
    }
    Ok(cert)
}

/// How often clients should ask for renewal information again at most (RFC 9773
/// Retry-After); a short-lived certificate is asked about every tenth of its lifetime.
const ARI_RETRY_AFTER_SECS: i64 = 6 * 3600;

/// Path parameters whose rejection (a segment that is not valid UTF-8 once percent-decoded) is
/// an RFC 8555 `malformed` problem, as every ACME error is.
struct AcmePath<T>(T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AcmePath<T> {
    type Rejection = AcmeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AcmeError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AcmePath(p.0))
            .map_err(|rej| {
                AcmeError::malformed(format!("the URL path is not valid: {}", rej.body_text()))
            })
    }
}

/// `GET /acme/renewal-info/{certID}` (RFC 9773): when to renew. The window runs from two
/// thirds to five sixths of the validity; for a revoked certificate, or one retiring because a
/// newer mandate version was approved, it is already past, so the client renews at once.
#[utoipa::path(get, path = "/acme/renewal-info/{cert_id}", operation_id = "acmeRenewalInfo",
    tag = "acme", summary = "ACME renewal information (RFC 9773)",
    description = "No key, no JWS. When to renew: from two thirds to five sixths of the \
        validity; for a revoked certificate, or one retiring because a newer mandate version \
        was approved, a window already past, so the client renews at once. Errors are \
        urn:ietf:params:acme:error:* problems (`malformed` for a certID this CA did not issue).",
    security(),
    params(("cert_id" = String, Path,
        description = "RFC 9773 certID: base64url(AKI keyIdentifier) \".\" base64url(serial)",
        example = "W3e9XyCQG2S1rPJ5xwHk7DQkpHU.Txyagt9LmOoWxDE6fLXpjE")),
    responses(
        (status = 200, description = "suggestedWindow", body = RenewalInfo, headers(
            ("Retry-After" = String, description = "seconds before asking again: a tenth of \
                the validity, at most 6 hours")),
            example = json!({"suggestedWindow": {"start": "2026-12-12T09:30:00Z",
                "end": "2026-12-13T05:30:00Z"}})),
        (status = "4XX", description = "RFC 8555 problem: 400 `malformed`",
            body = super::problem::Body<'static>, content_type = "application/problem+json",
            example = json!({"type": "urn:ietf:params:acme:error:malformed", "status": 400,
                "detail": "no certificate of this CA has that certID"})),
        (status = "5XX", description = "RFC 8555 problem: 500 `serverInternal`; 503 \
            `urn:mandate:problem:overloaded`", body = super::problem::Body<'static>,
            content_type = "application/problem+json")))]
async fn renewal_info(
    State(state): State<AppState>,
    AcmePath(cert_id): AcmePath<String>,
) -> Response {
    let node = Arc::clone(&state.node);
    let answer = async {
        let cert = certificate_by_cert_id(&node, &cert_id).await?;
        let retry_after = ((cert.not_after - cert.not_before) / 10).clamp(1, ARI_RETRY_AFTER_SECS);
        let (start, end) =
            if cert.status == mandate_store::CertStatus::Revoked || cert.retire_at.is_some() {
                let now = now_unix();
                (now - 3600, now - 60)
            } else {
                let life = cert.not_after - cert.not_before;
                (
                    cert.not_before + life * 2 / 3,
                    cert.not_before + life * 5 / 6,
                )
            };
        Ok::<_, AcmeError>(
            (
                StatusCode::OK,
                [(header::RETRY_AFTER, retry_after.to_string())],
                axum::Json(RenewalInfo {
                    suggested_window: RenewalWindow {
                        start: crate::rfc3339(start),
                        end: crate::rfc3339(end),
                    },
                }),
            )
                .into_response(),
        )
    }
    .await;
    answer.unwrap_or_else(IntoResponse::into_response)
}

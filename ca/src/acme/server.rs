//! The ACME endpoints under `/acme/` (RFC 8555): directory, newNonce, newAccount (external
//! account binding required) and the account resource. Every answer carries a fresh
//! `Replay-Nonce` and a `Link` to the directory; every error is an RFC 8555 problem.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mandate_store::{AcmeAccountRow, AuditEvent, StoreError, now_unix};
use serde::Deserialize;
use serde_json::{Value, json};

use super::eab;
use super::jws::{self, Jwk, KeyRef, MAX_JWS_BYTES};
use super::problem::{AcmeError, AcmeErrorType};
use crate::CaError;
use crate::http::AppState;
use crate::node::Node;

/// Most contact URLs on an account, and longest one.
const MAX_CONTACTS: usize = 4;
const MAX_CONTACT_LEN: usize = 256;

/// The ACME routes, to merge into the daemon's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/acme/directory", get(directory))
        .route("/acme/new-nonce", get(new_nonce).head(new_nonce))
        .route("/acme/new-account", post(new_account))
        .route("/acme/acct/{id}", post(account))
}

fn base(node: &Node) -> String {
    format!("{}/acme", node.cfg.ca.public_url.trim_end_matches('/'))
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
async fn directory(State(state): State<AppState>) -> Response {
    let b = base(&state.node);
    let body = json!({
        "newNonce": format!("{b}/new-nonce"),
        "newAccount": format!("{b}/new-account"),
        "newOrder": format!("{b}/new-order"),
        "revokeCert": format!("{b}/revoke-cert"),
        "keyChange": format!("{b}/key-change"),
        "meta": {
            "externalAccountRequired": true,
            "website": state.node.cfg.ca.public_url,
        }
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `HEAD` (200) and `GET` (204) `/acme/new-nonce`.
async fn new_nonce(State(state): State<AppState>, method: axum::http::Method) -> Response {
    let status = if method == axum::http::Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    finish(
        &state.node,
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

fn account_body(node: &Node, a: &AcmeAccountRow) -> Value {
    let contact: Value = serde_json::from_str(&a.contact).unwrap_or_else(|_| json!([]));
    json!({
        "status": a.status,
        "contact": contact,
        "orders": format!("{}/acct/{}/orders", base(node), a.id),
    })
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
    if req.contact.len() > MAX_CONTACTS
        || req
            .contact
            .iter()
            .any(|c| c.len() > MAX_CONTACT_LEN || !c.starts_with("mailto:"))
    {
        return Err(AcmeError::new(
            AcmeErrorType::Malformed,
            format!(
                "contact: at most {MAX_CONTACTS} mailto: URLs of at most {MAX_CONTACT_LEN} characters"
            ),
        ));
    }
    let kid = binding
        .get("protected")
        .and_then(Value::as_str)
        .and_then(|p| B64.decode(p).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| AcmeError::malformed("externalAccountBinding has no readable kid"))?;
    let found = eab::hmac_key(&node.hsm, store, &kid)
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
    let event = AuditEvent::new(
        format!("acme:{}", account.id),
        "acme.account_created",
        &account.agent_id,
        json!({"account": account.id, "eab_key_id": account.eab_key_id,
               "thumbprint": account.thumbprint}),
    );
    match store.create_acme_account(&account, &event).await {
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
async fn account(
    State(state): State<AppState>,
    Path(id): Path<String>,
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
        if !v.jws.payload.is_empty() && v.jws.json_payload()? != json!({}) {
            return Err(AcmeError::malformed(
                "account updates (contact, deactivation) are not supported yet",
            ));
        }
        Ok(with_location(&node, StatusCode::OK, &account))
    }
    .await;
    finish(&node, answer.unwrap_or_else(IntoResponse::into_response))
}

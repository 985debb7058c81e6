//! Custodial signing (`POST /v1/agents/{id}/sign`) and verification for exchanges
//! (`POST /v1/verify`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use der::Decode;
use mandate_policy::OrderJson;
use mandate_store::{CaRole, CertStatus, Role};
use mandate_verify::{Evidence, RevocationInput, RevocationStatus, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::behaviour::{Reason, When, check, reasons, split};
use super::{ApiError, ApiJson, ApiPath, AppState, Caller};
use crate::CaError;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(sign, verify, reference_prices))]
pub struct Doc;

const SIGNERS: &[Role] = &[Role::Operator, Role::Admin];

/// The signature algorithm of a custodial signature.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the name is text at run time"
)]
enum SignatureAlgorithm {
    #[serde(rename = "ecdsa-with-SHA256")]
    EcdsaSha256,
    #[serde(rename = "ecdsa-with-SHA384")]
    EcdsaSha384,
    #[serde(rename = "sha256WithRSAEncryption")]
    RsaSha256,
    #[serde(rename = "sha384WithRSAEncryption")]
    RsaSha384,
}

/// A signed order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Signed {
    /// The decision that let the order through; the signed payload carries it too.
    #[schema(pattern = "^dec_[0-9a-f]{32}$")]
    decision_id: String,
    /// Always true: a refused order answers 403.
    allowed: bool,
    /// The canonical order bytes that were signed, base64.
    payload: String,
    /// The signature, base64: ECDSA as DER, RSA PKCS#1 v1.5.
    signature: String,
    #[schema(value_type = SignatureAlgorithm, inline)]
    algorithm: &'static str,
    /// The certificate whose key signed, and whose chain the exchange checks.
    certificate_serial: String,
    /// That certificate, PEM.
    certificate_pem: String,
    /// Intermediate and root, PEM.
    chain_pem: String,
    /// Soft limits the order breaks: signed all the same, flagged (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    soft_breaches: Vec<Reason>,
}

/// A refused signing: the problem with the pre-trade check's verdict.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the answer is an ApiError"
)]
struct OutOfMandate {
    #[serde(flatten)]
    problem: super::problem::Body<'static>,
    /// Always false (out-of-mandate only).
    #[schema(required = false)]
    allowed: bool,
    /// Every reason the order is refused (out-of-mandate only).
    #[schema(required = false)]
    reasons: Vec<Reason>,
}

/// The agent's current certificate whose key lives in the HSM, with that key.
async fn custodial_key(
    state: &AppState,
    agent_id: &str,
) -> Result<(mandate_hsm::KeyInfo, mandate_store::CertificateRow), ApiError> {
    let node = &state.node;
    let now = mandate_store::now_unix();
    let certs: Vec<_> = node
        .store
        .agent_certificates(agent_id, None, 50)
        .await
        .map_err(CaError::from)?
        .into_iter()
        .filter(|c| c.status == CertStatus::Issued && c.not_after > now && c.der.is_some())
        .collect();
    for (key_id, _) in node
        .store
        .agent_key_ids(agent_id)
        .await
        .map_err(CaError::from)?
    {
        let Ok(id) = key_id.parse::<mandate_hsm::KeyId>() else {
            continue;
        };
        let Ok(info) = node.hsm.find_key(&id).await else {
            tracing::warn!(agent = agent_id, key = %key_id, "agent key not found in the HSM");
            continue;
        };
        for c in &certs {
            let Some(der) = &c.der else { continue };
            let cert = x509_cert::Certificate::from_der(der).map_err(CaError::from)?;
            let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)
                .map_err(CaError::from)?;
            if spki == info.spki_der {
                return Ok((info, c.clone()));
            }
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "no-custodial-key",
        format!(
            "agent {agent_id} has no valid certificate for a key held in the HSM; certify it with hsm_key_type first"
        ),
    ))
}

/// `POST /v1/agents/{id}/sign`: runs the pre-trade check, and only if the order is allowed
/// signs its canonical bytes with the agent's key in the HSM.
#[utoipa::path(post, path = "/v1/agents/{id}/sign", operation_id = "signOrder", tag = "trading",
    summary = "Custodial signing: run the pre-trade check and, only if the order is allowed, \
        sign its canonical bytes with the agent's key in the HSM",
    description = "Roles: operator, admin, or the agent's own key. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = inline(super::behaviour::OrderBody),
    responses(
        (status = 200, description = "signed", body = inline(Signed),
            example = json!({
                "decision_id": super::behaviour::EXAMPLE_DECISION, "allowed": true,
                "payload": "eyJhY3Rpb24iOiJ0cmFkZV9leGVjdXRpb24iLCJtYXJrZXQiOiJCVENfRVVSIn0=",
                "signature": "MEUCIQDx0m6Y2d1n4kZc3mJ8y2hVq1s0b9m2Jw8k4Jt2Qp3xZwIgVv3E1sQk2r7h0P9y2f8c1wJq3m5k7n9p1r3t5v7x9z0=",
                "algorithm": "ecdsa-with-SHA256",
                "certificate_serial": "4f1c2a9be0d3c7a5e6f8091a2b3c4d5e",
                "certificate_pem": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n",
                "chain_pem": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
            })),
        (status = 403, description = "out-of-mandate (with allowed and reasons), or forbidden",
            body = inline(OutOfMandate), content_type = "application/problem+json"),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization),
        (status = 409, description = "no-custodial-key (no valid certificate for a key held in \
            the HSM) or mandate-not-approved", body = super::problem::Body,
            content_type = "application/problem+json")))]
pub async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(order): ApiJson<OrderJson>,
) -> Result<Json<Signed>, ApiError> {
    crate::ra::tenant::agent_or_own(&state.node.store, &caller, SIGNERS, &id).await?;
    let decided = check(&state, &caller, &id, &order, When::Now).await?;
    let (denials, soft) = split(decided.denials);
    if !denials.is_empty() {
        let codes: Vec<&str> = denials.iter().map(|d| d.code).collect();
        tracing::info!(agent = %id, reasons = ?codes, "custodial signing refused: out of mandate");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "out-of-mandate",
            format!("the order is outside the mandate: {}", codes.join(", ")),
        )
        .with("allowed", json!(false))
        .with("reasons", json!(reasons(denials))));
    }
    let (key, cert) = custodial_key(&state, &id).await?;
    // The order was decided at the daemon's clock, and the signed bytes say so: a relying
    // party accepts them for `policy.max_clock_skew_secs` from then.
    let mut order = order;
    order.timestamp = Some(mandate_store::now_unix());
    // The signed bytes name the decision, and it is stored before anything is signed.
    order.decision_id = Some(decided.record.id.clone());
    let payload = order.canonical_bytes();
    let mut record = decided.record;
    record.order_json = String::from_utf8_lossy(&payload).into_owned();
    let decision_id = record.id.clone();
    state
        .node
        .behaviour
        .decisions
        .record_durably(record)
        .await?;
    let alg = key.kind.default_signature_algorithm();
    let signature = state
        .node
        .hsm
        .sign(&key.id, alg, &payload)
        .await
        .map_err(CaError::from)?;
    let algorithm = match alg {
        mandate_hsm::SignatureAlgorithm::EcdsaSha256 => "ecdsa-with-SHA256",
        mandate_hsm::SignatureAlgorithm::EcdsaSha384 => "ecdsa-with-SHA384",
        mandate_hsm::SignatureAlgorithm::RsaPkcs1Sha256 => "sha256WithRSAEncryption",
        mandate_hsm::SignatureAlgorithm::RsaPkcs1Sha384 => "sha384WithRSAEncryption",
    };
    let certificate_pem = crate::x509::cert_pem(cert.der.as_deref().unwrap_or_default())?;
    Ok(Json(Signed {
        decision_id,
        allowed: true,
        payload: B64.encode(&payload),
        signature: B64.encode(&signature),
        algorithm,
        certificate_serial: cert.serial,
        certificate_pem,
        chain_pem: state.node.issuer.chain_pem().to_owned(),
        soft_breaches: reasons(soft),
    }))
}

/// `POST /v1/verify`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The agent certificate, PEM, optionally followed by its intermediate(s).
    certificate: String,
    /// The signature over the payload, base64 (standard or URL-safe).
    signature: String,
    /// The signed order bytes, base64.
    payload: String,
    /// A stapled OCSP response, base64 DER; without it the CA's own records give the status.
    ocsp_response: Option<String>,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    let t = text.trim();
    B64.decode(t)
        .or_else(|_| B64URL.decode(t.trim_end_matches('=')))
        .map_err(|_| ApiError::bad_request(format!("{field} must be base64")))
}

/// `POST /v1/verify` (any role): chain to our root, revocation, signature over the payload and
/// the order against the mandate, in one answer with every reason.
#[utoipa::path(post, path = "/v1/verify", operation_id = "verifyOrder", tag = "trading",
    summary = "Verify a signed order as an exchange would: chain to this CA's root, revocation, \
        signature over the payload and the order against the certificate's mandate; every \
        reason in one answer",
    description = "Roles: any (admin, operator, compliance, auditor, market-data, agent).",
    security(("apiKey" = [])), request_body = inline(VerifyRequest),
    responses((status = 200, description = "verdict (also when the order is refused)",
        body = Verdict,
        example = json!({
            "valid": false, "agent_id": null,
            "serial_number": "4f1c2a9be0d3c7a5e6f8091a2b3c4d5e",
            "not_after": "2026-12-08T09:30:00Z", "revocation": {"status": "good"},
            "mandate": null, "order": null,
            "reasons": [{"code": "signature_invalid",
                         "detail": "the signature does not verify over the payload"}]
        }))))]
pub async fn verify(
    State(state): State<AppState>,
    _caller: Caller,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Json<Verdict>, ApiError> {
    let store = &state.node.store;
    let pems = mandate_verify::pem_to_der_chain(&req.certificate)
        .map_err(|e| ApiError::bad_request(format!("certificate: {e}")))?;
    let Some((leaf, given_chain)) = pems.split_first() else {
        return Err(ApiError::bad_request("certificate: no PEM certificate"));
    };
    let signature = b64("signature", &req.signature)?;
    let payload = b64("payload", &req.payload)?;
    let ocsp = req
        .ocsp_response
        .as_deref()
        .map(|t| b64("ocsp_response", t))
        .transpose()?;
    let cas = store.ca_certificates().await.map_err(CaError::from)?;
    let roots: Vec<Vec<u8>> = cas
        .iter()
        .filter(|c| c.role == CaRole::Root)
        .map(|c| c.der.clone())
        .collect();
    // Our own records: the issuer of a certificate we issued, and its revocation status.
    let serial = x509_cert::Certificate::from_der(leaf)
        .ok()
        .map(|c| hex::encode(c.tbs_certificate.serial_number.as_bytes()));
    let row = match &serial {
        Some(s) => store.certificate(s).await.map_err(CaError::from)?,
        None => None,
    };
    let chain: Vec<Vec<u8>> = if !given_chain.is_empty() {
        given_chain.to_vec()
    } else if let Some(r) = &row {
        cas.iter()
            .filter(|c| c.id == r.issuer_id)
            .map(|c| c.der.clone())
            .collect()
    } else {
        cas.iter()
            .filter(|c| c.role == CaRole::Intermediate && c.active)
            .map(|c| c.der.clone())
            .collect()
    };
    let now = mandate_store::now_unix();
    let known = match (&row, &ocsp) {
        (_, Some(_)) => None,
        // Retired (a newer mandate version) but not revoked yet: it is, as of its retire_at.
        (Some(r), None)
            if r.status == CertStatus::Issued && r.retire_at.is_some_and(|t| t <= now) =>
        {
            Some(RevocationStatus::Revoked {
                revoked_at: r.retire_at.unwrap_or(now),
                reason: Some(4),
            })
        }
        (Some(r), None) if r.status == CertStatus::Revoked => Some(RevocationStatus::Revoked {
            revoked_at: r.revoked_at.unwrap_or(0),
            reason: r.revocation_reason.and_then(|c| u8::try_from(c).ok()),
        }),
        (Some(r), None) if r.status == CertStatus::Issued => Some(RevocationStatus::Good),
        _ => Some(RevocationStatus::Unknown),
    };
    let revocation = match (&ocsp, known) {
        (Some(der), _) => RevocationInput::Ocsp(der),
        (None, Some(s)) => RevocationInput::Known(s),
        (None, None) => RevocationInput::None,
    };
    let verdict = mandate_verify::verify(&Evidence {
        certificate: leaf,
        chain: &chain,
        roots: &roots,
        revocation,
        signature: &signature,
        payload: &payload,
        now: mandate_store::now_unix(),
        max_clock_skew: state.node.cfg.policy.max_clock_skew_secs,
    });
    Ok(Json(verdict))
}

/// `POST /v1/reference-prices`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferencePricesRequest {
    /// The organization (CA staff must name it; a person of one posts for their own).
    organization: Option<String>,
    /// The prices (1 to 1000).
    #[schema(min_items = 1, max_items = 1000)]
    prices: Vec<crate::ra::market_data::Price>,
}

/// How many reference prices were taken.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Prices taken: all of them (a refusal takes none).
    accepted: usize,
}

/// `POST /v1/reference-prices` (operator, market-data, admin): the latest price of markets, which price
/// collars are checked against.
#[utoipa::path(post, path = "/v1/reference-prices", operation_id = "postReferencePrices",
    tag = "trading",
    summary = "Post reference prices (the latest price of markets), which price collars are \
        checked against",
    description = "Roles: operator or market-data (for the caller's organization), admin (CA \
        staff, naming organization). Body {organization?, prices: [{market, price, at?}]} (1 to \
        1000; at is unix seconds or RFC 3339, default now; not older than a day nor further \
        ahead than policy.max_clock_skew_secs). Kept in memory per node: a collar without a \
        fresh reference price fails closed (reference_price_stale). Another organization \
        answers 404.",
    security(("apiKey" = [])), request_body = inline(ReferencePricesRequest),
    responses((status = 200, description = "accepted", body = inline(Accepted),
        example = json!({"accepted": 2}))))]
pub async fn reference_prices(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ReferencePricesRequest>,
) -> Result<Json<Accepted>, ApiError> {
    let n =
        crate::ra::market_data::post(&state.node, &caller, req.organization, req.prices).await?;
    Ok(Json(Accepted { accepted: n }))
}

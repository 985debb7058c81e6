use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_store::{CaRole, CertStatus, CertificateRow, Role};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Caller, next_cursor, page_limit};
use crate::issuance::Issued;
use crate::revocation::RevocationReason;
use crate::{CaError, ra, x509};

use crate::ra::roles::READERS;

/// The operations of this module, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyRequest {
    /// PEM CSR made by the agent, which keeps its key...
    csr: Option<String>,
    /// ...or the type of a key to generate inside the HSM for the agent (`ec-p256`, ...).
    hsm_key_type: Option<String>,
    /// A certificate profile (`agent`, `shortlived`, `extended`, or a configured one)...
    profile: Option<String>,
    /// ...or a lifetime in days (not both).
    validity_days: Option<u32>,
}

/// What certify answers: the certificate, and the reference of an HSM-generated key.
#[derive(Serialize)]
pub struct Certified {
    #[serde(flatten)]
    issued: Issued,
    /// `hsm:<CKA_ID hex>` when the key was generated in the HSM (it never leaves it).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_ref: Option<String>,
}

/// A stored certificate as the API shows it.
#[derive(Serialize)]
pub(super) struct CertificateView {
    serial_number: String,
    agent_id: String,
    mandate_version: i64,
    status: CertStatus,
    not_before: String,
    not_after: String,
    sha256_fingerprint: Option<String>,
    revoked_at: Option<String>,
    /// RFC 5280 name of the reason, e.g. `keyCompromise`.
    revocation_reason: Option<String>,
    /// Its RFC 5280 CRLReason code, e.g. 1.
    revocation_reason_code: Option<i64>,
    /// API key id (or `cli:...`) that revoked it.
    revoked_by: Option<String>,
    /// The profile it was issued under (absent: a lifetime in days, or issued before profiles).
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    certificate_pem: Option<String>,
}

/// `POST /v1/agents/{id}/certify` (operator, or the agent's own key).
pub async fn certify(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CertifyRequest>,
) -> Result<(StatusCode, Json<Certified>), ApiError> {
    let key = match (req.csr, req.hsm_key_type) {
        (Some(pem), None) => ra::certify::Key::Csr(pem),
        (None, Some(kind)) => ra::certify::Key::InHsm(kind),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of csr (the agent keeps its key) and hsm_key_type (a key generated in the HSM)",
            ));
        }
    };
    let (issued, key_ref) = ra::certify::certify(
        &state.node,
        &caller,
        &id,
        key,
        ra::certify::Asked {
            profile: req.profile,
            validity_days: req.validity_days,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Certified { issued, key_ref })))
}

/// `GET /v1/agents/{id}/certificates?limit=&cursor=`: newest first.
pub async fn list_for_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<super::PageQuery>,
) -> Result<Json<super::Page<CertificateView>>, ApiError> {
    let limit = page_limit(q.limit)?;
    let store = &state.node.store;
    ra::tenant::agent_or_own(store, &caller, READERS, &id).await?;
    let rows = store
        .agent_certificates(&id, q.cursor.as_deref(), limit)
        .await
        .map_err(CaError::from)?;
    let next_cursor = next_cursor(&rows, limit, |r| &r.serial);
    let items = rows.into_iter().map(view).collect::<Result<_, _>>()?;
    Ok(Json(super::Page { items, next_cursor }))
}

/// `GET /v1/certificates/{serial}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<String>,
) -> Result<Json<CertificateView>, ApiError> {
    Ok(Json(view(readable(&state, &caller, &serial).await?)?))
}

/// `GET /v1/certificates/{serial}/pem`: the certificate then its chain (intermediate, root),
/// `application/pem-certificate-chain`, for tools that want the file itself.
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<String>,
) -> Result<Response, ApiError> {
    let row = readable(&state, &caller, &serial).await?;
    let issuer_id = row.issuer_id;
    let der = row.der.ok_or_else(|| {
        ApiError::from(CaError::NotFound(format!(
            "certificate {} (reserved, never issued)",
            row.serial
        )))
    })?;
    let pem = format!(
        "{}{}",
        x509::cert_pem(&der)?,
        state.node.issuer.chain_pem_of(issuer_id)
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        pem,
    )
        .into_response())
}

/// The certificate with this serial, if `caller` may read it.
async fn readable(
    state: &AppState,
    caller: &Caller,
    serial: &str,
) -> Result<CertificateRow, ApiError> {
    if caller.role != Role::Agent {
        caller.require(READERS)?;
    }
    let serial = parse_serial(serial)?;
    // An agent key sees its own certificates, a person their organization's; the others look
    // exactly like missing ones, so a key cannot probe which serials exist.
    Ok(ra::tenant::certificate(&state.node.store, caller, &serial).await?)
}

/// A serial from a path: hex, any case, at most 21 bytes; returned lowercase as stored.
pub(super) fn parse_serial(serial: &str) -> Result<String, ApiError> {
    Ok(crate::x509::parse_serial(serial)?)
}

pub(super) fn view(row: CertificateRow) -> Result<CertificateView, ApiError> {
    Ok(CertificateView {
        certificate_pem: row.der.as_deref().map(x509::cert_pem).transpose()?,
        serial_number: row.serial,
        agent_id: row.agent_id,
        mandate_version: row.mandate_version,
        status: row.status,
        not_before: crate::rfc3339(row.not_before),
        not_after: crate::rfc3339(row.not_after),
        sha256_fingerprint: row.sha256,
        revoked_at: row.revoked_at.map(crate::rfc3339),
        revocation_reason: row.revocation_reason.map(|c| {
            RevocationReason::from_code(c).map_or_else(|| c.to_string(), |r| r.name().to_owned())
        }),
        revocation_reason_code: row.revocation_reason,
        revoked_by: row.revoked_by,
        profile: row.profile.clone(),
    })
}

/// `GET /ca/issuers/{ski}.der|.pem`: any CA certificate by its key identifier (hex), current
/// or retired, as the AIA caIssuers URL of the certificates it issued names it; after a root
/// rollover, the cross-certificates are served by their own fingerprint,
/// `/ca/issuers/{sha256}.der`.
pub async fn issuer_cert(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::from(CaError::NotFound(format!("CA certificate {file}")));
    let (name, pem) = match (file.strip_suffix(".der"), file.strip_suffix(".pem")) {
        (Some(n), _) => (n, false),
        (_, Some(n)) => (n, true),
        _ => return Err(not_found()),
    };
    let name = name.to_ascii_lowercase();
    let store = &state.node.store;
    let mut der = store
        .ca_certificates()
        .await
        .map_err(CaError::from)?
        .into_iter()
        .find(|c| hex::encode(&c.ski) == name)
        .map(|c| c.der);
    if der.is_none() {
        der = store
            .cross_certificates()
            .await
            .map_err(CaError::from)?
            .into_iter()
            .find(|c| c.sha256 == name)
            .map(|c| c.der);
    }
    let der = der.ok_or_else(not_found)?;
    Ok(if pem {
        with_type(x509::cert_pem(&der)?, "application/x-pem-file")
    } else {
        with_type(der, "application/pkix-cert")
    })
}

// CA certificates are public PKI material (the AIA caIssuers URL points here): no API key.

async fn ca_der(state: &AppState, role: CaRole) -> Result<Vec<u8>, ApiError> {
    Ok(state
        .node
        .store
        .active_ca(role)
        .await
        .map_err(CaError::from)?
        .ok_or(CaError::NotInitialised)?
        .der)
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `GET /ca/root.pem`.
pub async fn root_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = x509::cert_pem(&ca_der(&state, CaRole::Root).await?)?;
    Ok(with_type(pem, "application/x-pem-file"))
}

/// `GET /ca/root.der`.
pub async fn root_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(with_type(
        ca_der(&state, CaRole::Root).await?,
        "application/pkix-cert",
    ))
}

/// `GET /ca/intermediate.pem`.
pub async fn intermediate_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = x509::cert_pem(&ca_der(&state, CaRole::Intermediate).await?)?;
    Ok(with_type(pem, "application/x-pem-file"))
}

/// `GET /ca/intermediate.der`.
pub async fn intermediate_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(with_type(
        ca_der(&state, CaRole::Intermediate).await?,
        "application/pkix-cert",
    ))
}

/// `GET /ca/chain.pem`: intermediate then root.
pub async fn chain_pem(State(state): State<AppState>) -> Response {
    with_type(state.node.issuer.chain_pem(), "application/x-pem-file")
}

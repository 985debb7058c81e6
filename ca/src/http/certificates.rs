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
#[openapi(
    paths(
        certify,
        list_for_agent,
        get_one,
        download,
        issuer_cert,
        root_pem,
        root_der,
        intermediate_pem,
        intermediate_der,
        chain_pem
    ),
    components(responses(PkiProblem))
)]
pub struct Doc;

/// An example certificate, PEM (shortened).
const EXAMPLE_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIICNzCCAd2gAwIBAgIUHq3w9ZQ\
    ...\n-----END CERTIFICATE-----\n";

/// An example chain, intermediate then root, PEM (shortened).
const EXAMPLE_CHAIN_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB+zCCAaGgAwIBAgIUZ2t8\
    ...\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBxTCCAWugAwIBAgIUC4p1\
    ...\n-----END CERTIFICATE-----\n";

/// An example SHA-256 fingerprint.
const EXAMPLE_SHA256: &str = "5b1e0c2f4d6a8b9c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f";

/// A certificate, DER: the body's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "the schema of a DER answer, for the document")]
struct Der(Vec<u8>);

/// A problem answer of the PKI files (the `/v1/` operations get theirs from `openapi::finish`):
/// 5XX when the CA is not initialised or the database is down; 4XX only where a request names
/// a file (`/ca/issuers/{file}`), as the fixed files refuse no request.
#[derive(utoipa::ToResponse)]
#[response(
    description = "RFC 9457 problem",
    content_type = "application/problem+json"
)]
#[expect(dead_code, reason = "a type for the document's sake; never built")]
struct PkiProblem(#[to_schema] super::problem::Body<'static>);

/// What a DER answer's example shows (its bytes are binary).
const EXAMPLE_DER: &str = "(the certificate, DER: binary)";

/// An example certificate, as answered.
pub(super) fn example_certificate() -> serde_json::Value {
    serde_json::json!({
        "serial_number": "1eadf0f6590c3b0e7f2d4a91c5e83b7d2a6f0c11",
        "agent_id": "trading-bot-v2", "mandate_version": 1, "status": "issued",
        "not_before": "2026-12-07T09:40:00Z", "not_after": "2026-12-14T09:40:00Z",
        "sha256_fingerprint": EXAMPLE_SHA256,
        "revoked_at": null, "revocation_reason": null, "revocation_reason_code": null,
        "revoked_by": null, "profile": "agent", "certificate_pem": EXAMPLE_CERT_PEM
    })
}

/// Body of `POST /v1/agents/{id}/certify`: exactly one of `csr` and `hsm_key_type`; at most
/// one of `profile` and `validity_days`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifyRequest {
    /// PEM CSR made by the agent, which keeps its key...
    csr: Option<String>,
    /// ...or the type of a key to generate inside the HSM for the agent instead (any case).
    #[schema(value_type = Option<HsmKeyType>, inline)]
    hsm_key_type: Option<String>,
    /// A certificate profile: `agent` (7 days, the default), `shortlived` (24 h), `extended`
    /// (`ca.max_validity_days`), or one configured under `[ca.profiles.NAME]`...
    profile: Option<String>,
    /// ...or a lifetime in days instead (not both): 1 to `ca.max_validity_days`.
    #[schema(minimum = 1)]
    validity_days: Option<u32>,
}

/// A key type the HSM generates for an agent.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "the schema of `hsm_key_type`, which is read as text"
)]
enum HsmKeyType {
    #[schema(rename = "rsa-2048")]
    Rsa2048,
    #[schema(rename = "rsa-3072")]
    Rsa3072,
    #[schema(rename = "rsa-4096")]
    Rsa4096,
    #[schema(rename = "ec-p256")]
    EcP256,
    #[schema(rename = "ec-p384")]
    EcP384,
}

/// What certify answers: the certificate, and the reference of an HSM-generated key.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = IssuedCertificate)]
pub struct Certified {
    /// The agent certificate, PEM.
    certificate_pem: String,
    /// The intermediate, then the root, PEM.
    chain_pem: String,
    /// Serial, lowercase hex.
    serial_number: String,
    /// notAfter.
    #[schema(format = DateTime)]
    expires_at: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    sha256_fingerprint: String,
    /// The approved mandate version the certificate carries.
    mandate_version: i64,
    /// The certificate profile it was issued under (absent for a lifetime given in days).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    profile: Option<String>,
    /// `hsm:<CKA_ID hex>` when the key was generated in the HSM (it never leaves it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    key_ref: Option<String>,
}

impl Certified {
    fn new(issued: Issued, key_ref: Option<String>) -> Self {
        let Issued {
            certificate_pem,
            chain_pem,
            serial_number,
            expires_at,
            sha256_fingerprint,
            mandate_version,
            profile,
        } = issued;
        Certified {
            certificate_pem,
            chain_pem,
            serial_number,
            expires_at,
            sha256_fingerprint,
            mandate_version,
            profile,
            key_ref,
        }
    }
}

/// A stored certificate as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Certificate)]
pub(super) struct CertificateView {
    /// Serial, lowercase hex.
    serial_number: String,
    /// The agent it certifies.
    agent_id: String,
    /// The mandate version it carries.
    mandate_version: i64,
    /// reserved: the serial is taken but signing was not confirmed; issued; revoked.
    status: CertStatus,
    #[schema(format = DateTime)]
    not_before: String,
    #[schema(format = DateTime)]
    not_after: String,
    /// SHA-256 of the DER certificate, lowercase hex (null while reserved).
    #[schema(required = true)]
    sha256_fingerprint: Option<String>,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
    /// RFC 5280 name of the reason, e.g. `keyCompromise`.
    #[schema(required = true)]
    revocation_reason: Option<String>,
    /// Its RFC 5280 CRLReason code, e.g. 1.
    #[schema(required = true)]
    revocation_reason_code: Option<i64>,
    /// API key id (or `cli:...`) that revoked it.
    #[schema(required = true)]
    revoked_by: Option<String>,
    /// The profile it was issued under (absent: a lifetime in days, or issued before profiles).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    profile: Option<String>,
    /// The certificate, PEM (null while reserved).
    #[schema(required = true)]
    certificate_pem: Option<String>,
}

/// `POST /v1/agents/{id}/certify` (operator, or the agent's own key).
#[utoipa::path(post, path = "/v1/agents/{id}/certify", operation_id = "certifyAgent",
    tag = "certificates",
    summary = "Issue a certificate carrying the approved mandate: for the key of a CSR, or for a \
        key generated in the HSM (key_ref)",
    description = "Roles: operator, or the agent's own key. Another organization's object \
        answers 404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "agent id")),
    request_body = CertifyRequest,
    responses(
        (status = 201, description = "issued", body = Certified, example = json!({
            "certificate_pem": EXAMPLE_CERT_PEM, "chain_pem": EXAMPLE_CHAIN_PEM,
            "serial_number": "1eadf0f6590c3b0e7f2d4a91c5e83b7d2a6f0c11",
            "expires_at": "2026-12-14T09:40:00Z",
            "sha256_fingerprint": EXAMPLE_SHA256,
            "mandate_version": 1, "profile": "agent", "key_ref": "hsm:8c1f04a2d93b5e77"
        })),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
    Ok((StatusCode::CREATED, Json(Certified::new(issued, key_ref))))
}

/// `GET /v1/agents/{id}/certificates?limit=&cursor=`: newest first.
#[utoipa::path(get, path = "/v1/agents/{id}/certificates", operation_id = "listAgentCertificates",
    tag = "certificates", summary = "An agent's certificates",
    description = "Roles: readers, or the agent's own key. Another organization's object answers \
        404, as an unknown one.",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "agent id"), super::PageQuery),
    responses(
        (status = 200, description = "page", body = super::Page<CertificateView>,
            example = json!({"items": [example_certificate()], "next_cursor": null})),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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
#[utoipa::path(get, path = "/v1/certificates/{serial}", operation_id = "getCertificate",
    tag = "certificates", summary = "One certificate",
    description = "Roles: readers, or the agent's own key. Another organization's object answers \
        404, as an unknown one.",
    security(("apiKey" = [])), params(SerialParam),
    responses(
        (status = 200, description = "certificate", body = CertificateView,
            example = json!(example_certificate())),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<String>,
) -> Result<Json<CertificateView>, ApiError> {
    Ok(Json(view(readable(&state, &caller, &serial).await?)?))
}

/// `GET /v1/certificates/{serial}/pem`: the certificate then its chain (intermediate, root),
/// `application/pem-certificate-chain`, for tools that want the file itself.
#[utoipa::path(get, path = "/v1/certificates/{serial}/pem", operation_id = "downloadCertificate",
    tag = "certificates", summary = "Download the certificate and its chain, PEM",
    description = "Roles: readers, or the agent's own key. Another organization's object answers \
        404, as an unknown one.",
    security(("apiKey" = [])), params(SerialParam),
    responses(
        (status = 200, description = "leaf, intermediate, root", body = String,
            content_type = "application/pem-certificate-chain",
            example = json!(format!("{EXAMPLE_CERT_PEM}{EXAMPLE_CHAIN_PEM}"))),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
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

/// The `{serial}` of a certificate's path.
#[derive(utoipa::IntoParams)]
#[into_params(names("serial"), parameter_in = Path)]
#[expect(dead_code, reason = "the parameter's description, for the document")]
pub(super) struct SerialParam(
    /// Hex, case-insensitive, with or without leading zeros (at most 64 digits).
    #[param(pattern = "^[0-9A-Fa-f]{1,64}$")]
    String,
);

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
#[utoipa::path(get, path = "/ca/issuers/{file}", operation_id = "getIssuerCertificate", tag = "pki",
    summary = "Any CA certificate, current or retired, by key identifier (the AIA caIssuers URL), \
        or a cross-certificate by SHA-256",
    description = "`{file}` is `<ski>.der` or `<ski>.pem` (the CA's SubjectKeyIdentifier, \
        lowercase hex), or `<sha256>.der|.pem` for a cross-certificate made at a root rollover.",
    security(),
    params(("file" = String, Path, max_length = 80, description = "`<hex>.der` or `<hex>.pem`")),
    responses((status = 200, description = "DER or PEM", content(
        (inline(Der) = "application/pkix-cert", example = json!(EXAMPLE_DER)),
        (String = "application/x-pem-file", example = json!(EXAMPLE_CERT_PEM)))),
        (status = "4XX", response = PkiProblem),
        (status = "5XX", response = PkiProblem)))]
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
#[utoipa::path(get, path = "/ca/root.pem", operation_id = "getRootPem", tag = "pki",
    summary = "Root certificate, PEM", security(),
    responses(
        (status = 200, description = "PEM", body = String, content_type = "application/x-pem-file",
            example = json!(EXAMPLE_CERT_PEM)),
        (status = "5XX", response = PkiProblem)))]
pub async fn root_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = x509::cert_pem(&ca_der(&state, CaRole::Root).await?)?;
    Ok(with_type(pem, "application/x-pem-file"))
}

/// `GET /ca/root.der`.
#[utoipa::path(get, path = "/ca/root.der", operation_id = "getRootDer", tag = "pki",
    summary = "Root certificate, DER", security(),
    responses(
        (status = 200, description = "DER", body = inline(Der),
            content_type = "application/pkix-cert", example = json!(EXAMPLE_DER)),
        (status = "5XX", response = PkiProblem)))]
pub async fn root_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(with_type(
        ca_der(&state, CaRole::Root).await?,
        "application/pkix-cert",
    ))
}

/// `GET /ca/intermediate.pem`.
#[utoipa::path(get, path = "/ca/intermediate.pem", operation_id = "getIntermediatePem", tag = "pki",
    summary = "Issuing certificate, PEM", security(),
    responses(
        (status = 200, description = "PEM", body = String, content_type = "application/x-pem-file",
            example = json!(EXAMPLE_CERT_PEM)),
        (status = "5XX", response = PkiProblem)))]
pub async fn intermediate_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = x509::cert_pem(&ca_der(&state, CaRole::Intermediate).await?)?;
    Ok(with_type(pem, "application/x-pem-file"))
}

/// `GET /ca/intermediate.der`.
#[utoipa::path(get, path = "/ca/intermediate.der", operation_id = "getIntermediateDer", tag = "pki",
    summary = "The active issuing certificate, DER", security(),
    responses(
        (status = 200, description = "DER", body = inline(Der),
            content_type = "application/pkix-cert", example = json!(EXAMPLE_DER)),
        (status = "5XX", response = PkiProblem)))]
pub async fn intermediate_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(with_type(
        ca_der(&state, CaRole::Intermediate).await?,
        "application/pkix-cert",
    ))
}

/// `GET /ca/chain.pem`: intermediate then root.
#[utoipa::path(get, path = "/ca/chain.pem", operation_id = "getChainPem", tag = "pki",
    summary = "Intermediate then root, PEM", security(),
    responses(
        (status = 200, description = "PEM", body = String, content_type = "application/x-pem-file",
            example = json!(EXAMPLE_CHAIN_PEM)),
        (status = "5XX", response = PkiProblem)))]
pub async fn chain_pem(State(state): State<AppState>) -> Response {
    with_type(state.node.issuer.chain_pem(), "application/x-pem-file")
}

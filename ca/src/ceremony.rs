//! The key ceremony: root and intermediate keys generated inside the HSM, the self-signed root,
//! the intermediate signed by the root, and the first admin API key, stored in one transaction.

use der::Decode;
use mandate_config::Config;
use mandate_hsm::{Hsm, KeyInfo, KeyKind};
use mandate_store::{AuditEvent, CaRole, NewApiKey, NewCaCert, Role, Store, now_unix};
use serde::Serialize;
use serde_json::json;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;

use crate::x509::{self, CaSigner, CertFields};
use crate::{CaError, api_key};

/// What the ceremony made, printed once as JSON.
#[derive(Debug, Serialize)]
pub struct CeremonyReport {
    /// The root certificate.
    pub root: CaCertSummary,
    /// The intermediate certificate.
    pub intermediate: CaCertSummary,
    /// The first admin API key: shown here once, stored only as a hash.
    pub admin_api_key: String,
    /// Id of that key.
    pub admin_api_key_id: String,
}

/// One CA certificate, for people.
#[derive(Debug, Serialize)]
pub struct CaCertSummary {
    /// Subject, e.g. `O=..., CN=...`.
    pub subject: String,
    /// Serial, hex.
    pub serial: String,
    /// SHA-256 of the DER certificate, hex.
    pub sha256_fingerprint: String,
    /// HSM key label.
    pub key_label: String,
    /// HSM key id (CKA_ID), hex.
    pub key_id: String,
    /// Key type.
    pub key_type: String,
    /// Validity end, RFC 3339.
    pub not_after: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// Runs the key ceremony. Refuses if the store already holds a hierarchy.
pub async fn init_ca(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    actor: &str,
) -> Result<CeremonyReport, CaError> {
    if store.ca_initialised().await? {
        return Err(CaError::AlreadyInitialised);
    }
    // A token that already holds CA keys while the database has no CA means a lost or wrong
    // database (or an interrupted ceremony): a silent second hierarchy would hide that.
    let existing: Vec<String> = hsm
        .list_keys()
        .await?
        .into_iter()
        .map(|k| k.label)
        .filter(|l| l.starts_with("mandate-root-") || l.starts_with("mandate-intermediate-"))
        .collect();
    if !existing.is_empty() {
        return Err(CaError::TokenHasCaKeys(existing.join(", ")));
    }
    let ca = &cfg.ca;
    let root_kind: KeyKind = parse_kind(&ca.root_key)?;
    let int_kind: KeyKind = parse_kind(&ca.intermediate_key)?;
    let stamp = now_unix();

    let root_key = hsm
        .generate_key(root_kind, &format!("mandate-root-{stamp}"))
        .await?;
    let root_signer = CaSigner::new(hsm, root_key.id.clone(), root_kind);
    let root_spki = SubjectPublicKeyInfoOwned::from_der(&root_key.spki_der)?;
    let root_ski = x509::key_identifier(&root_spki);
    let root_name = x509::name(&ca.organization, &ca.root_common_name)?;
    let not_before = stamp - 60;
    let (serial, root_serial_hex) = x509::random_serial()?;
    let root_fields = CertFields {
        serial,
        issuer: root_name.clone(),
        subject: root_name.clone(),
        spki: root_spki,
        not_before,
        not_after: x509::not_after(not_before, ca.root_validity_days, i64::MAX),
        extensions: x509::root_extensions(&root_ski)?,
    };
    let (root_nb, root_na) = (root_fields.not_before, root_fields.not_after);
    let (tbs, tbs_der) = x509::tbs(root_fields, root_signer.algorithm_identifier()?)?;
    let root_der = root_signer.sign_tbs(tbs, &tbs_der).await?;

    let int_key = hsm
        .generate_key(int_kind, &format!("mandate-intermediate-{stamp}"))
        .await?;
    let int_spki = SubjectPublicKeyInfoOwned::from_der(&int_key.spki_der)?;
    let int_ski = x509::key_identifier(&int_spki);
    let int_name = x509::name(&ca.organization, &ca.intermediate_common_name)?;
    let (serial, int_serial_hex) = x509::random_serial()?;
    let int_fields = CertFields {
        serial,
        issuer: root_name.clone(),
        subject: int_name.clone(),
        spki: int_spki,
        not_before,
        not_after: x509::not_after(not_before, ca.intermediate_validity_days, root_na),
        extensions: x509::intermediate_extensions(&int_ski, &root_ski)?,
    };
    let (int_nb, int_na) = (int_fields.not_before, int_fields.not_after);
    let (tbs, tbs_der) = x509::tbs(int_fields, root_signer.algorithm_identifier()?)?;
    let int_der = root_signer.sign_tbs(tbs, &tbs_der).await?;

    let admin = api_key::generate()?;
    let root_row = ca_row(
        &root_key,
        root_kind,
        CaRole::Root,
        &root_name,
        root_serial_hex,
        root_der,
        root_ski,
        (root_nb, root_na),
    )?;
    let int_row = ca_row(
        &int_key,
        int_kind,
        CaRole::Intermediate,
        &int_name,
        int_serial_hex,
        int_der,
        int_ski,
        (int_nb, int_na),
    )?;
    let events = [
        key_event(actor, &root_key, "root"),
        key_event(actor, &int_key, "intermediate"),
        AuditEvent::new(
            actor,
            "ca.initialised",
            "ca",
            json!({"root_sha256": root_row.sha256, "intermediate_sha256": int_row.sha256}),
        )
        .with_fingerprint(&int_row.sha256),
        AuditEvent::new(
            actor,
            "api_key.created",
            &admin.id,
            json!({"role": "admin", "label": "bootstrap", "person": BOOTSTRAP_ADMIN}),
        ),
    ];
    store
        .insert_ca_hierarchy(
            &root_row,
            &int_row,
            &NewApiKey {
                id: admin.id.clone(),
                secret_hash: admin.secret_hash.clone(),
                role: Role::Admin,
                agent_id: None,
                person_id: Some(BOOTSTRAP_ADMIN.to_owned()),
                label: "bootstrap".to_owned(),
                created_by: None,
            },
            &events,
        )
        .await
        .map_err(|e| match e {
            mandate_store::StoreError::Conflict(_) => CaError::AlreadyInitialised,
            other => other.into(),
        })?;
    tracing::info!(
        root = %root_row.sha256,
        intermediate = %int_row.sha256,
        "CA initialised: root and intermediate keys generated in the HSM"
    );
    Ok(CeremonyReport {
        root: summary(&root_row)?,
        intermediate: summary(&int_row)?,
        admin_api_key: admin.text,
        admin_api_key_id: admin.id,
    })
}

/// The CA-staff person who holds the bootstrap admin key.
pub const BOOTSTRAP_ADMIN: &str = "admin";

pub(crate) fn parse_kind(s: &str) -> Result<KeyKind, CaError> {
    s.parse()
        .map_err(|_| CaError::InvalidRequest(format!("unknown key type {s:?}")))
}

pub(crate) fn key_event(actor: &str, key: &KeyInfo, role: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "hsm.key_generated",
        key.id.to_string(),
        json!({"label": key.label, "role": role, "kind": key.kind.to_string(),
               "sensitive": key.sensitive, "extractable": key.extractable}),
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn ca_row(
    key: &KeyInfo,
    kind: KeyKind,
    role: CaRole,
    name: &Name,
    serial: String,
    der: Vec<u8>,
    ski: Vec<u8>,
    (not_before, not_after): (i64, i64),
) -> Result<NewCaCert, CaError> {
    Ok(NewCaCert {
        key_id: key.id.to_string(),
        key_label: key.label.clone(),
        key_kind: kind.to_string(),
        role,
        spki: key.spki_der.clone(),
        subject: name.to_string(),
        serial,
        sha256: x509::sha256_hex(&der),
        der,
        ski,
        not_before,
        not_after,
    })
}

pub(crate) fn summary(row: &NewCaCert) -> Result<CaCertSummary, CaError> {
    Ok(CaCertSummary {
        subject: row.subject.clone(),
        serial: row.serial.clone(),
        sha256_fingerprint: row.sha256.clone(),
        key_label: row.key_label.clone(),
        key_id: row.key_id.clone(),
        key_type: row.key_kind.clone(),
        not_after: crate::rfc3339(row.not_after),
        pem: x509::cert_pem(&row.der)?,
    })
}

/// The subject of a stored certificate: an issuer name must match it byte for byte.
pub(crate) fn subject_of(der: &[u8]) -> Result<Name, CaError> {
    Ok(x509_cert::Certificate::from_der(der)?
        .tbs_certificate
        .subject)
}

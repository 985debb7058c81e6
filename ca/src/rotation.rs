//! Key rotation: `rotate-intermediate` (a new intermediate key and certificate under the
//! active root) and `rollover-root` (a new root, cross-certificates between the old and the new
//! root, and a new intermediate under the new root). Keys are generated in the HSM; the store
//! switches issuance to the new intermediate in one transaction with the audit records; a
//! running daemon loads the change within a second (`ca_reload`). Retired CA certificates stay:
//! they keep answering OCSP and signing CRLs for what they issued.

use der::Decode;
use mandate_config::Config;
use mandate_hsm::{Hsm, KeyInfo, KeyKind};
use mandate_store::{
    AuditEvent, CaCertRow, CaRole, CaRotation, NewCaCert, NewCrossCert, Store, StoreError, now_unix,
};
use serde::Serialize;
use serde_json::json;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;

use crate::CaError;
use crate::ceremony::{CaCertSummary, ca_row, key_event, parse_kind, summary};
use crate::x509::{self, CaSigner, CertFields};

/// What a rotation made, printed as JSON.
#[derive(Debug, Serialize)]
pub struct RotationReport {
    /// The new active intermediate.
    pub intermediate: CaCertSummary,
    /// The intermediate it replaces; it keeps signing OCSP responses and CRLs for its
    /// certificates until the last one expires.
    pub retired_intermediate: CaCertSummary,
    /// The new root (root rollover only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<CaCertSummary>,
    /// The root it replaces (root rollover only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_root: Option<CaCertSummary>,
    /// The cross-certificates between the two roots (root rollover only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cross_certificates: Vec<CrossSummary>,
}

/// A cross-certificate, for people.
#[derive(Debug, Serialize)]
pub struct CrossSummary {
    /// Subject (the certified root).
    pub subject: String,
    /// Issuer (the root that signed it).
    pub issuer: String,
    /// SHA-256 of the DER certificate, hex.
    pub sha256_fingerprint: String,
    /// Validity end, RFC 3339.
    pub not_after: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// A CA key in the HSM with what signing with it needs.
struct CaKey {
    row_der: Vec<u8>,
    name: Name,
    spki: SubjectPublicKeyInfoOwned,
    ski: Vec<u8>,
    not_after: i64,
    signer: CaSigner,
}

impl CaKey {
    fn stored(hsm: &Hsm, row: &CaCertRow) -> Result<CaKey, CaError> {
        let cert = x509_cert::Certificate::from_der(&row.der)?;
        let kind = parse_kind(&row.key_kind)?;
        let key_id = row
            .key_id
            .parse()
            .map_err(|_| CaError::Internal(format!("stored key id {:?}", row.key_id)))?;
        Ok(CaKey {
            row_der: row.der.clone(),
            name: cert.tbs_certificate.subject,
            spki: cert.tbs_certificate.subject_public_key_info,
            ski: row.ski.clone(),
            not_after: row.not_after,
            signer: CaSigner::new(hsm, key_id, kind),
        })
    }
}

/// A certificate signed by `by`: its DER, serial and validity.
struct Signed {
    der: Vec<u8>,
    serial_hex: String,
    not_before: i64,
    not_after: i64,
}

async fn sign_ca_cert(
    by: &CaKey,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    (not_before, not_after): (i64, i64),
    extensions: Vec<x509_cert::ext::Extension>,
) -> Result<Signed, CaError> {
    let (serial, serial_hex) = x509::random_serial()?;
    let fields = CertFields {
        serial,
        issuer: by.name.clone(),
        subject,
        spki,
        not_before,
        not_after,
        extensions,
    };
    let (tbs, tbs_der) = x509::tbs(fields, by.signer.algorithm_identifier()?)?;
    let der = by.signer.sign_tbs(tbs, &tbs_der).await?;
    Ok(Signed {
        der,
        serial_hex,
        not_before,
        not_after,
    })
}

/// The common name of the `n`th CA certificate of a role: the first keeps the configured name,
/// later ones add a generation (`… G2`), so that no two CA certificates share a subject (path
/// building and CRL matching go by name).
fn generation_name(base: &str, n: usize) -> String {
    if n <= 1 {
        base.to_owned()
    } else {
        format!("{base} G{n}")
    }
}

/// A new intermediate under `root`, key generated in the HSM.
async fn new_intermediate(
    hsm: &Hsm,
    cfg: &Config,
    root: &CaKey,
    generation: usize,
    stamp: i64,
) -> Result<(KeyInfo, NewCaCert), CaError> {
    let kind: KeyKind = parse_kind(&cfg.ca.intermediate_key)?;
    let key = hsm
        .generate_key(kind, &format!("mandate-intermediate-{stamp}"))
        .await?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.spki_der)?;
    let ski = x509::key_identifier(&spki);
    let name = x509::name(
        &cfg.ca.organization,
        &generation_name(&cfg.ca.intermediate_common_name, generation),
    )?;
    let not_before = stamp - 60;
    let validity = (
        not_before,
        x509::not_after(
            not_before,
            cfg.ca.intermediate_validity_days,
            root.not_after,
        ),
    );
    let signed = sign_ca_cert(
        root,
        name.clone(),
        spki,
        validity,
        x509::intermediate_extensions(&ski, &root.ski)?,
    )
    .await?;
    let row = ca_row(
        &key,
        kind,
        CaRole::Intermediate,
        &name,
        signed.serial_hex,
        signed.der,
        ski,
        (signed.not_before, signed.not_after),
    )?;
    Ok((key, row))
}

fn count(cas: &[CaCertRow], role: CaRole) -> usize {
    cas.iter().filter(|c| c.role == role).count()
}

fn active(cas: &[CaCertRow], role: CaRole) -> Result<&CaCertRow, CaError> {
    cas.iter()
        .rev()
        .find(|c| c.role == role && c.active)
        .ok_or(CaError::NotInitialised)
}

fn conflict(e: StoreError) -> CaError {
    match e {
        StoreError::Conflict(why) => CaError::Conflict(format!(
            "{why}; the key generated for it stays unused in the HSM (see `mandate hsm keys`)"
        )),
        other => other.into(),
    }
}

/// `mandate ca rotate-intermediate`: a new intermediate key in the HSM, certified by the active
/// root; new issuance uses it as soon as the daemon sees the change (within a second).
pub async fn rotate_intermediate(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    actor: &str,
) -> Result<RotationReport, CaError> {
    let cas = store.ca_certificates().await?;
    let old = active(&cas, CaRole::Intermediate)?;
    let root_row = active(&cas, CaRole::Root)?;
    let root = CaKey::stored(hsm, root_row)?;
    let stamp = now_unix();
    let (key, int) = new_intermediate(
        hsm,
        cfg,
        &root,
        count(&cas, CaRole::Intermediate) + 1,
        stamp,
    )
    .await?;
    let events = vec![
        key_event(actor, &key, "intermediate"),
        rotated_event(actor, &int, old, &root_row.sha256),
    ];
    store
        .rotate_ca(&CaRotation {
            expected_intermediate: old.id,
            root: None,
            intermediate: int.clone(),
            cross: Vec::new(),
            events,
        })
        .await
        .map_err(conflict)?;
    tracing::info!(new = %int.sha256, retired = %old.sha256, "intermediate rotated");
    Ok(RotationReport {
        intermediate: summary(&int)?,
        retired_intermediate: stored_summary(old)?,
        root: None,
        retired_root: None,
        cross_certificates: Vec::new(),
    })
}

/// `mandate ca rollover-root`: a new root key and self-signed certificate, a cross-certificate
/// each way between the old and the new root (valid while both are), and a new intermediate
/// under the new root that new issuance uses. Chains of the old and the new intermediate then
/// verify from either root.
pub async fn rollover_root(
    hsm: &Hsm,
    store: &Store,
    cfg: &Config,
    actor: &str,
) -> Result<RotationReport, CaError> {
    let cas = store.ca_certificates().await?;
    let old_int = active(&cas, CaRole::Intermediate)?;
    let old_root_row = active(&cas, CaRole::Root)?;
    let old_root = CaKey::stored(hsm, old_root_row)?;
    let stamp = now_unix();
    let not_before = stamp - 60;

    let kind: KeyKind = parse_kind(&cfg.ca.root_key)?;
    let key = hsm
        .generate_key(kind, &format!("mandate-root-{stamp}"))
        .await?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.spki_der)?;
    let ski = x509::key_identifier(&spki);
    let name = x509::name(
        &cfg.ca.organization,
        &generation_name(&cfg.ca.root_common_name, count(&cas, CaRole::Root) + 1),
    )?;
    let not_after = x509::not_after(not_before, cfg.ca.root_validity_days, i64::MAX);
    let new_root = CaKey {
        row_der: Vec::new(),
        name: name.clone(),
        spki: spki.clone(),
        ski: ski.clone(),
        not_after,
        signer: CaSigner::new(hsm, key.id.clone(), kind),
    };
    let self_signed = sign_ca_cert(
        &new_root,
        name.clone(),
        spki.clone(),
        (not_before, not_after),
        x509::root_extensions(&ski)?,
    )
    .await?;
    let root_row = ca_row(
        &key,
        kind,
        CaRole::Root,
        &name,
        self_signed.serial_hex,
        self_signed.der,
        ski.clone(),
        (self_signed.not_before, self_signed.not_after),
    )?;

    // Each root vouches for the other while both are valid.
    let overlap = (not_before, not_after.min(old_root.not_after));
    let new_by_old = sign_ca_cert(
        &old_root,
        name.clone(),
        spki,
        overlap,
        x509::cross_extensions(&ski, &old_root.ski)?,
    )
    .await?;
    let old_by_new = sign_ca_cert(
        &new_root,
        old_root.name.clone(),
        old_root.spki.clone(),
        overlap,
        x509::cross_extensions(&old_root.ski, &ski)?,
    )
    .await?;
    let old_sha = x509::sha256_hex(&old_root.row_der);
    let cross = [
        (new_by_old, root_row.sha256.clone(), old_sha.clone()),
        (old_by_new, old_sha, root_row.sha256.clone()),
    ]
    .into_iter()
    .map(|(c, subject, issuer)| NewCrossCert {
        subject_sha256: subject,
        issuer_sha256: issuer,
        serial: c.serial_hex,
        sha256: x509::sha256_hex(&c.der),
        der: c.der,
        not_before: c.not_before,
        not_after: c.not_after,
    })
    .collect::<Vec<_>>();

    let (int_key, int) = new_intermediate(
        hsm,
        cfg,
        &new_root,
        count(&cas, CaRole::Intermediate) + 1,
        stamp,
    )
    .await?;
    let mut events = vec![
        key_event(actor, &key, "root"),
        key_event(actor, &int_key, "intermediate"),
        AuditEvent::new(
            actor,
            "ca.root_rolled_over",
            &root_row.sha256,
            json!({"retired_sha256": old_root_row.sha256, "subject": root_row.subject,
                   "not_after": crate::rfc3339(root_row.not_after),
                   "cross_sha256": cross.iter().map(|c| c.sha256.clone()).collect::<Vec<_>>()}),
        )
        .with_fingerprint(&root_row.sha256),
    ];
    for c in &cross {
        events.push(
            AuditEvent::new(
                actor,
                "ca.cross_certificate_issued",
                &c.serial,
                json!({"subject_sha256": c.subject_sha256, "issuer_sha256": c.issuer_sha256,
                       "not_after": crate::rfc3339(c.not_after)}),
            )
            .with_fingerprint(&c.sha256),
        );
    }
    events.push(rotated_event(actor, &int, old_int, &root_row.sha256));
    store
        .rotate_ca(&CaRotation {
            expected_intermediate: old_int.id,
            root: Some(root_row.clone()),
            intermediate: int.clone(),
            cross: cross.clone(),
            events,
        })
        .await
        .map_err(conflict)?;
    tracing::info!(root = %root_row.sha256, intermediate = %int.sha256, "root rolled over");
    let cross_certificates = cross
        .iter()
        .map(|c| {
            let cert = x509_cert::Certificate::from_der(&c.der)?;
            Ok(CrossSummary {
                subject: cert.tbs_certificate.subject.to_string(),
                issuer: cert.tbs_certificate.issuer.to_string(),
                sha256_fingerprint: c.sha256.clone(),
                not_after: crate::rfc3339(c.not_after),
                pem: x509::cert_pem(&c.der)?,
            })
        })
        .collect::<Result<_, CaError>>()?;
    Ok(RotationReport {
        intermediate: summary(&int)?,
        retired_intermediate: stored_summary(old_int)?,
        root: Some(summary(&root_row)?),
        retired_root: Some(stored_summary(old_root_row)?),
        cross_certificates,
    })
}

/// The audit record of a switch to a new intermediate.
fn rotated_event(
    actor: &str,
    int: &NewCaCert,
    retired: &CaCertRow,
    root_sha256: &str,
) -> AuditEvent {
    AuditEvent::new(
        actor,
        "ca.intermediate_rotated",
        &int.sha256,
        json!({"retired_sha256": retired.sha256, "root_sha256": root_sha256,
               "subject": int.subject, "not_after": crate::rfc3339(int.not_after)}),
    )
    .with_fingerprint(&int.sha256)
}

fn stored_summary(row: &CaCertRow) -> Result<CaCertSummary, CaError> {
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

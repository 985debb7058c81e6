//! The issuance pipeline: approved mandate → CSR checks → reserve serial and store the exact
//! TBSCertificate → HSM signs → store the certificate with its audit event → respond.
//! A crash between two steps leaves nothing issued, or a stored certificate that can be revoked.

use std::sync::Arc;

use mandate_config::Config;
use mandate_hsm::{Hsm, KeyKind};
use mandate_policy::Mandate;
use mandate_store::{
    AgentRow, AgentStatus, AuditEvent, CaCertRow, CaRole, MandateRow, NewCertificate, Store,
    StoreError,
};
use serde::Serialize;
use serde_json::json;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::name::Name;

use crate::x509::{self, CaSigner, CertFields, PublicUrls};
use crate::{CaError, csr};

/// What a successful issuance returns to the client.
#[derive(Debug, Serialize)]
pub struct Issued {
    /// The agent certificate, PEM.
    pub certificate_pem: String,
    /// Intermediate then root, PEM.
    pub chain_pem: String,
    /// Serial, lowercase hex.
    pub serial_number: String,
    /// Validity end, RFC 3339.
    pub expires_at: String,
    /// SHA-256 of the DER certificate, hex.
    pub sha256_fingerprint: String,
    /// Mandate version the certificate carries.
    pub mandate_version: i64,
}

/// The key an agent certificate certifies.
#[derive(Debug)]
pub enum AgentKey<'a> {
    /// From a PEM CSR, checked (signature, names, key strength).
    Csr(&'a str),
    /// A key generated in our HSM for the agent: nothing to check.
    Generated(csr::ValidCsr),
}

/// The issuing CA as loaded at start-up.
#[derive(Debug)]
struct ActiveIssuer {
    row: CaCertRow,
    name: Name,
    signer: CaSigner,
    alg_id: AlgorithmIdentifierOwned,
    chain_pem: String,
    /// This issuer's CRL distribution point.
    crl_url: String,
}

/// Issues agent certificates with the active intermediate.
#[derive(Debug, Clone)]
pub struct Issuer {
    store: Store,
    cfg: Arc<Config>,
    active: Arc<ActiveIssuer>,
    /// Agents that got a certificate: their live state reloads its certificate status (only
    /// theirs: a global reload would cost every pre-trade check SQL during issuance).
    pub(crate) issued_to: crate::behaviour::Touched,
}

impl Issuer {
    /// Loads the active intermediate and root from the store.
    pub async fn load(hsm: &Hsm, store: &Store, cfg: Arc<Config>) -> Result<Issuer, CaError> {
        let int = store
            .active_ca(CaRole::Intermediate)
            .await?
            .ok_or(CaError::NotInitialised)?;
        let root = store
            .active_ca(CaRole::Root)
            .await?
            .ok_or(CaError::NotInitialised)?;
        let kind: KeyKind = int
            .key_kind
            .parse()
            .map_err(|_| CaError::Internal(format!("stored key kind {:?}", int.key_kind)))?;
        let key_id = int
            .key_id
            .parse()
            .map_err(|_| CaError::Internal(format!("stored key id {:?}", int.key_id)))?;
        let signer = CaSigner::new(hsm, key_id, kind);
        let chain_pem = format!(
            "{}{}",
            x509::cert_pem(&int.der)?,
            x509::cert_pem(&root.der)?
        );
        let crl_url = cfg.ca.crl_url.replace("{issuer}", &hex::encode(&int.ski));
        Ok(Issuer {
            store: store.clone(),
            issued_to: Default::default(),
            cfg,
            active: Arc::new(ActiveIssuer {
                crl_url,
                alg_id: signer.algorithm_identifier()?,
                name: crate::ceremony::subject_of(&int.der)?,
                row: int,
                signer,
                chain_pem,
            }),
        })
    }

    /// The DNS name an agent's certificate carries.
    pub fn dns_name(&self, agent_id: &str, organization: &str) -> String {
        format!("{agent_id}.{organization}.{}", self.cfg.ca.agent_domain)
    }

    /// Intermediate then root, PEM.
    pub fn chain_pem(&self) -> &str {
        &self.active.chain_pem
    }

    /// The agent and its approved mandate, if it may get a certificate now: it exists
    /// (`NotFound`), is active and has an approved mandate (`NotApproved`).
    pub async fn eligible(&self, agent_id: &str) -> Result<(AgentRow, MandateRow), CaError> {
        let (agent, approved) = self
            .store
            .agent_with_approved_mandate(agent_id)
            .await?
            .ok_or_else(|| CaError::NotFound(format!("agent {agent_id}")))?;
        let mandate = approved
            .filter(|_| agent.status == AgentStatus::Active)
            .ok_or_else(|| {
                CaError::NotApproved(format!(
                    "agent {agent_id} has no approved mandate (status {}); a compliance officer must approve it first",
                    agent.status
                ))
            })?;
        Ok((agent, mandate))
    }

    /// Signs the daemon's own HTTPS server certificate for `host` (valid `days`) with the active
    /// intermediate, and records it in the audit log. It is not an agent certificate, so it is
    /// not in the certificate table; its serial and fingerprint are in the audit event.
    pub async fn server_certificate(
        &self,
        spki: SubjectPublicKeyInfoOwned,
        host: &str,
        days: u32,
    ) -> Result<Vec<u8>, CaError> {
        let issuer = &self.active;
        let now = mandate_store::now_unix();
        let not_before = now - 60;
        let (serial, serial_hex) = x509::random_serial()?;
        let ski = x509::key_identifier(&spki);
        let fields = CertFields {
            serial,
            issuer: issuer.name.clone(),
            subject: x509::name(&self.cfg.ca.organization, host)?,
            spki,
            not_before,
            not_after: x509::not_after(not_before, days, issuer.row.not_after),
            extensions: x509::server_extensions(&ski, &issuer.row.ski, host)?,
        };
        let (tbs, tbs_der) = x509::tbs(fields, issuer.alg_id.clone())?;
        let der = issuer.signer.sign_tbs(tbs, &tbs_der).await?;
        let sha256 = x509::sha256_hex(&der);
        self.store
            .record_audit_event(
                &AuditEvent::new(
                    "system",
                    "tls.certificate_issued",
                    &serial_hex,
                    json!({"host": host, "days": days}),
                )
                .with_fingerprint(&sha256),
            )
            .await?;
        tracing::info!(%host, serial = %serial_hex, "HTTPS server certificate issued");
        Ok(der)
    }

    /// Issues a certificate for `agent_id` with the key of a CSR, or with a key the HSM generated.
    pub async fn certify(
        &self,
        agent_id: &str,
        key: AgentKey<'_>,
        validity_days: Option<u32>,
        requested_by: &str,
    ) -> Result<Issued, CaError> {
        let ca = &self.cfg.ca;
        let days = validity_days.unwrap_or(ca.default_validity_days);
        if days == 0 || days > ca.max_validity_days {
            return Err(CaError::InvalidRequest(format!(
                "validity_days must be between 1 and {} (got {days})",
                ca.max_validity_days
            )));
        }
        let (agent, mandate_row) = self.eligible(agent_id).await?;
        let mandate: Mandate = serde_json::from_str(&mandate_row.mandate_json)
            .map_err(|e| CaError::Internal(format!("stored mandate unreadable: {e}")))?;
        let dns_name = self.dns_name(agent_id, &agent.organization);
        let valid = match key {
            AgentKey::Csr(pem) => csr::validate(pem, agent_id, &dns_name)?,
            AgentKey::Generated(k) => k,
        };

        let issuer = &self.active;
        let now = mandate_store::now_unix();
        let not_before = now - 60;
        let not_after = x509::not_after(not_before, days, issuer.row.not_after);
        let spki: SubjectPublicKeyInfoOwned = valid.spki;
        let ski = x509::key_identifier(&spki);
        let extensions = x509::agent_extensions(
            &ski,
            &issuer.row.ski,
            &dns_name,
            &PublicUrls {
                ocsp: &ca.ocsp_url,
                ca_issuers: &ca.ca_issuers_url,
                crl: &issuer.crl_url,
            },
            mandate.to_der()?,
        )?;
        let subject = x509::name(&mandate.operator, agent_id)?;

        // A serial collision at 126 random bits means a broken RNG rather than bad luck; retry a
        // couple of times anyway so the store's uniqueness, not chance, is what guarantees it.
        let mut attempt = 0;
        let (tbs, tbs_der, serial_hex) = loop {
            attempt += 1;
            let (serial, serial_hex) = x509::random_serial()?;
            let fields = CertFields {
                serial,
                issuer: issuer.name.clone(),
                subject: subject.clone(),
                spki: spki.clone(),
                not_before,
                not_after,
                extensions: extensions.clone(),
            };
            let (tbs, tbs_der) = x509::tbs(fields, issuer.alg_id.clone())?;
            let reserved = self
                .store
                .reserve_certificate(
                    &NewCertificate {
                        serial: serial_hex.clone(),
                        agent_id: agent_id.to_owned(),
                        mandate_version: mandate_row.version,
                        issuer_id: issuer.row.id,
                        tbs: tbs_der.clone(),
                        not_before,
                        not_after,
                        requested_by: requested_by.to_owned(),
                    },
                    &AuditEvent::new(
                        requested_by,
                        "certificate.reserved",
                        &serial_hex,
                        json!({"agent_id": agent_id, "mandate_version": mandate_row.version,
                               "key_type": valid.key_type}),
                    ),
                )
                .await;
            match reserved {
                Ok(()) => break (tbs, tbs_der, serial_hex),
                Err(StoreError::Conflict(_)) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        };

        let der = issuer.signer.sign_tbs(tbs, &tbs_der).await?;
        let sha256 = x509::sha256_hex(&der);
        self.store
            .complete_certificate(
                &serial_hex,
                &der,
                &sha256,
                &AuditEvent::new(
                    requested_by,
                    "certificate.issued",
                    &serial_hex,
                    json!({"agent_id": agent_id, "mandate_version": mandate_row.version,
                           "not_after": not_after, "issuer_sha256": issuer.row.sha256}),
                )
                .with_fingerprint(&sha256),
            )
            .await?;
        self.issued_to.touch(agent_id);
        tracing::info!(agent = agent_id, serial = %serial_hex, "certificate issued");
        Ok(Issued {
            certificate_pem: x509::cert_pem(&der)?,
            chain_pem: issuer.chain_pem.clone(),
            serial_number: serial_hex,
            expires_at: crate::rfc3339(not_after),
            sha256_fingerprint: sha256,
            mandate_version: mandate_row.version,
        })
    }
}

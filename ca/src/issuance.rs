//! The issuance pipeline: approved mandate → CSR checks → reserve serial and store the exact
//! TBSCertificate → HSM signs → store the certificate with its audit event → respond.
//! A crash between two steps leaves nothing issued, or a stored certificate that can be revoked.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use der::Decode;

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

use crate::ra::certify::Lifetime;
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
    /// The profile it was issued under, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The key an agent certificate certifies.
#[derive(Debug)]
pub enum AgentKey<'a> {
    /// From a PEM CSR, checked (signature, names, key strength).
    Csr(&'a str),
    /// A key generated in our HSM for the agent: nothing to check.
    Generated(csr::ValidCsr),
}

/// The issuing CA, as loaded from the store.
#[derive(Debug)]
struct ActiveIssuer {
    row: CaCertRow,
    name: Name,
    signer: CaSigner,
    alg_id: AlgorithmIdentifierOwned,
    chain_pem: String,
    /// This issuer's CRL distribution point.
    crl_url: String,
    /// Where this issuer's certificate is published (AIA caIssuers).
    ca_issuers_url: String,
}

/// The CA hierarchy one issuance works with: the active intermediate, and the chain of every
/// intermediate (a rotated one's certificates are still downloaded and renewed).
#[derive(Debug)]
struct Hierarchy {
    /// `Store::ca_generation` when it was loaded.
    generation: i64,
    active: Arc<ActiveIssuer>,
    chains: HashMap<i64, String>,
}

/// Issues agent certificates with the active intermediate.
#[derive(Debug, Clone)]
pub struct Issuer {
    store: Store,
    hsm: Hsm,
    cfg: Arc<Config>,
    /// Swapped whole when a rotation is loaded; an issuance in flight keeps the one it started
    /// with (the old intermediate stays valid, so what it signs is good).
    hierarchy: Arc<RwLock<Arc<Hierarchy>>>,
    /// Agents that got a certificate: their live state reloads its certificate status (only
    /// theirs: a global reload would cost every pre-trade check SQL during issuance).
    pub(crate) issued_to: crate::behaviour::Touched,
}

impl Issuer {
    /// Loads the active intermediate and root from the store.
    pub async fn load(hsm: &Hsm, store: &Store, cfg: Arc<Config>) -> Result<Issuer, CaError> {
        let hierarchy = load_hierarchy(hsm, store, &cfg).await?;
        Ok(Issuer {
            store: store.clone(),
            hsm: hsm.clone(),
            issued_to: Default::default(),
            cfg,
            hierarchy: Arc::new(RwLock::new(Arc::new(hierarchy))),
        })
    }

    /// Loads the hierarchy again if the store's CA certificates changed (a rotation by this or
    /// another process). Returns whether it did.
    pub async fn reload(&self) -> Result<bool, CaError> {
        let generation = self.store.ca_generation().await?;
        if generation == self.current().generation {
            return Ok(false);
        }
        let hierarchy = load_hierarchy(&self.hsm, &self.store, &self.cfg).await?;
        tracing::info!(
            intermediate = %hierarchy.active.row.sha256,
            subject = %hierarchy.active.row.subject,
            "CA hierarchy loaded: new issuance uses this intermediate"
        );
        match self.hierarchy.write() {
            Ok(mut h) => *h = Arc::new(hierarchy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(hierarchy),
        }
        Ok(true)
    }

    fn current(&self) -> Arc<Hierarchy> {
        match self.hierarchy.read() {
            Ok(h) => Arc::clone(&h),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn active(&self) -> Arc<ActiveIssuer> {
        Arc::clone(&self.current().active)
    }

    /// The DNS name an agent's certificate carries.
    pub fn dns_name(&self, agent_id: &str, organization: &str) -> String {
        format!("{agent_id}.{organization}.{}", self.cfg.ca.agent_domain)
    }

    /// The active intermediate's chain, PEM: the intermediate, cross-certificates of its root
    /// (after a root rollover), then its root.
    pub fn chain_pem(&self) -> String {
        self.active().chain_pem.clone()
    }

    /// The chain of the intermediate with this store id, like [`Issuer::chain_pem`]; that of the
    /// active one if the id is unknown.
    pub fn chain_pem_of(&self, issuer_id: i64) -> String {
        let h = self.current();
        h.chains
            .get(&issuer_id)
            .cloned()
            .unwrap_or_else(|| h.active.chain_pem.clone())
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
        let issuer = self.active();
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
        lifetime: &Lifetime,
        requested_by: &str,
        person: Option<&str>,
    ) -> Result<Issued, CaError> {
        let channel = if requested_by.starts_with("acme:") {
            "acme"
        } else {
            "api"
        };
        let started = std::time::Instant::now();
        let result = self
            .certify_unmeasured(agent_id, key, lifetime, requested_by, person)
            .await;
        let m = &crate::metrics::METRICS;
        match &result {
            Ok(_) => {
                m.issued.inc(&[channel]);
                m.issuance_seconds.observe(&[channel], started.elapsed());
            }
            Err(e) => m.issuance_failures.inc(&[channel, e.kind()]),
        }
        result
    }

    async fn certify_unmeasured(
        &self,
        agent_id: &str,
        key: AgentKey<'_>,
        lifetime: &Lifetime,
        requested_by: &str,
        person: Option<&str>,
    ) -> Result<Issued, CaError> {
        let ca = &self.cfg.ca;
        let (agent, mandate_row) = self.eligible(agent_id).await?;
        let mandate: Mandate = serde_json::from_str(&mandate_row.mandate_json)
            .map_err(|e| CaError::Internal(format!("stored mandate unreadable: {e}")))?;
        let dns_name = self.dns_name(agent_id, &agent.organization);
        let valid = match key {
            AgentKey::Csr(pem) => csr::validate(pem, agent_id, &dns_name)?,
            AgentKey::Generated(k) => k,
        };

        let issuer = self.active();
        let now = mandate_store::now_unix();
        // Backdated a little for clocks behind ours, by at most a tenth of the lifetime; the
        // lifetime (notBefore to the end of notAfter) is the profile's.
        let not_before = now - (lifetime.secs / 10).clamp(0, 60);
        let not_after = (not_before + lifetime.secs - 1).min(issuer.row.not_after);
        let spki: SubjectPublicKeyInfoOwned = valid.spki;
        let ski = x509::key_identifier(&spki);
        let extensions = x509::agent_extensions(
            &ski,
            &issuer.row.ski,
            &dns_name,
            &PublicUrls {
                ocsp: &ca.ocsp_url,
                ca_issuers: &issuer.ca_issuers_url,
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
                        profile: lifetime.profile.clone(),
                    },
                    &AuditEvent::new(
                        requested_by,
                        "certificate.reserved",
                        &serial_hex,
                        json!({"agent_id": agent_id, "mandate_version": mandate_row.version,
                               "key_type": valid.key_type}),
                    )
                    // Known here: appending looks nothing up in the writer's transaction.
                    .by(Some(&agent.organization), person),
                )
                .await;
            match reserved {
                Ok(()) => break (tbs, tbs_der, serial_hex),
                Err(StoreError::Conflict(_)) if attempt < 3 => continue,
                // The kill switch (or a new approval) committed after the check above.
                Err(StoreError::WrongState(d)) => return Err(CaError::NotApproved(d)),
                Err(e) => return Err(e.into()),
            }
        };

        let der = issuer.signer.sign_tbs(tbs, &tbs_der).await?;
        let sha256 = x509::sha256_hex(&der);
        let issued = self
            .store
            .complete_certificate(
                &serial_hex,
                &der,
                &sha256,
                &AuditEvent::new(
                    requested_by,
                    "certificate.issued",
                    &serial_hex,
                    json!({"agent_id": agent_id, "mandate_version": mandate_row.version,
                           "not_after": crate::rfc3339(not_after), "issuer_sha256": issuer.row.sha256}),
                )
                .with_fingerprint(&sha256)
                .by(Some(&agent.organization), person),
            )
            .await?;
        if !issued {
            tracing::warn!(agent = agent_id, serial = %serial_hex,
                "certificate signed across a kill switch: stored revoked, not handed out");
            return Err(CaError::NotApproved(format!(
                "agent {agent_id} was suspended, or its mandate changed, while the certificate was being signed: it is revoked and not issued"
            )));
        }
        self.issued_to.touch(agent_id);
        tracing::info!(agent = agent_id, serial = %serial_hex, "certificate issued");
        Ok(Issued {
            certificate_pem: x509::cert_pem(&der)?,
            chain_pem: issuer.chain_pem.clone(),
            serial_number: serial_hex,
            expires_at: crate::rfc3339(not_after),
            sha256_fingerprint: sha256,
            mandate_version: mandate_row.version,
            profile: lifetime.profile.clone(),
        })
    }
}

async fn load_hierarchy(hsm: &Hsm, store: &Store, cfg: &Config) -> Result<Hierarchy, CaError> {
    let generation = store.ca_generation().await?;
    let cas = store.ca_certificates().await?;
    let cross = store.cross_certificates().await?;
    let now = mandate_store::now_unix();
    let roots: Vec<(&CaCertRow, Name)> = cas
        .iter()
        .filter(|c| c.role == CaRole::Root)
        .map(|c| Ok((c, crate::ceremony::subject_of(&c.der)?)))
        .collect::<Result<_, CaError>>()?;
    let mut chains = HashMap::new();
    for int in cas.iter().filter(|c| c.role == CaRole::Intermediate) {
        let issuer = x509_cert::Certificate::from_der(&int.der)?
            .tbs_certificate
            .issuer;
        let root = roots
            .iter()
            .find(|(_, name)| *name == issuer)
            .map(|(r, _)| *r)
            .ok_or_else(|| {
                CaError::Internal(format!("no root stored for intermediate {}", int.sha256))
            })?;
        // Intermediate, then the other roots' certificates for this root's key (a relying party
        // that trusts only the other root builds its path through one), then the root itself.
        let mut pem = x509::cert_pem(&int.der)?;
        for c in cross
            .iter()
            .filter(|c| c.subject_id == root.id && c.not_after > now)
        {
            pem.push_str(&x509::cert_pem(&c.der)?);
        }
        pem.push_str(&x509::cert_pem(&root.der)?);
        chains.insert(int.id, pem);
    }
    let int = cas
        .iter()
        .rev()
        .find(|c| c.role == CaRole::Intermediate && c.active)
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
    let chain_pem = chains
        .get(&int.id)
        .cloned()
        .ok_or_else(|| CaError::Internal("active intermediate without chain".into()))?;
    let ski_hex = hex::encode(&int.ski);
    let crl_url = cfg.ca.crl_url.replace("{issuer}", &ski_hex);
    let ca_issuers_url = cfg.ca.ca_issuers_url.replace("{issuer}", &ski_hex);
    Ok(Hierarchy {
        generation,
        active: Arc::new(ActiveIssuer {
            crl_url,
            ca_issuers_url,
            alg_id: signer.algorithm_identifier()?,
            name: crate::ceremony::subject_of(&int.der)?,
            row: int.clone(),
            signer,
            chain_pem,
        }),
        chains,
    })
}

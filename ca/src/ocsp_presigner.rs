//! Pre-signs OCSP responses into the store, for the stand-alone responders (which hold no key):
//! for every certificate, one response per CertID hash (SHA-1 and SHA-256), signed by the
//! issuer's current delegated signer, re-signed half-way through their validity, and re-signed
//! at once after a revocation — revocations are due first, so a burst of issuance never delays
//! one. Woken on every revocation this daemon commits; revocations made elsewhere (the CLI,
//! another node) are found by the poll.

use std::sync::Arc;
use std::time::Duration;

use mandate_hsm::Hsm;
use mandate_ocsp::{CertIdHash, IssuerSet, Status, sign_response};
use mandate_store::{CertStatus, OcspDue, PresignedSet, Store, now_unix};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::CaError;

/// How often the store is asked for due certificates, at most this long apart.
const POLL: Duration = Duration::from_secs(1);
/// How long claimed certificates are left to this node's pre-signer (PostgreSQL): far longer
/// than a round takes, far shorter than a response's validity.
const CLAIM_LEASE_SECS: i64 = 60;
/// Certificates signed and stored per transaction: small, so issuance's writes interleave.
const BATCH: i64 = 32;
/// Certificates signed at once: at most half the default HSM session pool (4), so issuance
/// always finds a session.
const IN_FLIGHT: usize = 2;

/// Handle on the pre-signer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Presigner {
    wake: Arc<Notify>,
}

#[derive(Debug)]
struct Worker {
    hsm: Hsm,
    store: Store,
    issuers: Arc<IssuerSet>,
    validity: i64,
}

impl Presigner {
    /// Starts the background task.
    pub fn start(
        hsm: &Hsm,
        store: &Store,
        issuers: Arc<IssuerSet>,
        validity_secs: u32,
    ) -> Presigner {
        let wake = Arc::new(Notify::new());
        let worker = Arc::new(Worker {
            hsm: hsm.clone(),
            store: store.clone(),
            issuers,
            validity: i64::from(validity_secs),
        });
        tokio::spawn(worker.run(wake.clone()));
        Presigner { wake }
    }

    /// Says a revocation was committed: its responses are signed now rather than at the poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Worker {
    async fn run(self: Arc<Self>, wake: Arc<Notify>) {
        loop {
            loop {
                match self.clone().round().await {
                    Ok(n) if n >= BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "OCSP responses not pre-signed; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Signs and stores one batch of due certificates; returns how many were due.
    async fn round(self: Arc<Self>) -> Result<i64, CaError> {
        let now = now_unix();
        let mut due = self.store.ocsp_due(now, BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        // Several nodes on one PostgreSQL: claim what is due first, so that two pre-signers do
        // not sign the same certificates (one process per SQLite file needs no claim).
        if self.store.backend() == mandate_store::Backend::Postgres {
            due = self
                .store
                .claim_ocsp_due(now, BATCH, CLAIM_LEASE_SECS)
                .await?;
        }
        let count = i64::try_from(due.len()).unwrap_or(BATCH);
        let mut tasks = JoinSet::new();
        let mut sets = Vec::with_capacity(due.len());
        let mut due = due.into_iter();
        loop {
            while tasks.len() < IN_FLIGHT
                && let Some(d) = due.next()
            {
                tasks.spawn(self.clone().sign(d, now));
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let set = joined.map_err(|e| CaError::Internal(format!("pre-signing task: {e}")))??;
            sets.push(set);
        }
        let saved = self.store.save_presigned(sets).await?;
        tracing::debug!(due = count, saved, "OCSP responses pre-signed");
        Ok(count)
    }

    async fn sign(self: Arc<Self>, due: OcspDue, now: i64) -> Result<PresignedSet, CaError> {
        let next_update = now + self.validity;
        let refresh = now + self.validity / 2;
        let mut set = PresignedSet {
            this_update: now,
            next_update,
            // Once these responses outlive the certificate, nothing is left to sign.
            refresh_at: (refresh < due.not_after).then_some(refresh),
            responses: Vec::with_capacity(CertIdHash::ALL.len()),
            due,
        };
        let mut issuer = self.issuers.get(set.due.issuer_id);
        if issuer.is_none() {
            // Issued by an intermediate a rotation (maybe by another node) added just now.
            self.issuers.refresh(&self.store).await?;
            issuer = self.issuers.get(set.due.issuer_id);
        }
        let Some(issuer) = issuer else {
            tracing::error!(serial = %set.due.serial, issuer = set.due.issuer_id,
                "certificate of an issuer this node does not know: no OCSP responses pre-signed");
            set.refresh_at = None;
            return Ok(set);
        };
        let status = match set.due.status {
            CertStatus::Revoked => Status::Revoked {
                at: set.due.revoked_at.unwrap_or(0),
                reason: set.due.revocation_reason.unwrap_or(0),
            },
            _ => Status::Good,
        };
        let serial = hex::decode(&set.due.serial)
            .map_err(|e| CaError::Internal(format!("stored serial {}: {e}", set.due.serial)))?;
        for hash in CertIdHash::ALL {
            let cert_id = issuer.cert_id(hash, &serial)?;
            let der =
                sign_response(&self.hsm, &issuer, &cert_id, None, status, now, next_update).await?;
            set.responses.push((hash.as_str(), der));
        }
        Ok(set)
    }
}

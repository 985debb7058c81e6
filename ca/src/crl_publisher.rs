//! Watches revocations: drops the cached OCSP responses and keeps a fresh, signed CRL for every
//! intermediate: issued at start, again as soon as a
//! revocation lands (bursts coalesce into one rebuild: a wake-up during a rebuild causes exactly
//! one more), again before nextUpdate, and at least every second the revocation count in the
//! store is compared, so revocations made by another process (the CLI, later other nodes)
//! are published too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use der::Decode;
use mandate_crl::{CrlIssuer, RevokedEntry};
use mandate_hsm::{Hsm, KeyKind};
use mandate_store::{CaRole, Store, StoredCrl};
use sha2::Digest;
use tokio::sync::Notify;

use crate::CaError;
use crate::ocsp_cache::OcspCache;

/// How often the store is asked whether revocations changed, at most this long apart.
const POLL: Duration = Duration::from_secs(1);

/// A CRL ready to serve.
#[derive(Debug)]
pub struct PublishedCrl {
    /// The CRL, DER; shared, so serving it copies no bytes (a CRL can be megabytes).
    pub der: axum::body::Bytes,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// Strong validator for HTTP caches.
    pub etag: String,
}

#[derive(Debug)]
struct Issuer {
    id: i64,
    /// Lowercase hex SubjectKeyIdentifier: names the CRL in its URL.
    ski_hex: String,
    crl: CrlIssuer,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    hsm: Hsm,
    /// Every intermediate, current or retired: a rotated one keeps publishing for what it
    /// issued.
    issuers: RwLock<Vec<Arc<Issuer>>>,
    validity: i64,
    published: RwLock<HashMap<String, Arc<PublishedCrl>>>,
    wake: Notify,
    ocsp: OcspCache,
    /// The live agent states' generation (see `behaviour`): bumped on revocations by others.
    changes: Arc<std::sync::atomic::AtomicU64>,
    /// When this node first learnt of a revocation its CRLs do not carry yet (metrics).
    pending_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// Told when the poll finds a revocation count that moved (another process's revocation,
    /// on SQLite the only way to learn of it): the node's one change path.
    on_count_change: CountHook,
}

/// The hook of [`CrlPublisher::on_count_change`].
#[derive(Default)]
struct CountHook(std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for CountHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "CountHook(set)"
        } else {
            "CountHook(unset)"
        })
    }
}

impl Inner {
    /// Starts the propagation clock, unless it runs already.
    fn note_pending(&self) {
        if let Ok(mut p) = self.pending_since.lock() {
            p.get_or_insert_with(std::time::Instant::now);
        }
    }

    /// Stops the propagation clock: the CRLs now carry every revocation known when it started.
    fn note_published(&self) {
        let since = self.pending_since.lock().ok().and_then(|mut p| p.take());
        if let Some(since) = since {
            crate::metrics::METRICS
                .revocation_propagation_seconds
                .observe(since.elapsed());
        }
    }
}

/// Handle on the CRL publisher; cheap to clone.
#[derive(Debug, Clone)]
pub struct CrlPublisher {
    inner: Arc<Inner>,
}

impl CrlPublisher {
    /// Publishes a CRL for every intermediate (so the distribution points answer from the first
    /// request) and starts the background task.
    pub async fn start(
        store: &Store,
        hsm: &Hsm,
        validity_secs: u32,
        ocsp: OcspCache,
        changes: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self, CaError> {
        let issuers = RwLock::new(load_issuers(store, &[]).await?);
        let publisher = CrlPublisher {
            inner: Arc::new(Inner {
                store: store.clone(),
                hsm: hsm.clone(),
                issuers,
                validity: i64::from(validity_secs),
                published: RwLock::new(HashMap::new()),
                wake: Notify::new(),
                ocsp,
                changes,
                pending_since: std::sync::Mutex::new(None),
                on_count_change: CountHook::default(),
            }),
        };
        let count = store.revocation_count().await?;
        publisher.publish_all().await?;
        tokio::spawn(publisher.clone().run(count));
        Ok(publisher)
    }

    /// Hands the revocations its poll finds (a moved count: another process's, or ones this
    /// node also heard of otherwise) to `hook` instead of handling them itself. Set once.
    pub fn on_count_change(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.inner.on_count_change.0.set(hook);
    }

    /// Says a revocation was committed: cached OCSP answers are dropped and the CRLs rebuilt
    /// at once.
    pub fn revoked(&self) {
        self.inner.ocsp.invalidate();
        self.inner.note_pending();
        self.inner.wake.notify_one();
    }

    /// The CRL of the issuer with this SubjectKeyIdentifier (lowercase hex).
    pub fn get(&self, ski_hex: &str) -> Option<Arc<PublishedCrl>> {
        self.inner
            .published
            .read()
            .ok()
            .and_then(|m| m.get(ski_hex).cloned())
    }

    async fn run(self, mut seen: i64) {
        loop {
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            let count = match self.inner.store.revocation_count().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "CRL publisher cannot read the store");
                    continue;
                }
            };
            let now = mandate_store::now_unix();
            // Re-issue when half the validity has passed, well before nextUpdate.
            let due = self.inner.published.read().is_ok_and(|m| {
                m.values()
                    .any(|c| now >= c.this_update + (c.next_update - c.this_update) / 2)
            });
            if count != seen {
                // Possibly a revocation by another process (the CLI's kill switch): no OCSP
                // answer may predate it, and agents' live states reload.
                match self.inner.on_count_change.0.get() {
                    Some(hook) => hook(),
                    None => {
                        self.inner.ocsp.invalidate();
                        self.inner.note_pending();
                        self.inner
                            .changes
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
            if count == seen && !due {
                continue;
            }
            match self.publish_all().await {
                Ok(()) => {
                    if count != seen {
                        self.inner.note_published();
                    }
                    seen = count;
                }
                Err(e) => tracing::error!(error = %e, "CRL not published; retrying"),
            }
        }
    }

    fn issuers(&self) -> Vec<Arc<Issuer>> {
        match self.inner.issuers.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Adds the intermediates a key rotation stored and publishes their first CRLs.
    pub async fn reload_issuers(&self) -> Result<(), CaError> {
        let known: Vec<i64> = self.issuers().iter().map(|i| i.id).collect();
        let fresh = load_issuers(&self.inner.store, &known).await?;
        for issuer in &fresh {
            self.publish(issuer).await?;
        }
        if !fresh.is_empty() {
            match self.inner.issuers.write() {
                Ok(mut l) => l.extend(fresh),
                Err(poisoned) => poisoned.into_inner().extend(fresh),
            }
        }
        Ok(())
    }

    async fn publish_all(&self) -> Result<(), CaError> {
        for issuer in self.issuers() {
            self.publish(&issuer).await?;
        }
        Ok(())
    }

    async fn publish(&self, issuer: &Issuer) -> Result<(), CaError> {
        let store = &self.inner.store;
        let entries = store
            .revoked_by_issuer(issuer.id)
            .await?
            .into_iter()
            .map(|r| {
                Ok(RevokedEntry {
                    serial: hex::decode(&r.serial).map_err(|e| {
                        CaError::Internal(format!("stored serial {}: {e}", r.serial))
                    })?,
                    revoked_at: r.revoked_at,
                    reason: r.reason,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let number = store.reserve_crl_number(issuer.id).await?;
        let this_update = mandate_store::now_unix();
        let next_update = this_update + self.inner.validity;
        let number_u64 =
            u64::try_from(number).map_err(|_| CaError::Internal("negative CRL number".into()))?;
        let der = mandate_crl::sign(
            &self.inner.hsm,
            &issuer.crl,
            number_u64,
            this_update,
            next_update,
            &entries,
        )
        .await
        .map_err(|e| CaError::Internal(format!("CRL signing: {e}")))?;
        let sha = hex::encode(sha2::Sha256::digest(&der));
        let stored = StoredCrl {
            number,
            this_update,
            next_update,
            der,
        };
        let crl = if store
            .save_crl(issuer.id, stored.clone(), entries.len(), &sha)
            .await?
        {
            stored
        } else {
            // Another publisher stored a newer one meanwhile: serve that.
            store
                .published_crl(issuer.id)
                .await?
                .ok_or_else(|| CaError::Internal("published CRL vanished".into()))?
        };
        let etag = format!(
            "\"{}-{}\"",
            crl.number,
            hex::encode(&sha2::Sha256::digest(&crl.der)[..8])
        );
        tracing::debug!(issuer = %issuer.ski_hex, number = crl.number, entries = entries.len(), "CRL published");
        if let Ok(mut m) = self.inner.published.write() {
            m.insert(
                issuer.ski_hex.clone(),
                Arc::new(PublishedCrl {
                    der: crl.der.into(),
                    this_update: crl.this_update,
                    next_update: crl.next_update,
                    etag,
                }),
            );
        }
        Ok(())
    }
}

/// The intermediates in the store other than `known`.
async fn load_issuers(store: &Store, known: &[i64]) -> Result<Vec<Arc<Issuer>>, CaError> {
    let mut issuers = Vec::new();
    for row in store.ca_certificates().await? {
        if row.role != CaRole::Intermediate || known.contains(&row.id) {
            continue;
        }
        let kind: KeyKind = row
            .key_kind
            .parse()
            .map_err(|_| CaError::Internal(format!("stored key kind {:?}", row.key_kind)))?;
        let cert = x509_cert::Certificate::from_der(&row.der)?;
        issuers.push(Arc::new(Issuer {
            id: row.id,
            ski_hex: hex::encode(&row.ski),
            crl: CrlIssuer {
                name: cert.tbs_certificate.subject,
                key_identifier: row.ski.clone(),
                key_id: row
                    .key_id
                    .parse()
                    .map_err(|_| CaError::Internal(format!("stored key id {:?}", row.key_id)))?,
                algorithm: kind.default_signature_algorithm(),
            },
        }));
    }
    Ok(issuers)
}

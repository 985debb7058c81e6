//! The only crate of mandate that speaks SQL.
//!
//! SQLite now (one file, WAL), written so PostgreSQL can follow as a second backend: portable SQL,
//! numbered parameters, times as unix seconds. Writes go through one connection owned by a
//! group-commit task (see `writer`): SQLite never has to upgrade a read transaction to a write one
//! (which fails under WAL, whatever the timeout), and one fsync covers every write that queued up
//! meanwhile. Reads use a pool of their own. Every state change writes its audit event in the same
//! transaction.

mod acme;
mod agents;
mod api_keys;
mod audit;
mod audit_checkpoints;
mod audit_tree;
mod behaviour;
mod ca;
mod ca_rotation;
mod certificates;
mod changes;
mod crls;
mod dashboard_sessions;
mod db;
mod decisions;
mod error;
mod key_uses;
mod model;
mod nullable;
mod ocsp_responses;
mod ocsp_signers;
mod overrides;
mod people;
mod revocation;
mod webhooks;
mod writer;

pub use acme::{AcmeAccountRow, AcmeOrderRow, EabRow};
pub use agents::{
    AgentFilter, ApprovalRow, CertificateLimits, Decider, MandateDecision, Retirement,
};
pub use audit::{AuditFields, ChainBreak, ChainCheck, GENESIS_HASH, record_hash};
pub use audit_checkpoints::{AuditSignerRow, CheckpointRow, checkpoint_message, checkpoint_now_ms};
pub use audit_tree::{SALT_LEN, TreeBuilder, content_hash, leaf_data, leaf_hash, spki_digest};
pub use behaviour::{
    AgentCounters, BaselineRow, EventBatch, EventRow, IncidentKind, IncidentRow, IncidentTrigger,
    Ingested, MAX_EVENTS_PER_BATCH, NewEvent, ObservationRow, OrderEventRow, RiskState,
};
pub use ca_rotation::{CaRotation, CrossCertRow, NewCrossCert};
pub use changes::{Change, ChangeListener, Subscriber};
pub use crls::{RevokedRow, StoredCrl};
pub use db::{Backend, PoolStats, Store, missing_sqlite_file, redact_url};
pub use decisions::{DecisionRow, LinkedEvent};
pub use error::StoreError;
pub use key_uses::KeyUse;
pub use model::{
    AgentOverview, AgentRow, AgentStatus, ApiKeyRow, AuditEvent, AuditRow, CaCertRow, CaRole,
    CertStatus, CertificateRow, MandateRow, MandateStatus, NewAgent, NewApiKey, NewCaCert,
    NewCertificate, Role,
};
pub use ocsp_responses::{FeedCursor, OcspDue, PresignedResponse, PresignedSet};
pub use ocsp_signers::OcspSignerRow;
pub use overrides::{MAX_ACTIVE_OVERRIDES, OverrideRow};
pub use people::{KeyHolder, OrganizationRow, PersonRow};
pub use revocation::{KillScope, KillSwitch, KillSwitchRow, Revocation};
pub use webhooks::{
    AttemptOutcome, DeliveryRow, DueDelivery, WEBHOOK_EVENT_TYPES, WebhookBacklog,
    WebhookEventType, WebhookRow,
};

/// The current time in unix seconds, as the store records it.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

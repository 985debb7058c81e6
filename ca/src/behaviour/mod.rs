//! Behaviour: what agents report, the state the pre-trade check reads, the anomaly score and the
//! automatic revocation of an agent that goes rogue.
//!
//! Each agent's live state (approved mandate, certificate status, approved baseline, counters,
//! risk score and the minute buckets of its recent events) is kept in memory, loaded from the
//! store on first use. The counters are written to the store with every ingestion, in the same
//! transaction as the events; the rest is reloaded whenever anything that may change it happens
//! (approval, revocation, issuance, baseline approval: [`Behaviour::changed`]).

mod ingest;
mod learner;
mod live;
mod pretrade;

pub(crate) use ingest::auto_revoke;
pub use ingest::{EventInput, IngestOutcome};
pub use learner::{learn_baseline, start_learner};
pub use live::{Behaviour, OverrideView, RiskView, Touched, UsageView};
pub(crate) use live::{contributions, limit_overrides};
pub use pretrade::When;
pub(crate) use pretrade::{Decided, DecidedReason, EnforcementDoc, ReasonCode};

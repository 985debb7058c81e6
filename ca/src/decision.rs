//! Decision ids: every pre-trade decision (preflight, custodial signing) is named, so that the
//! order it let through, the signature and the fills that follow can refer to it. Decisions
//! are written in batches by a task of their own, off the pre-trade path (which touches no
//! SQL): a preflight hands its decision over and answers (waiting for its batch to be stored
//! would cap preflight at the rate of durable commits: 9,500 decisions/s instead of 40,000 on
//! the bench machine); a signing waits until its decision is stored, so a signed order always
//! names a stored decision. Reading a decision first lets every decision handed over before
//! it be stored, so an answer's decision can be read at once.

use mandate_store::{DecisionRow, Store};
use tokio::sync::{mpsc, oneshot};

use crate::CaError;

/// Decisions waiting to be written, at most; a check waits for room beyond that.
const QUEUE: usize = 65_536;
/// Decisions per write, at most.
const BATCH: usize = 1000;

type Ack = oneshot::Sender<Result<(), String>>;

/// What the writer is handed.
#[derive(Debug)]
enum Job {
    /// A decision to store, and whom to tell once it is.
    Record(DecisionRow, Option<Ack>),
    /// Tell once everything handed over before is stored.
    Flush(Ack),
}

/// The handle preflight and signing record their decisions through; cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Job>,
}

impl DecisionLog {
    /// Starts the writer task over `store`.
    pub fn start(store: Store) -> DecisionLog {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let mut rows = Vec::with_capacity(batch.len());
                let mut acks = Vec::new();
                for job in batch.drain(..) {
                    match job {
                        Job::Record(row, ack) => {
                            rows.push(row);
                            acks.extend(ack);
                        }
                        Job::Flush(ack) => acks.push(ack),
                    }
                }
                let n = rows.len();
                let result = store
                    .insert_decisions(rows)
                    .await
                    .map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, decisions = n, "recording pre-trade decisions failed");
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        DecisionLog { tx }
    }

    /// Hands `row` to the writer and returns at once (preflight); it is stored within one
    /// write of the decisions queued before it.
    pub async fn record(&self, row: DecisionRow) -> Result<(), CaError> {
        self.tx
            .send(Job::Record(row, None))
            .await
            .map_err(|_| CaError::Internal("the decision writer stopped".into()))
    }

    /// Waits until every decision handed over before is stored (or failed to be).
    pub async fn flush(&self) -> Result<(), CaError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Job::Flush(ack))
            .await
            .map_err(|_| CaError::Internal("the decision writer stopped".into()))?;
        done.await
            .map_err(|_| CaError::Internal("the decision writer stopped".into()))?
            .map_err(|e| CaError::Internal(format!("recording decisions: {e}")))
    }

    /// Hands `row` to the writer and waits until it is stored, with the decisions that
    /// queued up meanwhile (one write for many): signing.
    pub async fn record_durably(&self, row: DecisionRow) -> Result<(), CaError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Job::Record(row, Some(ack)))
            .await
            .map_err(|_| CaError::Internal("the decision writer stopped".into()))?;
        done.await
            .map_err(|_| CaError::Internal("the decision writer stopped".into()))?
            .map_err(|e| CaError::Internal(format!("recording the decision: {e}")))
    }
}

/// A fresh decision id: `dec_` and 128 random bits in hex.
pub(crate) fn new_id() -> Result<String, CaError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| CaError::Internal(format!("random decision id: {e}")))?;
    Ok(format!("dec_{}", hex::encode(bytes)))
}

/// Whether `s` has the shape of a decision id.
pub(crate) fn is_decision_id(s: &str) -> bool {
    s.strip_prefix("dec_").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

//! Decision ids: every pre-trade decision (preflight, custodial signing) is named, so that the
//! order it let through, the signature and the fills that follow can refer to it. Decisions
//! are written in batches by a task of their own, off the pre-trade path (which touches no
//! SQL): a preflight hands its decision over and answers (waiting for its batch to be stored
//! would cap preflight at the rate of durable commits: 9,500 decisions/s instead of 40,000 on
//! the bench machine), and a write of preflights alone waits [`LINGER`] for more; a signing
//! waits until its decision is stored (at once, with whatever queued meanwhile), so a signed
//! order always names a stored decision. Reading a decision first lets every decision handed
//! over before it be stored, so an answer's decision can be read at once.

use mandate_store::{DecisionRow, Store};
use tokio::sync::{mpsc, oneshot};

use crate::CaError;

/// Decisions waiting to be written, at most; a check waits for room beyond that.
const QUEUE: usize = 65_536;
/// Decisions per write, at most.
const BATCH: usize = 1000;
/// How long a write waits for more decisions when nobody waits on it (preflights only): one
/// commit for every decision of that moment, not one per handful. Without it the writer
/// committed so often that its commits took a third of the CPU of a preflight-only load.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

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
                let waits = |job: &Job| matches!(job, Job::Record(_, Some(_)) | Job::Flush(_));
                if !batch.iter().any(waits) {
                    let until = tokio::time::Instant::now() + LINGER;
                    while batch.len() < BATCH {
                        let from = batch.len();
                        match tokio::time::timeout_at(until, rx.recv_many(&mut batch, BATCH - from))
                            .await
                        {
                            // Someone now waits: write at once.
                            Ok(n) if n > 0 && !batch[from..].iter().any(waits) => {}
                            // Closed, someone waits, or the moment is over.
                            _ => break,
                        }
                    }
                }
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

/// A fresh decision id: `dec_` and 32 hex digits, the first 12 the daemon's clock in unix
/// milliseconds and the other 20 random (80 bits). Ids that grow with time are appended at the
/// end of the decisions table's key index; random ones would land anywhere in an index that
/// soon outgrows the database's page cache, each write touching pages of its own.
pub(crate) fn new_id(now_ms: i64) -> Result<String, CaError> {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes)
        .map_err(|e| CaError::Internal(format!("random decision id: {e}")))?;
    // 48 bits of milliseconds last until the year 10889.
    let ms = u64::try_from(now_ms).unwrap_or(0) & 0xffff_ffff_ffff;
    Ok(format!("dec_{ms:012x}{}", hex::encode(bytes)))
}

/// Whether `s` has the shape of a decision id.
pub(crate) fn is_decision_id(s: &str) -> bool {
    s.strip_prefix("dec_").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

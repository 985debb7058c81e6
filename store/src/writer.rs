//! Group commit: one task owns the writing connection and commits the write jobs that queued up
//! meanwhile in one transaction, each inside its own savepoint. A job's caller hears back only
//! after the COMMIT (so a reply always means "durable"), and a failing job rolls back to its
//! savepoint without touching the others. One fsync then covers many certificates.

use futures_core::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::db::Backend;

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 128;

/// Called once the batch's fate is known: `Ok` after COMMIT, `Err` if the COMMIT failed.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// How a job failed. It has already told its caller.
enum JobFailed {
    /// Refused for a reason of the data (a conflict, a wrong state): the batch goes on.
    Refused,
    /// The database failed under it: the whole batch is rolled back.
    Broken,
}

type RunJob = Box<
    dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<Completion, JobFailed>>
        + Send,
>;

/// How a failing job is kept from leaving part of its writes in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guard {
    /// The job runs inside its own savepoint, rolled back if it fails: for jobs that may be
    /// refused after they wrote something.
    Savepoint,
    /// No savepoint: the job promises that only its first write can be refused (SQLite undoes a
    /// failed statement by itself), so a refusal leaves nothing behind. Any other failure breaks
    /// the whole batch. Saves two round trips per job on the hot path (reserve and complete).
    FirstStatement,
}

/// A write job and how it is guarded.
pub(crate) struct Job {
    guard: Guard,
    run: RunJob,
}

pub(crate) enum Message {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// Handle on the writer task.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Message>,
}

impl Writer {
    pub(crate) fn start(pool: AnyPool, backend: Backend) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(pool, backend, rx));
        Writer { tx }
    }

    /// Runs `f` in the next batch's transaction, guarded by a savepoint, and returns its value
    /// once committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.submit(Guard::Savepoint, f).await
    }

    /// Like [`Writer::write`] for a job that can only be refused by its first statement (see
    /// [`Guard::FirstStatement`]).
    pub(crate) async fn write_first_statement<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.submit(Guard::FirstStatement, f).await
    }

    async fn submit<T, F>(&self, guard: Guard, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T, StoreError>>();
        let run: RunJob = Box::new(move |conn| {
            Box::pin(async move {
                match f(conn).await {
                    Ok(value) => Ok(Box::new(move |committed: Result<(), StoreError>| {
                        let _ = done_tx.send(committed.map(|()| value));
                    }) as Completion),
                    Err(e) => {
                        let failed = if e.is_unavailable() || matches!(e, StoreError::Corrupt(_)) {
                            JobFailed::Broken
                        } else {
                            JobFailed::Refused
                        };
                        let _ = done_tx.send(Err(e));
                        Err(failed)
                    }
                }
            })
        });
        let job = Job { guard, run };
        self.tx
            .send(Message::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Finishes the queued jobs and stops the task.
    pub(crate) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Message>) {
    let mut conn: Option<PoolConnection<Any>> = None;
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        match rx.recv().await {
            Some(Message::Job(job)) => batch.push(job),
            Some(Message::Close(done)) => closing = Some(done),
            None => break,
        }
        while batch.len() < MAX_BATCH && closing.is_none() {
            match rx.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match pool.acquire().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    // Dropping the jobs drops their reply channels: each caller gets `Closed`.
                    tracing::error!(error = %e, "cannot get the database connection for writing");
                    batch.clear();
                    continue;
                }
            },
        };
        if let Err(e) = commit_batch(c, backend, &mut batch).await {
            tracing::error!(error = %e, "write batch failed; reconnecting");
            // The connection may be in an unknown transaction state: drop it, take a fresh one.
            if let Some(c) = conn.take() {
                c.detach();
            }
        }
    }
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Key of the PostgreSQL advisory lock every write batch holds until it commits: the writers of
/// all nodes take turns, as SQLite's one writer does. Serial reservations, CRL numbers and the
/// audit hash chain (each record names the previous one) then never race between nodes, and
/// batches cannot deadlock on each other's row locks.
const PG_WRITE_LOCK: i64 = 0x6d61_6e64_6174_6501; // "mandate" + 1

async fn begin(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    match backend {
        // IMMEDIATE takes SQLite's write lock now rather than at the first write, which would
        // fail under WAL if another process wrote in between.
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
        Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_WRITE_LOCK)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn commit_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &mut Vec<Job>,
) -> Result<(), sqlx::Error> {
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    if let Err(e) = begin(conn, backend).await {
        batch.clear();
        return Err(e);
    }
    let mut broken = false;
    for job in batch.drain(..) {
        if broken {
            // Dropped unrun: its caller's reply channel closes, which it reports as an error.
            continue;
        }
        // PostgreSQL aborts the whole transaction on a failed statement: every job needs its
        // savepoint there.
        let savepoint = job.guard == Guard::Savepoint || backend == Backend::Postgres;
        if savepoint {
            sqlx::query("SAVEPOINT job").execute(&mut *conn).await?;
        }
        match (job.run)(conn).await {
            Ok(done) => {
                if savepoint {
                    sqlx::query("RELEASE job").execute(&mut *conn).await?;
                }
                completions.push(done);
            }
            Err(JobFailed::Refused) if savepoint => {
                sqlx::query("ROLLBACK TO job").execute(&mut *conn).await?;
                sqlx::query("RELEASE job").execute(&mut *conn).await?;
            }
            Err(JobFailed::Refused) => {}
            Err(JobFailed::Broken) => broken = true,
        }
    }
    if broken {
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        for done in completions {
            done(Err(StoreError::CommitFailed(
                "another write in the same transaction failed; nothing was stored".into(),
            )));
        }
        return Ok(());
    }
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => {
            for done in completions {
                done(Ok(()));
            }
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            for done in completions {
                done(Err(StoreError::CommitFailed(e.to_string())));
            }
            Err(e)
        }
    }
}

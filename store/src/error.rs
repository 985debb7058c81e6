/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or failed the statement; usually temporary.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names a backend this build does not support.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// The data directory for the database file could not be created.
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The row to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The row to create exists already, or a unique value is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The row is not in the state the change requires (e.g. approving an approved mandate).
    #[error("{0}")]
    WrongState(String),
    /// The store was closed (or its writer task stopped) before the write completed.
    #[error("the store is closed")]
    Closed,
    /// The transaction holding this write failed to commit; nothing of it was stored.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// A stored value cannot be read back (an unknown enum string, bad JSON).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the database itself failed (as opposed to a refused change): callers map it to
    /// 503 rather than 4xx.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_)
                | StoreError::Migrate(_)
                | StoreError::Closed
                | StoreError::CommitFailed(_)
        )
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
pub(crate) fn conflict_or(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict(what.into());
    }
    StoreError::Database(e)
}

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
    /// True when the store was closed (the process is stopping).
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            StoreError::Closed | StoreError::Database(sqlx::Error::PoolClosed)
        )
    }

    /// True when the database itself failed (as opposed to a refused change): callers map it to
    /// 503 rather than 4xx.
    /// A statement the database refused for breaking a constraint (unique, foreign key, not
    /// null, check) is not that: the database answered, and a retry would be refused again; it
    /// is a change the daemon should not have tried (500, logged).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                db.kind() == sqlx::error::ErrorKind::Other
            }
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Closed
            | StoreError::CommitFailed(_) => true,
            _ => false,
        }
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

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::StoreError;

    #[tokio::test]
    async fn a_broken_constraint_is_not_an_unavailable_database() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (role TEXT NOT NULL CHECK (role IN ('a')))")
            .execute(&mut conn)
            .await
            .unwrap();
        for (sql, what) in [
            ("INSERT INTO t VALUES ('b')", "check"),
            ("INSERT INTO t VALUES (NULL)", "not null"),
        ] {
            let e = StoreError::Database(sqlx::query(sql).execute(&mut conn).await.unwrap_err());
            assert!(!e.is_unavailable(), "{what}: {e}");
        }
        // A statement the database cannot run at all, and a closed pool, are.
        let e = StoreError::Database(
            sqlx::query("SELECT * FROM missing")
                .execute(&mut conn)
                .await
                .unwrap_err(),
        );
        assert!(e.is_unavailable(), "{e}");
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
    }
}

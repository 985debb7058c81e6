use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;
use crate::writer::Writer;

/// Handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// The group-commit task owning the one writing connection: all writes queue here, in
    /// process, instead of fighting over SQLite's lock.
    pub(crate) writer: Writer,
    write_pool: SqlitePool,
    /// Several connections for reads, which WAL lets run beside the writer.
    pub(crate) reader: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl Store {
    /// Opens (creating if missing) the database at `url` and applies the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, true).await
    }

    /// Opens the database at `url`, which must exist (for processes that only serve what
    /// another one wrote), and applies the migrations.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, false).await
    }

    async fn open_with(url: &str, create: bool) -> Result<Store, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a certificate returned to a client must survive a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if !create && !options.get_filename().exists() {
            return Err(StoreError::NotFound(format!(
                "database {}",
                options.get_filename().display()
            )));
        }
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&write_pool).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = Store {
            writer: Writer::start(write_pool.clone()),
            write_pool,
            reader,
        };
        let sealed = store.seal_legacy_audit().await?;
        if sealed > 0 {
            tracing::info!(
                records = sealed,
                "sealed earlier audit records into the hash chain"
            );
        }
        Ok(store)
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Commits the queued writes, then closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.write_pool.close().await;
        self.reader.close().await;
    }
}

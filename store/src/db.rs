use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Executor};

use crate::StoreError;
use crate::writer::Writer;

/// Which database the store speaks to. SQL is shared; the few places that differ ask this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file (WAL): one node, plus CLI and stand-alone responders on the same machine.
    Sqlite,
    /// PostgreSQL: several nodes and responders on one database.
    Postgres,
}

/// `(p, p, ...)`: `count` parameters numbered from `first` (`?` on SQLite, which numbers them
/// by position, `$n` on PostgreSQL), for an `IN` list after `first - 1` other parameters.
pub(crate) fn param_list(backend: Backend, first: usize, count: usize) -> String {
    let marks: Vec<String> = (first..first + count)
        .map(|n| match backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        })
        .collect();
    format!("({})", marks.join(", "))
}

/// One parameter numbered `n` (`?` on SQLite, `$n` on PostgreSQL).
pub(crate) fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// The rows of a multi-row INSERT's VALUES: `rows` groups of `cols` placeholders. SQLite gets
/// `(?, ?), (?, ?)`: sqlx binds a numbered parameter (`$7`) by asking SQLite its name, a
/// lookup that walks the statement's list of names, so numbered parameters cost time growing
/// with the square of their number (a third of the daemon's CPU time at 4,800 parameters per
/// statement, docs/BENCHMARKS.md); anonymous ones are bound in order. PostgreSQL, which has no
/// `?`, gets `($1, $2), ($3, $4)`.
pub(crate) fn values_rows(backend: Backend, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..cols {
            if col > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * cols + col + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// The file of a SQLite `url` when it does not exist (nothing for PostgreSQL, whose database
/// is checked on connecting): lets a command that must not create a database refuse before it
/// touches anything else.
pub fn missing_sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    (!file.exists()).then(|| file.to_path_buf())
}

/// The URL without its password, for errors and logs.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host/... -> scheme://user:***@host/...
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// The group-commit task owning the one writing connection: all writes of this process
    /// queue here instead of fighting over the database's locks.
    pub(crate) writer: Writer,
    write_pool: AnyPool,
    /// Several connections for reads, which run beside the writer.
    pub(crate) reader: AnyPool,
    backend: Backend,
    /// The URL (PostgreSQL: for LISTEN connections).
    url: String,
    /// Who hears of this process's commits (see [`Store::subscribe`]).
    pub(crate) subscribers: crate::changes::Subscribers,
}

/// One connection pool's state (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `writer` or `reader`.
    pub pool: &'static str,
    /// Connections open now.
    pub open: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Most connections the pool opens.
    pub max: u32,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a PostgreSQL connection before it fails (503): while the
/// database is down, requests fail fast instead of queueing.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

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
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let (write_pool, reader) = match backend {
            Backend::Sqlite => open_sqlite(url, create).await?,
            Backend::Postgres => open_postgres(url).await?,
        };
        let store = Store {
            writer: Writer::start(write_pool.clone(), backend),
            write_pool,
            reader,
            backend,
            url: url.to_owned(),
            subscribers: Default::default(),
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

    /// The database this store speaks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// The connection pools' state: `(pool, open connections, idle connections, maximum)`,
    /// for the `writer` and the `reader` pool.
    pub fn pool_stats(&self) -> [PoolStats; 2] {
        let of = |name: &'static str, p: &AnyPool| PoolStats {
            pool: name,
            open: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        };
        [of("writer", &self.write_pool), of("reader", &self.reader)]
    }

    /// Commits the queued writes, then closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.write_pool.close().await;
        self.reader.close().await;
    }
}

async fn open_sqlite(url: &str, create: bool) -> Result<(AnyPool, AnyPool), StoreError> {
    let options = SqliteConnectOptions::from_str(url)?;
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
    let mut any_url = url.to_owned();
    if create && !any_url.contains("mode=") {
        any_url.push(if any_url.contains('?') { '&' } else { '?' });
        any_url.push_str("mode=rwc");
    }
    let any = AnyConnectOptions::from_str(&any_url)?;
    let pool = |max: u32| {
        AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets reads run beside the writer; FULL: a certificate returned to a
                    // client must survive a power cut, not only a crash.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            })
    };
    let write_pool = pool(1).connect_with(any.clone()).await?;
    SQLITE_MIGRATOR.run(&write_pool).await?;
    let reader = pool(4).connect_with(any).await?;
    Ok((write_pool, reader))
}

async fn open_postgres(url: &str) -> Result<(AnyPool, AnyPool), StoreError> {
    let any = AnyConnectOptions::from_str(url)?;
    let write_pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_with(any.clone())
        .await?;
    // The migrator holds an advisory lock: nodes starting together migrate once.
    POSTGRES_MIGRATOR.run(&write_pool).await?;
    let reader = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_with(any)
        .await?;
    Ok((write_pool, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn backends_are_chosen_by_scheme() {
        assert_eq!(Backend::of_url("sqlite://a").ok(), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgresql://h/d").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::of_url("mysql://h/d").is_err());
    }
}

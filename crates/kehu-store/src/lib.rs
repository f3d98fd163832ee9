//! kehu's store: one interface over two backends — embedded SQLite (the default: a file
//! under the data directory, WAL mode) and PostgreSQL. The SQL is shared where the two
//! dialects agree; bulk loading differs (multi-row VALUES on SQLite, UNNEST arrays on
//! PostgreSQL). Domain rules live in `kehu-domain`; this crate only stores and fetches.

mod api_tokens;
pub mod audit;
pub mod behaviour;
pub mod billing;
mod checkpoint;
mod billing_view;
pub mod load;
pub mod models;
mod read;
mod rows;
mod sqlite_bulk;
pub mod testing;
mod web;

pub use load::{Load, LoadRecord, Skip, SkipReason};
pub use models::{ModelInfo, NewModel};
pub use read::*;
pub use web::*;
pub use api_tokens::{api_token_digest, ApiToken};
pub use billing_view::AccountView;
pub use audit::{AuditAction, AuditEntry, AuditQuery};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database URL {url:?} is not supported: use sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB")]
    UnsupportedUrl { url: String },
    #[error("migrating the database schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A request the stored data refuses (a name taken, an unknown segment…).
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is not valid: table {table}, column {column}, value {value:?}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        value: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    url: String,
    /// SQLite: where the bulk-filled customer timeline of events stands (behaviour.rs).
    pub(crate) timeline: std::sync::Arc<behaviour::TimelineMark>,
    /// SQLite: the thread that copies the write-ahead log back (checkpoint.rs).
    checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
}

/// Runs the same body for whichever backend the store has; `$pool` is bound to the pool.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Write transactions take SQLite's write lock when they begin (`BEGIN IMMEDIATE`). A
/// deferred transaction that reads before it writes cannot upgrade once another connection
/// has committed after its first read (SQLITE_BUSY_SNAPSHOT, which no busy timeout cures);
/// taking the lock first makes it wait its turn instead. PostgreSQL begins as usual.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> std::result::Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> std::result::Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Open options that are not part of the URL.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// SQLite page cache per connection, in KiB.
    pub sqlite_cache_kib: u32,
    /// SQLite: the write-ahead log is copied back into the database file once it holds
    /// this many pages (4 KiB each). A commit is durable once it is in the log, whatever
    /// this is; a larger log is copied back less often, and a page written by many commits
    /// in between (an index leaf) is copied once. SQLite's own default is 1,000.
    pub sqlite_wal_checkpoint_pages: u32,
    /// SQLite: the customer timeline of events is filled in bulk once this many events
    /// have arrived after it (docs/behaviour.md, "Event log"). A customer's timeline reads
    /// at most this many not yet filled events by a range scan of the log.
    pub sqlite_timeline_batch_events: u32,
    pub connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            sqlite_cache_kib: 65_536,
            sqlite_wal_checkpoint_pages: 10_000,
            sqlite_timeline_batch_events: 50_000,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// The SQLite URL of the default database file in a data directory.
    pub fn sqlite_url_for_dir(dir: &Path) -> String {
        format!("sqlite://{}", dir.join("kehu.db").display())
    }

    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &str, opts: &StoreOptions) -> Result<Store> {
        let shown = redact_url(url);
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let mut checkpointer = None;
        let backend = if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            if let Some(parent) = Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                    url: shown.clone(),
                    reason: format!("cannot create directory {}: {e}", parent.display()),
                })?;
            }
            let co = SqliteConnectOptions::from_str(url).map_err(connect_err)?;
            let file = co.get_filename();
            let on_disk = !file.as_os_str().is_empty()
                && file != Path::new(":memory:")
                && !file.to_string_lossy().starts_with("file:");
            checkpointer = on_disk
                .then(|| checkpoint::Checkpointer::start(file, opts.sqlite_wal_checkpoint_pages))
                .flatten()
                .map(std::sync::Arc::new);
            let hook = checkpointer.as_ref().map(|c| c.hook_arg());
            let co = co
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .pragma("cache_size", format!("-{}", opts.sqlite_cache_kib))
                // After a checkpoint the write-ahead log file is cut back to 64 MiB (a large
                // transaction can grow it far beyond the checkpoint size).
                .pragma("journal_size_limit", "67108864")
                // Helper threads for the sorter: index builds after a bulk load use both cores.
                .pragma("threads", "2")
                .pragma("wal_autocheckpoint", opts.sqlite_wal_checkpoint_pages.to_string())
                // Index builds after a bulk load take seconds by design: only flag the
                // truly slow.
                .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(60));
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(60))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if let Some(arg) = hook {
                            let mut h = conn.lock_handle().await?;
                            // SAFETY: the connection is locked for this call; `arg` is the
                            // checkpointer's (leaked, so always valid).
                            unsafe { checkpoint::install_hook(h.as_raw_handle().as_ptr(), arg) };
                        }
                        Ok(())
                    })
                })
                .connect_with(co)
                .await
                .map_err(connect_err)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            build_pending_indexes(&mut *pool.acquire().await?).await?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let co = PgConnectOptions::from_str(url)
                .map_err(connect_err)?
                .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(60));
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.connect_timeout)
                .connect_with(co)
                .await
                .map_err(connect_err)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: shown });
        };
        Ok(Store {
            backend,
            url: shown,
            timeline: std::sync::Arc::new(behaviour::TimelineMark::new(opts.sqlite_timeline_batch_events)),
            checkpointer,
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The URL with any password hidden, for logs and messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    /// SQLite: how many times the store's checkpoint thread has copied the write-ahead log
    /// back into the database file (`None` on PostgreSQL or without the thread).
    pub fn sqlite_checkpoints(&self) -> Option<u64> {
        self.checkpointer.as_ref().map(|c| c.done())
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}

/// Builds the indexes a bulk load dropped and has not yet rebuilt (SQLite), in one
/// transaction that also clears their record.
pub(crate) async fn build_pending_indexes(conn: &mut sqlx::SqliteConnection) -> Result<()> {
    let pending: Vec<(String, String)> =
        sqlx::query_as("SELECT name, ddl FROM pending_indexes ORDER BY name")
            .fetch_all(&mut *conn)
            .await?;
    if pending.is_empty() {
        return Ok(());
    }
    // SQLite's sorter builds an index fastest in small sorted runs merged afterwards; a
    // large page cache makes it sort one huge run instead (measured 0.55 s against 1.2 s
    // for a million names). So the cache is small while the indexes are built.
    let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("PRAGMA cache_size = -2000")
        .execute(&mut *conn)
        .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let built = async {
        for (name, ddl) in &pending {
            let exists: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1",
            )
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
            if exists == 0 {
                sqlx::query(ddl).execute(&mut *conn).await?;
            }
            sqlx::query("DELETE FROM pending_indexes WHERE name = $1")
                .bind(name)
                .execute(&mut *conn)
                .await?;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    let result = match built {
        Ok(()) => sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(StoreError::from),
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    };
    sqlx::query(&format!("PRAGMA cache_size = {cache}"))
        .execute(&mut *conn)
        .await?;
    result
}

/// Hides the password in a database URL: `postgres://kehu:***@db:5432/kehu`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            super::redact_url("postgres://kehu:s3cret@db:5432/kehu"),
            "postgres://kehu:***@db:5432/kehu"
        );
        assert_eq!(
            super::redact_url("postgres://db/kehu"),
            "postgres://db/kehu"
        );
        assert_eq!(
            super::redact_url("sqlite:///tmp/k.db"),
            "sqlite:///tmp/k.db"
        );
    }
}

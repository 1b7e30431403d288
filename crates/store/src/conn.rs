//! Connections, pools, migrations and transactions.
//!
//! SQLite gets two pools: a writer pool of exactly one connection, used for every
//! transaction (so a transaction that reads then writes can never fail with
//! `SQLITE_BUSY` on lock upgrade), and a read-only reader pool of several
//! connections, which WAL mode lets run alongside the writer. PostgreSQL uses one
//! pool for both.

use crate::{Dialect, Result, StoreError};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Connections in the SQLite reader pool.
const SQLITE_READERS: u32 = 4;
/// Connections in the PostgreSQL pool.
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long SQLite waits for a lock before failing with `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// The migrations, one list per engine, embedded at compile time. A new migration
/// is a new file in both `migrations/sqlite` and `migrations/postgres` plus one
/// line in each list below (versions must match the file names' prefixes).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "provisioning",
        include_str!("../migrations/sqlite/0002_provisioning.sql"),
    ),
    (
        3,
        "metering",
        include_str!("../migrations/sqlite/0003_metering.sql"),
    ),
    (
        5,
        "sources",
        include_str!("../migrations/sqlite/0005_sources.sql"),
    ),
    (
        9,
        "footprint",
        include_str!("../migrations/sqlite/0009_footprint.sql"),
    ),
    (
        11,
        "outbox_leases",
        include_str!("../migrations/sqlite/0011_outbox_leases.sql"),
    ),
    (
        12,
        "values",
        include_str!("../migrations/sqlite/0012_values.sql"),
    ),
    (
        13,
        "sealed_period_keys",
        include_str!("../migrations/sqlite/0013_sealed_period_keys.sql"),
    ),
    (
        14,
        "console",
        include_str!("../migrations/sqlite/0014_console.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "provisioning",
        include_str!("../migrations/postgres/0002_provisioning.sql"),
    ),
    (
        3,
        "metering",
        include_str!("../migrations/postgres/0003_metering.sql"),
    ),
    (
        5,
        "sources",
        include_str!("../migrations/postgres/0005_sources.sql"),
    ),
    (
        9,
        "footprint",
        include_str!("../migrations/postgres/0009_footprint.sql"),
    ),
    (
        11,
        "outbox_leases",
        include_str!("../migrations/postgres/0011_outbox_leases.sql"),
    ),
    (
        12,
        "values",
        include_str!("../migrations/postgres/0012_values.sql"),
    ),
    (
        13,
        "sealed_period_keys",
        include_str!("../migrations/postgres/0013_sealed_period_keys.sql"),
    ),
    (
        14,
        "console",
        include_str!("../migrations/postgres/0014_console.sql"),
    ),
];

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = list
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Runs a clean-up action when the last [`Store`] clone holding it goes away:
/// deleting a temporary SQLite file, dropping a test database.
pub(crate) struct DropGuard(Option<Box<dyn FnOnce() + Send + Sync>>);

impl DropGuard {
    pub(crate) fn new(f: impl FnOnce() + Send + Sync + 'static) -> DropGuard {
        DropGuard(Some(Box::new(f)))
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl std::fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DropGuard")
    }
}

/// Deletes a SQLite database file and its companions.
fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.to_owned().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// A handle to the database. Cheap to clone; clones share the pools.
#[derive(Debug, Clone)]
pub struct Store {
    dialect: Dialect,
    /// Runs transactions (SQLite: one connection).
    writer: AnyPool,
    /// Runs single reads outside transactions (PostgreSQL: the same pool).
    reader: AnyPool,
    /// Declared last: runs after the pools are dropped.
    _guard: Option<Arc<DropGuard>>,
}

/// A transaction. Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub struct Tx {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) dialect: Dialect,
}

impl Store {
    /// Connects to `sqlite://path` (created if missing), `sqlite::memory:` (a
    /// private temporary file deleted when the last clone of the store is
    /// dropped, so that readers and the writer see the same database) or
    /// `postgres://...`. Does not run migrations: see [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            return Ok(Store {
                dialect: Dialect::Postgres,
                writer: pool.clone(),
                reader: pool,
                _guard: None,
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Db(sqlx::Error::Configuration(
                format!("unsupported database URL scheme (want sqlite: or postgres:): {url}")
                    .into(),
            )));
        }
        let (url, temp) = if url == "sqlite::memory:" || url.contains("mode=memory") {
            let path = std::env::temp_dir()
                .join(format!("liaison-mem-{}.db", uuid::Uuid::new_v4().simple()));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let guard = DropGuard::new(move || remove_sqlite_files(&path));
            (url, Some(Arc::new(guard)))
        } else if url.contains("mode=") {
            (url.to_owned(), None)
        } else if url.contains('?') {
            (format!("{url}&mode=rwc"), None)
        } else {
            (format!("{url}?mode=rwc"), None)
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlite_pragmas(conn, false).await?;
                    conn.execute("PRAGMA analysis_limit = 1000").await?;
                    conn.execute("PRAGMA optimize = 0x10002").await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        // The writer's first connection has switched the file to WAL before any
        // reader opens it.
        let reader = AnyPoolOptions::new()
            .max_connections(SQLITE_READERS)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlite_pragmas(conn, true).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            dialect: Dialect::Sqlite,
            writer,
            reader,
            _guard: temp,
        })
    }

    /// The engine behind this store.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies the pending migrations of this engine.
    pub async fn migrate(&self) -> Result<()> {
        let m = match self.dialect {
            Dialect::Sqlite => migrator(SQLITE_MIGRATIONS),
            Dialect::Postgres => migrator(POSTGRES_MIGRATIONS),
        };
        m.run(&self.writer).await?;
        self.run_backfills().await
    }

    /// Completes the jobs the SQL migrations left in `store_backfills`: derived
    /// columns and rows that need Rust (Unicode lower-casing) to compute.
    async fn run_backfills(&self) -> Result<()> {
        let pending: Vec<String> = sqlx::query_scalar("SELECT name FROM store_backfills")
            .fetch_all(&self.writer)
            .await?;
        for name in pending {
            let mut tx = self.begin().await?;
            match name.as_str() {
                "derived_values" => tx.rederive_all_resources().await?,
                other => {
                    return Err(StoreError::Db(sqlx::Error::Configuration(
                        format!("unknown store backfill {other:?} (a newer version's?)").into(),
                    )))
                }
            }
            sqlx::query("DELETE FROM store_backfills WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx.tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Refreshes the query planner's statistics where they are stale (SQLite:
    /// `PRAGMA optimize`, bounded by `analysis_limit`; PostgreSQL: nothing,
    /// autovacuum does it). Runs when the writer connection opens; a long-running
    /// server should also call it now and then (e.g. hourly) as the data grows.
    pub async fn optimize(&self) -> Result<()> {
        if self.dialect == Dialect::Sqlite {
            let mut conn = self.writer.acquire().await?;
            conn.execute("PRAGMA analysis_limit = 1000").await?;
            conn.execute("PRAGMA optimize").await?;
        }
        Ok(())
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Starts a transaction. On SQLite transactions are serialised (one writer
    /// connection): a task holding a [`Tx`] must not wait for a second one (it
    /// would wait for itself until the pool's acquire timeout). Reads through
    /// [`Store`] methods keep running meanwhile and see the last committed state,
    /// not the open transaction's writes.
    pub async fn begin(&self) -> Result<Tx> {
        let tx = match self.dialect {
            // IMMEDIATE takes the write lock up front, so another process writing
            // the same file (the CLI next to the server) makes this wait for the
            // busy timeout instead of failing on lock upgrade mid-transaction.
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.writer.begin().await?,
        };
        Ok(Tx {
            tx,
            dialect: self.dialect,
        })
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Attaches an action run when the last clone of this store is dropped
    /// (replacing any previous one, which runs now).
    #[cfg(feature = "testing")]
    pub(crate) fn with_guard(mut self, guard: DropGuard) -> Store {
        self._guard = Some(Arc::new(guard));
        self
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// The pool transactions run on, for statements that must run outside one
    /// (`VACUUM`, checkpoints).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls the transaction back (dropping it does the same).
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// The engine behind this transaction.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

async fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    read_only: bool,
) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // Deleted rows are overwritten with zeros, so that a closed period's keyed
    // hashes do not linger in free pages of the file (docs/PRIVACY.md).
    conn.execute("PRAGMA secure_delete = ON").await?;
    conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str())
        .await?;
    if read_only {
        conn.execute("PRAGMA query_only = ON").await?;
    }
    Ok(())
}

/// Microseconds since the Unix epoch, the stored form of every timestamp.
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The inverse of [`to_micros`].
pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

/// A decoding error for a stored value the store cannot interpret.
pub(crate) fn decode_error(msg: impl Into<String>) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(msg.into().into()))
}

/// Maps unique violations of either engine to [`StoreError::Conflict`] with the
/// message `what(constraint_text)`, where `constraint_text` is whatever the engine
/// says about the constraint (PostgreSQL: its name; SQLite: its columns).
pub(crate) fn map_unique(e: sqlx::Error, what: impl FnOnce(&str) -> String) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.kind() == sqlx::error::ErrorKind::UniqueViolation {
            let detail = d.constraint().unwrap_or_else(|| d.message()).to_owned();
            return StoreError::Conflict(what(&detail));
        }
    }
    StoreError::Db(e)
}

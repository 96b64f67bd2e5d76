//! [`SqliteStore`]: the embedded default store, one SQLite file in WAL mode.
//!
//! SQLite admits one writer at a time, so the store keeps two pools: a writer pool of
//! exactly one connection, through which every write transaction queues (instead of
//! failing with `SQLITE_BUSY`), and a reader pool for plain reads, which WAL lets run
//! beside the writer.

mod audit;
mod error;
mod events;
mod keys;
mod mfa;
mod micros;
mod outbox;
mod purge;
mod resets;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tessera_app::ports::StoreError;

use error::store_error;

/// What the query modules return; the trait methods map the error once, in `store_error`.
type Db<T> = Result<T, sqlx::Error>;

/// Write transactions take the write lock up front, so a transaction that reads first
/// cannot fail later on lock upgrade.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;

/// The SQLite implementation of every store port.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`: `sqlite://PATH` or `sqlite:PATH`,
    /// a relative PATH being relative to the working directory. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(store_error)?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        create_private(options.get_filename()).map_err(|e| StoreError::Backend(Box::new(e)))?;
        // The writer comes first: it creates the file and switches it to WAL (a lasting
        // property of the file) before any reader opens it.
        // Kept for the life of the pool: the cache's watch compares what this connection
        // has seen of other processes' commits (`SqliteWatch`).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(
                options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(store_error)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(Self { writer, reader })
    }

    /// Brings the schema up to date with the embedded `migrations/sqlite`, then links
    /// into the audit chains any events written before they existed (see
    /// `audit::link_unchained`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/sqlite")
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        audit::link_unchained(&self.writer)
            .await
            .map(drop)
            .map_err(store_error)
    }

    /// Applies only the migrations numbered below `version`, as an older release would
    /// have left the schema (for tests of what later migrations do to existing rows).
    #[cfg(feature = "testing")]
    pub async fn migrate_before(&self, version: i64) -> Result<(), StoreError> {
        crate::testing::migrations_before(sqlx::migrate!("../../migrations/sqlite"), version)
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// The writer pool, for tests that write rows the way an older release did.
    #[cfg(feature = "testing")]
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// The bus of a server alone on this file: other processes' writes drop its cache
    /// (see [`SqliteWatch`](crate::SqliteWatch)).
    pub fn watch(&self) -> crate::SqliteWatch {
        crate::SqliteWatch::new(self.writer.clone(), crate::WATCH_PERIOD)
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Creates the database file readable by its owner only (it holds password hashes and
/// sealed secrets). SQLite gives its `-wal` and `-shm` files the database file's mode, so
/// they follow. An existing file, or an in-memory database, is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process created it in the meantime: theirs stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl_store_ports!(SqliteStore, read = reader, write = writer);

/// Timestamps are stored as integer microseconds; every integer column reads as 64 bits.
impl crate::rows::Dialect for sqlx::Sqlite {
    type Instant = micros::Micros;
    type Attempts = i64;
}

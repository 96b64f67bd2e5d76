//! [`PgStore`]: the production store. Several `tessera serve` nodes may share one database;
//! every rule that must hold across them (one live session per device, one winner per
//! rotation) is enforced by the database, not by the process.

mod audit;
mod error;
mod events;
mod keys;
mod mfa;
mod outbox;
mod purge;
mod resets;
mod sessions;
pub use sessions::ROTATE_SQL;
mod users;

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tessera_app::ports::StoreError;

use crate::PoolDeadlines;

use error::store_error;

/// What the query modules return; the trait methods map the error once, in `store_error`.
type Db<T> = Result<T, sqlx::Error>;

const MAX_CONNECTIONS: u32 = 10;

/// How long a connection may sit in the pool before it is checked again on its way out.
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// The Postgres implementation of every store port.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) with the default deadlines.
    /// Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PoolDeadlines::default()).await
    }

    /// Connects to `url`, waiting at most `deadlines.connect` for a first connection;
    /// afterwards every query waits at most `deadlines.acquire` for one, so a lost
    /// database answers `StoreError::Unavailable` within seconds instead of hanging.
    /// Does not migrate.
    pub async fn connect_with(url: &str, deadlines: PoolDeadlines) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(deadlines.acquire)
            // sqlx checks every connection with a round trip before lending it out. One
            // handed back a moment ago needs no check, and on a refresh the check was two
            // more scheduler hops and ~25 µs of CPU (docs/performance.md). One idle for
            // longer may have been cut by a restart or a proxy, so it is still checked, and
            // a failed check drops it for a fresh one.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > CHECK_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy(url)
            .map_err(store_error)?;
        first_connection(&pool, deadlines.connect).await?;
        Ok(Self { pool })
    }

    /// Wraps a pool configured by the caller.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Brings the schema up to date with the embedded `migrations/postgres` (an advisory
    /// lock makes concurrent migrations from several nodes safe), then links into the
    /// audit chains any events written before they existed (see `audit::link_unchained`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        audit::link_unchained(&self.pool)
            .await
            .map(drop)
            .map_err(store_error)
    }

    /// Applies only the migrations numbered below `version`, as an older release would
    /// have left the schema (for tests of what later migrations do to existing rows).
    #[cfg(feature = "testing")]
    pub async fn migrate_before(&self, version: i64) -> Result<(), StoreError> {
        crate::testing::migrations_before(sqlx::migrate!("../../migrations/postgres"), version)
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// The pool, for tests that write rows the way an older release did.
    #[cfg(feature = "testing")]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Opens a first connection within `deadline`: a database that refuses connections
/// (still starting, or restarting) is asked again until then; any other refusal (a wrong
/// password, no such database) ends the wait at once.
async fn first_connection(pool: &PgPool, deadline: Duration) -> Result<(), StoreError> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let remaining = until.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(remaining, pool.acquire()).await {
            Ok(Ok(_connection)) => return Ok(()),
            Ok(Err(e)) => store_error(e),
            Err(_) => StoreError::Unavailable(
                format!("no connection within {} s", deadline.as_secs()).into(),
            ),
        };
        if !matches!(error, StoreError::Unavailable(_)) || tokio::time::Instant::now() >= until {
            return Err(error);
        }
        // The pool already backed off inside its acquire; a short pause spares the log.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl_store_ports!(PgStore, read = pool, write = pool);

/// `timestamptz` decodes as it is; the outbox's `attempts` is an `integer` (32 bits).
impl crate::rows::Dialect for sqlx::Postgres {
    type Instant = time::OffsetDateTime;
    type Attempts = i32;
}

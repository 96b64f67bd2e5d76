//! The deadlines that make a lost database fail fast, and which driver errors mean
//! "unreachable" rather than "wrong" (for both stores).

use std::time::Duration;

/// How long the PostgreSQL store waits for its database (`TESSERA_DATABASE_*`,
/// docs/configuration.md). SQLite has none: its file is always there, and queueing behind
/// its one writer is its normal way of working, bounded by the request timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDeadlines {
    /// At start: how long `connect` keeps trying to open a first connection (a database
    /// still starting up is waited for this long), then gives up.
    pub connect: Duration,
    /// Per query: the most a request waits for a connection, opening one included.
    /// sqlx retries a refused connection until this runs out, so it is also how long a
    /// request waits before answering 503 while the database is down.
    pub acquire: Duration,
}

impl Default for PoolDeadlines {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            acquire: Duration::from_secs(3),
        }
    }
}

/// The errors that say the database could not be reached in time, whatever the backend:
/// the same call may succeed once it is back. As `StoreError::Unavailable` says, nothing
/// was decided unless the connection was lost during the commit itself.
pub(crate) fn is_unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
}

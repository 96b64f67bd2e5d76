//! Tessera's adapters: the concrete implementations of the ports in `tessera_app::ports`.
//!
//! - `sqlite`: [`SqliteStore`], the embedded default (one file, WAL, one writer).
//! - `postgres`: [`PgStore`], the production store (several nodes may share it).
//! - `delegate`: the port traits implemented once over both backends' query modules.
//! - `rows`: the row types both stores read, generic over the dialect, and their decoding
//!   into domain records.
//! - `chain`: the audit chain's appends and retention's prefix rule, shared by both.
//! - `retention`: a purge run's order and report, and its event budget across chains.
//! - `clock`: [`SystemClock`], the only place that reads the system time.
//! - `notify`: the notification channels (SMTP, signed webhook, log) the outbox worker
//!   delivers through.
//! - `limiter`: the rate limiters, [`MemoryLimiter`] (in process, the embedded default)
//!   and [`RedisLimiter`] (shared by every node; decides in process while Redis is down).
//! - `revocation`: the revocation buses, [`RedisBus`] (pub/sub between nodes) and
//!   [`LocalBus`] (one process only).
//! - `pool`: [`PoolDeadlines`], how long both stores wait for their database, and which
//!   driver errors mean it is unreachable.
//! - `tls`: [`install_tls_provider`], ring as the process's one rustls provider.
//! - `testing` (feature `testing`): throw-away test databases and the skip-or-fail rule.
//!
//! Each store, and each limiter, passes its one conformance suite in
//! `tessera_app::testkit` (`tests/conformance/`). Migrations live in
//! `migrations/{sqlite,postgres}` at the workspace root and are embedded at compile time.

mod chain;
mod clock;
#[macro_use]
mod delegate;
mod limiter;
pub mod notify;
mod pool;
mod postgres;
mod retention;
mod revocation;
mod rows;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

pub use clock::SystemClock;
pub use limiter::{MemoryLimiter, RedisLimiter, RedisLimiterError};
pub use pool::PoolDeadlines;
pub use postgres::{PgStore, ROTATE_SQL};
pub use revocation::{LocalBus, RedisBus, RedisBusError, SqliteWatch, WATCH_PERIOD};
pub use sqlite::SqliteStore;
pub use tls::install_tls_provider;

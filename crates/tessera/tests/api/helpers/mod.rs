//! What the HTTP tests share, one file per topic; everything but `notify` is re-exported
//! here, so a test imports from `crate::helpers`.
//!
//! - `app`: [`TestApp`], a real server on port 0 over a fresh database, with typed
//!   request helpers, and the [`Options`] it starts with.
//! - `db`: [`Db`], the server's database read and written straight; the one place that
//!   tells SQLite from Postgres.
//! - `checks`: assertions on answers ([`assert_problem`], [`assert_cut_off`]).
//! - `forms`: [`FormClient`], the web pages over plain HTTP as a browser without script.
//! - `totp`: codes from `oathtool`, enrolment, the login's second step, a surely wrong
//!   code.
//! - `notify`: servers notifying a test's own SMTP sink or webhook; outbox waits.
//! - `metrics`, `net`: Prometheus values; clients from other loopback addresses.
//! - `redis`: the shared Redis (or the loud skip), key prefixes, a private `redis-server`.
//! - `macros`: `both_backends!` (with optional [`Options`]) and `both_stores!`.

mod app;
mod checks;
mod db;
mod forms;
mod macros;
mod metrics;
mod net;
pub mod notify;
mod redis;
mod totp;

pub use app::*;
pub use checks::*;
pub use db::*;
pub use forms::*;
pub use metrics::*;
pub use net::*;
pub use redis::*;
pub use totp::*;

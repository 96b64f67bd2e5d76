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
//! - `browser`: [`Browser`], headless Chromium over WebDriver; `web`: the pages in it.
//! - `process`: `tessera serve` as a child process; `edge`: HTTP limits, raw connections.
//! - `redis`: the shared Redis (or the loud skip), key prefixes, a private `redis-server`.
//! - `use_cases`: an app over a bare store (no server), and a limiter that interleaves.
//! - `macros`: `both_backends!` (with optional [`Options`]) and `both_stores!`.

mod app;
mod browser;
mod checks;
mod db;
pub mod edge;
mod forms;
mod macros;
mod metrics;
mod net;
pub mod notify;
pub mod process;
mod redis;
mod totp;
pub mod use_cases;
pub mod web;

pub use app::*;
pub use browser::*;
pub use checks::*;
pub use db::*;
pub use forms::*;
pub use metrics::*;
pub use net::*;
pub use redis::*;
pub use totp::*;

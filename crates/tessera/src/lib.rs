//! The `tessera` binary's library half, so integration tests drive the same startup.
//!
//! - `cli`: the command line. `config` (with `config/` by topic): settings from
//!   defaults, file and environment, and the use cases' `Settings` from them.
//! - `master_key`: loading or creating the key that seals secrets at rest.
//! - `retention`: the background purge and `tessera admin purge`.
//! - `audit`: `tessera admin verify-audit`.
//! - `startup`: adapters from configuration, the one application builder, binding,
//!   graceful shutdown.
//! - `admin`: `tessera admin …`, the operator commands.
//! - `edge`: the serve loop that bounds every client (deadlines, connection cap).
//! - `telemetry`: logging.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod edge;
pub mod master_key;
pub mod retention;
pub mod startup;
pub mod telemetry;

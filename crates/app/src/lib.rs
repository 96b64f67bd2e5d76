//! Tessera's use cases. They reach storage, time, notifications and (later) rate
//! limiting only through the traits in `ports`; `tessera-adapters` implements them.
//!
//! - `ports`: the traits and the records that cross them.
//! - `error`: `AppError`, the one error the HTTP edge maps to problem details.
//! - `keys`: the signing key ring (sealed at rest, reloaded when another node adds a key).
//! - `auth`: registration, login, refresh rotation, logout, bearer authentication,
//!   password change.
//! - `testkit` (feature): the conformance suites and a manual clock.

pub mod ports;

#[cfg(feature = "testkit")]
pub mod testkit;

mod app;
pub mod error;
pub mod keys;
mod limits;
mod login;
mod refresh;
mod sessions;

pub use app::{App, Limits, RequestContext, Settings, Tokens};
pub use error::AppError;
pub use login::{LoginInput, LoginOutcome};
pub use sessions::{Me, Principal};

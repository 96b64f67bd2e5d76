//! Tessera's use cases. They reach storage, time, notifications and (later) rate
//! limiting only through the traits in `ports`; `tessera-adapters` implements them.
//!
//! - `ports`: the traits and the records that cross them.
//! - `error`: `AppError`, the one error the HTTP edge maps to problem details.
//! - `hashing`: the bounded password-hashing pool (overload is a prompt 503).
//! - `limits`: spending rate-limit budgets (reserve, wait for attempts in flight, settle).
//! - `keys`: the signing key ring (sealed at rest, reloaded when another node adds a key).
//! - `app`: `App`, the context every use case shares, and the steps they share (issuing
//!   tokens, recording events).
//! - `login`: registration and password login; `pacing` evens out the unknown-email
//!   failure; `signin`: the rule every sign-in ends with (password and second step alike).
//! - `refresh`: refresh-token rotation with reuse detection.
//! - `sessions`: bearer authentication, logout, `/v1/me` and password change.
//! - `mfa`: TOTP enrolment, the login second step, step-up, recovery codes.
//! - `authorize`: the step-up policy applied to a session (`/v1/authorize`).
//! - `devices`: the device dashboard (sessions, remote revocation, security events).
//! - `reset`: password reset by an emailed single-use link.
//! - `background`: the work a request leaves running, waited for at shutdown.
//! - `admin`: MFA reset, session revocation and roles, for the API and the CLI.
//! - `liveness`: the per-node cache of sessions and user views that authenticated reads
//!   use, kept true by the revocation bus.
//! - `rekey`: master-key rotation (re-sealing secrets at rest under the current key).
//! - `outbox`: the worker that delivers queued notifications through the channels.
//! - `retention`: purging ended sessions, expired challenges and old events.
//! - `audit`, `audit_verify`: the security events' hash chains and walking them.
//! - `testkit` (feature): the conformance suites and a manual clock.

pub mod ports;

#[cfg(feature = "testkit")]
pub mod testkit;

mod admin;
mod app;
pub mod audit;
pub mod audit_verify;
mod authorize;
pub mod background;
mod devices;
pub mod error;
pub mod hashing;
pub mod keys;
mod limits;
pub mod liveness;
mod login;
mod mfa;
pub mod outbox;
mod pacing;
mod refresh;
mod rekey;
mod reset;
mod retention;
mod sessions;
mod signin;

pub use admin::{AccountChange, Actor, parse_reason};
pub use app::{App, Limits, RequestContext, Settings, Tokens};
pub use devices::{DeviceSession, MAX_EVENTS};
pub use error::AppError;
pub use hashing::HashingSettings;
pub use login::{DeviceTokenInput, LoginInput, LoginOutcome};
pub use mfa::{MfaPending, SecondFactor, SteppedUp, TotpSetup};
pub use outbox::{OutboxSettings, OutboxWorker};
pub use refresh::BROWSER_RETRY_WINDOW;
pub use rekey::RekeyReport;
pub use reset::RESET_TOKEN_TTL;
pub use retention::Retention;
pub use sessions::{MfaSummary, Principal, UserView};

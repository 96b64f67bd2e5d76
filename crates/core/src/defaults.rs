//! The built-in defaults that more than one layer reads: the binary's configuration (and
//! so docs/configuration.md, which a test in `tessera::config` holds to the code), the
//! use cases' `Settings`, and the core's own rate-limit and step-up policies. Each is
//! written here once; the others refer to it.
//!
//! Defaults with a single reader live on the type they configure instead: session
//! lifetimes (`session::Lifetimes`), the rate-limit budgets (`ratelimit::Policy`), and, in
//! the crates above, the hashing pool, the outbox, retention and the database deadlines.

use time::Duration;

/// Where `serve` listens; the default token issuer is `http://` followed by it.
pub const LISTEN: &str = "127.0.0.1:8080";
/// The `aud` claim of access tokens.
pub const AUDIENCE: &str = "tessera";
pub const ACCESS_TOKEN_TTL: Duration = Duration::seconds(900);
/// Zero: strict rotation, a refresh token is good once.
pub const REFRESH_RETRY_WINDOW: Duration = Duration::ZERO;
/// How long a node may answer from its session-liveness cache.
pub const SESSION_CACHE_TTL: Duration = Duration::seconds(60);
/// The window every login budget shares (per address, per account, per known device, and
/// password checks from a session): one setting moves them all.
pub const LOGIN_WINDOW: Duration = Duration::minutes(10);
/// The window both password-reset budgets share.
pub const RESET_WINDOW: Duration = Duration::hours(1);
/// How recent an MFA the default step-up rules, and the admin API's floor, ask for.
pub const STEP_UP_MAX_AGE: Duration = Duration::seconds(300);

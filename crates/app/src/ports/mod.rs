//! The traits use cases talk to the world through. Each has two implementations in
//! `tessera-adapters` (the embedded default and the production backend) that pass one
//! conformance suite (`crate::testkit`).
//!
//! Traits use native `async fn` (returning `Send` futures) so adapters need no boxing;
//! the application is generic over its store.
//!
//! Store verbs say what they do: `get_*` (an `Option`), `list_*`, `insert_*`, `swap_*` (a
//! compare-and-swap or a guarded update that answers whether it won), `replace_*` (an
//! unconditional overwrite), `record_*` (sets a fact on a live row), `revoke_*`, `purge_*`.

mod audit;
mod channel;
mod limiter;
mod mfa;
mod outbox;
mod records;
mod reset;
mod retention;
mod revocation;

pub use audit::*;
pub use channel::*;
pub use limiter::*;
pub use mfa::*;
pub use outbox::*;
pub use records::*;
pub use reset::*;
pub use retention::*;
pub use revocation::*;

use std::future::Future;

use tessera_core::Email;
use tessera_core::ids::{KeyId, Role, SessionId, UserId};
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use tessera_core::session::RevokeReason;
use time::OffsetDateTime;

/// The time source. Production reads the system clock; tests advance a manual one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The one error every store method returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write; the string names what clashed (e.g. `"email"`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The backend could not be reached in time (no connection within the pool's
    /// deadline, connection refused or lost, the server shutting down). The call did not
    /// happen, unless the connection was lost during its commit (each store call is one
    /// transaction, so it is never half-done); the same call may succeed once the
    /// backend is back.
    #[error("storage backend unreachable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The backend failed (constraint we did not expect, bad row, anything else).
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub trait UserStore: Send + Sync {
    /// Fails with `Conflict("email")` when the normalised address is taken.
    fn insert_user(&self, user: &NewUser) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_user(&self, id: UserId) -> impl Future<Output = StoreResult<Option<UserRecord>>> + Send;
    /// Looks up by the normalised (lower-cased) address.
    fn get_user_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = StoreResult<Option<UserRecord>>> + Send;
    /// Replaces the password hash only if it is still `expected`; false when another
    /// change got there first.
    fn swap_password_hash(
        &self,
        id: UserId,
        expected: &PasswordHash,
        new: &PasswordHash,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Disables the account at `disabled_at` (`Some`) if it is enabled, or enables it
    /// (`None`) if it is disabled; true when this call changed it. A second disable keeps
    /// the first one's time, so the record says when the account was locked.
    fn swap_user_disabled(
        &self,
        id: UserId,
        disabled_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The user's roles, sorted by name.
    fn list_roles(&self, id: UserId) -> impl Future<Output = StoreResult<Vec<Role>>> + Send;
    /// Replaces the user's set of roles.
    fn replace_roles(
        &self,
        id: UserId,
        roles: &[Role],
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Adds one role to the user's set in one statement, leaving the others as they are;
    /// idempotent. Concurrent grants of different roles all survive (a read of the set
    /// followed by `replace_roles` would lose all but one).
    fn insert_role(&self, id: UserId, role: &Role) -> impl Future<Output = StoreResult<()>> + Send;
}

pub trait SessionStore: Send + Sync {
    /// Atomically: revokes (reason `superseded`) the live session the user already has on
    /// `device_id`, inserts the new session, and records its first refresh token
    /// (generation 0) in the rotation history. At most one live session per user and
    /// device exists at any time, even under concurrent logins.
    fn insert_session(
        &self,
        session: &NewSession,
    ) -> impl Future<Output = StoreResult<InsertedSession>> + Send;
    fn get_session(
        &self,
        id: SessionId,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send;
    /// Finds a token in the rotation history, current or already rotated, with its session.
    fn get_refresh(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<RefreshRecord>>> + Send;
    /// The compare-and-swap of rotation: succeeds only if `swap.presented` is still the
    /// session's current token and the session is not revoked. On success the presented
    /// token is marked used (at `now`, successor recorded), the successor becomes current
    /// (generation + 1), and last-seen, idle expiry, IP and user agent are updated. In the
    /// same transaction every older sealed successor of the session is cleared (the
    /// presented token's predecessor can never be replayed once the presented token
    /// rotates), and so are up to `EXPIRED_SEALS_PER_ROTATION` sealed successors of any
    /// session rotated before `swap.seals_expire_before`.
    fn swap_refresh(
        &self,
        swap: &RefreshSwap,
    ) -> impl Future<Output = StoreResult<SwapOutcome>> + Send;
    /// The common case of a refresh in one round trip: if `rotation.presented` is the
    /// current token of a session that is neither revoked nor expired at `now`, does what
    /// [`swap_refresh`](Self::swap_refresh) does (with the idle deadline capped by the
    /// absolute expiry) and returns the session as it is after the rotation. `None` means
    /// nothing was written: the token is unknown, already rotated, or its session is not
    /// live (or another rotation won); the caller reads and judges it (the slow path).
    fn rotate_current(
        &self,
        rotation: &CurrentRotation,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send;
    /// Revokes one session; false when it was already revoked (or does not exist).
    fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Revokes every unrevoked session of the user except `keep`; returns the ids revoked.
    fn revoke_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<SessionId>>> + Send;
    /// The user's sessions that are neither revoked nor expired at `now`, most recently
    /// seen first.
    fn list_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<SessionRecord>>> + Send;
}

pub trait EventStore: Send + Sync {
    /// In one transaction: links the event into its user's audit chain (under the chain
    /// head's lock, so concurrent events of one user never fork it), inserts it, and
    /// writes the notice's outbox rows, one per channel (see `OutboxStore`).
    fn insert_event(
        &self,
        event: &SecurityEvent,
        notice: Option<&Notice>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The user's events, newest first, at most `limit`.
    fn list_events(
        &self,
        user: UserId,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<SecurityEvent>>> + Send;
}

pub trait KeyStore: Send + Sync {
    /// Idempotent on `kid`.
    fn insert_signing_key(
        &self,
        key: &StoredSigningKey,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Every signing key, newest first.
    fn list_signing_keys(&self) -> impl Future<Output = StoreResult<Vec<StoredSigningKey>>> + Send;
    /// Replaces the sealed seed of key `kid` only if it still is `expected` (master-key
    /// rotation re-seals it); false when the key is unknown or another write got there
    /// first. The public key and creation time are untouched.
    fn swap_sealed_seed(
        &self,
        kid: &KeyId,
        expected: &[u8],
        new: &[u8],
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// Everything the application needs from storage, as one bound.
pub trait Store:
    UserStore
    + SessionStore
    + EventStore
    + KeyStore
    + MfaStore
    + RetentionStore
    + OutboxStore
    + ResetStore
    + AuditStore
    + Clone
    + Send
    + Sync
    + 'static
{
    /// A cheap round trip, for readiness checks.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
}

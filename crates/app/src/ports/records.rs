//! Plain records that cross the store ports.

use std::net::IpAddr;

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{DeviceId, DeviceName, EventId, KeyId, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use tessera_core::session::SessionState;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub password_hash: PasswordHash,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub password_hash: PasswordHash,
    pub created_at: OffsetDateTime,
    /// When an operator disabled the account (`None`: it is enabled). A disabled account
    /// signs in with no password and gets no reset link.
    pub disabled_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub device_name: Option<DeviceName>,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
    pub created_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub assurance: Assurance,
    pub auth_time: OffsetDateTime,
    pub mfa_verified_at: Option<OffsetDateTime>,
    /// The first refresh token (generation 0).
    pub refresh_hash: TokenHash,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertedSession {
    /// The live session on the same device that this one replaced.
    pub superseded: Option<SessionId>,
    /// True when the user had some session (live or not) on this device before.
    pub known_device: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub state: SessionState,
    pub device_id: DeviceId,
    pub device_name: Option<DeviceName>,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub assurance: Assurance,
    pub auth_time: OffsetDateTime,
    pub mfa_verified_at: Option<OffsetDateTime>,
    /// Generation of the session's current refresh token (0 after login).
    pub refresh_generation: i64,
}

/// A token found in the rotation history.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub session: SessionRecord,
    pub generation: i64,
    /// When it was exchanged for its successor; `None` while it is the current token.
    pub rotated_at: Option<OffsetDateTime>,
    /// Its successor is the session's current token (so has never been used).
    pub successor_is_current: bool,
    /// The successor sealed under this token (`tessera_core::crypto::seal_successor`),
    /// kept only when a retry window is configured.
    pub sealed_successor: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct RefreshSwap {
    pub session_id: SessionId,
    pub presented: TokenHash,
    pub successor: TokenHash,
    pub sealed_successor: Option<Vec<u8>>,
    /// Sealed successors of tokens rotated before this instant (now minus the retry
    /// window) can no longer be replayed, so the rotation clears them (a bounded batch,
    /// any session's): kept, they would let a database dump plus an old token walk the
    /// chain to the live one.
    pub seals_expire_before: OffsetDateTime,
    pub now: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// A rotation tried on the fast path, before anything is read: it applies only if
/// `presented` is the current token of a session live at `now` (what
/// `rotation::decide` would rotate), and then does all that [`RefreshSwap`] does.
#[derive(Debug, Clone)]
pub struct CurrentRotation {
    pub presented: TokenHash,
    pub successor: TokenHash,
    pub sealed_successor: Option<Vec<u8>>,
    /// As in [`RefreshSwap::seals_expire_before`].
    pub seals_expire_before: OffsetDateTime,
    pub now: OffsetDateTime,
    /// `now` plus the idle lifetime: the session's new idle deadline is the earlier of
    /// this and its absolute expiry (the store knows the latter, the caller does not yet).
    pub idle_deadline_cap: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOutcome {
    Won,
    /// Another rotation (or a revocation) got there first.
    Lost,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub id: EventId,
    pub user_id: UserId,
    pub kind: EventKind,
    pub at: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub session_id: Option<SessionId>,
    /// A small JSON object (reason, device, actor); never a secret.
    pub detail: serde_json::Value,
}

/// A signing key as stored: the public half in clear, the seed sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: KeyId,
    pub public_key: [u8; 32],
    pub sealed_seed: Vec<u8>,
    pub created_at: OffsetDateTime,
}

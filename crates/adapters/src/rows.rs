//! The row types both stores read, and their decoding into domain records. A row is
//! generic over its [`Dialect`], which says how that backend's columns decode (only
//! timestamps and one counter differ), so each row and its conversion exist once.

use std::net::IpAddr;

use sqlx::FromRow;
use sqlx::types::Json;
use tessera_app::audit::ChainHash;
use tessera_app::ports::{
    ChainBounds, ChainedEvent, Delivery, MfaChallenge, MfaRecord, PendingReset, RefreshRecord,
    SealedOutboxSecret, SealedTotp, SecurityEvent, SessionRecord, StoredSigningKey, UserRecord,
};
use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{
    DeviceId, DeviceName, EventId, KeyId, NotificationId, Role, SessionId, UserId,
};
use tessera_core::jwt::Assurance;
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use tessera_core::session::{RevokeReason, SessionState};
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored value that the domain refuses (written by something else, or corrupted).
#[derive(Debug, thiserror::Error)]
#[error("stored row has an invalid {0}")]
pub(crate) struct CorruptRow(pub &'static str);

impl From<CorruptRow> for sqlx::Error {
    fn from(e: CorruptRow) -> Self {
        sqlx::Error::Decode(Box::new(e))
    }
}

/// How a backend's columns decode where the dialects differ: timestamps (Postgres
/// `timestamptz`, SQLite integer microseconds) and the outbox's attempts counter (Postgres
/// `integer`, SQLite's one integer type).
pub(crate) trait Dialect: sqlx::Database {
    type Instant: Into<OffsetDateTime>;
    type Attempts: Into<i64>;
}

/// A nullable timestamp column, decoded.
pub(crate) fn instant<I: Into<OffsetDateTime>>(column: Option<I>) -> Option<OffsetDateTime> {
    column.map(Into::into)
}

/// A `user_totp` row's sealed secrets.
#[derive(FromRow)]
pub(crate) struct SealedTotpRow {
    user_id: Uuid,
    sealed_secret: Option<Vec<u8>>,
    pending_sealed: Option<Vec<u8>>,
}

impl SealedTotpRow {
    pub(crate) fn record(self) -> SealedTotp {
        SealedTotp {
            user_id: UserId::from_uuid(self.user_id),
            sealed_secret: self.sealed_secret,
            pending_sealed: self.pending_sealed,
        }
    }
}

/// A `notification_outbox` row's sealed secret.
#[derive(FromRow)]
pub(crate) struct SealedOutboxRow {
    id: Uuid,
    channel: String,
    sealed_secret: Vec<u8>,
}

impl SealedOutboxRow {
    pub(crate) fn record(self) -> SealedOutboxSecret {
        SealedOutboxSecret {
            id: NotificationId::from_uuid(self.id),
            channel: self.channel,
            sealed_secret: self.sealed_secret,
        }
    }
}

/// An `audit_chains` row.
#[derive(FromRow)]
pub(crate) struct ChainRow {
    user_id: Uuid,
    checkpoint_index: i64,
    checkpoint_hash: Vec<u8>,
    purged: i64,
    head_index: i64,
    head_hash: Vec<u8>,
}

/// The `audit_chains` columns in the order of [`ChainRow`].
macro_rules! chain_columns {
    () => {
        "user_id, checkpoint_index, checkpoint_hash, purged, head_index, head_hash"
    };
}
pub(crate) use chain_columns;

impl ChainRow {
    pub(crate) fn record(self) -> Result<ChainBounds, CorruptRow> {
        Ok(ChainBounds {
            user_id: UserId::from_uuid(self.user_id),
            checkpoint_index: self.checkpoint_index,
            checkpoint_hash: chain_hash(&self.checkpoint_hash, "checkpoint_hash")?,
            purged: u64::try_from(self.purged).map_err(|_| CorruptRow("purged"))?,
            head_index: self.head_index,
            head_hash: chain_hash(&self.head_hash, "head_hash")?,
        })
    }
}

/// A user with their password hash, as [`UserRow`] reads it, filtered by `$where`.
macro_rules! select_user {
    ($where:literal) => {
        concat!(
            "SELECT u.id, u.email, p.hash, u.created_at, u.disabled_at \
             FROM users u JOIN password_credentials p ON p.user_id = u.id ",
            $where
        )
    };
}
pub(crate) use select_user;

/// A `users` row with its `password_credentials` hash.
#[derive(FromRow)]
pub(crate) struct UserRow<D: Dialect> {
    id: Uuid,
    email: String,
    hash: String,
    created_at: D::Instant,
    disabled_at: Option<D::Instant>,
}

impl<D: Dialect> UserRow<D> {
    pub(crate) fn record(self) -> UserRecord {
        UserRecord {
            id: UserId::from_uuid(self.id),
            email: Email::from_stored(self.email),
            password_hash: PasswordHash::from_stored(self.hash),
            created_at: self.created_at.into(),
            disabled_at: instant(self.disabled_at),
        }
    }
}

/// A `signing_keys` row.
#[derive(FromRow)]
pub(crate) struct KeyRow<D: Dialect> {
    kid: String,
    public_key: Vec<u8>,
    sealed_seed: Vec<u8>,
    created_at: D::Instant,
}

impl<D: Dialect> KeyRow<D> {
    pub(crate) fn record(self) -> Result<StoredSigningKey, CorruptRow> {
        Ok(StoredSigningKey {
            kid: KeyId::from_stored(self.kid),
            public_key: public_key(&self.public_key)?,
            sealed_seed: self.sealed_seed,
            created_at: self.created_at.into(),
        })
    }
}

/// The `security_events` columns of [`EventRow`].
macro_rules! event_columns {
    () => {
        "id, user_id, kind, at, ip, user_agent, session_id, detail"
    };
}
pub(crate) use event_columns;

/// A `security_events` row, without its chain columns.
#[derive(FromRow)]
pub(crate) struct EventRow<D: Dialect> {
    id: Uuid,
    user_id: Uuid,
    kind: String,
    at: D::Instant,
    ip: Option<String>,
    user_agent: Option<String>,
    session_id: Option<Uuid>,
    detail: Json<serde_json::Value>,
}

impl<D: Dialect> EventRow<D> {
    pub(crate) fn record(self) -> Result<SecurityEvent, CorruptRow> {
        Ok(SecurityEvent {
            id: EventId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            kind: event_kind(&self.kind)?,
            at: self.at.into(),
            ip: ip(self.ip)?,
            user_agent: self.user_agent,
            session_id: self.session_id.map(SessionId::from_uuid),
            detail: self.detail.0,
        })
    }
}

/// An event with its chain columns (`chain_index, prev_hash, hash` after the event's).
#[derive(FromRow)]
pub(crate) struct ChainedEventRow<D: Dialect> {
    #[sqlx(flatten)]
    event: EventRow<D>,
    chain_index: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl<D: Dialect> ChainedEventRow<D> {
    pub(crate) fn record(self) -> Result<ChainedEvent, CorruptRow> {
        Ok(ChainedEvent {
            event: self.event.record()?,
            index: self.chain_index,
            prev_hash: chain_hash(&self.prev_hash, "prev_hash")?,
            hash: chain_hash(&self.hash, "hash")?,
        })
    }
}

pub(crate) fn chain_hash(raw: &[u8], column: &'static str) -> Result<ChainHash, CorruptRow> {
    ChainHash::from_stored(raw).ok_or(CorruptRow(column))
}

/// The `notification_outbox` columns a claim returns, in the order of [`DeliveryRow`].
macro_rules! delivery_columns {
    () => {
        "id, channel, event_id, user_id, email, kind, at, session_id, ip, user_agent, detail, \
         sealed_secret, attempts"
    };
}
pub(crate) use delivery_columns;

/// A claimed `notification_outbox` row.
#[derive(FromRow)]
pub(crate) struct DeliveryRow<D: Dialect> {
    id: Uuid,
    channel: String,
    event_id: Uuid,
    user_id: Uuid,
    email: String,
    kind: String,
    at: D::Instant,
    session_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Json<serde_json::Value>,
    sealed_secret: Option<Vec<u8>>,
    attempts: D::Attempts,
}

impl<D: Dialect> DeliveryRow<D> {
    pub(crate) fn record(self) -> Result<Delivery, CorruptRow> {
        Ok(Delivery {
            id: NotificationId::from_uuid(self.id),
            channel: self.channel,
            event_id: EventId::from_uuid(self.event_id),
            user_id: UserId::from_uuid(self.user_id),
            email: Email::from_stored(self.email),
            kind: event_kind(&self.kind)?,
            at: self.at.into(),
            session_id: self.session_id.map(SessionId::from_uuid),
            ip: ip(self.ip)?,
            user_agent: self.user_agent,
            detail: self.detail.0,
            sealed_secret: self.sealed_secret,
            attempts: u32::try_from(self.attempts.into()).map_err(|_| CorruptRow("attempts"))?,
        })
    }
}

/// A deleted `password_resets` row, as `take_reset_token` answers it: an expired one is
/// gone all the same, but gives nothing.
pub(crate) fn taken_reset(
    user: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<PendingReset> {
    (expires_at > now).then(|| PendingReset {
        user_id: UserId::from_uuid(user),
        created_at,
        expires_at,
    })
}

/// The `sessions` columns every session query selects (table alias `s`), in the order of
/// [`SessionRow`].
macro_rules! session_columns {
    () => {
        "s.id, s.user_id, s.device_id, s.device_name, s.user_agent, s.ip, s.created_at, \
         s.last_seen_at, s.idle_expires_at, s.absolute_expires_at, s.revoked_at, \
         s.revoked_reason, s.acr, s.auth_time, s.mfa_verified_at, s.current_refresh_hash, \
         s.refresh_generation"
    };
}
pub(crate) use session_columns;

/// A `sessions` row.
#[derive(FromRow)]
pub(crate) struct SessionRow<D: Dialect> {
    id: Uuid,
    user_id: Uuid,
    device_id: String,
    device_name: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: D::Instant,
    last_seen_at: D::Instant,
    idle_expires_at: D::Instant,
    absolute_expires_at: D::Instant,
    revoked_at: Option<D::Instant>,
    revoked_reason: Option<String>,
    acr: String,
    auth_time: D::Instant,
    mfa_verified_at: Option<D::Instant>,
    current_refresh_hash: Vec<u8>,
    refresh_generation: i64,
}

impl<D: Dialect> SessionRow<D> {
    pub(crate) fn record(self) -> Result<SessionRecord, CorruptRow> {
        let revoked = match (self.revoked_at, self.revoked_reason) {
            (None, _) => None,
            (Some(at), Some(reason)) => Some((at.into(), revoke_reason(&reason)?)),
            (Some(_), None) => return Err(CorruptRow("revoked_reason")),
        };
        Ok(SessionRecord {
            state: SessionState {
                id: SessionId::from_uuid(self.id),
                user_id: UserId::from_uuid(self.user_id),
                idle_expires_at: self.idle_expires_at.into(),
                absolute_expires_at: self.absolute_expires_at.into(),
                revoked,
            },
            device_id: device_id(&self.device_id)?,
            device_name: device_name(self.device_name)?,
            user_agent: self.user_agent,
            ip: ip(self.ip)?,
            created_at: self.created_at.into(),
            last_seen_at: self.last_seen_at.into(),
            assurance: Assurance::parse_acr(&self.acr).ok_or(CorruptRow("acr"))?,
            auth_time: self.auth_time.into(),
            mfa_verified_at: instant(self.mfa_verified_at),
            refresh_generation: self.refresh_generation,
        })
    }
}

/// One `refresh_tokens` row's rotation history, after its session's columns.
#[derive(FromRow)]
pub(crate) struct RefreshRow<D: Dialect> {
    #[sqlx(flatten)]
    session: SessionRow<D>,
    generation: i64,
    used_at: Option<D::Instant>,
    successor_hash: Option<Vec<u8>>,
    sealed_successor: Option<Vec<u8>>,
}

impl<D: Dialect> RefreshRow<D> {
    pub(crate) fn record(self) -> Result<RefreshRecord, CorruptRow> {
        let successor_is_current =
            self.successor_hash.as_deref() == Some(self.session.current_refresh_hash.as_slice());
        Ok(RefreshRecord {
            session: self.session.record()?,
            generation: self.generation,
            rotated_at: instant(self.used_at),
            successor_is_current,
            sealed_successor: self.sealed_successor,
        })
    }
}

/// The `user_totp` columns `get_mfa` selects (table alias `t`), in the order of
/// [`MfaRow`], ending with the count of unused recovery codes.
macro_rules! mfa_columns {
    () => {
        "t.user_id, t.sealed_secret, t.enabled_at, t.pending_sealed, t.pending_created_at, \
         t.last_step, (SELECT COUNT(*) FROM recovery_codes r \
         WHERE r.user_id = t.user_id AND r.used_at IS NULL) AS recovery_codes_remaining"
    };
}
pub(crate) use mfa_columns;

/// The `mfa_challenges` columns every challenge query selects, in the order of
/// [`ChallengeRow`].
macro_rules! challenge_columns {
    () => {
        "token_hash, user_id, device_id, device_name, user_agent, ip, created_at, expires_at, \
         password_hash"
    };
}
pub(crate) use challenge_columns;

/// A `user_totp` row, with the count of the user's unused recovery codes.
#[derive(FromRow)]
pub(crate) struct MfaRow<D: Dialect> {
    user_id: Uuid,
    sealed_secret: Option<Vec<u8>>,
    enabled_at: Option<D::Instant>,
    pending_sealed: Option<Vec<u8>>,
    pending_created_at: Option<D::Instant>,
    last_step: Option<i64>,
    recovery_codes_remaining: i64,
}

impl<D: Dialect> MfaRow<D> {
    pub(crate) fn record(self) -> Result<MfaRecord, CorruptRow> {
        Ok(MfaRecord {
            user_id: UserId::from_uuid(self.user_id),
            sealed_secret: self.sealed_secret,
            enabled_at: instant(self.enabled_at),
            pending_sealed: self.pending_sealed,
            pending_created_at: instant(self.pending_created_at),
            last_step: self.last_step,
            recovery_codes_remaining: u32::try_from(self.recovery_codes_remaining)
                .map_err(|_| CorruptRow("recovery code count"))?,
        })
    }
}

/// An `mfa_challenges` row.
#[derive(FromRow)]
pub(crate) struct ChallengeRow<D: Dialect> {
    token_hash: Vec<u8>,
    user_id: Uuid,
    device_id: String,
    device_name: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: D::Instant,
    expires_at: D::Instant,
    password_hash: String,
}

impl<D: Dialect> ChallengeRow<D> {
    pub(crate) fn record(self) -> Result<MfaChallenge, CorruptRow> {
        Ok(MfaChallenge {
            token_hash: TokenHash::from_stored(&self.token_hash).ok_or(CorruptRow("token_hash"))?,
            user_id: UserId::from_uuid(self.user_id),
            device_id: device_id(&self.device_id)?,
            device_name: device_name(self.device_name)?,
            user_agent: self.user_agent,
            ip: ip(self.ip)?,
            created_at: self.created_at.into(),
            expires_at: self.expires_at.into(),
            password_hash: PasswordHash::from_stored(self.password_hash),
        })
    }
}

pub(crate) fn revoke_reason(raw: &str) -> Result<RevokeReason, CorruptRow> {
    RevokeReason::parse(raw).ok_or(CorruptRow("revoked_reason"))
}

pub(crate) fn device_id(raw: &str) -> Result<DeviceId, CorruptRow> {
    DeviceId::parse(raw).map_err(|_| CorruptRow("device_id"))
}

pub(crate) fn device_name(raw: Option<String>) -> Result<Option<DeviceName>, CorruptRow> {
    // Names stored before the current rule are shown without what it forbids.
    Ok(raw.map(|n| DeviceName::from_stored(&n)))
}

pub(crate) fn ip(raw: Option<String>) -> Result<Option<IpAddr>, CorruptRow> {
    raw.map(|s| s.parse().map_err(|_| CorruptRow("ip")))
        .transpose()
}

pub(crate) fn ip_text(ip: Option<IpAddr>) -> Option<String> {
    ip.map(|ip| ip.to_string())
}

pub(crate) fn role(raw: &str) -> Result<Role, CorruptRow> {
    Role::parse(raw).map_err(|_| CorruptRow("role"))
}

pub(crate) fn event_kind(raw: &str) -> Result<EventKind, CorruptRow> {
    EventKind::parse(raw).ok_or(CorruptRow("event kind"))
}

pub(crate) fn public_key(raw: &[u8]) -> Result<[u8; 32], CorruptRow> {
    <[u8; 32]>::try_from(raw).map_err(|_| CorruptRow("public_key"))
}

//! Backend-neutral decoding of stored columns into domain records. Each dialect reads its
//! own row types and hands the plain columns here, so both stores rebuild records the
//! same way.

use std::net::IpAddr;

use tessera_app::audit::ChainHash;
use tessera_app::ports::{
    ChainBounds, ChainedEvent, Delivery, MfaChallenge, MfaRecord, PendingReset, RefreshRecord,
    SealedTotp, SecurityEvent, SessionRecord,
};
use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{DeviceId, DeviceName, EventId, NotificationId, Role, SessionId, UserId};
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

/// A `user_totp` row's sealed secrets (no timestamps, so one row type serves both dialects).
#[derive(sqlx::FromRow)]
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

/// An `audit_chains` row (no timestamps, so one row type serves both dialects).
#[derive(sqlx::FromRow)]
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

/// The chain columns of a `security_events` row, read after the event columns.
pub(crate) struct ChainColumns {
    pub chain_index: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl ChainColumns {
    pub(crate) fn into_record(self, event: SecurityEvent) -> Result<ChainedEvent, CorruptRow> {
        Ok(ChainedEvent {
            event,
            index: self.chain_index,
            prev_hash: chain_hash(&self.prev_hash, "prev_hash")?,
            hash: chain_hash(&self.hash, "hash")?,
        })
    }
}

pub(crate) fn chain_hash(raw: &[u8], column: &'static str) -> Result<ChainHash, CorruptRow> {
    ChainHash::from_stored(raw).ok_or(CorruptRow(column))
}

/// The `notification_outbox` columns a claim returns, in the order of the dialects'
/// delivery row structs.
macro_rules! delivery_columns {
    () => {
        "id, channel, event_id, user_id, email, kind, at, session_id, ip, user_agent, detail, \
         sealed_secret, attempts"
    };
}
pub(crate) use delivery_columns;

/// The columns of a claimed `notification_outbox` row, with timestamps already decoded.
pub(crate) struct DeliveryColumns {
    pub id: Uuid,
    pub channel: String,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub kind: String,
    pub at: OffsetDateTime,
    pub session_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
    pub sealed_secret: Option<Vec<u8>>,
    pub attempts: i64,
}

impl DeliveryColumns {
    pub(crate) fn into_record(self) -> Result<Delivery, CorruptRow> {
        Ok(Delivery {
            id: NotificationId::from_uuid(self.id),
            channel: self.channel,
            event_id: EventId::from_uuid(self.event_id),
            user_id: UserId::from_uuid(self.user_id),
            email: Email::from_stored(self.email),
            kind: event_kind(&self.kind)?,
            at: self.at,
            session_id: self.session_id.map(SessionId::from_uuid),
            ip: ip(self.ip)?,
            user_agent: self.user_agent,
            detail: self.detail,
            sealed_secret: self.sealed_secret,
            attempts: u32::try_from(self.attempts).map_err(|_| CorruptRow("attempts"))?,
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
/// the dialects' session row structs.
macro_rules! session_columns {
    () => {
        "s.id, s.user_id, s.device_id, s.device_name, s.user_agent, s.ip, s.created_at, \
         s.last_seen_at, s.idle_expires_at, s.absolute_expires_at, s.revoked_at, \
         s.revoked_reason, s.acr, s.auth_time, s.mfa_verified_at, s.current_refresh_hash, \
         s.refresh_generation"
    };
}
pub(crate) use session_columns;

/// The columns of a `sessions` row, with timestamps already decoded.
pub(crate) struct SessionColumns {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_id: String,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_reason: Option<String>,
    pub acr: String,
    pub auth_time: OffsetDateTime,
    pub mfa_verified_at: Option<OffsetDateTime>,
    pub current_refresh_hash: Vec<u8>,
    pub refresh_generation: i64,
}

impl SessionColumns {
    pub(crate) fn into_record(self) -> Result<SessionRecord, CorruptRow> {
        let revoked = match (self.revoked_at, self.revoked_reason) {
            (None, _) => None,
            (Some(at), Some(reason)) => Some((at, revoke_reason(&reason)?)),
            (Some(_), None) => return Err(CorruptRow("revoked_reason")),
        };
        Ok(SessionRecord {
            state: SessionState {
                id: SessionId::from_uuid(self.id),
                user_id: UserId::from_uuid(self.user_id),
                idle_expires_at: self.idle_expires_at,
                absolute_expires_at: self.absolute_expires_at,
                revoked,
            },
            device_id: device_id(&self.device_id)?,
            device_name: device_name(self.device_name)?,
            user_agent: self.user_agent,
            ip: ip(self.ip)?,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            assurance: Assurance::parse_acr(&self.acr).ok_or(CorruptRow("acr"))?,
            auth_time: self.auth_time,
            mfa_verified_at: self.mfa_verified_at,
            refresh_generation: self.refresh_generation,
        })
    }
}

/// The rotation-history columns of one `refresh_tokens` row, with its session.
pub(crate) struct RefreshColumns {
    pub session: SessionColumns,
    pub generation: i64,
    pub used_at: Option<OffsetDateTime>,
    pub successor_hash: Option<Vec<u8>>,
    pub sealed_successor: Option<Vec<u8>>,
}

impl RefreshColumns {
    pub(crate) fn into_record(self) -> Result<RefreshRecord, CorruptRow> {
        let successor_is_current =
            self.successor_hash.as_deref() == Some(self.session.current_refresh_hash.as_slice());
        Ok(RefreshRecord {
            session: self.session.into_record()?,
            generation: self.generation,
            rotated_at: self.used_at,
            successor_is_current,
            sealed_successor: self.sealed_successor,
        })
    }
}

/// The `user_totp` columns `get_mfa` selects (table alias `t`), in the order of the
/// dialects' MFA row structs, ending with the count of unused recovery codes.
macro_rules! mfa_columns {
    () => {
        "t.user_id, t.sealed_secret, t.enabled_at, t.pending_sealed, t.pending_created_at, \
         t.last_step, (SELECT COUNT(*) FROM recovery_codes r \
         WHERE r.user_id = t.user_id AND r.used_at IS NULL) AS recovery_codes_remaining"
    };
}
pub(crate) use mfa_columns;

/// The `mfa_challenges` columns every challenge query selects, in the order of the
/// dialects' challenge row structs.
macro_rules! challenge_columns {
    () => {
        "token_hash, user_id, device_id, device_name, user_agent, ip, created_at, expires_at, \
         password_hash"
    };
}
pub(crate) use challenge_columns;

/// The columns of a `user_totp` row, with the count of the user's unused recovery codes.
pub(crate) struct MfaColumns {
    pub user_id: Uuid,
    pub sealed_secret: Option<Vec<u8>>,
    pub enabled_at: Option<OffsetDateTime>,
    pub pending_sealed: Option<Vec<u8>>,
    pub pending_created_at: Option<OffsetDateTime>,
    pub last_step: Option<i64>,
    pub recovery_codes_remaining: i64,
}

impl MfaColumns {
    pub(crate) fn into_record(self) -> Result<MfaRecord, CorruptRow> {
        Ok(MfaRecord {
            user_id: UserId::from_uuid(self.user_id),
            sealed_secret: self.sealed_secret,
            enabled_at: self.enabled_at,
            pending_sealed: self.pending_sealed,
            pending_created_at: self.pending_created_at,
            last_step: self.last_step,
            recovery_codes_remaining: u32::try_from(self.recovery_codes_remaining)
                .map_err(|_| CorruptRow("recovery code count"))?,
        })
    }
}

/// The columns of an `mfa_challenges` row, with timestamps already decoded.
pub(crate) struct ChallengeColumns {
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    pub device_id: String,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub password_hash: String,
}

impl ChallengeColumns {
    pub(crate) fn into_record(self) -> Result<MfaChallenge, CorruptRow> {
        Ok(MfaChallenge {
            token_hash: TokenHash::from_stored(&self.token_hash).ok_or(CorruptRow("token_hash"))?,
            user_id: UserId::from_uuid(self.user_id),
            device_id: device_id(&self.device_id)?,
            device_name: device_name(self.device_name)?,
            user_agent: self.user_agent,
            ip: ip(self.ip)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
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

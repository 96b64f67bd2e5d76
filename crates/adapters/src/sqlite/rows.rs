//! SQLite row types (timestamps as [`Micros`]) and their conversion to records.

use sqlx::FromRow;
use sqlx::types::Json;
use tessera_app::ports::{ChainedEvent, Delivery, SecurityEvent, StoredSigningKey, UserRecord};
use tessera_core::Email;
use tessera_core::ids::{EventId, KeyId, SessionId, UserId};
use tessera_core::password::PasswordHash;
use uuid::Uuid;

use super::micros::{Micros, opt};
use crate::rows::{
    self, ChainColumns, ChallengeColumns, CorruptRow, DeliveryColumns, MfaColumns, RefreshColumns,
    SessionColumns,
};

#[derive(FromRow)]
pub(super) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    device_id: String,
    device_name: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: Micros,
    last_seen_at: Micros,
    idle_expires_at: Micros,
    absolute_expires_at: Micros,
    revoked_at: Option<Micros>,
    revoked_reason: Option<String>,
    acr: String,
    auth_time: Micros,
    mfa_verified_at: Option<Micros>,
    current_refresh_hash: Vec<u8>,
    refresh_generation: i64,
}

impl SessionRow {
    pub(super) fn columns(self) -> SessionColumns {
        SessionColumns {
            id: self.id,
            user_id: self.user_id,
            device_id: self.device_id,
            device_name: self.device_name,
            user_agent: self.user_agent,
            ip: self.ip,
            created_at: self.created_at.0,
            last_seen_at: self.last_seen_at.0,
            idle_expires_at: self.idle_expires_at.0,
            absolute_expires_at: self.absolute_expires_at.0,
            revoked_at: opt(self.revoked_at),
            revoked_reason: self.revoked_reason,
            acr: self.acr,
            auth_time: self.auth_time.0,
            mfa_verified_at: opt(self.mfa_verified_at),
            current_refresh_hash: self.current_refresh_hash,
            refresh_generation: self.refresh_generation,
        }
    }
}

#[derive(FromRow)]
pub(super) struct RefreshRow {
    #[sqlx(flatten)]
    session: SessionRow,
    generation: i64,
    used_at: Option<Micros>,
    successor_hash: Option<Vec<u8>>,
    sealed_successor: Option<Vec<u8>>,
}

impl RefreshRow {
    pub(super) fn columns(self) -> RefreshColumns {
        RefreshColumns {
            session: self.session.columns(),
            generation: self.generation,
            used_at: opt(self.used_at),
            successor_hash: self.successor_hash,
            sealed_successor: self.sealed_successor,
        }
    }
}

#[derive(FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    hash: String,
    created_at: Micros,
}

impl UserRow {
    pub(super) fn record(self) -> UserRecord {
        UserRecord {
            id: UserId::from_uuid(self.id),
            email: Email::from_stored(self.email),
            password_hash: PasswordHash::from_stored(self.hash),
            created_at: self.created_at.0,
        }
    }
}

#[derive(FromRow)]
pub(super) struct EventRow {
    id: Uuid,
    user_id: Uuid,
    kind: String,
    at: Micros,
    ip: Option<String>,
    user_agent: Option<String>,
    session_id: Option<Uuid>,
    detail: Json<serde_json::Value>,
}

impl EventRow {
    pub(super) fn record(self) -> Result<SecurityEvent, CorruptRow> {
        Ok(SecurityEvent {
            id: EventId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            kind: rows::event_kind(&self.kind)?,
            at: self.at.0,
            ip: rows::ip(self.ip)?,
            user_agent: self.user_agent,
            session_id: self.session_id.map(SessionId::from_uuid),
            detail: self.detail.0,
        })
    }
}

#[derive(FromRow)]
pub(super) struct KeyRow {
    kid: String,
    public_key: Vec<u8>,
    sealed_seed: Vec<u8>,
    created_at: Micros,
}

impl KeyRow {
    pub(super) fn record(self) -> Result<StoredSigningKey, CorruptRow> {
        Ok(StoredSigningKey {
            kid: KeyId::from_stored(self.kid),
            public_key: rows::public_key(&self.public_key)?,
            sealed_seed: self.sealed_seed,
            created_at: self.created_at.0,
        })
    }
}

#[derive(FromRow)]
pub(super) struct MfaRow {
    user_id: Uuid,
    sealed_secret: Option<Vec<u8>>,
    enabled_at: Option<Micros>,
    pending_sealed: Option<Vec<u8>>,
    pending_created_at: Option<Micros>,
    last_step: Option<i64>,
    recovery_codes_remaining: i64,
}

impl MfaRow {
    pub(super) fn columns(self) -> MfaColumns {
        MfaColumns {
            user_id: self.user_id,
            sealed_secret: self.sealed_secret,
            enabled_at: opt(self.enabled_at),
            pending_sealed: self.pending_sealed,
            pending_created_at: opt(self.pending_created_at),
            last_step: self.last_step,
            recovery_codes_remaining: self.recovery_codes_remaining,
        }
    }
}

#[derive(FromRow)]
pub(super) struct ChallengeRow {
    token_hash: Vec<u8>,
    user_id: Uuid,
    device_id: String,
    device_name: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: Micros,
    expires_at: Micros,
    password_hash: String,
}

impl ChallengeRow {
    pub(super) fn columns(self) -> ChallengeColumns {
        ChallengeColumns {
            token_hash: self.token_hash,
            user_id: self.user_id,
            device_id: self.device_id,
            device_name: self.device_name,
            user_agent: self.user_agent,
            ip: self.ip,
            created_at: self.created_at.0,
            expires_at: self.expires_at.0,
            password_hash: self.password_hash,
        }
    }
}

/// An event with its chain columns (`chain_index, prev_hash, hash` after the event's).
#[derive(FromRow)]
pub(super) struct ChainedEventRow {
    #[sqlx(flatten)]
    event: EventRow,
    chain_index: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl ChainedEventRow {
    pub(super) fn record(self) -> Result<ChainedEvent, CorruptRow> {
        let chain = ChainColumns {
            chain_index: self.chain_index,
            prev_hash: self.prev_hash,
            hash: self.hash,
        };
        chain.into_record(self.event.record()?)
    }
}

#[derive(FromRow)]
pub(super) struct DeliveryRow {
    id: Uuid,
    channel: String,
    event_id: Uuid,
    user_id: Uuid,
    email: String,
    kind: String,
    at: Micros,
    session_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Json<serde_json::Value>,
    sealed_secret: Option<Vec<u8>>,
    attempts: i64,
}

impl DeliveryRow {
    pub(super) fn record(self) -> Result<Delivery, CorruptRow> {
        DeliveryColumns {
            id: self.id,
            channel: self.channel,
            event_id: self.event_id,
            user_id: self.user_id,
            email: self.email,
            kind: self.kind,
            at: self.at.0,
            session_id: self.session_id,
            ip: self.ip,
            user_agent: self.user_agent,
            detail: self.detail.0,
            sealed_secret: self.sealed_secret,
            attempts: self.attempts,
        }
        .into_record()
    }
}

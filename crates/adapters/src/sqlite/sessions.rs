//! Sessions and their refresh-rotation history.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction on the single writer connection, so
//! writers queue rather than interleave: a login's supersede-then-insert and a rotation's
//! compare-and-swap are never split by another writer (in this process, or another one
//! sharing the file, through SQLite's own lock and the busy timeout).

use sqlx::{Sqlite, SqlitePool};
use tessera_app::ports::{
    CurrentRotation, InsertedSession, NewSession, RefreshRecord, RefreshSwap, SessionRecord,
    SwapOutcome,
};
use tessera_core::ids::{SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::secret::TokenHash;
use tessera_core::session::RevokeReason;
use tessera_core::session::rotation::EXPIRED_SEALS_PER_ROTATION;
use time::OffsetDateTime;
use uuid::Uuid;

use super::micros::Micros;
use super::{BEGIN_WRITE, Db};
use crate::rows::{RefreshRow, SessionRow, ip_text, session_columns};

pub(super) async fn insert(pool: &SqlitePool, s: &NewSession) -> Db<InsertedSession> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let known_device: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = ?1 AND device_id = ?2)",
    )
    .bind(s.user_id.as_uuid())
    .bind(s.device_id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let superseded: Option<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4 \
         WHERE user_id = ?1 AND device_id = ?2 AND revoked_at IS NULL RETURNING id",
    )
    .bind(s.user_id.as_uuid())
    .bind(s.device_id.as_str())
    .bind(Micros(s.created_at))
    .bind(RevokeReason::Superseded.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_id, device_name, user_agent, ip, created_at, \
         last_seen_at, idle_expires_at, absolute_expires_at, acr, auth_time, mfa_verified_at, \
         current_refresh_hash, refresh_generation) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0)",
    )
    .bind(s.id.as_uuid())
    .bind(s.user_id.as_uuid())
    .bind(s.device_id.as_str())
    .bind(s.device_name.as_ref().map(|n| n.as_str()))
    .bind(s.user_agent.as_deref())
    .bind(ip_text(s.ip))
    .bind(Micros(s.created_at))
    .bind(Micros(s.idle_expires_at))
    .bind(Micros(s.absolute_expires_at))
    .bind(s.assurance.acr())
    .bind(Micros(s.auth_time))
    .bind(s.mfa_verified_at.map(Micros))
    .bind(&s.refresh_hash.as_bytes()[..])
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
         VALUES (?1, ?2, 0, ?3)",
    )
    .bind(&s.refresh_hash.as_bytes()[..])
    .bind(s.id.as_uuid())
    .bind(Micros(s.created_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(InsertedSession {
        superseded: superseded.map(SessionId::from_uuid),
        known_device,
    })
}

pub(super) async fn get(pool: &SqlitePool, id: SessionId) -> Db<Option<SessionRecord>> {
    let row: Option<SessionRow<Sqlite>> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions s WHERE s.id = ?1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(SessionRow::record).transpose()?)
}

pub(super) async fn get_refresh(pool: &SqlitePool, hash: &TokenHash) -> Db<Option<RefreshRecord>> {
    let row: Option<RefreshRow<Sqlite>> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        ", r.generation, r.used_at, r.successor_hash, r.sealed_successor \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         WHERE r.token_hash = ?1"
    ))
    .bind(&hash.as_bytes()[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.map(RefreshRow::record).transpose()?)
}

pub(super) async fn rotate_current(
    pool: &SqlitePool,
    rotation: &CurrentRotation,
) -> Db<Option<SessionRecord>> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let won: Option<(Uuid, i64)> = sqlx::query_as(
        "UPDATE sessions SET current_refresh_hash = ?2, \
         refresh_generation = refresh_generation + 1, last_seen_at = ?3, \
         idle_expires_at = MIN(?4, absolute_expires_at), ip = ?5, \
         user_agent = COALESCE(?6, user_agent) \
         WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = ?1) \
           AND current_refresh_hash = ?1 AND revoked_at IS NULL \
           AND idle_expires_at > ?3 AND absolute_expires_at > ?3 \
         RETURNING id, refresh_generation",
    )
    .bind(&rotation.presented.as_bytes()[..])
    .bind(&rotation.successor.as_bytes()[..])
    .bind(Micros(rotation.now))
    .bind(Micros(rotation.idle_deadline_cap))
    .bind(ip_text(rotation.ip))
    .bind(rotation.user_agent.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, generation)) = won else {
        tx.rollback().await?;
        return Ok(None);
    };
    let history = History {
        session_id: id,
        presented: &rotation.presented,
        successor: &rotation.successor,
        sealed_successor: rotation.sealed_successor.as_deref(),
        generation,
        now: rotation.now,
        seals_expire_before: rotation.seals_expire_before,
    };
    record_rotation(&mut tx, &history).await?;
    let row: SessionRow<Sqlite> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions s WHERE s.id = ?1"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(row.record()?))
}

pub(super) async fn swap_refresh(pool: &SqlitePool, swap: &RefreshSwap) -> Db<SwapOutcome> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    // The compare-and-swap: only the holder of the current token, on a live session, wins.
    let generation: Option<i64> = sqlx::query_scalar(
        "UPDATE sessions SET current_refresh_hash = ?3, \
         refresh_generation = refresh_generation + 1, last_seen_at = ?4, \
         idle_expires_at = ?5, ip = ?6, user_agent = COALESCE(?7, user_agent) \
         WHERE id = ?1 AND current_refresh_hash = ?2 AND revoked_at IS NULL \
         RETURNING refresh_generation",
    )
    .bind(swap.session_id.as_uuid())
    .bind(&swap.presented.as_bytes()[..])
    .bind(&swap.successor.as_bytes()[..])
    .bind(Micros(swap.now))
    .bind(Micros(swap.idle_expires_at))
    .bind(ip_text(swap.ip))
    .bind(swap.user_agent.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(generation) = generation else {
        tx.rollback().await?;
        return Ok(SwapOutcome::Lost);
    };
    let history = History {
        session_id: *swap.session_id.as_uuid(),
        presented: &swap.presented,
        successor: &swap.successor,
        sealed_successor: swap.sealed_successor.as_deref(),
        generation,
        now: swap.now,
        seals_expire_before: swap.seals_expire_before,
    };
    record_rotation(&mut tx, &history).await?;
    tx.commit().await?;
    Ok(SwapOutcome::Won)
}

/// What a won compare-and-swap writes into the rotation history.
struct History<'a> {
    session_id: Uuid,
    presented: &'a TokenHash,
    successor: &'a TokenHash,
    sealed_successor: Option<&'a [u8]>,
    generation: i64,
    now: OffsetDateTime,
    seals_expire_before: OffsetDateTime,
}

async fn record_rotation(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, h: &History<'_>) -> Db<()> {
    // The presented token's predecessor can never be replayed once the presented token
    // rotates: its seal would only serve a thief holding it and a copy of the database.
    sqlx::query(
        "UPDATE refresh_tokens SET sealed_successor = NULL \
         WHERE session_id = ?1 AND sealed_successor IS NOT NULL",
    )
    .bind(h.session_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE refresh_tokens SET used_at = ?2, successor_hash = ?3, sealed_successor = ?4 \
         WHERE token_hash = ?1",
    )
    .bind(&h.presented.as_bytes()[..])
    .bind(Micros(h.now))
    .bind(&h.successor.as_bytes()[..])
    .bind(h.sealed_successor)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(&h.successor.as_bytes()[..])
    .bind(h.session_id)
    .bind(h.generation)
    .bind(Micros(h.now))
    .execute(&mut **tx)
    .await?;
    // Seals past their retry window, any session's: no rotation of theirs may come to
    // clear them. Bounded, so one rotation never pays for a backlog.
    sqlx::query(
        "UPDATE refresh_tokens SET sealed_successor = NULL WHERE token_hash IN \
         (SELECT token_hash FROM refresh_tokens \
          WHERE sealed_successor IS NOT NULL AND used_at < ?1 LIMIT ?2)",
    )
    .bind(Micros(h.seals_expire_before))
    .bind(EXPIRED_SEALS_PER_ROTATION)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn revoke(
    pool: &SqlitePool,
    id: SessionId,
    reason: RevokeReason,
    now: OffsetDateTime,
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 \
         WHERE id = ?1 AND revoked_at IS NULL",
    )
    .bind(id.as_uuid())
    .bind(Micros(now))
    .bind(reason.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A successful MFA on a live session (step-up): it is now verified, at AAL2.
pub(super) async fn record_mfa(pool: &SqlitePool, id: SessionId, now: OffsetDateTime) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET mfa_verified_at = ?2, acr = ?3 \
         WHERE id = ?1 AND revoked_at IS NULL",
    )
    .bind(id.as_uuid())
    .bind(Micros(now))
    .bind(Assurance::PasswordAndOtp.acr())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn revoke_for_user(
    pool: &SqlitePool,
    user: UserId,
    keep: Option<SessionId>,
    reason: RevokeReason,
    now: OffsetDateTime,
) -> Db<Vec<SessionId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4 \
         WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2 RETURNING id",
    )
    .bind(user.as_uuid())
    .bind(keep.as_ref().map(SessionId::as_uuid))
    .bind(Micros(now))
    .bind(reason.as_str())
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(SessionId::from_uuid).collect())
}

pub(super) async fn list_live(
    pool: &SqlitePool,
    user: UserId,
    now: OffsetDateTime,
) -> Db<Vec<SessionRecord>> {
    let rows: Vec<SessionRow<Sqlite>> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions s WHERE s.user_id = ?1 AND s.revoked_at IS NULL \
         AND s.idle_expires_at > ?2 AND s.absolute_expires_at > ?2 \
         ORDER BY s.last_seen_at DESC, s.id"
    ))
    .bind(user.as_uuid())
    .bind(Micros(now))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(SessionRow::record)
        .collect::<Result<_, _>>()?)
}

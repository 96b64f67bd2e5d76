//! Sessions and their refresh-rotation history.
//!
//! Transactions run at READ COMMITTED. The rotation's compare-and-swap is its first
//! statement, an `UPDATE … WHERE current_refresh_hash = $presented`: concurrent rotations
//! queue on the row lock and, once the winner commits, the others re-check the condition
//! and update nothing. Concurrent logins on one device may both pass the supersede step;
//! the partial unique index then refuses the later insert, and that login starts over
//! (superseding the session that just won).

use sqlx::{PgPool, Postgres};
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

use super::Db;
use super::error::is_live_device_clash;
use crate::rows::{RefreshRow, SessionRow, ip_text, session_columns};

/// Each failed attempt means another login on the device committed meanwhile, so with
/// N concurrent logins no attempt fails more than N - 1 times.
const LOGIN_ATTEMPTS: u32 = 16;

pub(super) async fn insert(pool: &PgPool, s: &NewSession) -> Db<InsertedSession> {
    let mut attempt = 1;
    loop {
        match insert_once(pool, s).await {
            Err(e) if attempt < LOGIN_ATTEMPTS && is_live_device_clash(&e) => attempt += 1,
            done => return done,
        }
    }
}

async fn insert_once(pool: &PgPool, s: &NewSession) -> Db<InsertedSession> {
    let mut tx = pool.begin().await?;
    let superseded: Option<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
         WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL RETURNING id",
    )
    .bind(s.user_id.as_uuid())
    .bind(s.device_id.as_str())
    .bind(s.created_at)
    .bind(RevokeReason::Superseded.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let known_device: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = $1 AND device_id = $2)",
    )
    .bind(s.user_id.as_uuid())
    .bind(s.device_id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_id, device_name, user_agent, ip, created_at, \
         last_seen_at, idle_expires_at, absolute_expires_at, acr, auth_time, mfa_verified_at, \
         current_refresh_hash, refresh_generation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $13, 0)",
    )
    .bind(s.id.as_uuid())
    .bind(s.user_id.as_uuid())
    .bind(s.device_id.as_str())
    .bind(s.device_name.as_ref().map(|n| n.as_str()))
    .bind(s.user_agent.as_deref())
    .bind(ip_text(s.ip))
    .bind(s.created_at)
    .bind(s.idle_expires_at)
    .bind(s.absolute_expires_at)
    .bind(s.assurance.acr())
    .bind(s.auth_time)
    .bind(s.mfa_verified_at)
    .bind(&s.refresh_hash.as_bytes()[..])
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
         VALUES ($1, $2, 0, $3)",
    )
    .bind(&s.refresh_hash.as_bytes()[..])
    .bind(s.id.as_uuid())
    .bind(s.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(InsertedSession {
        superseded: superseded.map(SessionId::from_uuid),
        known_device,
    })
}

pub(super) async fn get(pool: &PgPool, id: SessionId) -> Db<Option<SessionRecord>> {
    let row: Option<SessionRow<Postgres>> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions s WHERE s.id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(SessionRow::record).transpose()?)
}

/// One rotation of the session's current refresh token, in one statement (one round
/// trip): the compare-and-swap on the session, the presented token's history row, the
/// successor's insert, and the seal clean-ups [`swap_refresh`] also does. It matches only
/// when the presented token is the session's current one and the session is live at `$4`
/// (`rotation::decide` would say `Rotate`); anything else returns no row and the caller
/// takes the slow path (read, judge, [`swap_refresh`]).
///
/// Parameters: `$1` presented hash, `$2` successor hash, `$3` sealed successor (or NULL),
/// `$4` now, `$5` now + the idle lifetime, `$6` IP (text or NULL), `$7` user agent (or
/// NULL), `$8` seals of tokens rotated before this instant are cleared, `$9` at most this
/// many of them. Returns the session's columns (`session_columns!`) after the rotation.
///
/// Public so the benchmark can run this very statement under pgbench as its limit.
pub const ROTATE_SQL: &str = concat!(
    "WITH rotated AS (\
       UPDATE sessions AS s SET current_refresh_hash = $2, \
         refresh_generation = s.refresh_generation + 1, last_seen_at = $4, \
         idle_expires_at = LEAST($5, s.absolute_expires_at), ip = $6, \
         user_agent = COALESCE($7, s.user_agent) \
       WHERE s.id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
         AND s.current_refresh_hash = $1 AND s.revoked_at IS NULL \
         AND s.idle_expires_at > $4 AND s.absolute_expires_at > $4 \
       RETURNING ",
    session_columns!(),
    "), used AS (\
       UPDATE refresh_tokens SET used_at = $4, successor_hash = $2, sealed_successor = $3 \
       WHERE token_hash = $1 AND EXISTS (SELECT 1 FROM rotated)\
     ), predecessors AS (\
       UPDATE refresh_tokens SET sealed_successor = NULL \
       WHERE session_id = (SELECT id FROM rotated) AND sealed_successor IS NOT NULL \
         AND token_hash <> $1\
     ), expired AS (\
       UPDATE refresh_tokens SET sealed_successor = NULL WHERE token_hash IN \
         (SELECT token_hash FROM refresh_tokens \
          WHERE sealed_successor IS NOT NULL AND used_at < $8 \
            AND EXISTS (SELECT 1 FROM rotated) \
          LIMIT $9 FOR UPDATE SKIP LOCKED)\
     ), inserted AS (\
       INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
       SELECT $2, id, refresh_generation, $4 FROM rotated\
     ) SELECT ",
    session_columns!(),
    " FROM rotated s"
);

pub(super) async fn get_refresh(pool: &PgPool, hash: &TokenHash) -> Db<Option<RefreshRecord>> {
    let row: Option<RefreshRow<Postgres>> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        ", r.generation, r.used_at, r.successor_hash, r.sealed_successor \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1"
    ))
    .bind(&hash.as_bytes()[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.map(RefreshRow::record).transpose()?)
}

pub(super) async fn rotate_current(
    pool: &PgPool,
    rotation: &CurrentRotation,
) -> Db<Option<SessionRecord>> {
    let row: Option<SessionRow<Postgres>> = sqlx::query_as(ROTATE_SQL)
        .bind(&rotation.presented.as_bytes()[..])
        .bind(&rotation.successor.as_bytes()[..])
        .bind(rotation.sealed_successor.as_deref())
        .bind(rotation.now)
        .bind(rotation.idle_deadline_cap)
        .bind(ip_text(rotation.ip))
        .bind(rotation.user_agent.as_deref())
        .bind(rotation.seals_expire_before)
        .bind(EXPIRED_SEALS_PER_ROTATION)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(SessionRow::record).transpose()?)
}

pub(super) async fn swap_refresh(pool: &PgPool, swap: &RefreshSwap) -> Db<SwapOutcome> {
    let mut tx = pool.begin().await?;
    // The compare-and-swap: only the holder of the current token, on a live session, wins.
    let generation: Option<i64> = sqlx::query_scalar(
        "UPDATE sessions SET current_refresh_hash = $3, \
         refresh_generation = refresh_generation + 1, last_seen_at = $4, \
         idle_expires_at = $5, ip = $6, user_agent = COALESCE($7, user_agent) \
         WHERE id = $1 AND current_refresh_hash = $2 AND revoked_at IS NULL \
         RETURNING refresh_generation",
    )
    .bind(swap.session_id.as_uuid())
    .bind(&swap.presented.as_bytes()[..])
    .bind(&swap.successor.as_bytes()[..])
    .bind(swap.now)
    .bind(swap.idle_expires_at)
    .bind(ip_text(swap.ip))
    .bind(swap.user_agent.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(generation) = generation else {
        tx.rollback().await?;
        return Ok(SwapOutcome::Lost);
    };
    // The presented token's predecessor can never be replayed once the presented token
    // rotates: its seal would only serve a thief holding it and a copy of the database.
    // (The session row locked above serialises this with the session's other rotations.)
    sqlx::query(
        "UPDATE refresh_tokens SET sealed_successor = NULL \
         WHERE session_id = $1 AND sealed_successor IS NOT NULL",
    )
    .bind(swap.session_id.as_uuid())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2, successor_hash = $3, sealed_successor = $4 \
         WHERE token_hash = $1",
    )
    .bind(&swap.presented.as_bytes()[..])
    .bind(swap.now)
    .bind(&swap.successor.as_bytes()[..])
    .bind(swap.sealed_successor.as_deref())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&swap.successor.as_bytes()[..])
    .bind(swap.session_id.as_uuid())
    .bind(generation)
    .bind(swap.now)
    .execute(&mut *tx)
    .await?;
    // Seals past their retry window, any session's: no rotation of theirs may come to
    // clear them. Bounded, and last with SKIP LOCKED, so concurrent rotations neither
    // wait on each other's rows here nor deadlock (a row another rotation holds is
    // cleared by that one).
    sqlx::query(
        "UPDATE refresh_tokens SET sealed_successor = NULL WHERE token_hash IN \
         (SELECT token_hash FROM refresh_tokens \
          WHERE sealed_successor IS NOT NULL AND used_at < $1 \
          LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(swap.seals_expire_before)
    .bind(EXPIRED_SEALS_PER_ROTATION)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(SwapOutcome::Won)
}

pub(super) async fn revoke(
    pool: &PgPool,
    id: SessionId,
    reason: RevokeReason,
    now: OffsetDateTime,
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id.as_uuid())
    .bind(now)
    .bind(reason.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A successful MFA on a live session (step-up): it is now verified, at AAL2.
pub(super) async fn record_mfa(pool: &PgPool, id: SessionId, now: OffsetDateTime) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET mfa_verified_at = $2, acr = $3 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id.as_uuid())
    .bind(now)
    .bind(Assurance::PasswordAndOtp.acr())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn revoke_for_user(
    pool: &PgPool,
    user: UserId,
    keep: Option<SessionId>,
    reason: RevokeReason,
    now: OffsetDateTime,
) -> Db<Vec<SessionId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
         WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2 RETURNING id",
    )
    .bind(user.as_uuid())
    .bind(keep.as_ref().map(SessionId::as_uuid))
    .bind(now)
    .bind(reason.as_str())
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(SessionId::from_uuid).collect())
}

pub(super) async fn list_live(
    pool: &PgPool,
    user: UserId,
    now: OffsetDateTime,
) -> Db<Vec<SessionRecord>> {
    let rows: Vec<SessionRow<Postgres>> = sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
         AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 \
         ORDER BY s.last_seen_at DESC, s.id"
    ))
    .bind(user.as_uuid())
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(SessionRow::record)
        .collect::<Result<_, _>>()?)
}

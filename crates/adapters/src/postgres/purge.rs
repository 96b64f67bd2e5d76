//! Retention: bounded deletes by age (`RetentionStore::purge_expired`).
//!
//! Ended sessions go through a window: one transaction locks at most `batch` of them (by
//! index), deletes at most `batch` of their history rows, then those of them left without
//! history. Deleting a session outright would cascade to all its history at once; and
//! picking "sessions without history" across the whole table would scan every ended
//! session still holding some. The other tables are one statement each. Every node runs
//! the purge; `FOR UPDATE SKIP LOCKED` lets concurrent runs take different rows instead of
//! queueing on the same ones.

use sqlx::PgPool;
use tessera_app::ports::{PurgeCutoffs, PurgeReport};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Db;

pub(super) async fn expired(pool: &PgPool, cutoffs: &PurgeCutoffs, batch: u32) -> Db<PurgeReport> {
    let limit = i64::from(batch);
    let (refresh_tokens, sessions) =
        ended_sessions(pool, cutoffs.sessions_ended_before, limit).await?;
    let mfa_challenges = delete(
        pool,
        "DELETE FROM mfa_challenges WHERE token_hash IN (SELECT token_hash FROM mfa_challenges \
         WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        cutoffs.challenges_expired_before,
        limit,
    )
    .await?;
    let security_events = delete(
        pool,
        "DELETE FROM security_events WHERE id IN (SELECT id FROM security_events \
         WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        cutoffs.events_before,
        limit,
    )
    .await?;
    Ok(PurgeReport {
        refresh_tokens,
        sessions,
        mfa_challenges,
        security_events,
        // A window that kept some history filled the history batch; otherwise every
        // session of it went, and a full window may have left others behind.
        more: [refresh_tokens, sessions, mfa_challenges, security_events]
            .iter()
            .any(|&n| n >= u64::from(batch)),
    })
}

/// History rows and sessions deleted from one window of ended sessions.
async fn ended_sessions(pool: &PgPool, before: OffsetDateTime, limit: i64) -> Db<(u64, u64)> {
    let mut tx = pool.begin().await?;
    let window: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM sessions \
         WHERE revoked_at < $1 OR idle_expires_at < $1 OR absolute_expires_at < $1 \
         LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if window.is_empty() {
        return Ok((0, 0));
    }
    // Ordered by session, so a batch finishes whole sessions (which then go below)
    // rather than taking a few rows from each.
    let history = sqlx::query(
        "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens \
         WHERE session_id = ANY($1) ORDER BY session_id LIMIT $2)",
    )
    .bind(&window)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let sessions = sqlx::query(
        "DELETE FROM sessions s WHERE s.id = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id)",
    )
    .bind(&window)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((history, sessions))
}

async fn delete(pool: &PgPool, sql: &'static str, before: OffsetDateTime, limit: i64) -> Db<u64> {
    let done = sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

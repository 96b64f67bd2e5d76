//! Retention: bounded deletes by age (`RetentionStore::purge_expired`).
//!
//! Ended sessions go through a window: one `BEGIN IMMEDIATE` transaction picks at most
//! `batch` of them (by index), deletes at most `batch` of their history rows, then those
//! of them left without history. Deleting a session outright would cascade to all its
//! history at once; and picking "sessions without history" across the whole table would
//! scan every ended session still holding some. The other tables are one statement each.
//! Every statement finds its rows through the indexes of migration 0004, and other
//! writers queue behind one batch at most, never behind a whole purge.

use sqlx::SqlitePool;
use tessera_app::ports::{PurgeCutoffs, PurgeReport};

use super::micros::Micros;
use super::{BEGIN_WRITE, Db};

pub(super) async fn expired(
    pool: &SqlitePool,
    cutoffs: &PurgeCutoffs,
    batch: u32,
) -> Db<PurgeReport> {
    let limit = i64::from(batch);
    let (refresh_tokens, sessions) =
        ended_sessions(pool, Micros(cutoffs.sessions_ended_before), limit).await?;
    let mfa_challenges = delete(
        pool,
        "DELETE FROM mfa_challenges WHERE rowid IN \
         (SELECT rowid FROM mfa_challenges WHERE expires_at < ?1 LIMIT ?2)",
        Micros(cutoffs.challenges_expired_before),
        limit,
    )
    .await?;
    let security_events = delete(
        pool,
        "DELETE FROM security_events WHERE rowid IN \
         (SELECT rowid FROM security_events WHERE at < ?1 LIMIT ?2)",
        Micros(cutoffs.events_before),
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
async fn ended_sessions(pool: &SqlitePool, before: Micros, limit: i64) -> Db<(u64, u64)> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let window: Vec<i64> = sqlx::query_scalar(
        "SELECT rowid FROM sessions \
         WHERE revoked_at < ?1 OR idle_expires_at < ?1 OR absolute_expires_at < ?1 LIMIT ?2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if window.is_empty() {
        return Ok((0, 0));
    }
    // The window as a JSON array of rowids: SQLite has no array parameters.
    let window = format!(
        "[{}]",
        window
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let history = sqlx::query(
        "DELETE FROM refresh_tokens WHERE rowid IN (SELECT rt.rowid FROM json_each(?1) w \
         JOIN sessions s ON s.rowid = w.value \
         JOIN refresh_tokens rt ON rt.session_id = s.id LIMIT ?2)",
    )
    .bind(&window)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE rowid IN (SELECT value FROM json_each(?1)) \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = sessions.id)",
    )
    .bind(&window)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((history, sessions))
}

async fn delete(pool: &SqlitePool, sql: &'static str, before: Micros, limit: i64) -> Db<u64> {
    let done = sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

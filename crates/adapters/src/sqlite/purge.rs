//! Retention: bounded deletes by age (`RetentionStore::purge_expired`).
//!
//! Each delete is one statement on the writer connection (a batch is its own transaction),
//! so other writers queue behind one batch at most, never behind a whole purge. Rows are
//! picked by rowid through the age indexes of migration 0004.

use sqlx::SqlitePool;
use tessera_app::ports::{PurgeCutoffs, PurgeReport};

use super::Db;
use super::micros::Micros;

/// A session has ended once revoked or past either deadline (a macro, so the statements
/// stay `&'static str`).
macro_rules! ended_before_1 {
    () => {
        "(s.revoked_at < ?1 OR s.idle_expires_at < ?1 OR s.absolute_expires_at < ?1)"
    };
}

pub(super) async fn expired(
    pool: &SqlitePool,
    cutoffs: &PurgeCutoffs,
    batch: u32,
) -> Db<PurgeReport> {
    let limit = i64::from(batch);
    let ended = Micros(cutoffs.sessions_ended_before);
    let refresh_tokens = delete(
        pool,
        concat!(
            // CROSS JOIN makes SQLite walk ended sessions (by index) and look their
            // tokens up, rather than scan every token and look its session up.
            "DELETE FROM refresh_tokens WHERE rowid IN (SELECT rt.rowid FROM sessions s \
             CROSS JOIN refresh_tokens rt ON rt.session_id = s.id WHERE ",
            ended_before_1!(),
            " LIMIT ?2)"
        ),
        ended,
        limit,
    )
    .await?;
    let sessions = delete(
        pool,
        concat!(
            "DELETE FROM sessions WHERE rowid IN (SELECT s.rowid FROM sessions s WHERE ",
            ended_before_1!(),
            " AND NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id) \
             LIMIT ?2)"
        ),
        ended,
        limit,
    )
    .await?;
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
    let counts = [refresh_tokens, sessions, mfa_challenges, security_events];
    Ok(PurgeReport {
        refresh_tokens,
        sessions,
        mfa_challenges,
        security_events,
        more: counts.iter().any(|&n| n >= u64::from(batch)),
    })
}

async fn delete(pool: &SqlitePool, sql: &'static str, before: Micros, limit: i64) -> Db<u64> {
    let done = sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

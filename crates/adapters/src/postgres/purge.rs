//! Retention: bounded deletes by age (`RetentionStore::purge_expired`).
//!
//! Each delete is one statement (its own transaction), found through the age indexes of
//! migration 0004. Every node runs the purge; `FOR UPDATE SKIP LOCKED` lets concurrent
//! runs take different rows instead of queueing on the same ones.

use sqlx::PgPool;
use tessera_app::ports::{PurgeCutoffs, PurgeReport};
use time::OffsetDateTime;

use super::Db;

/// A session has ended once revoked or past either deadline (a macro, so the statements
/// stay `&'static str`).
macro_rules! ended_before_1 {
    () => {
        "(s.revoked_at < $1 OR s.idle_expires_at < $1 OR s.absolute_expires_at < $1)"
    };
}

pub(super) async fn expired(pool: &PgPool, cutoffs: &PurgeCutoffs, batch: u32) -> Db<PurgeReport> {
    let limit = i64::from(batch);
    let ended = cutoffs.sessions_ended_before;
    let refresh_tokens = delete(
        pool,
        concat!(
            "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT rt.token_hash \
             FROM sessions s JOIN refresh_tokens rt ON rt.session_id = s.id WHERE ",
            ended_before_1!(),
            " LIMIT $2 FOR UPDATE OF rt SKIP LOCKED)"
        ),
        ended,
        limit,
    )
    .await?;
    let sessions = delete(
        pool,
        concat!(
            "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE ",
            ended_before_1!(),
            " AND NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id) \
             LIMIT $2 FOR UPDATE SKIP LOCKED)"
        ),
        ended,
        limit,
    )
    .await?;
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
    let counts = [refresh_tokens, sessions, mfa_challenges, security_events];
    Ok(PurgeReport {
        refresh_tokens,
        sessions,
        mfa_challenges,
        security_events,
        more: counts.iter().any(|&n| n >= u64::from(batch)),
    })
}

async fn delete(pool: &PgPool, sql: &'static str, before: OffsetDateTime, limit: i64) -> Db<u64> {
    let done = sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

//! Retention: bounded deletes by age (`RetentionStore::purge_expired`).
//!
//! Ended sessions go through a window: one `BEGIN IMMEDIATE` transaction picks at most
//! `batch` of them (by index), deletes at most `batch` of their history rows, then those
//! of them left without history. Deleting a session outright would cascade to all its
//! history at once; and picking "sessions without history" across the whole table would
//! scan every ended session still holding some. The other tables are one statement each.
//! Every statement finds its rows through the indexes of migration 0004, and other
//! writers queue behind one batch at most, never behind a whole purge.
//!
//! Security events go only as whole prefixes of their user's audit chain, one user per
//! transaction, which also moves the chain's checkpoint onto the last event deleted, so
//! what remains still verifies from there.

use sqlx::SqlitePool;
use tessera_app::ports::{PurgeCutoffs, PurgeReport};

use super::micros::Micros;
use super::{BEGIN_WRITE, Db, audit};
use crate::chain::{ChainPoint, purgeable_prefix};
use crate::retention;
use crate::rows::CorruptRow;
use tessera_core::ids::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

pub(super) async fn expired(
    pool: &SqlitePool,
    cutoffs: &PurgeCutoffs,
    batch: u32,
) -> Db<PurgeReport> {
    let limit = i64::from(batch);
    retention::run(
        batch,
        ended_sessions(pool, Micros(cutoffs.sessions_ended_before), limit),
        delete(
            pool,
            "DELETE FROM mfa_challenges WHERE rowid IN \
             (SELECT rowid FROM mfa_challenges WHERE expires_at < ?1 LIMIT ?2)",
            Micros(cutoffs.challenges_expired_before),
            limit,
        ),
        chain_prefixes(pool, cutoffs.events_before, batch),
    )
    .await
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

/// Deletes at most `batch` events in all, each from the front of its user's chain.
async fn chain_prefixes(pool: &SqlitePool, before: OffsetDateTime, batch: u32) -> Db<u64> {
    // Users whose first remaining event is old enough, found through the old events
    // (security_events_by_at) and the chain index, so chains with nothing to purge cost
    // nothing.
    let users: Vec<Uuid> = sqlx::query_scalar(
        "SELECT c.user_id FROM audit_chains c JOIN security_events e \
         ON e.user_id = c.user_id AND e.chain_index = c.checkpoint_index + 1 \
         WHERE e.at < ?1 LIMIT ?2",
    )
    .bind(Micros(before))
    .bind(i64::from(batch))
    .fetch_all(pool)
    .await?;
    retention::chain_prefixes(users, batch, |user, room| {
        chain_prefix(pool, user, before, room)
    })
    .await
}

async fn chain_prefix(
    pool: &SqlitePool,
    user: UserId,
    before: OffsetDateTime,
    room: u32,
) -> Db<u64> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let Some((index, hash)): Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT checkpoint_index, checkpoint_hash FROM audit_chains WHERE user_id = ?1",
    )
    .bind(user.as_uuid())
    .fetch_optional(&mut *tx)
    .await?
    else {
        // The user was deleted meanwhile, and the events with them.
        return Ok(0);
    };
    let checkpoint = ChainPoint::from_stored(index, &hash).ok_or(CorruptRow("checkpoint_hash"))?;
    let events = audit::events(&mut *tx, user, checkpoint.index, room).await?;
    let Some(to) = purgeable_prefix(checkpoint, &events, before) else {
        return Ok(0);
    };
    let deleted = sqlx::query(
        "DELETE FROM security_events WHERE user_id = ?1 AND chain_index > ?2 \
         AND chain_index <= ?3",
    )
    .bind(user.as_uuid())
    .bind(checkpoint.index)
    .bind(to.index)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE audit_chains SET checkpoint_index = ?2, checkpoint_hash = ?3, \
         purged = purged + ?4 WHERE user_id = ?1",
    )
    .bind(user.as_uuid())
    .bind(to.index)
    .bind(&to.hash.as_bytes()[..])
    .bind(i64::try_from(deleted).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(deleted)
}

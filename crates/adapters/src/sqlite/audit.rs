//! Reading the audit chains (`AuditStore`), and linking the events written before the
//! chain existed (migration 0006), which `SqliteStore::migrate` does after the SQL.

use sqlx::{Sqlite, SqliteExecutor, SqlitePool};
use tessera_app::ports::{ChainBounds, ChainedEvent, SecurityEvent};
use tessera_core::ids::UserId;
use uuid::Uuid;

use super::events::{lock_head, save_head};
use super::{BEGIN_WRITE, Db};
use crate::rows::{ChainRow, ChainedEventRow, EventRow, chain_columns, event_columns};

/// Events linked per transaction by [`link_unchained`]: other writers queue behind one
/// batch at most, and a crash loses at most one uncommitted batch.
const LINK_BATCH: i64 = 500;

pub(super) async fn chains(
    pool: &SqlitePool,
    after: Option<UserId>,
    limit: u32,
) -> Db<Vec<ChainBounds>> {
    let rows: Vec<ChainRow> = sqlx::query_as(concat!(
        "SELECT ",
        chain_columns!(),
        " FROM audit_chains WHERE ?1 IS NULL OR user_id > ?1 ORDER BY user_id LIMIT ?2"
    ))
    .bind(after.as_ref().map(UserId::as_uuid))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(ChainRow::record)
        .collect::<Result<_, _>>()?)
}

pub(super) async fn events<'c>(
    db: impl SqliteExecutor<'c>,
    user: UserId,
    after_index: i64,
    limit: u32,
) -> Db<Vec<ChainedEvent>> {
    let rows: Vec<ChainedEventRow<Sqlite>> = sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        ", chain_index, prev_hash, hash FROM security_events \
         WHERE user_id = ?1 AND chain_index > ?2 ORDER BY chain_index LIMIT ?3"
    ))
    .bind(user.as_uuid())
    .bind(after_index)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(ChainedEventRow::record)
        .collect::<Result<_, _>>()?)
}

/// Any event stored outside the chains (none once migration 0006's backfill has run,
/// unless someone wrote one around Tessera).
pub(super) async fn unchained(pool: &SqlitePool) -> Db<Option<SecurityEvent>> {
    let row: Option<EventRow<Sqlite>> = sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM security_events WHERE chain_index IS NULL ORDER BY rowid LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(EventRow::record).transpose()?)
}

/// Appends every unchained event written before migration 0006 to its user's chain, per user in the order written
/// (`at`, then rowid), a batch per transaction. Idempotent, and a run stopped anywhere
/// is finished by the next: only rows still without an index are taken.
pub(super) async fn link_unchained(pool: &SqlitePool) -> Db<u64> {
    let mut linked = 0;
    loop {
        let mut tx = pool.begin_with(BEGIN_WRITE).await?;
        let next: Option<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM security_events WHERE chain_index IS NULL \
             AND rowid <= (SELECT upto FROM audit_backfill) LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = next.map(UserId::from_uuid) else {
            return Ok(linked);
        };
        let mut head = lock_head(&mut tx, user).await?;
        let rows: Vec<EventRow<Sqlite>> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM security_events WHERE user_id = ?1 AND chain_index IS NULL \
             AND rowid <= (SELECT upto FROM audit_backfill) \
             ORDER BY at, rowid LIMIT ?2"
        ))
        .bind(user.as_uuid())
        .bind(LINK_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let event = row.record()?;
            let link = head.append(&event);
            sqlx::query(
                "UPDATE security_events SET chain_index = ?2, prev_hash = ?3, hash = ?4 \
                 WHERE id = ?1",
            )
            .bind(event.id.as_uuid())
            .bind(link.index)
            .bind(&link.prev.as_bytes()[..])
            .bind(&link.hash.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
            linked += 1;
        }
        save_head(&mut tx, user, head).await?;
        tx.commit().await?;
    }
}

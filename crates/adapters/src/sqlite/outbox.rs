//! The notification outbox (`OutboxStore`), and the rows `insert_event` adds to it.
//!
//! A claim is one `UPDATE … RETURNING` on the writer connection: claims are serialised,
//! and a claimed row carries a lease, so it is not claimed again until the lease ends.

use sqlx::types::Json;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tessera_app::ports::{
    Delivery, DeliveryOutcome, Notice, OutboxBacklog, SealedOutboxSecret, SecurityEvent,
};
use tessera_core::ids::{NotificationId, SessionId};
use time::{Duration, OffsetDateTime};

use super::Db;
use super::micros::Micros;
use crate::rows::{self, DeliveryRow, SealedOutboxRow, delivery_columns, ip_text};

/// One row per channel of `notice`, due at once.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    e: &SecurityEvent,
    notice: &Notice,
) -> Db<()> {
    for channel in &notice.channels {
        sqlx::query(
            "INSERT INTO notification_outbox (id, channel, event_id, user_id, email, kind, at, \
             session_id, ip, user_agent, detail, sealed_secret, attempts, next_attempt_at, \
             created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?7, ?7)",
        )
        .bind(notice.id.as_uuid())
        .bind(channel)
        .bind(e.id.as_uuid())
        .bind(e.user_id.as_uuid())
        .bind(notice.email.as_str())
        .bind(e.kind.as_str())
        .bind(Micros(e.at))
        .bind(e.session_id.as_ref().map(SessionId::as_uuid))
        .bind(ip_text(e.ip))
        .bind(e.user_agent.as_deref())
        .bind(Json(&notice.detail))
        .bind(notice.sealed_secret.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(super) async fn claim(
    pool: &SqlitePool,
    now: OffsetDateTime,
    lease: Duration,
    limit: u32,
    channels: &[String],
) -> Db<Vec<Delivery>> {
    // SQLite binds no arrays: the names travel as one JSON array.
    let channels = serde_json::to_string(channels).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let rows: Vec<DeliveryRow<Sqlite>> = sqlx::query_as(concat!(
        "UPDATE notification_outbox SET lease_until = ?2, attempts = attempts + 1 \
         WHERE rowid IN (SELECT rowid FROM notification_outbox \
         WHERE dead_at IS NULL AND next_attempt_at <= ?1 \
         AND (lease_until IS NULL OR lease_until <= ?1) \
         AND channel IN (SELECT value FROM json_each(?4)) \
         ORDER BY next_attempt_at, created_at LIMIT ?3) RETURNING ",
        delivery_columns!()
    ))
    .bind(Micros(now))
    .bind(Micros(now + lease))
    .bind(i64::from(limit))
    .bind(channels)
    .fetch_all(pool)
    .await?;
    let mut claimed = rows
        .into_iter()
        .map(DeliveryRow::record)
        .collect::<Result<Vec<_>, _>>()?;
    // SQLite returns updated rows in no promised order.
    claimed.sort_by(|a, b| (a.at, a.id, &a.channel).cmp(&(b.at, b.id, &b.channel)));
    Ok(claimed)
}

pub(super) async fn settle(
    pool: &SqlitePool,
    id: NotificationId,
    channel: &str,
    outcome: &DeliveryOutcome,
) -> Db<()> {
    let (id, channel) = (id.as_uuid(), channel);
    match outcome {
        DeliveryOutcome::Delivered => {
            sqlx::query("DELETE FROM notification_outbox WHERE id = ?1 AND channel = ?2")
                .bind(id)
                .bind(channel)
                .execute(pool)
                .await?
        }
        DeliveryOutcome::Retry { at, error } => {
            sqlx::query(
                "UPDATE notification_outbox SET next_attempt_at = ?3, last_error = ?4, \
                 lease_until = NULL WHERE id = ?1 AND channel = ?2 AND dead_at IS NULL",
            )
            .bind(id)
            .bind(channel)
            .bind(Micros(*at))
            .bind(error.as_str())
            .execute(pool)
            .await?
        }
        // The sealed secret goes now: nothing will ever send it. There is no clock
        // argument here, and when a row died is for operators only, so the database's
        // time serves.
        DeliveryOutcome::Dead { error } => {
            sqlx::query(
                "UPDATE notification_outbox \
                 SET dead_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER), \
                 last_error = ?3, lease_until = NULL, sealed_secret = NULL \
                 WHERE id = ?1 AND channel = ?2",
            )
            .bind(id)
            .bind(channel)
            .bind(error.as_str())
            .execute(pool)
            .await?
        }
    };
    Ok(())
}

pub(super) async fn backlog(pool: &SqlitePool) -> Db<OutboxBacklog> {
    let (pending, dead, oldest): (i64, i64, Option<Micros>) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE dead_at IS NULL), \
         COUNT(*) FILTER (WHERE dead_at IS NOT NULL), \
         MIN(created_at) FILTER (WHERE dead_at IS NULL) FROM notification_outbox",
    )
    .fetch_one(pool)
    .await?;
    Ok(OutboxBacklog {
        pending: pending.unsigned_abs(),
        dead: dead.unsigned_abs(),
        oldest: rows::instant(oldest),
    })
}

pub(super) async fn list_sealed(pool: &SqlitePool) -> Db<Vec<SealedOutboxSecret>> {
    let rows: Vec<SealedOutboxRow> = sqlx::query_as(
        "SELECT id, channel, sealed_secret FROM notification_outbox \
         WHERE sealed_secret IS NOT NULL AND dead_at IS NULL ORDER BY id, channel",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(SealedOutboxRow::record).collect())
}

/// Master-key rotation's compare-and-swap on the bytes read. The lease is not looked at:
/// a worker holding it sends from the bytes it claimed, and a settle in between (which
/// deletes the row or clears its secret) makes this match nothing.
pub(super) async fn swap_sealed(
    pool: &SqlitePool,
    id: NotificationId,
    channel: &str,
    expected: &[u8],
    new: &[u8],
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET sealed_secret = ?4 \
         WHERE id = ?1 AND channel = ?2 AND sealed_secret = ?3",
    )
    .bind(id.as_uuid())
    .bind(channel)
    .bind(expected)
    .bind(new)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

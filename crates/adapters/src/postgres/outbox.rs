//! The notification outbox (`OutboxStore`), and the rows `insert_event` adds to it.
//!
//! A claim is one `UPDATE` over a `FOR UPDATE SKIP LOCKED` sub-select: concurrent workers
//! (on any node) skip the rows another is claiming instead of waiting for them, and a
//! claimed row carries a lease, so it is not claimed again until the lease ends.

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres};
use tessera_app::ports::{
    Delivery, DeliveryOutcome, Notice, OutboxBacklog, SealedOutboxSecret, SecurityEvent,
};
use tessera_core::ids::{NotificationId, SessionId};
use time::{Duration, OffsetDateTime};

use super::Db;
use crate::rows::{DeliveryRow, SealedOutboxRow, delivery_columns, ip_text};

/// One row per channel of `notice`, due at once.
pub(super) async fn insert(conn: &mut PgConnection, e: &SecurityEvent, notice: &Notice) -> Db<()> {
    for channel in &notice.channels {
        sqlx::query(
            "INSERT INTO notification_outbox (id, channel, event_id, user_id, email, kind, at, \
             session_id, ip, user_agent, detail, sealed_secret, attempts, next_attempt_at, \
             created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $7, $7)",
        )
        .bind(notice.id.as_uuid())
        .bind(channel)
        .bind(e.id.as_uuid())
        .bind(e.user_id.as_uuid())
        .bind(notice.email.as_str())
        .bind(e.kind.as_str())
        .bind(e.at)
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
    pool: &PgPool,
    now: OffsetDateTime,
    lease: Duration,
    limit: u32,
    channels: &[String],
) -> Db<Vec<Delivery>> {
    let rows: Vec<DeliveryRow<Postgres>> = sqlx::query_as(concat!(
        "WITH claimed AS (UPDATE notification_outbox o \
         SET lease_until = $2, attempts = o.attempts + 1 \
         WHERE (o.id, o.channel) IN (SELECT id, channel FROM notification_outbox \
         WHERE dead_at IS NULL AND next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until <= $1) AND channel = ANY($4) \
         ORDER BY next_attempt_at, created_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING o.*) SELECT ",
        delivery_columns!(),
        " FROM claimed ORDER BY created_at, id, channel"
    ))
    .bind(now)
    .bind(now + lease)
    .bind(i64::from(limit))
    .bind(channels)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(DeliveryRow::record)
        .collect::<Result<_, _>>()?)
}

pub(super) async fn settle(
    pool: &PgPool,
    id: NotificationId,
    channel: &str,
    outcome: &DeliveryOutcome,
) -> Db<()> {
    let (id, channel) = (id.as_uuid(), channel);
    match outcome {
        DeliveryOutcome::Delivered => {
            sqlx::query("DELETE FROM notification_outbox WHERE id = $1 AND channel = $2")
                .bind(id)
                .bind(channel)
                .execute(pool)
                .await?
        }
        DeliveryOutcome::Retry { at, error } => {
            sqlx::query(
                "UPDATE notification_outbox SET next_attempt_at = $3, last_error = $4, \
                 lease_until = NULL WHERE id = $1 AND channel = $2 AND dead_at IS NULL",
            )
            .bind(id)
            .bind(channel)
            .bind(*at)
            .bind(error.as_str())
            .execute(pool)
            .await?
        }
        // The sealed secret goes now: nothing will ever send it. There is no clock
        // argument here, and when a row died is for operators only, so the database's
        // time serves.
        DeliveryOutcome::Dead { error } => {
            sqlx::query(
                "UPDATE notification_outbox SET dead_at = now(), last_error = $3, \
                 lease_until = NULL, sealed_secret = NULL WHERE id = $1 AND channel = $2",
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

pub(super) async fn backlog(pool: &PgPool) -> Db<OutboxBacklog> {
    let (pending, dead, oldest): (i64, i64, Option<OffsetDateTime>) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE dead_at IS NULL), \
         COUNT(*) FILTER (WHERE dead_at IS NOT NULL), \
         MIN(created_at) FILTER (WHERE dead_at IS NULL) FROM notification_outbox",
    )
    .fetch_one(pool)
    .await?;
    Ok(OutboxBacklog {
        pending: pending.unsigned_abs(),
        dead: dead.unsigned_abs(),
        oldest,
    })
}

pub(super) async fn list_sealed(pool: &PgPool) -> Db<Vec<SealedOutboxSecret>> {
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
    pool: &PgPool,
    id: NotificationId,
    channel: &str,
    expected: &[u8],
    new: &[u8],
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET sealed_secret = $4 \
         WHERE id = $1 AND channel = $2 AND sealed_secret = $3",
    )
    .bind(id.as_uuid())
    .bind(channel)
    .bind(expected)
    .bind(new)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

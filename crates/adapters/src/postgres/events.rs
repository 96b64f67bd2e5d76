//! Security events, each appended to its user's audit chain with its outbox rows.
//!
//! The chain head row (`audit_chains`) is the per-user lock: it is created if missing
//! (`ON CONFLICT DO NOTHING`, so concurrent first events do not fail) and then locked
//! `FOR UPDATE`, so the next index and the previous hash are read and written by one
//! transaction at a time, and a chain never forks.

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres};
use tessera_app::ports::{Notice, SecurityEvent};
use tessera_core::ids::{SessionId, UserId};

use super::{Db, outbox};
use crate::chain::{ChainLink, ChainPoint};
use crate::rows::{CorruptRow, EventRow, event_columns, ip_text};

pub(super) async fn insert(pool: &PgPool, e: &SecurityEvent, notice: Option<&Notice>) -> Db<()> {
    let mut tx = pool.begin().await?;
    let mut head = lock_head(&mut tx, e.user_id).await?;
    let link = head.append(e);
    insert_linked(&mut tx, e, &link).await?;
    save_head(&mut tx, e.user_id, head).await?;
    if let Some(notice) = notice {
        outbox::insert(&mut tx, e, notice).await?;
    }
    tx.commit().await
}

/// Creates the user's chain head if missing, locks it, and returns it.
pub(super) async fn lock_head(conn: &mut PgConnection, user: UserId) -> Db<ChainPoint> {
    sqlx::query(
        "INSERT INTO audit_chains (user_id, head_index, head_hash, checkpoint_index, \
         checkpoint_hash) VALUES ($1, 0, $2, 0, $2) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user.as_uuid())
    .bind(&ChainPoint::START.hash.as_bytes()[..])
    .execute(&mut *conn)
    .await?;
    let (index, hash): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT head_index, head_hash FROM audit_chains WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user.as_uuid())
    .fetch_one(&mut *conn)
    .await?;
    Ok(ChainPoint::from_stored(index, &hash).ok_or(CorruptRow("head_hash"))?)
}

pub(super) async fn save_head(conn: &mut PgConnection, user: UserId, head: ChainPoint) -> Db<()> {
    sqlx::query("UPDATE audit_chains SET head_index = $2, head_hash = $3 WHERE user_id = $1")
        .bind(user.as_uuid())
        .bind(head.index)
        .bind(&head.hash.as_bytes()[..])
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_linked(conn: &mut PgConnection, e: &SecurityEvent, link: &ChainLink) -> Db<()> {
    sqlx::query(
        "INSERT INTO security_events (id, user_id, kind, at, ip, user_agent, session_id, detail, \
         chain_index, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.id.as_uuid())
    .bind(e.user_id.as_uuid())
    .bind(e.kind.as_str())
    .bind(e.at)
    .bind(ip_text(e.ip))
    .bind(e.user_agent.as_deref())
    .bind(e.session_id.as_ref().map(SessionId::as_uuid))
    .bind(Json(&e.detail))
    .bind(link.index)
    .bind(&link.prev.as_bytes()[..])
    .bind(&link.hash.as_bytes()[..])
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool, user: UserId, limit: u32) -> Db<Vec<SecurityEvent>> {
    let rows: Vec<EventRow<Postgres>> = sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM security_events WHERE user_id = $1 ORDER BY at DESC, seq DESC LIMIT $2"
    ))
    .bind(user.as_uuid())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(EventRow::record)
        .collect::<Result<_, _>>()?)
}

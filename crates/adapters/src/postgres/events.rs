//! Security events.

use sqlx::PgPool;
use sqlx::types::Json;
use tessera_app::ports::SecurityEvent;
use tessera_core::ids::{SessionId, UserId};

use super::Db;
use super::rows::EventRow;
use crate::rows::ip_text;

pub(super) async fn insert(pool: &PgPool, e: &SecurityEvent) -> Db<()> {
    sqlx::query(
        "INSERT INTO security_events (id, user_id, kind, at, ip, user_agent, session_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.id.as_uuid())
    .bind(e.user_id.as_uuid())
    .bind(e.kind.as_str())
    .bind(e.at)
    .bind(ip_text(e.ip))
    .bind(e.user_agent.as_deref())
    .bind(e.session_id.as_ref().map(SessionId::as_uuid))
    .bind(Json(&e.detail))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool, user: UserId, limit: u32) -> Db<Vec<SecurityEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, user_id, kind, at, ip, user_agent, session_id, detail \
         FROM security_events WHERE user_id = $1 ORDER BY at DESC, seq DESC LIMIT $2",
    )
    .bind(user.as_uuid())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(EventRow::record)
        .collect::<Result<_, _>>()?)
}

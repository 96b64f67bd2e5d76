//! Pending password resets (`ResetStore`): one per user, stored as the token's hash.

use sqlx::SqlitePool;
use tessera_app::ports::PendingReset;
use tessera_core::ids::UserId;
use tessera_core::secret::TokenHash;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Db;
use super::micros::Micros;
use crate::rows::taken_reset;

pub(super) async fn replace(
    pool: &SqlitePool,
    user: UserId,
    hash: &TokenHash,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Db<()> {
    sqlx::query(
        "INSERT INTO password_resets (user_id, token_hash, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id) DO UPDATE SET \
         token_hash = excluded.token_hash, created_at = excluded.created_at, \
         expires_at = excluded.expires_at",
    )
    .bind(user.as_uuid())
    .bind(&hash.as_bytes()[..])
    .bind(Micros(created_at))
    .bind(Micros(expires_at))
    .execute(pool)
    .await?;
    Ok(())
}

/// One `DELETE … RETURNING` on the writer connection: of concurrent takes, one deletes it.
pub(super) async fn take(
    pool: &SqlitePool,
    hash: &TokenHash,
    now: OffsetDateTime,
) -> Db<Option<PendingReset>> {
    let row: Option<(Uuid, Micros, Micros)> = sqlx::query_as(
        "DELETE FROM password_resets WHERE token_hash = ?1 \
         RETURNING user_id, created_at, expires_at",
    )
    .bind(&hash.as_bytes()[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(user, created_at, expires_at)| {
        taken_reset(user, created_at.0, expires_at.0, now)
    }))
}

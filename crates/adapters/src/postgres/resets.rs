//! Pending password resets (`ResetStore`): one per user, stored as the token's hash.

use sqlx::PgPool;
use tessera_app::ports::PendingReset;
use tessera_core::ids::UserId;
use tessera_core::secret::TokenHash;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Db;
use crate::rows::taken_reset;

pub(super) async fn replace(
    pool: &PgPool,
    user: UserId,
    hash: &TokenHash,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Db<()> {
    sqlx::query(
        "INSERT INTO password_resets (user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
         token_hash = EXCLUDED.token_hash, created_at = EXCLUDED.created_at, \
         expires_at = EXCLUDED.expires_at",
    )
    .bind(user.as_uuid())
    .bind(&hash.as_bytes()[..])
    .bind(created_at)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// One `DELETE … RETURNING`: of concurrent takes, the row lock lets exactly one delete it.
pub(super) async fn take(
    pool: &PgPool,
    hash: &TokenHash,
    now: OffsetDateTime,
) -> Db<Option<PendingReset>> {
    let row: Option<(Uuid, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "DELETE FROM password_resets WHERE token_hash = $1 \
         RETURNING user_id, created_at, expires_at",
    )
    .bind(&hash.as_bytes()[..])
    .fetch_optional(pool)
    .await?;
    Ok(row
        .and_then(|(user, created_at, expires_at)| taken_reset(user, created_at, expires_at, now)))
}

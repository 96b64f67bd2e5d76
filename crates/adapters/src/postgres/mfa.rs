//! TOTP factors, recovery codes and login second-step challenges.
//!
//! Transactions run at READ COMMITTED. Each compare-and-swap (the TOTP step, a recovery
//! code, a challenge, enabling) is one `UPDATE … WHERE <expected state>`: concurrent
//! callers queue on the row lock and, once the winner commits, the others re-check the
//! condition against the new row and update nothing. A statement cannot lock rows that
//! do not exist yet, so every transaction that replaces the code set (enable, regenerate,
//! purge) first locks the user's `users` row (`FOR NO KEY UPDATE`, which leaves foreign-key
//! checks from other tables unblocked): two replacements then run one after the other
//! instead of each deleting only the codes it saw and both sets surviving.

use sqlx::{PgConnection, PgPool, Postgres};
use tessera_app::ports::{MfaChallenge, MfaRecord, SealedTotp};
use tessera_core::ids::UserId;
use tessera_core::mfa::recovery::RecoveryCodeHash;
use tessera_core::secret::TokenHash;
use time::OffsetDateTime;

use super::Db;
use crate::rows::{ChallengeRow, MfaRow, SealedTotpRow, challenge_columns, ip_text, mfa_columns};

pub(super) async fn get(pool: &PgPool, user: UserId) -> Db<Option<MfaRecord>> {
    let row: Option<MfaRow<Postgres>> = sqlx::query_as(concat!(
        "SELECT ",
        mfa_columns!(),
        " FROM user_totp t WHERE t.user_id = $1"
    ))
    .bind(user.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(MfaRow::record).transpose()?)
}

pub(super) async fn replace_pending(
    pool: &PgPool,
    user: UserId,
    sealed: &[u8],
    now: OffsetDateTime,
) -> Db<()> {
    sqlx::query(
        "INSERT INTO user_totp (user_id, pending_sealed, pending_created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET pending_sealed = excluded.pending_sealed, \
         pending_created_at = excluded.pending_created_at",
    )
    .bind(user.as_uuid())
    .bind(sealed)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn enable(
    pool: &PgPool,
    user: UserId,
    accepted_step: i64,
    codes: &[RecoveryCodeHash],
    now: OffsetDateTime,
) -> Db<bool> {
    let mut tx = pool.begin().await?;
    lock_user(&mut tx, user).await?;
    let done = sqlx::query(
        "UPDATE user_totp SET sealed_secret = pending_sealed, enabled_at = $2, \
         pending_sealed = NULL, pending_created_at = NULL, last_step = $3 \
         WHERE user_id = $1 AND pending_sealed IS NOT NULL AND sealed_secret IS NULL",
    )
    .bind(user.as_uuid())
    .bind(now)
    .bind(accepted_step)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    replace_codes(&mut tx, user, codes, now).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn swap_step(pool: &PgPool, user: UserId, step: i64) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE user_totp SET last_step = $2 \
         WHERE user_id = $1 AND sealed_secret IS NOT NULL \
         AND (last_step IS NULL OR last_step < $2)",
    )
    .bind(user.as_uuid())
    .bind(step)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn use_recovery_code(
    pool: &PgPool,
    user: UserId,
    code: &RecoveryCodeHash,
    now: OffsetDateTime,
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $3 \
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user.as_uuid())
    .bind(&code.as_bytes()[..])
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the codes only while the factor the caller proved is still enabled; the
/// check runs under the same user lock as `purge` and `enable`, so neither can fall
/// between it and the replacement.
pub(super) async fn swap_recovery_codes(
    pool: &PgPool,
    user: UserId,
    enabled_by: OffsetDateTime,
    codes: &[RecoveryCodeHash],
    now: OffsetDateTime,
) -> Db<bool> {
    let mut tx = pool.begin().await?;
    lock_user(&mut tx, user).await?;
    let proved: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_totp \
         WHERE user_id = $1 AND sealed_secret IS NOT NULL AND enabled_at <= $2)",
    )
    .bind(user.as_uuid())
    .bind(enabled_by)
    .fetch_one(&mut *tx)
    .await?;
    if !proved {
        tx.rollback().await?;
        return Ok(false);
    }
    replace_codes(&mut tx, user, codes, now).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn purge(pool: &PgPool, user: UserId) -> Db<bool> {
    let mut tx = pool.begin().await?;
    lock_user(&mut tx, user).await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.as_uuid())
        .execute(&mut *tx)
        .await?;
    let was_enabled: Option<bool> = sqlx::query_scalar(
        "DELETE FROM user_totp WHERE user_id = $1 RETURNING sealed_secret IS NOT NULL",
    )
    .bind(user.as_uuid())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(was_enabled.unwrap_or(false))
}

pub(super) async fn list_sealed(pool: &PgPool) -> Db<Vec<SealedTotp>> {
    let rows: Vec<SealedTotpRow> = sqlx::query_as(
        "SELECT user_id, sealed_secret, pending_sealed FROM user_totp \
         WHERE sealed_secret IS NOT NULL OR pending_sealed IS NOT NULL ORDER BY user_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(SealedTotpRow::record).collect())
}

/// Master-key rotation's compare-and-swap: both sealed columns change only if both still
/// hold the expected values (`IS NOT DISTINCT FROM` compares a missing value as equal to NULL).
pub(super) async fn swap_sealed(
    pool: &PgPool,
    user: UserId,
    expected_secret: Option<&[u8]>,
    new_secret: Option<&[u8]>,
    expected_pending: Option<&[u8]>,
    new_pending: Option<&[u8]>,
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE user_totp SET sealed_secret = $3, pending_sealed = $5 \
         WHERE user_id = $1 AND sealed_secret IS NOT DISTINCT FROM $2 AND pending_sealed IS NOT DISTINCT FROM $4",
    )
    .bind(user.as_uuid())
    .bind(expected_secret)
    .bind(new_secret)
    .bind(expected_pending)
    .bind(new_pending)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn insert_challenge(pool: &PgPool, c: &MfaChallenge) -> Db<()> {
    sqlx::query(
        "INSERT INTO mfa_challenges (token_hash, user_id, device_id, device_name, user_agent, \
         ip, created_at, expires_at, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&c.token_hash.as_bytes()[..])
    .bind(c.user_id.as_uuid())
    .bind(c.device_id.as_str())
    .bind(c.device_name.as_ref().map(|n| n.as_str()))
    .bind(c.user_agent.as_deref())
    .bind(ip_text(c.ip))
    .bind(c.created_at)
    .bind(c.expires_at)
    .bind(c.password_hash.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn get_challenge(
    pool: &PgPool,
    hash: &TokenHash,
    now: OffsetDateTime,
) -> Db<Option<MfaChallenge>> {
    let row: Option<ChallengeRow<Postgres>> = sqlx::query_as(concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM mfa_challenges \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
    ))
    .bind(&hash.as_bytes()[..])
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(ChallengeRow::record).transpose()?)
}

pub(super) async fn consume_challenge(
    pool: &PgPool,
    hash: &TokenHash,
    now: OffsetDateTime,
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE mfa_challenges SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(&hash.as_bytes()[..])
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn purge_challenges(pool: &PgPool, user: UserId) -> Db<u64> {
    let done = sqlx::query("DELETE FROM mfa_challenges WHERE user_id = $1")
        .bind(user.as_uuid())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Serialises the transactions that replace the user's code set (see the module doc).
async fn lock_user(tx: &mut PgConnection, user: UserId) -> Db<()> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user.as_uuid())
        .execute(tx)
        .await?;
    Ok(())
}

/// Inside a transaction holding [`lock_user`]: the user's recovery codes become exactly
/// `codes`.
async fn replace_codes(
    tx: &mut PgConnection,
    user: UserId,
    codes: &[RecoveryCodeHash],
    now: OffsetDateTime,
) -> Db<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.as_uuid())
        .execute(&mut *tx)
        .await?;
    let hashes: Vec<&[u8]> = codes.iter().map(|c| &c.as_bytes()[..]).collect();
    sqlx::query(
        "INSERT INTO recovery_codes (user_id, code_hash, created_at) \
         SELECT $1, h, $3 FROM UNNEST($2::bytea[]) AS h ON CONFLICT DO NOTHING",
    )
    .bind(user.as_uuid())
    .bind(hashes)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

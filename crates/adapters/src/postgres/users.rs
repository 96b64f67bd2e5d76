//! Users, their password credential and their roles.

use sqlx::{PgPool, Postgres};
use tessera_app::ports::{NewUser, UserRecord};
use tessera_core::Email;
use tessera_core::ids::{Role, UserId};
use tessera_core::password::PasswordHash;
use time::OffsetDateTime;

use super::Db;
use crate::rows::{self, UserRow, select_user};

pub(super) async fn insert(pool: &PgPool, user: &NewUser) -> Db<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(user.id.as_uuid())
    .bind(user.email.as_str())
    .bind(user.email.normalized())
    .bind(user.created_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO password_credentials (user_id, hash, updated_at) VALUES ($1, $2, $3)")
        .bind(user.id.as_uuid())
        .bind(user.password_hash.as_str())
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

pub(super) async fn get(pool: &PgPool, id: UserId) -> Db<Option<UserRecord>> {
    let row: Option<UserRow<Postgres>> = sqlx::query_as(select_user!("WHERE u.id = $1"))
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(UserRow::record))
}

pub(super) async fn get_by_email(pool: &PgPool, email: &Email) -> Db<Option<UserRecord>> {
    let row: Option<UserRow<Postgres>> =
        sqlx::query_as(select_user!("WHERE u.email_normalized = $1"))
            .bind(email.normalized())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(UserRow::record))
}

pub(super) async fn swap_password_hash(
    pool: &PgPool,
    id: UserId,
    expected: &PasswordHash,
    new: &PasswordHash,
    now: OffsetDateTime,
) -> Db<bool> {
    let done = sqlx::query(
        "UPDATE password_credentials SET hash = $3, updated_at = $4 \
         WHERE user_id = $1 AND hash = $2",
    )
    .bind(id.as_uuid())
    .bind(expected.as_str())
    .bind(new.as_str())
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One guarded statement per direction, so of two concurrent disables exactly one reports
/// the change (and only its time is kept).
pub(super) async fn swap_disabled(
    pool: &PgPool,
    id: UserId,
    disabled_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Db<bool> {
    let done = match disabled_at {
        Some(at) => sqlx::query(
            "UPDATE users SET disabled_at = $2, updated_at = $3 \
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id.as_uuid())
        .bind(at)
        .bind(now),
        None => sqlx::query(
            "UPDATE users SET disabled_at = NULL, updated_at = $2 \
             WHERE id = $1 AND disabled_at IS NOT NULL",
        )
        .bind(id.as_uuid())
        .bind(now),
    }
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn list_roles(pool: &PgPool, id: UserId) -> Db<Vec<Role>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
            .bind(id.as_uuid())
            .fetch_all(pool)
            .await?;
    Ok(names
        .iter()
        .map(|n| rows::role(n))
        .collect::<Result<_, _>>()?)
}

pub(super) async fn replace_roles(pool: &PgPool, id: UserId, roles: &[Role]) -> Db<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
    for role in roles {
        sqlx::query(
            "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_uuid())
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

pub(super) async fn insert_role(pool: &PgPool, id: UserId, role: &Role) -> Db<()> {
    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(id.as_uuid())
        .bind(role.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

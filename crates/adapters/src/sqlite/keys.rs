//! Signing keys (the public half in clear, the seed sealed under the master key).

use sqlx::{Sqlite, SqlitePool};
use tessera_app::ports::StoredSigningKey;
use tessera_core::ids::KeyId;

use super::Db;
use super::micros::Micros;
use crate::rows::KeyRow;

pub(super) async fn insert(pool: &SqlitePool, key: &StoredSigningKey) -> Db<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, public_key, sealed_seed, created_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kid) DO NOTHING",
    )
    .bind(key.kid.as_str())
    .bind(&key.public_key[..])
    .bind(key.sealed_seed.as_slice())
    .bind(Micros(key.created_at))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list(pool: &SqlitePool) -> Db<Vec<StoredSigningKey>> {
    let rows: Vec<KeyRow<Sqlite>> = sqlx::query_as(
        "SELECT kid, public_key, sealed_seed, created_at FROM signing_keys \
         ORDER BY created_at DESC, kid",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(KeyRow::record)
        .collect::<Result<_, _>>()?)
}

/// The compare-and-swap of master-key rotation: one `UPDATE … WHERE sealed_seed = expected`.
pub(super) async fn swap_sealed_seed(
    pool: &SqlitePool,
    kid: &KeyId,
    expected: &[u8],
    new: &[u8],
) -> Db<bool> {
    let done =
        sqlx::query("UPDATE signing_keys SET sealed_seed = ?3 WHERE kid = ?1 AND sealed_seed = ?2")
            .bind(kid.as_str())
            .bind(expected)
            .bind(new)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

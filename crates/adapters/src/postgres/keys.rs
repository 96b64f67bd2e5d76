//! Signing keys (the public half in clear, the seed sealed under the master key).

use sqlx::PgPool;
use tessera_app::ports::StoredSigningKey;

use super::Db;
use super::rows::KeyRow;

pub(super) async fn insert(pool: &PgPool, key: &StoredSigningKey) -> Db<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, public_key, sealed_seed, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO NOTHING",
    )
    .bind(key.kid.as_str())
    .bind(&key.public_key[..])
    .bind(key.sealed_seed.as_slice())
    .bind(key.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool) -> Db<Vec<StoredSigningKey>> {
    let rows: Vec<KeyRow> = sqlx::query_as(
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

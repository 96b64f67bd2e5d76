//! [`PgStore`]: the production store. Several `tessera serve` nodes may share one database;
//! every rule that must hold across them (one live session per device, one winner per
//! rotation) is enforced by the database, not by the process.

mod error;
mod events;
mod keys;
mod rows;
mod sessions;
mod users;

use sqlx::postgres::{PgPool, PgPoolOptions};
use tessera_app::ports::{
    EventStore, InsertedSession, KeyStore, NewSession, NewUser, RefreshRecord, RefreshSwap,
    SecurityEvent, SessionRecord, SessionStore, Store, StoreError, StoreResult, StoredSigningKey,
    SwapOutcome, UserRecord, UserStore,
};
use tessera_core::Email;
use tessera_core::ids::{Role, SessionId, UserId};
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use tessera_core::session::RevokeReason;
use time::OffsetDateTime;

use error::store_error;

/// What the query modules return; the trait methods map the error once, in `store_error`.
type Db<T> = Result<T, sqlx::Error>;

const MAX_CONNECTIONS: u32 = 10;

/// The Postgres implementation of every store port.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`). Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect(url)
            .await
            .map_err(store_error)?;
        Ok(Self { pool })
    }

    /// Wraps a pool configured by the caller.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Brings the schema up to date with the embedded `migrations/postgres` (an advisory
    /// lock makes concurrent migrations from several nodes safe).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl UserStore for PgStore {
    async fn insert_user(&self, user: &NewUser) -> StoreResult<()> {
        users::insert(&self.pool, user).await.map_err(store_error)
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        users::get(&self.pool, id).await.map_err(store_error)
    }

    async fn get_user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        users::get_by_email(&self.pool, email)
            .await
            .map_err(store_error)
    }

    async fn swap_password_hash(
        &self,
        id: UserId,
        expected: &PasswordHash,
        new: &PasswordHash,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        users::swap_password_hash(&self.pool, id, expected, new, now)
            .await
            .map_err(store_error)
    }

    async fn list_roles(&self, id: UserId) -> StoreResult<Vec<Role>> {
        users::list_roles(&self.pool, id).await.map_err(store_error)
    }

    async fn swap_roles(&self, id: UserId, roles: &[Role]) -> StoreResult<()> {
        users::swap_roles(&self.pool, id, roles)
            .await
            .map_err(store_error)
    }
}

impl SessionStore for PgStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<InsertedSession> {
        sessions::insert(&self.pool, session)
            .await
            .map_err(store_error)
    }

    async fn get_session(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        sessions::get(&self.pool, id).await.map_err(store_error)
    }

    async fn get_refresh(&self, hash: &TokenHash) -> StoreResult<Option<RefreshRecord>> {
        sessions::get_refresh(&self.pool, hash)
            .await
            .map_err(store_error)
    }

    async fn swap_refresh(&self, swap: &RefreshSwap) -> StoreResult<SwapOutcome> {
        sessions::swap_refresh(&self.pool, swap)
            .await
            .map_err(store_error)
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        sessions::revoke(&self.pool, id, reason, now)
            .await
            .map_err(store_error)
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<SessionId>> {
        sessions::revoke_for_user(&self.pool, user, keep, reason, now)
            .await
            .map_err(store_error)
    }

    async fn list_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        sessions::list_live(&self.pool, user, now)
            .await
            .map_err(store_error)
    }
}

impl EventStore for PgStore {
    async fn insert_event(&self, event: &SecurityEvent) -> StoreResult<()> {
        events::insert(&self.pool, event).await.map_err(store_error)
    }

    async fn list_events(&self, user: UserId, limit: u32) -> StoreResult<Vec<SecurityEvent>> {
        events::list(&self.pool, user, limit)
            .await
            .map_err(store_error)
    }
}

impl KeyStore for PgStore {
    async fn insert_signing_key(&self, key: &StoredSigningKey) -> StoreResult<()> {
        keys::insert(&self.pool, key).await.map_err(store_error)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        keys::list(&self.pool).await.map_err(store_error)
    }
}

impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_error)
    }
}

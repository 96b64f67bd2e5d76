//! [`SqliteStore`]: the embedded default store, one SQLite file in WAL mode.
//!
//! SQLite admits one writer at a time, so the store keeps two pools: a writer pool of
//! exactly one connection, through which every write transaction queues (instead of
//! failing with `SQLITE_BUSY`), and a reader pool for plain reads, which WAL lets run
//! beside the writer.

mod error;
mod events;
mod keys;
mod micros;
mod rows;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
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

/// Write transactions take the write lock up front, so a transaction that reads first
/// cannot fail later on lock upgrade.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;

/// The SQLite implementation of every store port.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`: `sqlite://PATH` or `sqlite:PATH`,
    /// a relative PATH being relative to the working directory. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(store_error)?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        // The writer comes first: it creates the file and switches it to WAL (a lasting
        // property of the file) before any reader opens it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(
                options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(store_error)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(Self { writer, reader })
    }

    /// Brings the schema up to date with the embedded `migrations/sqlite`.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/sqlite")
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &NewUser) -> StoreResult<()> {
        users::insert(&self.writer, user).await.map_err(store_error)
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        users::get(&self.reader, id).await.map_err(store_error)
    }

    async fn get_user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        users::get_by_email(&self.reader, email)
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
        users::swap_password_hash(&self.writer, id, expected, new, now)
            .await
            .map_err(store_error)
    }

    async fn list_roles(&self, id: UserId) -> StoreResult<Vec<Role>> {
        users::list_roles(&self.reader, id)
            .await
            .map_err(store_error)
    }

    async fn swap_roles(&self, id: UserId, roles: &[Role]) -> StoreResult<()> {
        users::swap_roles(&self.writer, id, roles)
            .await
            .map_err(store_error)
    }
}

impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<InsertedSession> {
        // One writer connection and BEGIN IMMEDIATE serialise logins completely, so the
        // one-live-session-per-device index never rejects an insert here (no retry needed).
        sessions::insert(&self.writer, session)
            .await
            .map_err(store_error)
    }

    async fn get_session(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        sessions::get(&self.reader, id).await.map_err(store_error)
    }

    async fn get_refresh(&self, hash: &TokenHash) -> StoreResult<Option<RefreshRecord>> {
        sessions::get_refresh(&self.reader, hash)
            .await
            .map_err(store_error)
    }

    async fn swap_refresh(&self, swap: &RefreshSwap) -> StoreResult<SwapOutcome> {
        sessions::swap_refresh(&self.writer, swap)
            .await
            .map_err(store_error)
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        sessions::revoke(&self.writer, id, reason, now)
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
        sessions::revoke_for_user(&self.writer, user, keep, reason, now)
            .await
            .map_err(store_error)
    }

    async fn list_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        sessions::list_live(&self.reader, user, now)
            .await
            .map_err(store_error)
    }
}

impl EventStore for SqliteStore {
    async fn insert_event(&self, event: &SecurityEvent) -> StoreResult<()> {
        events::insert(&self.writer, event)
            .await
            .map_err(store_error)
    }

    async fn list_events(&self, user: UserId, limit: u32) -> StoreResult<Vec<SecurityEvent>> {
        events::list(&self.reader, user, limit)
            .await
            .map_err(store_error)
    }
}

impl KeyStore for SqliteStore {
    async fn insert_signing_key(&self, key: &StoredSigningKey) -> StoreResult<()> {
        keys::insert(&self.writer, key).await.map_err(store_error)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        keys::list(&self.reader).await.map_err(store_error)
    }
}

impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(drop)
            .map_err(store_error)
    }
}

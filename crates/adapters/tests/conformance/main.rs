//! The store conformance suite (`tessera_app::testkit::store_suite`), once per backend,
//! plus checks on the migrations; the limiter suite once per limiter (`limiters`), and
//! the Redis limiter's outage behaviour against a private `redis-server`
//! (`redis_outage`) and over TLS (`redis_tls`); the Redis revocation bus between two instances and across a restart
//! of a private `redis-server` (`revocation_bus`). SQLite always runs; Postgres runs when
//! `TESSERA_TEST_DATABASE_URL` names a server (each test gets its own database), and
//! skips loudly otherwise — or fails, under `TESSERA_TEST_REQUIRE=all`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chain_migration;
mod limiter_properties;
mod limiters;
mod migrations;
mod redis_outage;
mod redis_tls;
mod revocation_bus;

use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{PgStore, SqliteStore};

async fn sqlite_store() -> Option<(SqliteStore, TestDatabase)> {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    Some((store, db))
}

async fn postgres_store() -> Option<(PgStore, TestDatabase)> {
    let db = TestDatabase::postgres().await?;
    let store = PgStore::connect(db.url())
        .await
        .expect("connect to Postgres");
    store.migrate().await.expect("migrate Postgres");
    Some((store, db))
}

tessera_app::store_conformance!(sqlite, sqlite_store());
tessera_app::store_conformance!(postgres, postgres_store());

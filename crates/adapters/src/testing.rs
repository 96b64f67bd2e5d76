//! Test support (feature `testing`): throw-away databases, and the one rule for suites
//! whose backend is not configured — skip loudly, or fail when `TESSERA_TEST_REQUIRE=all`
//! (CI must never skip).
//!
//! ```no_run
//! # async fn demo() {
//! use tessera_adapters::testing::TestDatabase;
//! if let Some(db) = TestDatabase::postgres().await {
//!     let store = tessera_adapters::PgStore::open(db.url()).await.unwrap();
//!     // … the database is dropped when `db` goes out of scope, even after a panic.
//! }
//! # }
//! ```

// Test support: a setup that cannot proceed is a failed test, so it may panic.
#![allow(clippy::panic, clippy::expect_used)]

use std::path::PathBuf;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The Postgres server the suites create their databases on.
pub const DATABASE_URL_VAR: &str = "TESSERA_TEST_DATABASE_URL";
/// Set to `all` to turn every skip into a failure.
pub const REQUIRE_VAR: &str = "TESSERA_TEST_REQUIRE";
/// The URL of the service machines' Postgres, for the skip message.
const EXAMPLE_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Called when a suite's backend or tool is not available: prints a loud `SKIPPED` notice
/// to stderr and returns (the caller then returns early), unless `TESSERA_TEST_REQUIRE=all`,
/// in which case it panics with the same message.
pub fn skip_or_fail(what: &str, how_to_enable: &str) {
    let message = format!("SKIPPED: {what} — {how_to_enable}");
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "all") {
        panic!("{message} ({REQUIRE_VAR}=all forbids skipping)");
    }
    let rule = "!".repeat(78);
    eprintln!("\n{rule}\n{message}\n{rule}\n");
}

/// A database that exists for one test and is removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Postgres { server: String, name: String },
    Sqlite { path: PathBuf },
}

impl TestDatabase {
    /// A fresh database `tessera_test_<uuid>` on the server named by
    /// `TESSERA_TEST_DATABASE_URL`; `None` (after a loud notice) when that is unset.
    /// Panics when the server is set but cannot be reached: that is a broken setup.
    pub async fn postgres() -> Option<Self> {
        let Ok(server) = std::env::var(DATABASE_URL_VAR) else {
            skip_or_fail(
                "Postgres tests",
                &format!("set {DATABASE_URL_VAR}={EXAMPLE_DATABASE_URL} to run them"),
            );
            return None;
        };
        let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
        let mut url = url::Url::parse(&server)
            .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a URL: {e}"));
        url.set_path(&name);
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!("cannot reach the Postgres server in {DATABASE_URL_VAR}: {e}")
        });
        // The name is ours (hex digits only), so formatting it into the statement is safe.
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        admin.close().await.ok();
        Some(Self {
            url: url.into(),
            kind: Kind::Postgres { server, name },
        })
    }

    /// A fresh SQLite file under the system temp directory (not yet created: the store
    /// creates it); the file and its `-wal`/`-shm` companions are deleted on drop.
    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!(
            "tessera_test_{}.sqlite3",
            uuid::Uuid::new_v4().simple()
        ));
        Self {
            url: format!("sqlite://{}", path.display()),
            kind: Kind::Sqlite { path },
        }
    }

    /// The URL to connect a store to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.kind {
            Kind::Postgres { server, name } => drop_postgres(server.clone(), name.clone()),
            Kind::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    match std::fs::remove_file(&file) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => eprintln!("could not remove {}: {e}", file.display()),
                    }
                }
            }
        }
    }
}

/// Drops the database from a thread of its own with its own small runtime, so it works
/// from any context: inside or outside a runtime, and while unwinding from a panic.
fn drop_postgres(server: String, name: String) {
    let outcome = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut admin = PgConnection::connect(&server)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .execute(&mut admin)
            .await
            .map_err(|e| e.to_string())?;
            admin.close().await.ok();
            Ok(())
        })
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not drop a test database: {e}"),
        Err(_) => eprintln!("the thread dropping a test database panicked"),
    }
}

/// `migrator` without the migrations numbered `version` and later: the schema an older
/// release left, for tests of what later migrations do to existing rows.
pub(crate) fn migrations_before(
    mut migrator: sqlx::migrate::Migrator,
    version: i64,
) -> sqlx::migrate::Migrator {
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect();
    migrator
}

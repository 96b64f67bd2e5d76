//! The macros that run one test body once per backend.

/// Runs one async test body against SQLite and against Postgres, each on a fresh
/// database. With an `Options` expression before the body (evaluated afresh in each
/// test), both servers start with it: a case that needs a setting is still one body, and
/// nothing in it asks which backend it runs on.
///
/// A case that starts its servers itself (several nodes, a server notifying a sink of
/// its own) is given the backend instead, after `Backend =>`.
///
/// ```ignore
/// both_backends!(name, |app: TestApp| async move { … });
/// both_backends!(name, Options { retry_window_secs: 5, ..Options::default() }, |app: TestApp| async move { … });
/// both_backends!(name, Backend => |backend: Backend| async move { … });
/// ```
#[macro_export]
macro_rules! both_backends {
    ($name:ident, Backend => $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::helpers::Backend::Postgres).await;
            }
        }
    };
    ($name:ident, $body:expr $(,)?) => {
        $crate::both_backends!($name, $crate::helpers::Options::default(), $body);
    };
    ($name:ident, $options:expr, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) =
                    $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $options)
                        .await
                {
                    ($body)(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn_with(
                    $crate::helpers::Backend::Postgres,
                    $options,
                )
                .await
                {
                    ($body)(app).await;
                }
            }
        }
    };
}
/// Runs one async test body against a bare, migrated store of each backend (no server):
/// for tests at the level of the use cases. `$body` is called with the store.
#[macro_export]
macro_rules! both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = tessera_adapters::testing::TestDatabase::sqlite();
                let store = tessera_adapters::SqliteStore::connect(db.url())
                    .await
                    .unwrap();
                store.migrate().await.unwrap();
                ($body)(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = tessera_adapters::testing::TestDatabase::postgres().await else {
                    return;
                };
                let store = tessera_adapters::PgStore::connect(db.url()).await.unwrap();
                store.migrate().await.unwrap();
                ($body)(store).await;
            }
        }
    };
}

//! A failed login must not tell known emails from unknown ones by its latency: the known
//! email's `login_failed` write is measured, and an unknown email's failure is held as
//! long (`tessera_app` `pacing`). The latencies themselves are compared by the
//! `login_timing` benchmark, never by a test.

use std::sync::Arc;

use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{MemoryLimiter, PgStore, SqliteStore};
use tessera_app::ports::Store;
use tessera_app::testkit::ManualClock;
use tessera_app::{App, AppError, LoginInput, RequestContext, Settings};
use tessera_core::Email;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use tessera_core::ids::DeviceId;
use tessera_core::password::Password;
use time::macros::datetime;

use crate::helpers::{PASSWORD, rand32};

async fn wrong_password_on_each_kind_of_email<S: Store>(store: S) {
    let app = App::build(
        store,
        Arc::new(ManualClock::new(datetime!(2026-06-01 10:00 UTC))),
        Arc::new(MemoryLimiter::new()),
        None,
        MasterKeyRing::new(MasterKey::from_bytes(rand32()), vec![]),
        Settings::default(),
    )
    .await
    .unwrap();
    let ctx = RequestContext::default();
    app.register("known@example.com", PASSWORD.into(), &ctx)
        .await
        .unwrap();
    let wrong = |email: &str| LoginInput {
        email: Email::parse(email).unwrap(),
        password: Password::presented("not the password".into()).unwrap(),
        device_id: DeviceId::parse("laptop").unwrap(),
        device_name: None,
        device_token: None,
    };

    let unknown = app.login(wrong("nobody@example.com"), &ctx).await;
    assert!(
        matches!(unknown, Err(AppError::InvalidCredentials)),
        "{unknown:?}"
    );
    assert!(
        app.failed_login_hold().is_zero(),
        "an unknown email's failure writes nothing, so it measures nothing"
    );
    let known = app.login(wrong("known@example.com"), &ctx).await;
    assert!(
        matches!(known, Err(AppError::InvalidCredentials)),
        "{known:?}"
    );
    assert!(
        !app.failed_login_hold().is_zero(),
        "a known email's failure sets the hold from its event write"
    );
}

mod a_known_emails_failure_write_sets_how_long_an_unknown_emails_failure_is_held {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let db = TestDatabase::sqlite();
        let store = SqliteStore::connect(db.url()).await.unwrap();
        store.migrate().await.unwrap();
        wrong_password_on_each_kind_of_email(store).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let store = PgStore::connect(db.url()).await.unwrap();
        store.migrate().await.unwrap();
        wrong_password_on_each_kind_of_email(store).await;
    }
}

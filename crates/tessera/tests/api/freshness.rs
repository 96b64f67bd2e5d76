//! The step-up freshness rule, at the level of the use cases: every check of "an MFA
//! within N seconds" is the one rule of `tessera_core::policy`, skew guard included.

use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{PgStore, SqliteStore};
use tessera_app::ports::{Clock, Store};
use tessera_app::{AppError, RequestContext};
use time::Duration;

use crate::helpers::use_cases::{app_with_user, enrolled};

/// A session whose MFA time lies `ahead` in the future of the server's clock (another
/// node's fast clock, or a tampered row) asks for recovery codes.
async fn regenerate_with_mfa_ahead<S: Store>(store: S, ahead: Duration) -> Result<(), AppError> {
    let (app, clock) = app_with_user(store, "skew@example.com").await;
    let (tokens, _) = enrolled(&app, &clock, "skew@example.com", "laptop").await;
    // The session's MFA time is the confirmation's; the principal carries it.
    let who = app.authenticate(&tokens.access_token).await.unwrap();
    clock.set(clock.now() - ahead);
    app.regenerate_recovery_codes(&who, &RequestContext::default())
        .await
        .map(|_| ())
}

macro_rules! on_both_stores {
    ($name:ident, $ahead:expr, $check:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let db = TestDatabase::sqlite();
                let store = SqliteStore::connect(db.url()).await.unwrap();
                store.migrate().await.unwrap();
                let result = regenerate_with_mfa_ahead(store, $ahead).await;
                assert!($check(&result), "{result:?}");
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = TestDatabase::postgres().await else {
                    return;
                };
                let store = PgStore::connect(db.url()).await.unwrap();
                store.migrate().await.unwrap();
                let result = regenerate_with_mfa_ahead(store, $ahead).await;
                assert!($check(&result), "{result:?}");
            }
        }
    };
}

on_both_stores!(
    recovery_codes_refuse_an_mfa_time_further_in_the_future_than_the_clock_skew,
    Duration::seconds(31),
    |r: &Result<(), AppError>| matches!(r, Err(AppError::StepUpRequired { max_age_secs: 300 }))
);
on_both_stores!(
    recovery_codes_accept_an_mfa_time_within_the_clock_skew,
    Duration::seconds(30),
    |r: &Result<(), AppError>| r.is_ok()
);

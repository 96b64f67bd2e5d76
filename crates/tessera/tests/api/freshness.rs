//! The step-up freshness rule, at the level of the use cases: every check of "an MFA
//! within N seconds" is the one rule of `tessera_core::policy`, skew guard included.

use std::sync::Arc;

use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{MemoryLimiter, PgStore, SqliteStore};
use tessera_app::ports::{Clock, Store};
use tessera_app::testkit::ManualClock;
use tessera_app::{App, AppError, LoginInput, LoginOutcome, RequestContext, Settings};
use tessera_core::Email;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use tessera_core::ids::DeviceId;
use tessera_core::mfa::totp::{TotpCode, TotpSecret, code_at_step, step_at};
use tessera_core::password::Password;
use time::Duration;
use time::macros::datetime;

use crate::helpers::{PASSWORD, rand32};

/// A session whose MFA time lies `ahead` in the future of the server's clock (another
/// node's fast clock, or a tampered row) asks for recovery codes.
async fn regenerate_with_mfa_ahead<S: Store>(store: S, ahead: Duration) -> Result<(), AppError> {
    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 10:00 UTC)));
    let ring = MasterKeyRing::new(MasterKey::from_bytes(rand32()), vec![]);
    let app = App::build(
        store,
        clock.clone(),
        Arc::new(MemoryLimiter::new()),
        None,
        ring,
        Settings::default(),
    )
    .await
    .unwrap();
    let ctx = RequestContext::default();
    let email = Email::parse("skew@example.com").unwrap();
    let password = || Password::new_choice(PASSWORD.into()).unwrap();
    app.register(email.as_str(), PASSWORD.into(), &ctx)
        .await
        .unwrap();
    let login = LoginInput {
        email,
        password: password(),
        device_id: DeviceId::parse("laptop").unwrap(),
        device_name: None,
        device_token: None,
    };
    let Ok(LoginOutcome::Authenticated(tokens)) = app.login(login, &ctx).await else {
        panic!("a password-only login opens a session");
    };
    let who = app.authenticate(&tokens.access_token).await.unwrap();
    let setup = app.totp_setup(&who, password(), &ctx).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup.secret.as_bytes())
        .unwrap();
    let secret = TotpSecret::from_bytes(&secret).unwrap();
    let code = format!("{:06}", code_at_step(&secret, step_at(clock.now()), 6));
    app.totp_confirm(&who, TotpCode::parse(&code).unwrap(), &ctx)
        .await
        .unwrap();
    // The session's MFA time is the confirmation's; the principal carries it.
    let who = app.authenticate(&tokens.access_token).await.unwrap();
    clock.set(clock.now() - ahead);
    app.regenerate_recovery_codes(&who, &ctx).await.map(|_| ())
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

//! A login's second step racing a password change, an admin MFA reset or an account
//! disable, at the level of
//! the use cases: the change lands after the code was accepted and before the challenge
//! is consumed, and its purge of the challenges only after the second step returned —
//! so its revocation cannot see the session the second step opens. That session must not
//! stand (the same rule as the password login).

use std::sync::{Arc, Mutex};

use tessera_adapters::MemoryLimiter;
use tessera_app::ports::{Clock, Store};
use tessera_app::testkit::ManualClock;
use tessera_app::{
    App, AppError, LoginInput, LoginOutcome, RequestContext, SecondFactor, Settings,
};
use tessera_core::Email;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use tessera_core::ids::{DeviceId, UserId};
use tessera_core::mfa::totp::{TotpCode, TotpSecret, code_at_step, step_at};
use tessera_core::password::{Password, PasswordHash};
use tessera_core::session::RevokeReason;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::both_stores;
use crate::helpers::use_cases::Interleave;
use crate::helpers::{PASSWORD, rand32};

/// What lands between the accepted code and the consumed challenge.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `change_password` up to its revocation (its purge comes later).
    Password,
    /// `admin_mfa_reset`'s removal of the factor and its revocation (the purge later).
    MfaReset,
    /// `admin_disable_user`'s flag and its revocation (the purge later).
    Disable,
}

const T0: OffsetDateTime = datetime!(2026-06-01 10:00 UTC);

async fn second_step_racing<S: Store>(store: S, change: Change) {
    let clock = Arc::new(ManualClock::new(T0));
    let limiter = Arc::new(Interleave {
        inner: MemoryLimiter::new(),
        hooked: "mfa",
        on_refund: Mutex::new(None),
    });
    let ring = MasterKeyRing::new(MasterKey::from_bytes(rand32()), vec![]);
    let app = App::build(
        store.clone(),
        clock.clone(),
        limiter.clone(),
        None,
        ring,
        Settings::default(),
    )
    .await
    .unwrap();
    let ctx = RequestContext::default();
    let email = Email::parse("racer@example.com").unwrap();
    let password = || Password::new_choice(PASSWORD.into()).unwrap();
    let login = |device: &str| LoginInput {
        email: email.clone(),
        password: password(),
        device_id: DeviceId::parse(device).unwrap(),
        device_name: None,
        device_token: None,
    };
    let user = app
        .register(email.as_str(), PASSWORD.into(), &ctx)
        .await
        .unwrap();

    // TOTP on, from a first session.
    let Ok(LoginOutcome::Authenticated(first)) = app.login(login("laptop"), &ctx).await else {
        panic!("a password-only login opens a session");
    };
    let who = app.authenticate(&first.access_token).await.unwrap();
    let setup = app.totp_setup(&who, password(), &ctx).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup.secret.as_bytes())
        .unwrap();
    let secret = TotpSecret::from_bytes(&secret).unwrap();
    let code = format!("{:06}", code_at_step(&secret, step_at(clock.now()), 6));
    let recovery = app
        .totp_confirm(&who, TotpCode::parse(&code).unwrap(), &ctx)
        .await
        .unwrap();

    // Another device passes the password and waits for its code.
    clock.advance(Duration::seconds(30));
    let Ok(LoginOutcome::MfaRequired(pending)) = app.login(login("phone"), &ctx).await else {
        panic!("with TOTP on, the password alone opens nothing");
    };
    let (racing, id, kept) = (store.clone(), user.id, first.session_id);
    let now = clock.now();
    *limiter.on_refund.lock().unwrap() = Some(Box::pin(async move {
        land(&racing, change, id, kept, now).await;
    }));
    let code = SecondFactor::parse(&recovery[0].display()).unwrap();
    let result = app.login_mfa(&pending.mfa_token, &code, &ctx).await;
    store.purge_mfa_challenges(user.id).await.unwrap();

    assert!(
        matches!(result, Err(AppError::InvalidMfaToken)),
        "{change:?} between the code and the session: {result:?}"
    );
    let live: Vec<_> = store
        .list_sessions(user.id, clock.now())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.state.id)
        .collect();
    let expected = match change {
        Change::Password => vec![first.session_id],
        Change::MfaReset | Change::Disable => vec![],
    };
    assert_eq!(live, expected, "no session of the second step survives");
}

async fn land<S: Store>(
    store: &S,
    change: Change,
    user: UserId,
    keep: tessera_core::ids::SessionId,
    now: OffsetDateTime,
) {
    match change {
        Change::Password => {
            let current = store.get_user(user).await.unwrap().unwrap().password_hash;
            let new = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into());
            assert!(
                store
                    .swap_password_hash(user, &current, &new, now)
                    .await
                    .unwrap()
            );
            store
                .revoke_user_sessions(user, Some(keep), RevokeReason::PasswordChanged, now)
                .await
                .unwrap();
        }
        Change::MfaReset => {
            assert!(store.purge_mfa(user).await.unwrap());
            store
                .revoke_user_sessions(user, None, RevokeReason::MfaReset, now)
                .await
                .unwrap();
        }
        Change::Disable => {
            assert!(
                store
                    .swap_user_disabled(user, Some(now), now)
                    .await
                    .unwrap()
            );
            store
                .revoke_user_sessions(user, None, RevokeReason::RevokedByAdmin, now)
                .await
                .unwrap();
        }
    }
}

both_stores!(
    a_password_change_between_code_and_session_leaves_no_mfa_session,
    |store| second_step_racing(store, Change::Password)
);
both_stores!(
    an_admin_mfa_reset_between_code_and_session_leaves_no_mfa_session,
    |store| second_step_racing(store, Change::MfaReset)
);
both_stores!(
    an_account_disable_between_code_and_session_leaves_no_mfa_session,
    |store| second_step_racing(store, Change::Disable)
);

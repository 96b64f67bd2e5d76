//! Password reset at the level of the use cases, where a test can hold a link without its
//! email: a reset landing inside a password login, and resets the hashing pool turns away.

use std::sync::{Arc, Mutex};

use tessera_adapters::MemoryLimiter;
use tessera_app::ports::{Clock, RateLimiter, Store};
use tessera_app::testkit::ManualClock;
use tessera_app::{
    App, AppError, HashingSettings, LoginInput, LoginOutcome, RESET_TOKEN_TTL, RequestContext,
    Settings,
};
use tessera_core::Email;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use tessera_core::ids::{DeviceId, UserId};
use tessera_core::password::Password;
use tessera_core::secret::ResetToken;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::both_stores;
use crate::helpers::use_cases::Interleave;
use crate::helpers::{PASSWORD, rand32};

const T0: OffsetDateTime = datetime!(2026-06-01 10:00 UTC);
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn app_on<S: Store>(store: S, limiter: Arc<dyn RateLimiter>, settings: Settings) -> App<S> {
    let clock = Arc::new(ManualClock::new(T0)) as Arc<dyn Clock>;
    let ring = MasterKeyRing::new(MasterKey::from_bytes(rand32()), vec![]);
    App::build(store, clock, limiter, None, ring, settings)
        .await
        .unwrap()
}

/// A live link for `user`, stored as a request stores it; its token.
async fn link<S: Store>(app: &App<S>, user: UserId) -> String {
    let token = ResetToken::from_random(rand32());
    let now = app.now();
    app.store()
        .replace_reset_token(user, &token.hash(), now, now + RESET_TOKEN_TTL)
        .await
        .unwrap();
    token.expose()
}

fn login_input(email: &str, password: &str, device: &str) -> LoginInput {
    LoginInput {
        email: Email::parse(email).unwrap(),
        password: Password::presented(password.into()).unwrap(),
        device_id: DeviceId::parse(device).unwrap(),
        device_name: None,
        device_token: None,
    }
}

/// The reset completes after the login verified the old password and before its session
/// opens, so the reset's revocation cannot see that session: the login must not stand.
async fn a_password_login_racing_a_reset_leaves_no_session<S: Store>(store: S) {
    let limiter = Arc::new(Interleave {
        inner: MemoryLimiter::new(),
        hooked: "account",
        on_refund: Mutex::new(None),
    });
    let app = app_on(store.clone(), limiter.clone(), Settings::default()).await;
    let ctx = RequestContext::default();
    let email = "racer@example.com";
    let user = app.register(email, PASSWORD.into(), &ctx).await.unwrap();
    let token = link(&app, user.id).await;

    let resetting = app.clone();
    *limiter.on_refund.lock().unwrap() = Some(Box::pin(async move {
        let ctx = RequestContext::default();
        resetting
            .complete_password_reset(&token, NEW_PASSWORD.into(), &ctx)
            .await
            .unwrap();
    }));
    let raced = app
        .login(login_input(email, PASSWORD, "laptop"), &ctx)
        .await;
    assert!(
        matches!(raced, Err(AppError::InvalidCredentials)),
        "{raced:?}"
    );
    assert!(limiter.on_refund.lock().unwrap().is_none(), "the reset ran");
    let live = store.list_sessions(user.id, app.now()).await.unwrap();
    assert!(live.is_empty(), "{live:?}");
    let after = app
        .login(login_input(email, NEW_PASSWORD, "laptop"), &ctx)
        .await;
    assert!(
        matches!(after, Ok(LoginOutcome::Authenticated(_))),
        "{after:?}"
    );
}

/// One hashing worker, one waiting slot, a wait of a millisecond: of many concurrent
/// completions some are turned away with 503. Each of those must keep its link, so the
/// user's retry works; each that went through must have used its link up.
async fn a_reset_the_hashing_pool_turns_away_keeps_its_link<S: Store>(store: S) {
    let settings = Settings {
        hashing: HashingSettings {
            workers: 1,
            queue: 1,
            wait: std::time::Duration::from_millis(1),
        },
        ..Settings::default()
    };
    let app = app_on(store, Arc::new(MemoryLimiter::new()), settings).await;
    let ctx = RequestContext::default();
    let mut links = Vec::new();
    for i in 0..12 {
        let email = format!("busy{i}@example.com");
        let user = app.register(&email, PASSWORD.into(), &ctx).await.unwrap();
        links.push((email, link(&app, user.id).await));
    }
    let mut running = tokio::task::JoinSet::new();
    for (email, token) in links {
        let app = app.clone();
        running.spawn(async move {
            let ctx = RequestContext::default();
            let result = app
                .complete_password_reset(&token, NEW_PASSWORD.into(), &ctx)
                .await;
            (email, token, result)
        });
    }
    let (mut done, mut turned_away) = (Vec::new(), Vec::new());
    for (email, token, result) in running.join_all().await {
        match result {
            Ok(()) => done.push(token),
            Err(AppError::Overloaded { .. }) => turned_away.push((email, token)),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(
        !turned_away.is_empty(),
        "one worker should turn some of 12 away"
    );
    for (email, token) in &turned_away {
        // Nothing changed: the old password still works, and the link still does.
        let before = app.login(login_input(email, PASSWORD, "d"), &ctx).await;
        assert!(
            matches!(before, Ok(LoginOutcome::Authenticated(_))),
            "{before:?}"
        );
        app.complete_password_reset(token, NEW_PASSWORD.into(), &ctx)
            .await
            .unwrap();
        let after = app.login(login_input(email, NEW_PASSWORD, "d"), &ctx).await;
        assert!(
            matches!(after, Ok(LoginOutcome::Authenticated(_))),
            "{after:?}"
        );
        done.push(token.clone());
    }
    for token in done {
        let again = app
            .complete_password_reset(&token, NEW_PASSWORD.into(), &ctx)
            .await;
        assert!(
            matches!(again, Err(AppError::InvalidResetToken)),
            "{again:?}"
        );
    }
}

/// A password out of bounds is refused before the link is looked at, so a typo does not
/// use the link up.
async fn a_password_out_of_bounds_leaves_the_link_usable<S: Store>(store: S) {
    let app = app_on(store, Arc::new(MemoryLimiter::new()), Settings::default()).await;
    let ctx = RequestContext::default();
    let user = app
        .register("typo@example.com", PASSWORD.into(), &ctx)
        .await
        .unwrap();
    let token = link(&app, user.id).await;
    for bad in [String::new(), "seven77".into(), "x".repeat(257)] {
        let refused = app.complete_password_reset(&token, bad, &ctx).await;
        assert!(
            matches!(
                refused,
                Err(AppError::InvalidField {
                    field: "new_password",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    app.complete_password_reset(&token, NEW_PASSWORD.into(), &ctx)
        .await
        .unwrap();
}

both_stores!(
    a_password_login_racing_a_reset_leaves_no_session,
    a_password_login_racing_a_reset_leaves_no_session
);
both_stores!(
    a_reset_the_hashing_pool_turns_away_keeps_its_link,
    a_reset_the_hashing_pool_turns_away_keeps_its_link
);
both_stores!(
    a_password_out_of_bounds_leaves_the_link_usable,
    a_password_out_of_bounds_leaves_the_link_usable
);

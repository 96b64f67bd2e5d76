//! Tests at the level of the use cases (no server): an app over a bare store with a
//! manual clock, its logins and enrolment, and a limiter that interleaves a step.

use std::sync::{Arc, Mutex};

use tessera_adapters::MemoryLimiter;
use tessera_app::ports::{BoxFuture, Clock, LimiterHealth, RateLimiter, Store, Ticket};
use tessera_app::testkit::ManualClock;
use tessera_app::{App, LoginInput, LoginOutcome, RequestContext, Settings, Tokens};
use tessera_core::Email;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use tessera_core::ids::DeviceId;
use tessera_core::mfa::totp::{TotpCode, TotpSecret, code_at_step, step_at};
use tessera_core::password::Password;
use tessera_core::ratelimit::{Decision, LimitKey, Policy};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{PASSWORD, rand32};

/// An app over `store` with a manual clock and one registered user, `email`.
pub async fn app_with_user<S: Store>(store: S, email: &str) -> (App<S>, Arc<ManualClock>) {
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
    app.register(email, PASSWORD.into(), &RequestContext::default())
        .await
        .unwrap();
    (app, clock)
}

/// A password login of `email` on `device`, which must open a session.
pub async fn login<S: Store>(app: &App<S>, email: &str, device: &str) -> Tokens {
    let input = LoginInput {
        email: Email::parse(email).unwrap(),
        password: Password::presented(PASSWORD.into()).unwrap(),
        device_id: DeviceId::parse(device).unwrap(),
        device_name: None,
        device_token: None,
    };
    match app.login(input, &RequestContext::default()).await {
        Ok(LoginOutcome::Authenticated(tokens)) => tokens,
        other => panic!("a password login opens a session: {other:?}"),
    }
}

/// Signs `email` in on `device` and enrols TOTP there; returns the session's tokens and
/// the secret.
pub async fn enrolled<S: Store>(
    app: &App<S>,
    clock: &ManualClock,
    email: &str,
    device: &str,
) -> (Tokens, TotpSecret) {
    let ctx = RequestContext::default();
    let tokens = login(app, email, device).await;
    let who = app.authenticate(&tokens.access_token).await.unwrap();
    let password = Password::new_choice(PASSWORD.into()).unwrap();
    let setup = app.totp_setup(&who, password, &ctx).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup.secret.as_bytes())
        .unwrap();
    let secret = TotpSecret::from_bytes(&secret).unwrap();
    let code = format!("{:06}", code_at_step(&secret, step_at(clock.now()), 6));
    app.totp_confirm(&who, TotpCode::parse(&code).unwrap(), &ctx)
        .await
        .unwrap();
    (tokens, secret)
}

/// A limiter that runs a one-off step when an attempt on a budget of kind `hooked` is
/// refunded: for `mfa`, the moment a code has been accepted and the challenge is about to
/// be consumed; for `account`, a password accepted before its session opens.
pub struct Interleave {
    pub inner: MemoryLimiter,
    pub hooked: &'static str,
    pub on_refund: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl RateLimiter for Interleave {
    fn reserve<'a>(
        &'a self,
        key: &'a LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> BoxFuture<'a, Decision> {
        self.inner.reserve(key, policy, now, ticket)
    }

    fn release<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.inner.release(key, ticket).await;
            let step = match key.kind() {
                kind if kind == self.hooked => self.on_refund.lock().unwrap().take(),
                _ => None,
            };
            if let Some(step) = step {
                step.await;
            }
        })
    }

    fn fail<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        self.inner.fail(key, ticket)
    }

    fn first_denial<'a>(
        &'a self,
        key: &'a LimitKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, bool> {
        self.inner.first_denial(key, window, now)
    }

    fn health(&self) -> LimiterHealth {
        self.inner.health()
    }
}

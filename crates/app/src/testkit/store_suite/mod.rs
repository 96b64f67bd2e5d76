//! The store conformance suite: every case is an async fn taking a fresh, migrated,
//! empty store. The same fns run unchanged against every backend through
//! [`store_conformance!`](crate::store_conformance); their names read as the behaviour
//! they prove.
//!
//! - `rotation`: the refresh compare-and-swap and the rotation history.
//! - `logins`: one live session per device, superseding, known devices.
//! - `expiry`: idle and absolute deadlines, driven by a [`ManualClock`](super::ManualClock).
//! - `revocation`: revoking one session or all of a user's.
//! - `users`: accounts, email lookups, password and role swaps, disabling.
//! - `records`: security events and signing keys.
//! - `mfa`: TOTP factors and their replay guard, recovery codes, login challenges, and
//!   recording an MFA on a session.
//! - `resealing`: what master-key rotation needs (listing sealed TOTP and outbox secrets,
//!   swapping sealed values only from the bytes read).
//! - `timestamps`: exact round trips of every stored instant.
//! - `purge`: retention (what goes, what a live session keeps, the batch bound).
//! - `audit`: the per-user hash chains, and retention by chain prefix.
//! - `outbox`: notification rows written with their event, claims, leases, settling.
//! - `reset`: password-reset tokens.
//!
//! The cases that run are listed once, in `__store_suite_cases!` (`testkit/macros.rs`).

#![deny(dead_code)]

mod audit;
mod expiry;
mod logins;
mod mfa;
mod one_step;
mod outbox;
mod purge;
mod records;
mod regeneration;
mod resealing;
mod reset;
mod revocation;
mod rotation;
mod timestamps;
mod users;

// Only the listed cases are public: one defined here but missing from the list is dead
// code, an error (`deny` above), rather than a case that never runs.
crate::__store_suite_cases!(__reexport_cases!(store_suite));

use std::net::{IpAddr, Ipv4Addr};

use tessera_core::Email;
use tessera_core::ids::{DeviceId, DeviceName, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::ports::{NewSession, NewUser, RefreshSwap, Store};

/// How many attempts the concurrency cases race.
pub(crate) const RACERS: usize = 16;

/// Runs `n` attempts at once (released together by a barrier), each given its index, and
/// returns their results in index order.
pub(crate) async fn race<S, T, F, Fut>(store: &S, n: usize, attempt: F) -> Vec<T>
where
    S: Store,
    T: Send + 'static,
    F: Fn(S, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..n {
        let (attempt, start) = (attempt(store.clone(), i), start.clone());
        racers.spawn(async move {
            start.wait().await;
            (i, attempt.await)
        });
    }
    let mut outcomes = racers.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Where every case's time starts: a fixed instant with a non-zero microsecond part.
pub(crate) const T0: OffsetDateTime = datetime!(2026-03-01 09:15:30.123456 UTC);

/// How long the sessions made by [`session_on`] live.
pub(crate) const IDLE: Duration = Duration::hours(1);
pub(crate) const ABSOLUTE: Duration = Duration::days(1);

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

pub(crate) fn token_hash() -> TokenHash {
    TokenHash::from_stored(&random::<32>()).expect("32 bytes make a token hash")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn device(raw: &str) -> DeviceId {
    DeviceId::parse(raw).expect("a valid device id")
}

/// Registers a user with a unique address and returns its id.
pub(crate) async fn given_user<S: Store>(store: &S) -> UserId {
    let user = NewUser {
        id: UserId::from_random(random()),
        email: Email::parse(&format!("user-{}@example.com", hex(&random::<6>()))).unwrap(),
        password_hash: PasswordHash::from_stored(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        ),
        created_at: T0,
    };
    store.insert_user(&user).await.expect("insert_user");
    user.id
}

/// A password login at `at` on `device_id`, living [`IDLE`] idle and [`ABSOLUTE`] in all.
pub(crate) fn session_on(user: UserId, device_id: &str, at: OffsetDateTime) -> NewSession {
    NewSession {
        id: SessionId::from_random(random()),
        user_id: user,
        device_id: device(device_id),
        device_name: Some(DeviceName::parse("Ana's phone").unwrap()),
        user_agent: Some("TesseraTest/1.0".into()),
        ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        created_at: at,
        idle_expires_at: at + IDLE,
        absolute_expires_at: at + ABSOLUTE,
        assurance: Assurance::Password,
        auth_time: at,
        mfa_verified_at: None,
        refresh_hash: token_hash(),
    }
}

/// A rotation of `presented` to a fresh successor at `now`, extending the idle deadline.
pub(crate) fn rotation(
    session: SessionId,
    presented: TokenHash,
    now: OffsetDateTime,
) -> RefreshSwap {
    RefreshSwap {
        session_id: session,
        presented,
        successor: token_hash(),
        sealed_successor: None,
        seals_expire_before: now,
        now,
        idle_expires_at: now + IDLE,
        ip: None,
        user_agent: None,
    }
}

//! The cases of the limiter suite; the list of those that run is `__limiter_suite_cases!`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tessera_core::ids::UserId;
use tessera_core::ratelimit::{Attempt, Decision, LimitKey, PENDING_LEASE, Policy, decide};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::ports::{Clock, LimiterHealth, RateLimiter, Ticket};
use crate::testkit::ManualClock;

/// Where every case's time starts: a fixed instant with a non-zero microsecond part.
const T0: OffsetDateTime = datetime!(2026-03-01 09:15:30.123456 UTC);
const WINDOW: Duration = Duration::minutes(10);
const THREE: Policy = Policy {
    limit: 3,
    window: WINDOW,
};

fn ticket() -> Ticket {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    Ticket(bytes)
}

fn ip(last: u8) -> LimitKey {
    LimitKey::login_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), "password")
}

fn account(email: &str) -> LimitKey {
    LimitKey::login_account(email, "password")
}

fn deny(retry_after: Duration) -> Decision {
    Decision::Deny { retry_after }
}

/// Reserves `n` attempts at `now`, asserting each is allowed, and settles each as a
/// failure; returns their tickets.
async fn allow_n<L: RateLimiter>(
    limiter: &L,
    key: &LimitKey,
    policy: Policy,
    now: OffsetDateTime,
    n: u32,
) -> Vec<Ticket> {
    let tickets = pending_n(limiter, key, policy, now, n).await;
    for t in &tickets {
        limiter.fail(key, *t).await;
    }
    tickets
}

/// Reserves `n` attempts at `now`, asserting each is allowed, and leaves them pending.
async fn pending_n<L: RateLimiter>(
    limiter: &L,
    key: &LimitKey,
    policy: Policy,
    now: OffsetDateTime,
    n: u32,
) -> Vec<Ticket> {
    let mut tickets = Vec::new();
    for i in 0..n {
        let t = ticket();
        assert_eq!(
            limiter.reserve(key, policy, now, t).await,
            Decision::Allow,
            "attempt {} of {n} on {} should be allowed",
            i + 1,
            key.kind()
        );
        tickets.push(t);
    }
    tickets
}

/// Three attempts a minute apart are allowed; the fourth is denied until the first has
/// left its window: 7 minutes later, to the microsecond.
pub async fn the_limit_is_reached_after_exactly_limit_reservations_with_an_exact_retry_after<
    L: RateLimiter,
>(
    limiter: L,
) {
    let clock = ManualClock::new(T0);
    let key = ip(1);
    for _ in 0..3 {
        allow_n(&limiter, &key, THREE, clock.now(), 1).await;
        clock.advance(Duration::minutes(1));
    }
    // Counted at T0, T0+1m, T0+2m; now T0+3m.
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(Duration::minutes(7))
    );
    clock.advance(Duration::seconds(90));
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(Duration::seconds(330)),
        "a denied attempt is not counted: the retry is still set by the first"
    );
}

/// The oldest attempt stops counting exactly one window after it was counted: a
/// microsecond before, the next attempt is denied for one microsecond; at the instant,
/// it is allowed, and the window is full again until the second oldest leaves.
pub async fn an_attempt_is_allowed_again_once_the_oldest_ages_out<L: RateLimiter>(limiter: L) {
    let clock = ManualClock::new(T0);
    let key = ip(2);
    allow_n(&limiter, &key, THREE, clock.now(), 1).await;
    clock.advance(Duration::minutes(1));
    allow_n(&limiter, &key, THREE, clock.now(), 2).await;

    clock.set(T0 + WINDOW - Duration::microseconds(1));
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(Duration::microseconds(1))
    );
    clock.set(T0 + WINDOW);
    allow_n(&limiter, &key, THREE, clock.now(), 1).await;
    // Live now: T0+1m (twice) and T0+10m; room again when both T0+1m entries are gone.
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(Duration::minutes(1))
    );
}

/// One scripted step of [`every_decision_matches_the_pure_sliding_window_reference`].
#[derive(Debug, Clone, Copy)]
enum Step {
    Advance(Duration),
    /// Reserve on key 0 or 1 with a new ticket (tickets are numbered in order) and, if
    /// allowed, settle it as a failure at once.
    Reserve(usize, Policy),
    /// Reserve as above and leave the attempt pending.
    Hold(usize, Policy),
    /// Settle ticket number `.1` on key `.0` as a failure (it may be denied, failed
    /// already, released, or another key's: then nothing changes).
    Fail(usize, usize),
    /// Release ticket number `.1` on key `.0` (same remark).
    Release(usize, usize),
}

/// A scripted sequence of clock moves, reservations on two keys with their own windows
/// (including a lowered and a zero limit), attempts left pending (past their lease, too),
/// failures and releases of every sort; every decision equals `decide` applied to the
/// attempts the test itself recorded as counted.
pub async fn every_decision_matches_the_pure_sliding_window_reference<L: RateLimiter>(limiter: L) {
    use Step::{Advance, Fail, Hold, Release, Reserve};
    const A3: Policy = THREE;
    const A2: Policy = Policy {
        limit: 2,
        window: WINDOW,
    };
    const A0: Policy = Policy {
        limit: 0,
        window: WINDOW,
    };
    const B2: Policy = Policy {
        limit: 2,
        window: Duration::seconds(90),
    };
    let us = Duration::microseconds;
    let s = Duration::seconds;
    #[rustfmt::skip]
    let script = [
        Reserve(0, A3), Reserve(0, A3), Reserve(1, B2),                  // tickets 0, 1, 2
        Advance(s(30)),
        Reserve(0, A3), Reserve(0, A3), Reserve(1, B2), Reserve(1, B2),  // 3, 4, 5, 6
        Advance(s(60) - us(1)),
        Reserve(1, B2),                                                  // 7: one µs early
        Advance(us(1)),
        Reserve(1, B2), Reserve(1, B2),                                  // 8, 9
        Release(0, 1), Reserve(0, A3), Reserve(0, A3),                   // 10, 11
        Release(0, 1), Reserve(0, A3),                                   // double release; 12
        Release(0, 4), Release(0, 2), Release(0, 99), Reserve(0, A3),    // no-ops; 13
        Reserve(0, A2), Reserve(0, A0),                                  // 14, 15
        Advance(s(300)),
        Reserve(0, A2), Reserve(1, B2), Release(1, 8), Reserve(1, B2),   // 16, 17, 18
        Reserve(1, B2),                                                  // 19
        Advance(s(270) - us(123_457)),
        Reserve(0, A3), Reserve(0, A2),                                  // 20, 21
        Advance(us(123_457)),
        Reserve(0, A3), Reserve(0, A3), Reserve(0, A3),                  // 22, 23, 24
        Release(0, 22), Reserve(0, A3), Reserve(0, A0),                  // 25, 26
        Advance(WINDOW * 2),
        Reserve(0, A0), Reserve(0, A3), Reserve(1, B2),                  // 27, 28, 29
        Release(0, 28), Release(1, 29), Reserve(0, A2), Reserve(1, B2),  // 30, 31
        Advance(WINDOW * 2),
        Hold(0, A3), Hold(0, A3), Hold(0, A3), Hold(0, A3),              // 32..35: busy
        Fail(0, 32), Fail(0, 33), Hold(0, A3),                           // 36: still busy
        Fail(0, 34), Hold(0, A3), Fail(0, 34),                           // 37: denied
        Release(0, 33), Hold(0, A3), Hold(0, A3),                        // 38, 39: busy
        Fail(1, 38), Fail(0, 99), Hold(0, A3),                           // no-ops; 40 busy
        Advance(PENDING_LEASE - us(1)),
        Hold(0, A3),                                                     // 41: busy
        Advance(us(1)),
        Hold(0, A3), Release(0, 38), Hold(0, A3), Hold(0, A2),           // 42..44
        Hold(1, B2), Hold(1, B2), Hold(1, B2), Fail(1, 45), Fail(1, 46), // 45..47
        Hold(1, B2),                                                     // 48: denied
    ];
    let keys = [ip(3), account("reference@example.com")];
    let clock = ManualClock::new(T0);
    let mut tickets: Vec<Ticket> = Vec::new();
    // What the test counts as counted: (key, ticket, attempt).
    let mut counted: Vec<(usize, Ticket, Attempt)> = Vec::new();
    let (mut allowed, mut busy, mut denied) = (0, 0, 0);
    for (step_no, step) in script.iter().enumerate() {
        match *step {
            Advance(by) => clock.advance(by),
            Reserve(k, policy) | Hold(k, policy) => {
                let now = clock.now();
                let attempts: Vec<Attempt> = counted
                    .iter()
                    .filter(|(key, _, _)| *key == k)
                    .map(|(_, _, a)| *a)
                    .collect();
                let want = decide(&attempts, now, policy);
                let t = ticket();
                let got = limiter.reserve(&keys[k], policy, now, t).await;
                assert_eq!(
                    got,
                    want,
                    "step {step_no} {step:?} (ticket {}) at +{}",
                    tickets.len(),
                    now - T0
                );
                match got {
                    Decision::Allow => {
                        let failed = matches!(step, Reserve(..));
                        if failed {
                            limiter.fail(&keys[k], t).await;
                        }
                        counted.push((k, t, Attempt { at: now, failed }));
                        allowed += 1;
                    }
                    Decision::Busy => busy += 1,
                    Decision::Deny { .. } => denied += 1,
                }
                tickets.push(t);
            }
            Fail(k, n) => {
                let t = tickets.get(n).copied().unwrap_or_else(ticket);
                limiter.fail(&keys[k], t).await;
                for (_, _, a) in counted
                    .iter_mut()
                    .filter(|(key, ticket, _)| *key == k && *ticket == t)
                {
                    a.failed = true;
                }
            }
            Release(k, n) => {
                let t = tickets.get(n).copied().unwrap_or_else(ticket);
                limiter.release(&keys[k], t).await;
                counted.retain(|(key, ticket, _)| !(*key == k && *ticket == t));
            }
        }
    }
    assert!(
        allowed >= 10 && denied >= 10 && busy >= 5,
        "the script should exercise every outcome: {allowed} allowed, {busy} busy, {denied} denied"
    );
}

/// A window full of attempts still being checked answers `Busy`, never `Deny`: a
/// success frees its slot for the next attempt, and only once every slot holds a failure
/// is the next attempt denied, until the oldest failure leaves the window.
pub async fn attempts_in_flight_make_others_wait_and_only_failures_deny<L: RateLimiter>(
    limiter: L,
) {
    let clock = ManualClock::new(T0);
    let key = ip(12);
    let held = pending_n(&limiter, &key, THREE, clock.now(), 3).await;
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        Decision::Busy
    );
    limiter.release(&key, held[0]).await;
    let next = pending_n(&limiter, &key, THREE, clock.now(), 1).await;
    clock.advance(Duration::seconds(30));
    limiter.fail(&key, held[1]).await;
    limiter.fail(&key, held[2]).await;
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        Decision::Busy,
        "two failures and one attempt in flight: wait for it"
    );
    limiter.fail(&key, next[0]).await;
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(WINDOW - Duration::seconds(30))
    );
}

/// An attempt never settled (its node died, its request was dropped) counts as a
/// failure once its lease has passed: a lost outcome is never a free attempt.
pub async fn an_attempt_left_pending_counts_as_a_failure_after_its_lease<L: RateLimiter>(
    limiter: L,
) {
    let clock = ManualClock::new(T0);
    let key = account("lease@example.com");
    allow_n(&limiter, &key, THREE, clock.now(), 2).await;
    pending_n(&limiter, &key, THREE, clock.now(), 1).await;
    clock.advance(PENDING_LEASE - Duration::microseconds(1));
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        Decision::Busy
    );
    clock.advance(Duration::microseconds(1));
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(WINDOW - PENDING_LEASE)
    );
}

const RACERS: usize = 30;

/// Of 30 concurrent first attempts on one key with a limit of 5, exactly 5 are allowed;
/// the others are told to wait (the five are still in flight). Once the five have failed,
/// the next attempt is denied for one whole window.
pub async fn of_thirty_concurrent_reservations_with_limit_five_exactly_five_are_allowed<
    L: RateLimiter,
>(
    limiter: L,
) {
    let policy = Policy {
        limit: 5,
        window: WINDOW,
    };
    let limiter = Arc::new(limiter);
    let key = ip(4);
    let now = T0;
    let start = Arc::new(Barrier::new(RACERS));
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (limiter, key, start) = (limiter.clone(), key.clone(), start.clone());
        racers.spawn(async move {
            start.wait().await;
            let t = ticket();
            (limiter.reserve(&key, policy, now, t).await, t)
        });
    }
    let decisions = racers.join_all().await;
    let allowed: Vec<Ticket> = decisions
        .iter()
        .filter(|(d, _)| *d == Decision::Allow)
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(
        allowed.len(),
        5,
        "exactly the limit must be allowed: {decisions:?}"
    );
    for (d, _) in decisions.iter().filter(|(d, _)| *d != Decision::Allow) {
        assert_eq!(*d, Decision::Busy);
    }
    for t in allowed {
        limiter.fail(&key, t).await;
    }
    assert_eq!(
        limiter.reserve(&key, policy, now, ticket()).await,
        deny(WINDOW)
    );
}

/// Releasing one counted attempt makes room for exactly one more, and the refunded
/// attempt no longer sets the retry time.
pub async fn a_release_refunds_exactly_one_slot<L: RateLimiter>(limiter: L) {
    let clock = ManualClock::new(T0);
    let key = ip(5);
    let first = allow_n(&limiter, &key, THREE, clock.now(), 1).await;
    clock.advance(Duration::minutes(1));
    allow_n(&limiter, &key, THREE, clock.now(), 2).await;
    clock.advance(Duration::minutes(1));
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(Duration::minutes(8))
    );

    limiter.release(&key, first[0]).await;
    allow_n(&limiter, &key, THREE, clock.now(), 1).await;
    // Live: T0+1m (twice), T0+2m; the T0 entry is gone, so the retry is set by T0+1m.
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        deny(Duration::minutes(9))
    );
}

/// Releasing a ticket never counted, one already released, a denied attempt's ticket,
/// or a ticket of another key changes nothing.
pub async fn releasing_an_unknown_or_already_released_ticket_changes_nothing<L: RateLimiter>(
    limiter: L,
) {
    let clock = ManualClock::new(T0);
    let (key, other) = (ip(6), ip(7));
    let counted = allow_n(&limiter, &key, THREE, clock.now(), 3).await;
    let others = allow_n(&limiter, &other, THREE, clock.now(), 1).await;
    let denied_ticket = ticket();
    let full = deny(WINDOW);
    assert_eq!(
        limiter
            .reserve(&key, THREE, clock.now(), denied_ticket)
            .await,
        full
    );

    limiter.release(&key, ticket()).await;
    limiter.release(&key, denied_ticket).await;
    limiter.release(&key, others[0]).await;
    limiter.release(&other, counted[0]).await;
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        full,
        "no release above belonged to the key"
    );

    limiter.release(&key, counted[1]).await;
    limiter.release(&key, counted[1]).await;
    allow_n(&limiter, &key, THREE, clock.now(), 1).await;
    assert_eq!(
        limiter.reserve(&key, THREE, clock.now(), ticket()).await,
        full,
        "a double release refunds one slot only"
    );
    // The other key kept its one attempt: two more fit, not three.
    allow_n(&limiter, &other, THREE, clock.now(), 2).await;
    assert_eq!(
        limiter.reserve(&other, THREE, clock.now(), ticket()).await,
        full
    );
}

/// A full budget for one IP leaves another IP, the same IP under another provider, an
/// account and a user's MFA budget untouched.
pub async fn keys_are_independent_of_each_other<L: RateLimiter>(limiter: L) {
    let clock = ManualClock::new(T0);
    let policy = Policy {
        limit: 2,
        window: WINDOW,
    };
    let address = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8));
    let full = LimitKey::login_ip(address, "password");
    allow_n(&limiter, &full, policy, clock.now(), 2).await;
    assert_eq!(
        limiter.reserve(&full, policy, clock.now(), ticket()).await,
        deny(WINDOW)
    );
    let others = [
        ip(9),
        LimitKey::login_ip(address, "other-provider"),
        account("independent@example.com"),
        account("independent-too@example.com"),
        LimitKey::mfa_user(UserId::from_uuid(uuid::Uuid::new_v4())),
    ];
    for key in &others {
        allow_n(&limiter, key, policy, clock.now(), 2).await;
        assert_eq!(
            limiter.reserve(key, policy, clock.now(), ticket()).await,
            deny(WINDOW),
            "{} key",
            key.kind()
        );
    }
}

/// `first_denial` answers true once per key and window: false for the rest of the
/// window (to the microsecond), true again when it has passed, independently per key.
pub async fn the_first_denial_is_reported_once_per_window_and_again_after_it_passes<
    L: RateLimiter,
>(
    limiter: L,
) {
    let clock = ManualClock::new(T0);
    let (key, other) = (ip(10), account("first-denial@example.com"));
    assert!(limiter.first_denial(&key, WINDOW, clock.now()).await);
    assert!(!limiter.first_denial(&key, WINDOW, clock.now()).await);
    clock.advance(Duration::minutes(1));
    assert!(limiter.first_denial(&other, WINDOW, clock.now()).await);
    clock.set(T0 + WINDOW - Duration::microseconds(1));
    assert!(!limiter.first_denial(&key, WINDOW, clock.now()).await);
    clock.set(T0 + WINDOW);
    assert!(limiter.first_denial(&key, WINDOW, clock.now()).await);
    assert!(!limiter.first_denial(&key, WINDOW, clock.now()).await);
    assert!(
        !limiter.first_denial(&other, WINDOW, clock.now()).await,
        "the other key's window started a minute later"
    );
    clock.set(T0 + Duration::minutes(1) + WINDOW);
    assert!(limiter.first_denial(&other, WINDOW, clock.now()).await);
}

/// Ok health goes with deciding: a limiter reports Ok (and its probe, which asks the
/// backend now, agrees) while it allows up to the limit and denies past it, and a denial
/// is a decision, not a fault. An allow-all or deny-all limiter with a constant health
/// fails here.
pub async fn a_limiter_whose_backend_answers_reports_ok_health<L: RateLimiter>(limiter: L) {
    let key = ip(11);
    assert_eq!(
        limiter.probe().await,
        LimiterHealth::Ok,
        "before any attempt"
    );
    allow_n(&limiter, &key, THREE, T0, 3).await;
    assert_eq!(limiter.health(), LimiterHealth::Ok, "after three allowed");
    assert_eq!(
        limiter.reserve(&key, THREE, T0, ticket()).await,
        deny(WINDOW)
    );
    assert!(limiter.first_denial(&key, WINDOW, T0).await);
    assert_eq!(limiter.health(), LimiterHealth::Ok, "after a denial");
    assert_eq!(
        limiter.probe().await,
        LimiterHealth::Ok,
        "probed after a denial"
    );
}

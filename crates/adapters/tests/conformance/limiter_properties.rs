//! Property tests of the limiters: generated interleavings of reserve / fail / release /
//! lease and window expiry never let a window hold more than its limit of failed or
//! pending attempts (`tessera_app::testkit::interleavings`), on the in-process limiter
//! and on Redis. proptest shrinks a failing interleaving to a short one.
//!
//! A limiter that refuses everything never exceeds a bound either: it must fail the
//! property and the limiter suite's health case all the same, or they prove nothing.

use std::net::{IpAddr, Ipv4Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use tessera_app::ports::{BoxFuture, LimiterHealth, RateLimiter, Ticket};
use tessera_app::testkit::interleavings::{Op, failures_never_exceed_the_limit_in_any_window};
use tessera_app::testkit::limiter_suite::a_limiter_whose_backend_answers_reports_ok_health;
use tessera_app::testkit::runtime::block_on;
use tessera_core::ratelimit::{Decision, LimitKey, PENDING_LEASE, Policy};
use time::{Duration, OffsetDateTime};

use super::limiters::{memory_limiter, redis_limiter};

fn keys() -> [LimitKey; 2] {
    [
        LimitKey::login_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77)), "password"),
        LimitKey::login_account("interleaved@example.com", "password"),
    ]
}

/// Clock moves around every boundary that matters: a microsecond, the lease, the short
/// and the long window, and a little less than each.
fn op() -> impl Strategy<Value = Op> {
    let us = Duration::microseconds;
    let advance = prop_oneof![
        Just(us(1)),
        Just(Duration::seconds(1)),
        Just(Duration::seconds(30)),
        Just(PENDING_LEASE - us(1)),
        Just(PENDING_LEASE),
        Just(Duration::seconds(90) - us(1)),
        Just(Duration::minutes(10) - us(1)),
        Just(Duration::minutes(10)),
    ];
    prop_oneof![
        4 => (0usize..2).prop_map(Op::Reserve),
        2 => advance.prop_map(Op::Advance),
        2 => any::<usize>().prop_map(Op::Fail),
        1 => any::<usize>().prop_map(Op::Release),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn memory_limiter_never_lets_a_window_hold_more_than_the_limit(ops in vec(op(), 1..80)) {
        block_on(async {
            let limiter = memory_limiter().await.unwrap();
            failures_never_exceed_the_limit_in_any_window(&limiter, &keys(), &ops).await;
        });
    }

    #[test]
    fn redis_limiter_never_lets_a_window_hold_more_than_the_limit(ops in vec(op(), 1..80)) {
        block_on(async {
            let Some(limiter) = redis_limiter().await else {
                return;
            };
            failures_never_exceed_the_limit_in_any_window(&limiter, &keys(), &ops).await;
        });
    }
}

/// Denies every attempt and reports itself healthy: safe, and useless.
struct DenyAll;

impl RateLimiter for DenyAll {
    fn reserve<'a>(
        &'a self,
        _: &'a LimitKey,
        policy: Policy,
        _: OffsetDateTime,
        _: Ticket,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(Decision::Deny {
            retry_after: policy.window,
        }))
    }

    fn release<'a>(&'a self, _: &'a LimitKey, _: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    fn fail<'a>(&'a self, _: &'a LimitKey, _: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    fn first_denial<'a>(
        &'a self,
        _: &'a LimitKey,
        _: Duration,
        _: OffsetDateTime,
    ) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(false))
    }

    fn health(&self) -> LimiterHealth {
        LimiterHealth::Ok
    }
}

#[test]
#[should_panic(expected = "with room in its window")]
fn a_limiter_that_denies_everything_fails_the_interleaving_property() {
    block_on(failures_never_exceed_the_limit_in_any_window(
        &DenyAll,
        &keys(),
        &[Op::Reserve(0)],
    ));
}

#[test]
#[should_panic(expected = "should be allowed")]
fn a_limiter_that_denies_everything_fails_the_health_case() {
    block_on(a_limiter_whose_backend_answers_reports_ok_health(DenyAll));
}

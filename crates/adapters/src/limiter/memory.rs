//! [`MemoryLimiter`]: the in-process rate limiter, for a single node (the embedded
//! default) and as the fallback of [`RedisLimiter`](crate::RedisLimiter) during an outage.
//!
//! Each key keeps the counted attempts of its sliding-window log; the decision is
//! `tessera_core::ratelimit::decide`'s. Entries leave as they age out of their window, on
//! every touch of their key and in an occasional sweep of all keys, so memory stays
//! bounded by the live entries even when keys are never touched again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_app::ports::{BoxFuture, LimiterHealth, RateLimiter, Ticket};
use tessera_core::ratelimit::{Attempt, Decision, LimitKey, Policy, decide};
use time::{Duration, OffsetDateTime};

/// How often (in the callers' time) every key is swept for entries that aged out.
const SWEEP_EVERY: Duration = Duration::minutes(1);
/// A sweep is also due when the number of keys has doubled since the last one, but not
/// below this many keys.
const SWEEP_MIN_KEYS: usize = 1024;

/// The in-process limiter: one `std` mutex around a map from key to counted attempts.
/// The lock is only held by synchronous code (never across an await).
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    logs: HashMap<String, Log>,
    /// First-denial markers: until when each one is live.
    markers: HashMap<String, OffsetDateTime>,
    next_sweep: Option<OffsetDateTime>,
    keys_after_sweep: usize,
}

/// The counted attempts of one key, and the window they were last counted under (used
/// by the sweep, which has no policy at hand).
#[derive(Debug)]
struct Log {
    window: Duration,
    entries: Vec<(Ticket, Attempt)>,
}

impl Log {
    fn prune(&mut self, now: OffsetDateTime) {
        let window = self.window;
        self.entries.retain(|(_, a)| a.at + window > now);
    }
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys hold live entries or markers (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        let state = self.lock();
        state.logs.len() + state.markers.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere cannot poison it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`RateLimiter::reserve`], synchronously.
    pub(crate) fn reserve_now(
        &self,
        key: &LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> Decision {
        let mut state = self.lock();
        state.sweep_if_due(now);
        let name = key.storage_name();
        let log = state.logs.entry(name.clone()).or_insert_with(|| Log {
            window: policy.window,
            entries: Vec::new(),
        });
        log.window = policy.window;
        log.prune(now);
        let counted: Vec<Attempt> = log.entries.iter().map(|(_, a)| *a).collect();
        let decision = decide(&counted, now, policy);
        if decision == Decision::Allow {
            // A ticket counted again moves to `now`, pending (as a sorted-set member would).
            log.entries.retain(|(t, _)| *t != ticket);
            log.entries.push((ticket, Attempt::pending(now)));
        }
        if log.entries.is_empty() {
            state.logs.remove(&name);
        }
        decision
    }

    /// [`RateLimiter::release`], synchronously.
    pub(crate) fn release_now(&self, key: &LimitKey, ticket: Ticket) {
        let mut state = self.lock();
        let name = key.storage_name();
        if let Some(log) = state.logs.get_mut(&name) {
            log.entries.retain(|(t, _)| *t != ticket);
            if log.entries.is_empty() {
                state.logs.remove(&name);
            }
        }
    }

    /// [`RateLimiter::fail`], synchronously.
    pub(crate) fn fail_now(&self, key: &LimitKey, ticket: Ticket) {
        let mut state = self.lock();
        if let Some(log) = state.logs.get_mut(&key.storage_name()) {
            for (_, attempt) in log.entries.iter_mut().filter(|(t, _)| *t == ticket) {
                attempt.failed = true;
            }
        }
    }

    /// [`RateLimiter::first_denial`], synchronously.
    pub(crate) fn first_denial_now(
        &self,
        key: &LimitKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> bool {
        let mut state = self.lock();
        state.sweep_if_due(now);
        let name = key.storage_name();
        match state.markers.get(&name) {
            Some(until) if *until > now => false,
            _ => {
                state.markers.insert(name, now + window);
                true
            }
        }
    }
}

impl State {
    /// Drops every entry and marker that is no longer live, when a sweep is due: once per
    /// [`SWEEP_EVERY`] of the callers' time, or when the keys have doubled since the last.
    fn sweep_if_due(&mut self, now: OffsetDateTime) {
        let keys = self.logs.len() + self.markers.len();
        let grown = keys >= SWEEP_MIN_KEYS.max(self.keys_after_sweep.saturating_mul(2));
        let due = self.next_sweep.is_none_or(|at| now >= at);
        if !(grown || due) {
            return;
        }
        self.logs.retain(|_, log| {
            log.prune(now);
            !log.entries.is_empty()
        });
        self.markers.retain(|_, until| *until > now);
        self.next_sweep = Some(now + SWEEP_EVERY);
        self.keys_after_sweep = self.logs.len() + self.markers.len();
    }
}

impl RateLimiter for MemoryLimiter {
    fn reserve<'a>(
        &'a self,
        key: &'a LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> BoxFuture<'a, Decision> {
        let decision = self.reserve_now(key, policy, now, ticket);
        Box::pin(std::future::ready(decision))
    }

    fn release<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        self.release_now(key, ticket);
        Box::pin(std::future::ready(()))
    }

    fn fail<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        self.fail_now(key, ticket);
        Box::pin(std::future::ready(()))
    }

    fn first_denial<'a>(
        &'a self,
        key: &'a LimitKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, bool> {
        let first = self.first_denial_now(key, window, now);
        Box::pin(std::future::ready(first))
    }

    fn health(&self) -> LimiterHealth {
        LimiterHealth::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
    const POLICY: Policy = Policy {
        limit: 2,
        window: Duration::minutes(10),
    };

    fn ip(n: u32) -> LimitKey {
        LimitKey::login_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), "password")
    }

    fn ticket(n: u8) -> Ticket {
        Ticket([n; 16])
    }

    #[test]
    fn a_key_whose_entries_aged_out_is_dropped_when_touched() {
        let limiter = MemoryLimiter::new();
        assert_eq!(
            limiter.reserve_now(&ip(1), POLICY, T0, ticket(1)),
            Decision::Allow
        );
        assert_eq!(limiter.tracked_keys(), 1);
        let later = T0 + POLICY.window;
        let zero = Policy { limit: 0, ..POLICY };
        // Denied (limit 0) after the old entry aged out: nothing is left under the key.
        assert!(matches!(
            limiter.reserve_now(&ip(1), zero, later, ticket(2)),
            Decision::Deny { .. }
        ));
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn releasing_the_last_entry_drops_the_key() {
        let limiter = MemoryLimiter::new();
        limiter.reserve_now(&ip(1), POLICY, T0, ticket(1));
        limiter.release_now(&ip(1), ticket(1));
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn keys_never_touched_again_are_swept_once_they_age_out() {
        let limiter = MemoryLimiter::new();
        for n in 0..100 {
            limiter.reserve_now(&ip(n), POLICY, T0, ticket(1));
            limiter.first_denial_now(&ip(n), POLICY.window, T0);
        }
        assert_eq!(limiter.tracked_keys(), 200);
        // Another key, touched after every other entry has left its window.
        let later = T0 + POLICY.window + SWEEP_EVERY;
        limiter.reserve_now(&ip(1000), POLICY, later, ticket(1));
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn a_burst_of_keys_triggers_a_sweep_before_the_timer() {
        let limiter = MemoryLimiter::new();
        let short = Policy {
            limit: 1,
            window: Duration::microseconds(1),
        };
        let keys = u32::try_from(SWEEP_MIN_KEYS).unwrap();
        for n in 0..=keys {
            // Each key's entry has aged out by the time the next key is touched, and all
            // of this happens well within one timer period.
            let now = T0 + Duration::microseconds(i64::from(n) * 2);
            limiter.reserve_now(&ip(n), short, now, ticket(1));
        }
        assert!(
            limiter.tracked_keys() < SWEEP_MIN_KEYS,
            "the growth sweep should have run"
        );
    }
}

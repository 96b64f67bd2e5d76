//! What [`RedisLimiter`](crate::RedisLimiter) knows about its backend's reachability:
//! the health it reports, the gate that keeps an outage cheap, the fallback counter and
//! the rate-limited warning.
//!
//! ```text
//!   Degraded(reason) ──a Redis call succeeds──► Ok
//!          ▲                                     │
//!          └─────────a Redis call fails──────────┘
//! ```
//!
//! While degraded, one call at a time probes Redis; the others are decided by the
//! fallback at once, so a hung Redis costs one timeout at a time, not one per request.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tessera_app::ports::LimiterHealth;

/// At most one outage warning per this long; the others are counted and reported with
/// the next one.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(super) struct Outage {
    reach: Mutex<Reach>,
    probing: AtomicBool,
    fallback_decisions: AtomicU64,
    warnings: Mutex<Warnings>,
}

#[derive(Debug)]
enum Reach {
    NotYetReached,
    Reachable,
    Unreachable(String),
}

#[derive(Debug, Default)]
struct Warnings {
    last: Option<Instant>,
    suppressed: u64,
}

/// Admission to call Redis; while degraded, holding it marks the one probe in flight
/// (released on drop, also when the caller's future is cancelled).
pub(super) struct Admission<'a> {
    probe: Option<&'a AtomicBool>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(flag) = self.probe {
            flag.store(false, Ordering::Release);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Outage {
    /// Degraded until the first Redis call succeeds: nothing is known yet.
    pub(super) fn not_yet_connected() -> Self {
        Self {
            reach: Mutex::new(Reach::NotYetReached),
            probing: AtomicBool::new(false),
            fallback_decisions: AtomicU64::new(0),
            warnings: Mutex::new(Warnings::default()),
        }
    }

    pub(super) fn health(&self) -> LimiterHealth {
        match &*lock(&self.reach) {
            Reach::Reachable => LimiterHealth::Ok,
            Reach::NotYetReached => LimiterHealth::Degraded("redis not reached yet".to_owned()),
            Reach::Unreachable(reason) => LimiterHealth::Degraded(reason.clone()),
        }
    }

    /// Whether a call may go to Redis now: always when healthy; while degraded, only when
    /// no other probe is in flight.
    pub(super) fn admit(&self) -> Option<Admission<'_>> {
        if matches!(*lock(&self.reach), Reach::Reachable) {
            return Some(Admission { probe: None });
        }
        self.probing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Admission {
                probe: Some(&self.probing),
            })
    }

    /// A Redis call succeeded: healthy (again).
    pub(super) fn succeeded(&self) {
        let was = std::mem::replace(&mut *lock(&self.reach), Reach::Reachable);
        if matches!(was, Reach::Unreachable(_)) {
            tracing::info!("rate limiter: redis reachable again; decisions are shared again");
        }
    }

    /// A Redis call failed: degraded, with a warning at most once per [`WARN_EVERY`].
    /// `kind` is the limit key's kind; no key material is ever logged.
    pub(super) fn failed(&self, operation: &'static str, kind: &'static str, error: &dyn Display) {
        *lock(&self.reach) = Reach::Unreachable(format!("redis unreachable: {error}"));
        let suppressed = {
            let mut warnings = lock(&self.warnings);
            if warnings
                .last
                .is_some_and(|last| last.elapsed() < WARN_EVERY)
            {
                warnings.suppressed += 1;
                return;
            }
            warnings.last = Some(Instant::now());
            std::mem::take(&mut warnings.suppressed)
        };
        tracing::warn!(
            operation,
            kind,
            error = %error,
            suppressed_since_last_warning = suppressed,
            "rate limiter: redis call failed; deciding in process until it is reachable"
        );
    }

    pub(super) fn count_fallback_decision(&self) {
        self.fallback_decisions.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn fallback_decisions(&self) -> u64 {
        self.fallback_decisions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_outage_is_degraded_until_a_call_succeeds_and_again_after_a_failure() {
        let outage = Outage::not_yet_connected();
        assert!(matches!(outage.health(), LimiterHealth::Degraded(_)));
        outage.succeeded();
        assert_eq!(outage.health(), LimiterHealth::Ok);
        outage.failed("reserve", "ip", &"connection refused");
        assert_eq!(
            outage.health(),
            LimiterHealth::Degraded("redis unreachable: connection refused".to_owned())
        );
    }

    #[test]
    fn while_degraded_one_probe_at_a_time_is_admitted() {
        let outage = Outage::not_yet_connected();
        let probe = outage.admit();
        assert!(probe.is_some());
        assert!(outage.admit().is_none(), "a second probe must wait");
        drop(probe);
        assert!(outage.admit().is_some(), "the probe's end frees the gate");
        outage.succeeded();
        let (a, b) = (outage.admit(), outage.admit());
        assert!(
            a.is_some() && b.is_some(),
            "when healthy, every call goes to redis"
        );
    }

    #[test]
    fn warnings_within_the_period_are_counted_not_logged() {
        let outage = Outage::not_yet_connected();
        for _ in 0..5 {
            outage.failed("reserve", "ip", &"down");
        }
        let warnings = lock(&outage.warnings);
        assert!(warnings.last.is_some());
        assert_eq!(warnings.suppressed, 4);
    }
}

//! Pacing of a failed password login on an unknown email.
//!
//! A wrong password on a known email records a `login_failed` event before it answers;
//! an unknown email has no user to record it against (events belong to a user). On
//! Postgres that insert's commit waits for the WAL flush, so without pacing the two
//! failures would differ by one durable write and the latency would tell which emails
//! have accounts. The write stays on the known path's response path — a security event
//! must not be lost, and it is to share a transaction with its notification later — so
//! the unknown path is held instead, for as long as the latest such write took: both
//! failures then cost one Argon2 verification and one event write's time, drawn from
//! the same distribution.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::ports::Store;

/// The longest hold: a write that stalled (a lock, a failover) must not hold every
/// unknown-email failure after it for as long; the next normal write resets the hold.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(1);

/// How late the runtime's timer may wake a sleep (it rounds up to whole milliseconds).
const TIMER_SLACK: Duration = Duration::from_millis(2);

#[derive(Debug, Default)]
pub(crate) struct FailurePace {
    /// The latest known-email failure write's duration, in microseconds.
    last_write_micros: AtomicU64,
}

impl FailurePace {
    /// Notes how long a known email's `login_failed` write took.
    pub(crate) fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.min(MAX_HOLD).as_micros()).unwrap_or(u64::MAX);
        self.last_write_micros.store(micros, Ordering::Relaxed);
    }

    /// How long an unknown email's failure is held now.
    pub(crate) fn hold_for(&self) -> Duration {
        Duration::from_micros(self.last_write_micros.load(Ordering::Relaxed))
    }

    /// Holds an unknown email's failure for as long as the latest known-email write took.
    /// The timer only counts whole milliseconds (it would round a 0.4 ms write up to 1 ms
    /// or more, and so make the unknown path the slower one): it covers all but the last
    /// two milliseconds, and yielding covers the rest to the microsecond.
    pub(crate) async fn hold(&self) {
        let hold = self.hold_for();
        let deadline = Instant::now() + hold;
        let coarse = hold.saturating_sub(TIMER_SLACK);
        if !coarse.is_zero() {
            tokio::time::sleep(coarse).await;
        }
        while Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
    }
}

impl<S: Store> App<S> {
    /// How long a wrong password on an unknown email is held now (for metrics and tests).
    pub fn failed_login_hold(&self) -> Duration {
        self.failure_pace.hold_for()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_is_the_latest_known_email_writes_duration() {
        let pace = FailurePace::default();
        assert!(pace.hold_for().is_zero());
        pace.observe(Duration::from_millis(3));
        pace.observe(Duration::from_micros(1_250));
        assert_eq!(pace.hold_for(), Duration::from_micros(1_250));
    }

    #[test]
    fn a_stalled_write_holds_the_next_failures_for_at_most_a_second() {
        let pace = FailurePace::default();
        pace.observe(Duration::from_secs(30));
        assert_eq!(pace.hold_for(), MAX_HOLD);
    }
}

//! The rate-limiter port. Decisions are `tessera_core::ratelimit`'s; a limiter only keeps
//! the counted attempts (in process, or in Redis shared by every node).
//!
//! The methods cannot fail: a limiter whose backend is unreachable falls back to an
//! in-process budget (never to "allow all") and reports that through `health`.

use std::future::Future;
use std::pin::Pin;

use tessera_core::ratelimit::{Decision, LimitKey, Policy};
use time::{Duration, OffsetDateTime};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Names one counted attempt, so that attempt alone can be refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(pub [u8; 16]);

impl Ticket {
    pub fn as_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimiterHealth {
    Ok,
    /// Decisions are being made per node because the shared backend is unreachable.
    Degraded(String),
}

/// Dyn-compatible (boxed futures): the limiter is chosen at start-up from configuration.
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts an attempt under `ticket` at `now`, pending, if `policy` leaves room for it,
    /// atomically (concurrent callers on any node cannot overshoot the limit); otherwise
    /// counts nothing and says whether to wait for attempts in flight (`Busy`) or when
    /// there will be room (`Deny`). The rules are `tessera_core::ratelimit::decide`'s.
    fn reserve<'a>(
        &'a self,
        key: &'a LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> BoxFuture<'a, Decision>;

    /// Refunds one counted attempt (a success is not a failure). Unknown tickets are ignored.
    fn release<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()>;

    /// Settles one pending attempt as a failure: it keeps its slot (and its time) for the
    /// rest of its window. Unknown or already failed tickets are ignored.
    fn fail<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()>;

    /// True for the first denial of `key` in a window starting now, false for the others
    /// until `window` has passed: a flood is logged and recorded once, not per attempt.
    fn first_denial<'a>(
        &'a self,
        key: &'a LimitKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, bool>;

    fn health(&self) -> LimiterHealth;

    /// Asks the shared backend now (bounded by the limiter's own call deadline) and
    /// returns the health that follows, so readiness recovers without traffic. A limiter
    /// with no backend just reports its health.
    fn probe(&self) -> BoxFuture<'_, LimiterHealth> {
        Box::pin(std::future::ready(self.health()))
    }

    /// How many decisions were made in process because the shared backend was down.
    fn fallback_decisions(&self) -> u64 {
        0
    }
}

//! Property of every limiter, checked on generated interleavings (the conformance tests
//! of each backend draw them with proptest): whatever order reservations, failures,
//! releases, lease expiries and window expiries come in, no window of a key ever holds
//! more than its limit of attempts that failed or may still fail (pending ones).
//!
//! The checker keeps its own record of what each allowed attempt became; it does not
//! re-derive every decision (the reference-script case of the suite does that). Besides
//! the bound it checks the other side, which a limiter denying everything would pass the
//! bound with: an attempt whose window has room is allowed.

use time::{Duration, OffsetDateTime};

use super::ManualClock;
use crate::ports::{Clock, RateLimiter, Ticket};
use tessera_core::ratelimit::{Decision, LimitKey, Policy};

/// One step of an interleaving. Attempt numbers refer to earlier reservations (modulo
/// their count; nothing happens before the first).
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Advance(Duration),
    /// Reserve on key 0 or 1 (each has its own policy) under a fresh ticket.
    Reserve(usize),
    /// Settle attempt `n` as a failure (ignored by the limiter unless pending).
    Fail(usize),
    /// Refund attempt `n` (a success).
    Release(usize),
}

/// The two keys' policies: a long window with room for three, a short one for two.
pub const POLICIES: [Policy; 2] = [
    Policy {
        limit: 3,
        window: Duration::minutes(10),
    },
    Policy {
        limit: 2,
        window: Duration::seconds(90),
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    Failed,
    Released,
}

struct Allowed {
    key: usize,
    at: OffsetDateTime,
    ticket: Ticket,
    fate: Fate,
}

/// Runs `ops` on a fresh `limiter` and asserts the bound after every step.
pub async fn failures_never_exceed_the_limit_in_any_window<L: RateLimiter>(
    limiter: &L,
    keys: &[LimitKey; 2],
    ops: &[Op],
) {
    let clock = ManualClock::new(time::macros::datetime!(2026-03-01 09:15:30.123456 UTC));
    let mut attempts: Vec<(usize, Ticket)> = Vec::new();
    let mut allowed: Vec<Allowed> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Advance(by) => clock.advance(by),
            Op::Reserve(k) => {
                let k = k % 2;
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).expect("the OS random source works");
                let ticket = Ticket(bytes);
                let now = clock.now();
                let counted = allowed
                    .iter()
                    .filter(|a| a.key == k && a.fate != Fate::Released)
                    .filter(|a| now < a.at + POLICIES[k].window)
                    .count();
                let decision = limiter.reserve(&keys[k], POLICIES[k], now, ticket).await;
                assert!(
                    decision == Decision::Allow || counted >= POLICIES[k].limit as usize,
                    "after step {step} ({op:?}) of {ops:?}: {decision:?} on key {k} with room \
                     in its window ({counted} counted)"
                );
                if decision == Decision::Allow {
                    allowed.push(Allowed {
                        key: k,
                        at: now,
                        ticket,
                        fate: Fate::Pending,
                    });
                }
                attempts.push((k, ticket));
            }
            Op::Fail(n) | Op::Release(n) => {
                let Some(&(k, ticket)) = attempts.get(n % attempts.len().max(1)) else {
                    continue;
                };
                let fail = matches!(op, Op::Fail(_));
                if fail {
                    limiter.fail(&keys[k], ticket).await;
                } else {
                    limiter.release(&keys[k], ticket).await;
                }
                if let Some(a) = allowed.iter_mut().find(|a| a.ticket == ticket) {
                    a.fate = match (a.fate, fail) {
                        (Fate::Pending, true) => Fate::Failed,
                        (_, false) => Fate::Released,
                        (fate, true) => fate,
                    };
                }
            }
        }
        for (k, policy) in POLICIES.iter().enumerate() {
            let counted: Vec<OffsetDateTime> = allowed
                .iter()
                .filter(|a| a.key == k && a.fate != Fate::Released)
                .map(|a| a.at)
                .collect();
            // The fullest window starts at one of the counted attempts.
            for start in &counted {
                let inside = counted
                    .iter()
                    .filter(|at| **at >= *start && **at < *start + policy.window)
                    .count();
                assert!(
                    inside <= policy.limit as usize,
                    "after step {step} ({op:?}) of {ops:?}: {inside} attempts on key {k} \
                     within {} starting {} ago",
                    policy.window,
                    clock.now() - *start
                );
            }
        }
    }
}

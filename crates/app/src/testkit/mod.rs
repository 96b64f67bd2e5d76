//! Conformance suites and test doubles shared by every backend's tests (feature `testkit`).
//!
//! - `clock`: [`ManualClock`], a clock tests advance instead of sleeping.
//! - `store_suite`: the cases every `Store` implementation must pass, as plain async fns
//!   generic over the store.
//! - `macros`: [`store_conformance!`](crate::store_conformance), which turns the suite
//!   into one `#[tokio::test]` per case for a named backend.
//! - `limiter_suite`: the cases every `RateLimiter` implementation must pass, checked
//!   against `tessera_core::ratelimit::decide`.
//! - `interleavings`: the limiter's safety bound on generated interleavings of reserve,
//!   settle and expiry, for property tests.
//! - `runtime`: [`block_on`](runtime::block_on) on one shared runtime, for property tests.
//! - `limiter_macros`: [`limiter_conformance!`](crate::limiter_conformance), the same for
//!   limiters.

// This module is test code compiled into the library: a failed expectation is a failed
// test, so unwrapping and panicking are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clock;
pub mod interleavings;
mod limiter_macros;
pub mod limiter_suite;
mod macros;
pub mod runtime;
pub mod store_suite;

pub use clock::ManualClock;

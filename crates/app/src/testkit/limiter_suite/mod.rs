//! The rate-limiter conformance suite: every case is an async fn taking a fresh limiter
//! whose keys are its own. The same fns run unchanged against every backend through
//! [`limiter_conformance!`](crate::limiter_conformance). Time comes from a
//! [`ManualClock`]; nothing sleeps.
//!
//! Each backend's decisions are compared with `tessera_core::ratelimit::decide` applied
//! to a list the test keeps itself, so every backend is proven equal to the maths, and
//! therefore to every other backend. Most cases settle each allowed attempt as a failure
//! at once (`allow_n`); the pending state has cases of its own.

//!
//! The cases that run are listed once, in `__limiter_suite_cases!`
//! (`testkit/limiter_macros.rs`).

#![deny(dead_code)]

mod cases;

// Only the listed cases are public: one defined in `cases` but missing from the list is
// dead code, an error (`deny` above), rather than a case that never runs.
crate::__limiter_suite_cases!(__reexport_cases!(limiter_suite));

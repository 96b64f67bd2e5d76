//! The macros that run the limiter suite against one backend, and the one list of its cases.

/// Expands to `mod $backend { … }` holding one
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per case of
/// [`limiter_suite`](crate::testkit::limiter_suite), each named after its case.
///
/// `$factory` is an expression evaluated afresh in every test (inside the generated
/// module, which glob-imports its parent) and awaited; it yields `Option<limiter>`: a
/// fresh limiter whose keys no other test shares (for a shared backend, a unique key
/// prefix). `None` means the backend is not configured and the test is skipped (the
/// factory reports that, loudly).
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
///
/// ```ignore
/// tessera_app::limiter_conformance!(memory, async { Some(MemoryLimiter::new()) });
/// ```
#[macro_export]
macro_rules! limiter_conformance {
    ($backend:ident, $factory:expr $(,)?) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            $crate::__limiter_suite_cases!(__limiter_conformance_cases!($factory));
        }
    };
}

/// Every case of the limiter suite, as `module::case`: the one list. Expands
/// `$crate::$then!` with `$args`, a `;`, and the list. The suite re-exports exactly these
/// cases and denies dead code, so a case left out of the list fails the build instead of
/// silently never running; [`limiter_conformance!`] makes a test of each.
#[doc(hidden)]
#[macro_export]
macro_rules! __limiter_suite_cases {
    ($then:ident!($($args:tt)*)) => {
        $crate::$then! {
            $($args)*;
            cases::the_limit_is_reached_after_exactly_limit_reservations_with_an_exact_retry_after,
            cases::an_attempt_is_allowed_again_once_the_oldest_ages_out,
            cases::every_decision_matches_the_pure_sliding_window_reference,
            cases::attempts_in_flight_make_others_wait_and_only_failures_deny,
            cases::an_attempt_left_pending_counts_as_a_failure_after_its_lease,
            cases::of_thirty_concurrent_reservations_with_limit_five_exactly_five_are_allowed,
            cases::a_release_refunds_exactly_one_slot,
            cases::releasing_an_unknown_or_already_released_ticket_changes_nothing,
            cases::keys_are_independent_of_each_other,
            cases::the_first_denial_is_reported_once_per_window_and_again_after_it_passes,
            cases::a_limiter_whose_backend_answers_reports_ok_health,
        }
    };
}

/// One test per listed case; an implementation detail of [`limiter_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __limiter_conformance_cases {
    ($factory:expr; $($module:ident::$case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(limiter) = $factory.await else {
                    return;
                };
                $crate::testkit::limiter_suite::$case(limiter).await;
            }
        )+
    };
}

//! The macros that run the store suite against one backend, and the one list of its cases.

/// Expands to `mod $backend { … }` holding one
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per case of
/// [`store_suite`](crate::testkit::store_suite), each named after its case.
///
/// `$factory` is an expression evaluated afresh in every test (inside the generated
/// module, which glob-imports its parent) and awaited; it yields
/// `Option<(store, guard)>`: a fresh, migrated, empty store, and a value kept alive until
/// the case has finished (such as the temporary database the store lives in; use `()`
/// when there is none). `None` means the backend is not configured and the test is skipped
/// (the factory reports that, loudly).
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
///
/// ```ignore
/// tessera_app::store_conformance!(sqlite, sqlite_store());
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($backend:ident, $factory:expr $(,)?) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            $crate::__store_suite_cases!(__store_conformance_cases!($factory));
        }
    };
}

/// Every case of the store suite, as `module::case`: the one list. Expands
/// `$crate::$then!` with `$args`, a `;`, and the list. The suite re-exports exactly these
/// cases and denies dead code, so a case left out of the list fails the build instead of
/// silently never running; [`store_conformance!`] makes a test of each.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_suite_cases {
    ($then:ident!($($args:tt)*)) => {
        $crate::$then! {
            $($args)*;
            rotation::exactly_one_of_sixteen_concurrent_rotations_wins,
            rotation::a_rotated_token_is_recognised_as_reuse_not_as_unknown,
            rotation::rotating_the_token_of_a_revoked_session_loses,
            rotation::a_token_rotates_only_its_own_session,
            rotation::only_the_latest_predecessor_keeps_a_sealed_successor_and_only_within_the_window,
            one_step::the_current_token_of_a_live_session_rotates_in_one_step,
            one_step::a_one_step_rotation_never_extends_a_session_past_its_absolute_expiry,
            one_step::only_the_current_token_of_a_live_session_rotates_in_one_step,
            one_step::exactly_one_of_sixteen_concurrent_one_step_rotations_wins,
            one_step::a_one_step_rotation_clears_expired_seals_of_other_sessions,
            logins::a_second_login_on_a_device_supersedes_the_first,
            logins::a_device_stays_known_after_its_sessions_end,
            logins::concurrent_logins_on_one_device_leave_exactly_one_live_session,
            expiry::a_session_expires_when_idle_unless_refreshed,
            expiry::a_session_ends_at_its_absolute_deadline_despite_refreshes,
            expiry::live_sessions_are_listed_most_recently_seen_first,
            users::a_user_is_found_by_id_and_by_email_in_any_case,
            users::a_second_user_with_the_same_email_in_another_case_is_a_conflict,
            users::a_password_hash_is_swapped_only_from_the_expected_one,
            users::roles_are_replaced_as_a_set_and_listed_sorted,
            users::concurrent_grants_of_different_roles_all_survive,
            users::an_account_is_disabled_and_enabled_once_each,
            users::of_concurrent_disables_exactly_one_wins,
            revocation::revoking_a_session_twice_reports_false_the_second_time,
            revocation::revoking_all_sessions_keeps_the_given_one_and_returns_the_others,
            records::events_round_trip_every_field_and_list_newest_first,
            records::events_at_the_same_instant_list_in_reverse_write_order,
            records::signing_keys_round_trip_newest_first_and_insert_is_idempotent,
            timestamps::timestamps_round_trip_to_the_microsecond,
            timestamps::a_session_reads_back_every_field_it_was_given,
            timestamps::a_fresh_store_answers_a_ping,
            mfa::setting_up_totp_keeps_it_pending_and_setting_up_again_replaces_it,
            mfa::enabling_moves_the_pending_secret_to_enabled_with_its_step_and_ten_codes,
            mfa::enabling_without_a_pending_secret_changes_nothing,
            mfa::of_concurrent_enables_exactly_one_wins_and_only_its_codes_work,
            mfa::a_totp_step_is_accepted_only_when_later_than_the_last_one,
            mfa::of_sixteen_concurrent_uses_of_one_totp_step_exactly_one_passes,
            mfa::no_totp_step_is_accepted_without_an_enabled_factor,
            mfa::a_recovery_code_works_once_and_only_for_its_user,
            mfa::of_eight_concurrent_uses_of_one_recovery_code_exactly_one_passes,
            mfa::regenerated_recovery_codes_replace_the_old_ones,
            mfa::concurrent_regenerations_leave_exactly_one_set_of_codes,
            regeneration::recovery_codes_are_replaced_only_for_the_factor_the_caller_proved,
            regeneration::regenerations_racing_a_reset_leave_no_codes_without_a_factor,
            mfa::purging_mfa_removes_everything_and_reports_whether_it_was_enabled,
            mfa::an_mfa_challenge_is_returned_until_it_expires,
            mfa::an_mfa_challenge_is_consumed_once_and_then_no_longer_returned,
            mfa::purging_challenges_removes_the_users_own_only,
            mfa::of_eight_concurrent_consumes_of_one_challenge_exactly_one_wins,
            mfa::recording_mfa_raises_a_live_session_to_aal2_but_not_a_revoked_one,
            resealing::a_sealed_signing_seed_is_swapped_only_from_the_expected_bytes,
            resealing::every_sealed_totp_secret_enabled_or_pending_is_listed,
            resealing::sealed_totp_secrets_are_swapped_only_from_the_expected_values,
            resealing::of_eight_concurrent_swaps_of_one_sealed_totp_secret_exactly_one_wins,
            resealing::every_undelivered_outbox_secret_is_listed_leased_or_not,
            resealing::an_outbox_secret_is_swapped_only_from_the_expected_bytes_even_while_leased,
            resealing::of_eight_concurrent_swaps_of_one_outbox_secret_exactly_one_wins,
            purge::purging_removes_sessions_ended_long_ago_with_their_history_and_nothing_else,
            purge::after_a_purge_a_live_session_still_refreshes_and_an_old_token_is_still_reuse,
            purge::purging_removes_expired_challenges_and_old_events_only,
            purge::a_purge_run_deletes_at_most_a_batch_per_table_and_says_when_more_remain,
            purge::an_ended_session_with_more_history_than_a_batch_goes_over_several_runs,
            audit::sixteen_concurrent_events_of_one_user_form_one_unforked_chain,
            audit::events_of_two_users_form_two_chains_listed_by_user,
            audit::purging_deletes_only_a_chain_prefix_and_moves_the_checkpoint,
            outbox::an_event_with_a_notice_writes_one_outbox_row_per_channel,
            outbox::a_failed_event_insert_leaves_no_outbox_row,
            outbox::concurrent_claimers_never_get_the_same_row,
            outbox::a_leased_row_is_claimed_again_only_when_its_lease_ends,
            outbox::a_worker_claims_only_rows_for_its_own_channels,
            outbox::settling_a_delivery_removes_retries_or_buries_it,
            reset::a_reset_token_is_taken_exactly_once,
            reset::a_replaced_reset_token_no_longer_works,
            reset::an_expired_reset_token_answers_none_and_is_gone,
        }
    };
}

/// One test per listed case; an implementation detail of [`store_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($factory:expr; $($module:ident::$case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                // `_guard` (unlike `_`) lives to the end of the test, after the case.
                let Some((store, _guard)) = $factory.await else {
                    return;
                };
                $crate::testkit::store_suite::$case(store).await;
            }
        )+
    };
}

/// `pub use` of each listed case from its module; an implementation detail of
/// [`store_suite`](crate::testkit::store_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __reexport_cases {
    ($suite:ident; $($module:ident::$case:ident),+ $(,)?) => {
        $(
            pub use $crate::testkit::$suite::$module::$case;
        )+
    };
}

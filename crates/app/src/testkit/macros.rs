//! The macro that runs the store suite against one backend.

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

            $crate::__store_conformance_cases! {
                $factory;
                exactly_one_of_sixteen_concurrent_rotations_wins,
                a_rotated_token_is_recognised_as_reuse_not_as_unknown,
                rotating_the_token_of_a_revoked_session_loses,
                a_token_rotates_only_its_own_session,
                only_the_latest_predecessor_keeps_a_sealed_successor_and_only_within_the_window,
                the_current_token_of_a_live_session_rotates_in_one_step,
                a_one_step_rotation_never_extends_a_session_past_its_absolute_expiry,
                only_the_current_token_of_a_live_session_rotates_in_one_step,
                exactly_one_of_sixteen_concurrent_one_step_rotations_wins,
                a_one_step_rotation_clears_expired_seals_of_other_sessions,
                a_second_login_on_a_device_supersedes_the_first,
                a_device_stays_known_after_its_sessions_end,
                concurrent_logins_on_one_device_leave_exactly_one_live_session,
                a_session_expires_when_idle_unless_refreshed,
                a_session_ends_at_its_absolute_deadline_despite_refreshes,
                live_sessions_are_listed_most_recently_seen_first,
                a_user_is_found_by_id_and_by_email_in_any_case,
                a_second_user_with_the_same_email_in_another_case_is_a_conflict,
                a_password_hash_is_swapped_only_from_the_expected_one,
                roles_are_replaced_as_a_set_and_listed_sorted,
                concurrent_grants_of_different_roles_all_survive,
                revoking_a_session_twice_reports_false_the_second_time,
                revoking_all_sessions_keeps_the_given_one_and_returns_the_others,
                events_round_trip_every_field_and_list_newest_first,
                events_at_the_same_instant_list_in_reverse_write_order,
                signing_keys_round_trip_newest_first_and_insert_is_idempotent,
                timestamps_round_trip_to_the_microsecond,
                a_session_reads_back_every_field_it_was_given,
                a_fresh_store_answers_a_ping,
                setting_up_totp_keeps_it_pending_and_setting_up_again_replaces_it,
                enabling_moves_the_pending_secret_to_enabled_with_its_step_and_ten_codes,
                enabling_without_a_pending_secret_changes_nothing,
                of_concurrent_enables_exactly_one_wins_and_only_its_codes_work,
                a_totp_step_is_accepted_only_when_later_than_the_last_one,
                of_sixteen_concurrent_uses_of_one_totp_step_exactly_one_passes,
                no_totp_step_is_accepted_without_an_enabled_factor,
                a_recovery_code_works_once_and_only_for_its_user,
                of_eight_concurrent_uses_of_one_recovery_code_exactly_one_passes,
                regenerated_recovery_codes_replace_the_old_ones,
                concurrent_regenerations_leave_exactly_one_set_of_codes,
                recovery_codes_are_replaced_only_for_the_factor_the_caller_proved,
                regenerations_racing_a_reset_leave_no_codes_without_a_factor,
                purging_mfa_removes_everything_and_reports_whether_it_was_enabled,
                an_mfa_challenge_is_returned_until_it_expires,
                an_mfa_challenge_is_consumed_once_and_then_no_longer_returned,
                purging_challenges_removes_the_users_own_only,
                of_eight_concurrent_consumes_of_one_challenge_exactly_one_wins,
                recording_mfa_raises_a_live_session_to_aal2_but_not_a_revoked_one,
                a_sealed_signing_seed_is_swapped_only_from_the_expected_bytes,
                every_sealed_totp_secret_enabled_or_pending_is_listed,
                sealed_totp_secrets_are_swapped_only_from_the_expected_values,
                of_eight_concurrent_swaps_of_one_sealed_totp_secret_exactly_one_wins,
                purging_removes_sessions_ended_long_ago_with_their_history_and_nothing_else,
                after_a_purge_a_live_session_still_refreshes_and_an_old_token_is_still_reuse,
                purging_removes_expired_challenges_and_old_events_only,
                a_purge_run_deletes_at_most_a_batch_per_table_and_says_when_more_remain,
                an_ended_session_with_more_history_than_a_batch_goes_over_several_runs,
                sixteen_concurrent_events_of_one_user_form_one_unforked_chain,
                events_of_two_users_form_two_chains_listed_by_user,
                purging_deletes_only_a_chain_prefix_and_moves_the_checkpoint,
                an_event_with_a_notice_writes_one_outbox_row_per_channel,
                a_failed_event_insert_leaves_no_outbox_row,
                concurrent_claimers_never_get_the_same_row,
                a_leased_row_is_claimed_again_only_when_its_lease_ends,
                settling_a_delivery_removes_retries_or_buries_it,
                a_reset_token_is_taken_exactly_once,
                a_replaced_reset_token_no_longer_works,
                an_expired_reset_token_answers_none_and_is_gone,
            }
        }
    };
}

/// One test per named case; an implementation detail of [`store_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($factory:expr; $($case:ident),+ $(,)?) => {
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

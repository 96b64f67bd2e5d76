//! TOTP factors (pending, enabled, the replay guard), recovery codes, login second-step
//! challenges, and recording an MFA on a session.

use std::net::{IpAddr, Ipv6Addr};

use tessera_core::ids::{DeviceName, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::mfa::recovery::{RECOVERY_CODES, RecoveryCode, RecoveryCodeHash};
use tessera_core::password::PasswordHash;
use tessera_core::session::RevokeReason;
use time::{Duration, OffsetDateTime};

use super::{T0, device, given_user, hex, race, random, session_on, token_hash};
use crate::ports::{Clock, MfaChallenge, MfaRecord, Store};
use crate::testkit::ManualClock;

/// A TOTP time step around `T0` (30 s steps), so steps look like real ones.
pub(super) const STEP: i64 = 59_034_911;
/// How long the challenges made by [`challenge_for`] live.
const CHALLENGE_TTL: Duration = Duration::minutes(5);

/// A fresh set of recovery-code hashes, as enrolment or regeneration would make.
pub(super) fn codes() -> Vec<RecoveryCodeHash> {
    (0..RECOVERY_CODES)
        .map(|_| RecoveryCode::from_random(random()).hash())
        .collect()
}

pub(super) fn sealed(tag: u8) -> Vec<u8> {
    let mut bytes = vec![tag; 4];
    bytes.extend_from_slice(&random::<28>());
    bytes
}

fn challenge_for(user: UserId, at: OffsetDateTime) -> MfaChallenge {
    MfaChallenge {
        token_hash: token_hash(),
        user_id: user,
        device_id: device("phone"),
        device_name: Some(DeviceName::parse("Ana's phone").unwrap()),
        user_agent: Some("TesseraTest/1.0".into()),
        ip: Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))),
        created_at: at,
        expires_at: at + CHALLENGE_TTL,
        password_hash: PasswordHash::from_stored(format!("$argon2id$stub${}", hex(&random::<8>()))),
    }
}

pub(super) async fn mfa<S: Store>(store: &S, user: UserId) -> Option<MfaRecord> {
    store.get_mfa(user).await.unwrap()
}

async fn get<S: Store>(store: &S, c: &MfaChallenge, now: OffsetDateTime) -> Option<MfaChallenge> {
    store.get_mfa_challenge(&c.token_hash, now).await.unwrap()
}

pub(super) async fn remaining<S: Store>(store: &S, user: UserId) -> u32 {
    mfa(store, user).await.unwrap().recovery_codes_remaining
}

/// A user with TOTP enabled at step [`STEP`] (at `T0`); returns the secret and the codes.
pub(super) async fn enrolled<S: Store>(store: &S) -> (UserId, Vec<u8>, Vec<RecoveryCodeHash>) {
    let user = given_user(store).await;
    let secret = sealed(1);
    let codes = codes();
    store.replace_pending_totp(user, &secret, T0).await.unwrap();
    assert!(store.enable_totp(user, STEP, &codes, T0).await.unwrap());
    (user, secret, codes)
}

pub(super) fn wins(outcomes: &[bool]) -> usize {
    outcomes.iter().filter(|won| **won).count()
}

/// Setup stores a pending secret only (nothing enabled, no codes); setting up again
/// replaces the pending secret and its time.
pub async fn setting_up_totp_keeps_it_pending_and_setting_up_again_replaces_it<S: Store>(store: S) {
    let user = given_user(&store).await;
    assert_eq!(mfa(&store, user).await, None);

    let first = sealed(1);
    store.replace_pending_totp(user, &first, T0).await.unwrap();
    let expected = MfaRecord {
        user_id: user,
        sealed_secret: None,
        enabled_at: None,
        pending_sealed: Some(first),
        pending_created_at: Some(T0),
        last_step: None,
        recovery_codes_remaining: 0,
    };
    assert_eq!(mfa(&store, user).await, Some(expected.clone()));

    let second = sealed(2);
    let later = T0 + Duration::minutes(1);
    store
        .replace_pending_totp(user, &second, later)
        .await
        .unwrap();
    let replaced = MfaRecord {
        pending_sealed: Some(second),
        pending_created_at: Some(later),
        ..expected
    };
    assert_eq!(mfa(&store, user).await, Some(replaced));
}

/// Enabling moves the pending secret to enabled, records the accepted step and the ten
/// codes; it happens once: with the factor enabled, enabling again fails, even after a new
/// setup, whose pending secret leaves the enabled one untouched.
pub async fn enabling_moves_the_pending_secret_to_enabled_with_its_step_and_ten_codes<S: Store>(
    store: S,
) {
    let user = given_user(&store).await;
    let secret = sealed(1);
    store.replace_pending_totp(user, &secret, T0).await.unwrap();
    let at = T0 + Duration::seconds(40);
    assert!(store.enable_totp(user, STEP, &codes(), at).await.unwrap());
    let enabled = MfaRecord {
        user_id: user,
        sealed_secret: Some(secret),
        enabled_at: Some(at),
        pending_sealed: None,
        pending_created_at: None,
        last_step: Some(STEP),
        recovery_codes_remaining: 10,
    };
    assert_eq!(mfa(&store, user).await, Some(enabled.clone()));

    let later = at + Duration::minutes(1);
    assert!(
        !store
            .enable_totp(user, STEP + 2, &codes(), later)
            .await
            .unwrap()
    );
    assert_eq!(mfa(&store, user).await, Some(enabled.clone()));

    let replacement = sealed(2);
    store
        .replace_pending_totp(user, &replacement, later)
        .await
        .unwrap();
    assert!(
        !store
            .enable_totp(user, STEP + 4, &codes(), later)
            .await
            .unwrap()
    );
    let with_pending = MfaRecord {
        pending_sealed: Some(replacement),
        pending_created_at: Some(later),
        ..enabled
    };
    assert_eq!(mfa(&store, user).await, Some(with_pending));
}

/// Without a pending secret there is nothing to enable: false, no factor, no codes.
pub async fn enabling_without_a_pending_secret_changes_nothing<S: Store>(store: S) {
    let user = given_user(&store).await;
    let codes = codes();
    assert!(!store.enable_totp(user, STEP, &codes, T0).await.unwrap());
    assert_eq!(mfa(&store, user).await, None);
    assert!(!store.use_recovery_code(user, &codes[0], T0).await.unwrap());
    assert!(!store.swap_totp_step(user, STEP + 1).await.unwrap());
}

/// Of eight concurrent confirmations of one pending secret exactly one enables it, and
/// only the winner's codes work.
pub async fn of_concurrent_enables_exactly_one_wins_and_only_its_codes_work<S: Store>(store: S) {
    let user = given_user(&store).await;
    store
        .replace_pending_totp(user, &sealed(1), T0)
        .await
        .unwrap();
    let sets: Vec<Vec<RecoveryCodeHash>> = (0..8).map(|_| codes()).collect();
    let outcomes = race(&store, sets.len(), |store, i| {
        let codes = sets[i].clone();
        async move { store.enable_totp(user, STEP, &codes, T0).await.unwrap() }
    })
    .await;
    assert_eq!(
        wins(&outcomes),
        1,
        "exactly one enable must win: {outcomes:?}"
    );
    assert_eq!(remaining(&store, user).await, 10);
    for (set, won) in sets.iter().zip(&outcomes) {
        assert_eq!(
            store.use_recovery_code(user, &set[0], T0).await.unwrap(),
            *won
        );
    }
}

/// The replay guard: once step s is accepted, s and earlier steps are refused and later
/// ones accepted (each once).
pub async fn a_totp_step_is_accepted_only_when_later_than_the_last_one<S: Store>(store: S) {
    let (user, _, _) = enrolled(&store).await;
    assert!(!store.swap_totp_step(user, STEP).await.unwrap(), "replay");
    assert!(
        !store.swap_totp_step(user, STEP - 1).await.unwrap(),
        "earlier"
    );
    assert!(store.swap_totp_step(user, STEP + 1).await.unwrap(), "later");
    assert_eq!(mfa(&store, user).await.unwrap().last_step, Some(STEP + 1));
    assert!(!store.swap_totp_step(user, STEP + 1).await.unwrap());
    assert!(!store.swap_totp_step(user, STEP).await.unwrap());
    assert!(store.swap_totp_step(user, STEP + 5).await.unwrap());
    assert_eq!(mfa(&store, user).await.unwrap().last_step, Some(STEP + 5));
}

/// Sixteen concurrent uses of one code (one step): exactly one passes.
pub async fn of_sixteen_concurrent_uses_of_one_totp_step_exactly_one_passes<S: Store>(store: S) {
    let (user, _, _) = enrolled(&store).await;
    let outcomes = race(&store, 16, |store, _| async move {
        store.swap_totp_step(user, STEP + 1).await.unwrap()
    })
    .await;
    assert_eq!(
        wins(&outcomes),
        1,
        "exactly one use must pass: {outcomes:?}"
    );
    assert_eq!(mfa(&store, user).await.unwrap().last_step, Some(STEP + 1));
}

/// No step is accepted for a user who never set up TOTP, or has only a pending secret.
pub async fn no_totp_step_is_accepted_without_an_enabled_factor<S: Store>(store: S) {
    let never = given_user(&store).await;
    assert!(!store.swap_totp_step(never, STEP).await.unwrap());
    assert_eq!(mfa(&store, never).await, None);

    let pending = given_user(&store).await;
    store
        .replace_pending_totp(pending, &sealed(1), T0)
        .await
        .unwrap();
    assert!(!store.swap_totp_step(pending, STEP).await.unwrap());
    assert_eq!(mfa(&store, pending).await.unwrap().last_step, None);
}

/// A recovery code works once, for its own user only; the count of unused codes drops.
pub async fn a_recovery_code_works_once_and_only_for_its_user<S: Store>(store: S) {
    let (user, _, codes) = enrolled(&store).await;
    let (stranger, _, _) = enrolled(&store).await;
    let at = T0 + Duration::minutes(1);

    assert!(
        !store
            .use_recovery_code(stranger, &codes[1], at)
            .await
            .unwrap()
    );
    assert_eq!(remaining(&store, stranger).await, 10);
    assert!(store.use_recovery_code(user, &codes[0], at).await.unwrap());
    assert_eq!(remaining(&store, user).await, 9);
    assert!(!store.use_recovery_code(user, &codes[0], at).await.unwrap());
    assert_eq!(remaining(&store, user).await, 9);
    let unknown = RecoveryCode::from_random(random()).hash();
    assert!(!store.use_recovery_code(user, &unknown, at).await.unwrap());
    assert!(store.use_recovery_code(user, &codes[1], at).await.unwrap());
    assert_eq!(remaining(&store, user).await, 8);
}

/// Eight concurrent uses of one recovery code: exactly one passes.
pub async fn of_eight_concurrent_uses_of_one_recovery_code_exactly_one_passes<S: Store>(store: S) {
    let (user, _, codes) = enrolled(&store).await;
    let code = codes[3];
    let outcomes = race(&store, 8, |store, _| async move {
        store.use_recovery_code(user, &code, T0).await.unwrap()
    })
    .await;
    assert_eq!(
        wins(&outcomes),
        1,
        "exactly one use must pass: {outcomes:?}"
    );
    assert_eq!(remaining(&store, user).await, 9);
}

/// Regenerating replaces the whole set: old codes (used or not) stop working, the new
/// ones work, and all ten count as unused.
pub async fn regenerated_recovery_codes_replace_the_old_ones<S: Store>(store: S) {
    let (user, _, old) = enrolled(&store).await;
    assert!(store.use_recovery_code(user, &old[0], T0).await.unwrap());
    let new = codes();
    let at = T0 + Duration::minutes(2);
    assert!(store.swap_recovery_codes(user, T0, &new, at).await.unwrap());
    assert_eq!(remaining(&store, user).await, 10);
    for code in &old {
        assert!(!store.use_recovery_code(user, code, at).await.unwrap());
    }
    assert!(store.use_recovery_code(user, &new[0], at).await.unwrap());
    assert_eq!(remaining(&store, user).await, 9);
}

/// Eight concurrent regenerations leave exactly one complete set, never a mixture.
pub async fn concurrent_regenerations_leave_exactly_one_set_of_codes<S: Store>(store: S) {
    let (user, _, _) = enrolled(&store).await;
    let sets: Vec<Vec<RecoveryCodeHash>> = (0..8).map(|_| codes()).collect();
    race(&store, sets.len(), |store, i| {
        let codes = sets[i].clone();
        async move {
            store
                .swap_recovery_codes(user, T0, &codes, T0)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(remaining(&store, user).await, 10);
    let mut surviving = 0;
    for set in &sets {
        let mut working = 0;
        for code in set {
            working += usize::from(store.use_recovery_code(user, code, T0).await.unwrap());
        }
        assert!(
            working == 0 || working == set.len(),
            "a mixed set: {working}"
        );
        surviving += usize::from(working > 0);
    }
    assert_eq!(surviving, 1);
}

/// Purging removes the factor (enabled and pending) and every code, and says whether a
/// factor was enabled; afterwards the user can enrol afresh.
pub async fn purging_mfa_removes_everything_and_reports_whether_it_was_enabled<S: Store>(store: S) {
    let (user, _, old) = enrolled(&store).await;
    store
        .replace_pending_totp(user, &sealed(2), T0)
        .await
        .unwrap();
    assert!(store.purge_mfa(user).await.unwrap());
    assert_eq!(mfa(&store, user).await, None);
    assert!(!store.use_recovery_code(user, &old[0], T0).await.unwrap());
    assert!(!store.swap_totp_step(user, STEP + 1).await.unwrap());
    assert!(
        !store.purge_mfa(user).await.unwrap(),
        "nothing left to purge"
    );

    let pending_only = given_user(&store).await;
    store
        .replace_pending_totp(pending_only, &sealed(3), T0)
        .await
        .unwrap();
    assert!(!store.purge_mfa(pending_only).await.unwrap());
    assert_eq!(mfa(&store, pending_only).await, None);

    let secret = sealed(4);
    let fresh = codes();
    store.replace_pending_totp(user, &secret, T0).await.unwrap();
    assert!(store.enable_totp(user, STEP + 9, &fresh, T0).await.unwrap());
    let record = mfa(&store, user).await.unwrap();
    assert_eq!(record.sealed_secret, Some(secret));
    assert_eq!(record.last_step, Some(STEP + 9));
    assert_eq!(record.recovery_codes_remaining, 10);
}

/// A challenge reads back every field while `now` is before its expiry; from its expiry
/// on it is neither returned nor consumable.
pub async fn an_mfa_challenge_is_returned_until_it_expires<S: Store>(store: S) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    let full = challenge_for(user, clock.now());
    let bare = MfaChallenge {
        token_hash: token_hash(),
        device_name: None,
        user_agent: None,
        ip: None,
        ..full.clone()
    };
    store.insert_mfa_challenge(&full).await.unwrap();
    store.insert_mfa_challenge(&bare).await.unwrap();

    assert_eq!(get(&store, &full, clock.now()).await, Some(full.clone()));
    assert_eq!(get(&store, &bare, clock.now()).await, Some(bare.clone()));
    assert_eq!(
        store
            .get_mfa_challenge(&token_hash(), clock.now())
            .await
            .unwrap(),
        None
    );

    clock.set(full.expires_at - Duration::microseconds(1));
    assert_eq!(get(&store, &full, clock.now()).await, Some(full.clone()));
    clock.set(full.expires_at);
    assert_eq!(get(&store, &full, clock.now()).await, None);
    assert!(
        !store
            .consume_mfa_challenge(&full.token_hash, clock.now())
            .await
            .unwrap()
    );
    clock.advance(Duration::minutes(1));
    assert_eq!(get(&store, &bare, clock.now()).await, None);
    assert!(
        !store
            .consume_mfa_challenge(&bare.token_hash, clock.now())
            .await
            .unwrap()
    );
}

/// A challenge is consumed once; a consumed challenge is no longer returned.
pub async fn an_mfa_challenge_is_consumed_once_and_then_no_longer_returned<S: Store>(store: S) {
    let user = given_user(&store).await;
    let challenge = challenge_for(user, T0);
    store.insert_mfa_challenge(&challenge).await.unwrap();
    let hash = challenge.token_hash;
    let at = T0 + Duration::seconds(20);

    assert!(store.consume_mfa_challenge(&hash, at).await.unwrap());
    assert_eq!(store.get_mfa_challenge(&hash, at).await.unwrap(), None);
    assert!(!store.consume_mfa_challenge(&hash, at).await.unwrap());
    assert!(
        !store
            .consume_mfa_challenge(&token_hash(), at)
            .await
            .unwrap()
    );
}

/// Purging a user's challenges removes theirs only, and says how many.
pub async fn purging_challenges_removes_the_users_own_only<S: Store>(store: S) {
    let user = given_user(&store).await;
    let other = given_user(&store).await;
    let mine = [challenge_for(user, T0), challenge_for(user, T0)];
    let theirs = challenge_for(other, T0);
    for c in mine.iter().chain([&theirs]) {
        store.insert_mfa_challenge(c).await.unwrap();
    }
    assert_eq!(store.purge_mfa_challenges(user).await.unwrap(), 2);
    for c in &mine {
        assert_eq!(
            store.get_mfa_challenge(&c.token_hash, T0).await.unwrap(),
            None
        );
        assert!(
            !store
                .consume_mfa_challenge(&c.token_hash, T0)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        store
            .get_mfa_challenge(&theirs.token_hash, T0)
            .await
            .unwrap(),
        Some(theirs)
    );
    assert_eq!(store.purge_mfa_challenges(user).await.unwrap(), 0);
}

/// Eight concurrent consumes of one challenge: exactly one wins.
pub async fn of_eight_concurrent_consumes_of_one_challenge_exactly_one_wins<S: Store>(store: S) {
    let user = given_user(&store).await;
    let challenge = challenge_for(user, T0);
    store.insert_mfa_challenge(&challenge).await.unwrap();
    let hash = challenge.token_hash;
    let outcomes = race(&store, 8, |store, _| async move {
        store.consume_mfa_challenge(&hash, T0).await.unwrap()
    })
    .await;
    assert_eq!(
        wins(&outcomes),
        1,
        "exactly one consume must win: {outcomes:?}"
    );
    assert_eq!(store.get_mfa_challenge(&hash, T0).await.unwrap(), None);
}

/// Recording an MFA on a live session sets `mfa_verified_at` and raises it to AAL2; a
/// revoked (or unknown) session is refused and left as it was.
pub async fn recording_mfa_raises_a_live_session_to_aal2_but_not_a_revoked_one<S: Store>(store: S) {
    let user = given_user(&store).await;
    let live = session_on(user, "phone", T0);
    let revoked = session_on(user, "laptop", T0);
    store.insert_session(&live).await.unwrap();
    store.insert_session(&revoked).await.unwrap();
    let at = T0 + Duration::minutes(3);
    assert!(
        store
            .revoke_session(revoked.id, RevokeReason::Logout, at)
            .await
            .unwrap()
    );

    assert!(store.record_session_mfa(live.id, at).await.unwrap());
    let record = store.get_session(live.id).await.unwrap().unwrap();
    assert_eq!(record.mfa_verified_at, Some(at));
    assert_eq!(record.assurance, Assurance::PasswordAndOtp);
    assert_eq!(record.auth_time, T0, "the login time stays");

    assert!(!store.record_session_mfa(revoked.id, at).await.unwrap());
    let untouched = store.get_session(revoked.id).await.unwrap().unwrap();
    assert_eq!(untouched.mfa_verified_at, None);
    assert_eq!(untouched.assurance, Assurance::Password);

    let unknown = SessionId::from_random(random());
    assert!(!store.record_session_mfa(unknown, at).await.unwrap());
}

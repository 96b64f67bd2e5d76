//! The one-round-trip rotation (`rotate_current`): it does exactly what the
//! compare-and-swap does when the presented token is current on a live session, and
//! writes nothing otherwise, so the caller's slow path sees the rows untouched.

use tessera_core::secret::TokenHash;
use tessera_core::session::RevokeReason;
use time::{Duration, OffsetDateTime};

use super::{
    ABSOLUTE, IDLE, RACERS, T0, given_user, race, random, rotation, session_on, token_hash,
};
use crate::ports::{CurrentRotation, Store, SwapOutcome};

/// A one-step rotation of `presented` at `now`, as the refresh use case builds it.
fn one_step(presented: TokenHash, now: OffsetDateTime) -> CurrentRotation {
    CurrentRotation {
        presented,
        successor: token_hash(),
        sealed_successor: None,
        seals_expire_before: now,
        now,
        idle_deadline_cap: now + IDLE,
        ip: Some("198.51.100.7".parse().unwrap()),
        user_agent: Some("Rotator/2.0".into()),
    }
}

/// The current token of a live session rotates: the session comes back as it is after
/// the rotation, and the history is what the compare-and-swap would have written.
pub async fn the_current_token_of_a_live_session_rotates_in_one_step<S: Store>(store: S) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();

    let now = T0 + Duration::minutes(5);
    let mut first = one_step(login.refresh_hash, now);
    first.sealed_successor = Some(vec![9; 48]);
    let session = store.rotate_current(&first).await.unwrap().unwrap();
    assert_eq!(session.state.id, login.id);
    assert_eq!(session.state.user_id, user);
    assert_eq!(session.refresh_generation, 1);
    assert_eq!(session.state.idle_expires_at, now + IDLE);
    assert_eq!(session.last_seen_at, now);
    assert_eq!(session.ip, first.ip);
    assert_eq!(session.user_agent, first.user_agent);
    assert_eq!(session.auth_time, login.auth_time);
    assert_eq!(session, store.get_session(login.id).await.unwrap().unwrap());

    let presented = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(presented.rotated_at, Some(now));
    assert!(presented.successor_is_current);
    assert_eq!(presented.sealed_successor, first.sealed_successor);
    let current = store.get_refresh(&first.successor).await.unwrap().unwrap();
    assert_eq!((current.generation, current.rotated_at), (1, None));

    // The next one, within the first seal's retry window, still clears it: the
    // predecessor of a rotated token can never be replayed.
    let mut second = one_step(first.successor, now + Duration::seconds(1));
    second.seals_expire_before = now - Duration::seconds(10);
    let session = store.rotate_current(&second).await.unwrap().unwrap();
    assert_eq!(session.refresh_generation, 2);
    let oldest = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(oldest.sealed_successor, None);
    assert!(!oldest.successor_is_current);
}

/// Near the end of its life, the idle deadline of a rotated session stops at its
/// absolute expiry.
pub async fn a_one_step_rotation_never_extends_a_session_past_its_absolute_expiry<S: Store>(
    store: S,
) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();
    let mut presented = login.refresh_hash;
    let mut now = T0;
    // Rotate every 50 minutes (inside the hour of idle) until the last hour of its day.
    while now + IDLE < T0 + ABSOLUTE {
        now += Duration::minutes(50);
        let step = one_step(presented, now);
        let session = store.rotate_current(&step).await.unwrap().unwrap();
        assert_eq!(
            session.state.idle_expires_at,
            (now + IDLE).min(T0 + ABSOLUTE)
        );
        presented = step.successor;
    }
    assert_eq!(
        store
            .get_session(login.id)
            .await
            .unwrap()
            .unwrap()
            .state
            .idle_expires_at,
        T0 + ABSOLUTE
    );
}

/// Anything but the current token of a live session writes nothing and answers `None`:
/// an unknown token, a rotated one, one of a revoked session, of an idle-expired one and
/// of one past its absolute expiry.
pub async fn only_the_current_token_of_a_live_session_rotates_in_one_step<S: Store>(store: S) {
    let user = given_user(&store).await;

    let unknown = one_step(token_hash(), T0);
    assert!(store.rotate_current(&unknown).await.unwrap().is_none());
    assert!(
        store
            .get_refresh(&unknown.successor)
            .await
            .unwrap()
            .is_none()
    );

    // Rotated: its successor took its place.
    let rotated = session_on(user, "rotated", T0);
    store.insert_session(&rotated).await.unwrap();
    let swap = rotation(rotated.id, rotated.refresh_hash, T0 + Duration::minutes(1));
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
    let replay = one_step(rotated.refresh_hash, T0 + Duration::minutes(2));
    assert!(store.rotate_current(&replay).await.unwrap().is_none());
    assert!(
        store
            .get_refresh(&replay.successor)
            .await
            .unwrap()
            .is_none()
    );
    let still = store.get_refresh(&swap.successor).await.unwrap().unwrap();
    assert_eq!((still.generation, still.rotated_at), (1, None));

    let revoked = session_on(user, "revoked", T0);
    store.insert_session(&revoked).await.unwrap();
    store
        .revoke_session(revoked.id, RevokeReason::Logout, T0 + Duration::minutes(1))
        .await
        .unwrap();

    let idle = session_on(user, "idle", T0);
    store.insert_session(&idle).await.unwrap();

    // Kept alive by rotations until its day is over.
    let old = session_on(user, "old", T0);
    store.insert_session(&old).await.unwrap();
    let mut old_current = old.refresh_hash;
    let mut t = T0;
    while t + Duration::minutes(50) < T0 + ABSOLUTE {
        t += Duration::minutes(50);
        let step = one_step(old_current, t);
        store.rotate_current(&step).await.unwrap().unwrap();
        old_current = step.successor;
    }

    for (what, id, presented, now) in [
        (
            "revoked",
            revoked.id,
            revoked.refresh_hash,
            T0 + Duration::minutes(2),
        ),
        ("idle-expired", idle.id, idle.refresh_hash, T0 + IDLE),
        (
            "past its absolute expiry",
            old.id,
            old_current,
            T0 + ABSOLUTE,
        ),
    ] {
        let before = store.get_session(id).await.unwrap().unwrap();
        let attempt = one_step(presented, now);
        assert!(
            store.rotate_current(&attempt).await.unwrap().is_none(),
            "the token of a {what} session must not rotate"
        );
        assert_eq!(
            store.get_session(id).await.unwrap().unwrap(),
            before,
            "a refused one-step rotation of a {what} session must write nothing"
        );
        assert!(
            store
                .get_refresh(&attempt.successor)
                .await
                .unwrap()
                .is_none()
        );
        let token = store.get_refresh(&presented).await.unwrap().unwrap();
        assert_eq!(token.rotated_at, None, "{what}");
    }
}

/// Of 16 concurrent one-step rotations of the same token, exactly one wins, and the
/// losers leave no trace.
pub async fn exactly_one_of_sixteen_concurrent_one_step_rotations_wins<S: Store>(store: S) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();
    let now = T0 + Duration::minutes(5);
    let steps: Vec<CurrentRotation> = (0..RACERS)
        .map(|_| one_step(login.refresh_hash, now))
        .collect();
    let won: Vec<usize> = race(&store, steps.len(), |store, i| {
        let step = steps[i].clone();
        async move { store.rotate_current(&step).await.unwrap().is_some() }
    })
    .await
    .into_iter()
    .enumerate()
    .filter_map(|(i, won)| won.then_some(i))
    .collect();
    assert_eq!(won.len(), 1, "exactly one must win, got {won:?}");
    let session = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(session.refresh_generation, 1);
    for (i, step) in steps.iter().enumerate() {
        let recorded = store.get_refresh(&step.successor).await.unwrap();
        assert_eq!(recorded.is_some(), i == won[0], "racer {i}'s successor");
    }
}

/// Seals of any session rotated before `seals_expire_before` are cleared by a one-step
/// rotation, as by the compare-and-swap: no dump plus old token walks a chain.
pub async fn a_one_step_rotation_clears_expired_seals_of_other_sessions<S: Store>(store: S) {
    let user = given_user(&store).await;
    let phone = session_on(user, "phone", T0);
    let laptop = session_on(user, "laptop", T0);
    store.insert_session(&phone).await.unwrap();
    store.insert_session(&laptop).await.unwrap();
    let t1 = T0 + Duration::minutes(1);
    let mut sealed = one_step(phone.refresh_hash, t1);
    sealed.sealed_successor = Some(random::<48>().to_vec());
    store.rotate_current(&sealed).await.unwrap().unwrap();

    let mut later = one_step(laptop.refresh_hash, t1 + Duration::seconds(30));
    later.seals_expire_before = t1 + Duration::seconds(1);
    store.rotate_current(&later).await.unwrap().unwrap();
    let phone_first = store
        .get_refresh(&phone.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(phone_first.sealed_successor, None);
    assert!(phone_first.successor_is_current, "only the seal is cleared");
}

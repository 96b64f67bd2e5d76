//! The refresh compare-and-swap and the rotation history.

use tessera_core::session::RevokeReason;
use time::Duration;

use super::{RACERS, T0, given_user, race, rotation, session_on, token_hash};
use crate::ports::{RefreshSwap, Store, SwapOutcome};

/// Of 16 concurrent rotations presenting the same current token, each with its own
/// successor, exactly one wins; the winner's successor becomes current at generation 1.
pub async fn exactly_one_of_sixteen_concurrent_rotations_wins<S: Store>(store: S) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();

    let now = T0 + Duration::minutes(5);
    let swaps: Vec<RefreshSwap> = (0..RACERS)
        .map(|_| rotation(login.id, login.refresh_hash, now))
        .collect();
    let outcomes = race(&store, swaps.len(), |store, i| {
        let swap = swaps[i].clone();
        async move { store.swap_refresh(&swap).await.unwrap() }
    })
    .await;
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| **outcome == SwapOutcome::Won)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one rotation must win, got {outcomes:?}"
    );
    let winner = &swaps[winners[0]];

    let session = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(session.refresh_generation, 1);
    let current = store.get_refresh(&winner.successor).await.unwrap().unwrap();
    assert_eq!(current.generation, 1);
    assert_eq!(current.rotated_at, None);
    let presented = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(presented.rotated_at, Some(now));
    assert!(presented.successor_is_current);
    for (i, loser) in swaps.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
        assert!(
            store.get_refresh(&loser.successor).await.unwrap().is_none(),
            "loser {i}'s successor must not be recorded"
        );
    }
}

/// A rotated token is still found (so its reuse is recognised, not taken for an unknown
/// token), with when it was rotated and whether its successor is still unused.
pub async fn a_rotated_token_is_recognised_as_reuse_not_as_unknown<S: Store>(store: S) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();
    let fresh = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            fresh.generation,
            fresh.rotated_at,
            fresh.successor_is_current
        ),
        (0, None, false)
    );
    assert_eq!(fresh.sealed_successor, None);
    assert_eq!(fresh.session.state.id, login.id);

    let t1 = T0 + Duration::minutes(10);
    let mut first = rotation(login.id, login.refresh_hash, t1);
    first.sealed_successor = Some(vec![7, 7, 7]);
    assert_eq!(store.swap_refresh(&first).await.unwrap(), SwapOutcome::Won);

    let reused = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reused.generation, 0);
    assert_eq!(reused.rotated_at, Some(t1));
    assert!(reused.successor_is_current);
    assert_eq!(reused.sealed_successor, Some(vec![7, 7, 7]));
    assert_eq!(reused.session.refresh_generation, 1);
    // Presenting it again cannot rotate.
    let replay = rotation(login.id, login.refresh_hash, t1 + Duration::seconds(1));
    assert_eq!(
        store.swap_refresh(&replay).await.unwrap(),
        SwapOutcome::Lost
    );

    let t2 = T0 + Duration::minutes(20);
    let second = rotation(login.id, first.successor, t2);
    assert_eq!(store.swap_refresh(&second).await.unwrap(), SwapOutcome::Won);
    let oldest = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !oldest.successor_is_current,
        "its successor has been used since"
    );
    let middle = store.get_refresh(&first.successor).await.unwrap().unwrap();
    assert_eq!((middle.generation, middle.rotated_at), (1, Some(t2)));
    assert!(middle.successor_is_current);
    assert_eq!(middle.sealed_successor, None);
    let current = store.get_refresh(&second.successor).await.unwrap().unwrap();
    assert_eq!((current.generation, current.rotated_at), (2, None));
    assert_eq!(current.session.refresh_generation, 2);

    assert!(store.get_refresh(&token_hash()).await.unwrap().is_none());
}

/// Once a session is revoked its current token no longer rotates.
pub async fn rotating_the_token_of_a_revoked_session_loses<S: Store>(store: S) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();
    let later = T0 + Duration::minutes(1);
    assert!(
        store
            .revoke_session(login.id, RevokeReason::Logout, later)
            .await
            .unwrap()
    );

    let swap = rotation(login.id, login.refresh_hash, later + Duration::seconds(1));
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Lost);
    let token = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.rotated_at, None);
    assert_eq!(token.session.refresh_generation, 0);
    assert!(store.get_refresh(&swap.successor).await.unwrap().is_none());
}

/// A token presented for another session does not rotate that session.
pub async fn a_token_rotates_only_its_own_session<S: Store>(store: S) {
    let user = given_user(&store).await;
    let phone = session_on(user, "phone", T0);
    let laptop = session_on(user, "laptop", T0);
    store.insert_session(&phone).await.unwrap();
    store.insert_session(&laptop).await.unwrap();

    let crossed = rotation(laptop.id, phone.refresh_hash, T0 + Duration::minutes(1));
    assert_eq!(
        store.swap_refresh(&crossed).await.unwrap(),
        SwapOutcome::Lost
    );
    let laptop_now = store.get_session(laptop.id).await.unwrap().unwrap();
    assert_eq!(laptop_now.refresh_generation, 0);
}

/// With a retry window, a rotation keeps its successor sealed under the presented token.
/// Only the latest predecessor may keep one, and only within the window: otherwise a
/// database dump plus any old refresh token would walk the chain to the live token.
pub async fn only_the_latest_predecessor_keeps_a_sealed_successor_and_only_within_the_window<
    S: Store,
>(
    store: S,
) {
    const WINDOW: Duration = Duration::seconds(10);
    let user = given_user(&store).await;
    let phone = session_on(user, "phone", T0);
    let laptop = session_on(user, "laptop", T0);
    store.insert_session(&phone).await.unwrap();
    store.insert_session(&laptop).await.unwrap();
    let sealed_rotation = |session, presented, now| {
        let mut swap = rotation(session, presented, now);
        swap.sealed_successor = Some(super::random::<48>().to_vec());
        swap.seals_expire_before = now - WINDOW;
        swap
    };
    let seal_of = |hash| {
        let store = store.clone();
        async move {
            store
                .get_refresh(&hash)
                .await
                .unwrap()
                .unwrap()
                .sealed_successor
        }
    };

    // Two rotations within one window: the first seal is cleared by the second rotation
    // itself (its window has not passed yet), the second one is kept.
    let t1 = T0 + Duration::minutes(1);
    let first = sealed_rotation(phone.id, phone.refresh_hash, t1);
    assert_eq!(store.swap_refresh(&first).await.unwrap(), SwapOutcome::Won);
    assert_eq!(seal_of(phone.refresh_hash).await, first.sealed_successor);
    let t2 = t1 + Duration::seconds(5);
    let second = sealed_rotation(phone.id, first.successor, t2);
    assert_eq!(store.swap_refresh(&second).await.unwrap(), SwapOutcome::Won);
    assert_eq!(seal_of(phone.refresh_hash).await, None);
    assert_eq!(seal_of(first.successor).await, second.sealed_successor);
    assert_eq!(seal_of(second.successor).await, None);

    // A rotation within the window of the phone's seal, on another session, keeps it.
    let laptop_first = sealed_rotation(laptop.id, laptop.refresh_hash, t2 + WINDOW);
    assert_eq!(
        store.swap_refresh(&laptop_first).await.unwrap(),
        SwapOutcome::Won
    );
    assert_eq!(seal_of(first.successor).await, second.sealed_successor);

    // Once the window has passed, the next rotation anywhere clears it: no seal is left
    // on the phone's chain, while the laptop's newest (still in its window) stays.
    let later = t2 + WINDOW + Duration::seconds(1);
    let laptop_second = sealed_rotation(laptop.id, laptop_first.successor, later);
    assert_eq!(
        store.swap_refresh(&laptop_second).await.unwrap(),
        SwapOutcome::Won
    );
    for hash in [phone.refresh_hash, first.successor, second.successor] {
        assert_eq!(seal_of(hash).await, None);
    }
    assert_eq!(seal_of(laptop.refresh_hash).await, None);
    assert_eq!(
        seal_of(laptop_first.successor).await,
        laptop_second.sealed_successor
    );
}

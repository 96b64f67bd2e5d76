//! Idle and absolute deadlines. The store persists the deadlines it is given; listing
//! hides a session once either has passed, and the record's liveness agrees.

use tessera_core::ids::UserId;
use tessera_core::session::{Liveness, RevokeReason, SessionState};
use time::{Duration, OffsetDateTime};

use super::{ABSOLUTE, IDLE, T0, given_user, rotation, session_on};
use crate::ports::{Clock, SessionRecord, Store, SwapOutcome};
use crate::testkit::ManualClock;

async fn listed<S: Store>(store: &S, user: UserId, now: OffsetDateTime) -> Vec<SessionRecord> {
    store.list_sessions(user, now).await.unwrap()
}

async fn liveness<S: Store>(store: &S, state: &SessionState, now: OffsetDateTime) -> Liveness {
    let record = store.get_session(state.id).await.unwrap().unwrap();
    record.state.liveness(now)
}

/// An idle session disappears from the list at its idle deadline, while a refreshed one,
/// whose deadline the rotation moved, stays.
pub async fn a_session_expires_when_idle_unless_refreshed<S: Store>(store: S) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    let idle = session_on(user, "idle-phone", clock.now());
    let busy = session_on(user, "busy-phone", clock.now());
    store.insert_session(&idle).await.unwrap();
    store.insert_session(&busy).await.unwrap();

    clock.advance(Duration::minutes(50));
    let swap = rotation(busy.id, busy.refresh_hash, clock.now());
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
    let refreshed = store.get_session(busy.id).await.unwrap().unwrap();
    assert_eq!(refreshed.last_seen_at, clock.now());
    assert_eq!(refreshed.state.idle_expires_at, clock.now() + IDLE);
    assert_eq!(listed(&store, user, clock.now()).await.len(), 2);

    clock.set(T0 + IDLE - Duration::microseconds(1));
    assert_eq!(listed(&store, user, clock.now()).await.len(), 2);
    let idle_state = store.get_session(idle.id).await.unwrap().unwrap().state;
    assert_eq!(
        liveness(&store, &idle_state, clock.now()).await,
        Liveness::Live
    );

    clock.set(T0 + IDLE);
    let visible = listed(&store, user, clock.now()).await;
    assert_eq!(
        visible.iter().map(|s| s.state.id).collect::<Vec<_>>(),
        vec![busy.id]
    );
    assert_eq!(
        liveness(&store, &idle_state, clock.now()).await,
        Liveness::Expired
    );
    assert_eq!(
        liveness(&store, &refreshed.state, clock.now()).await,
        Liveness::Live
    );

    clock.advance(Duration::minutes(50));
    assert!(listed(&store, user, clock.now()).await.is_empty());
    assert_eq!(
        liveness(&store, &refreshed.state, clock.now()).await,
        Liveness::Expired
    );
}

/// However often it is refreshed, a session ends at its absolute deadline (the caller
/// caps the idle deadline there, and the store keeps what it is given).
pub async fn a_session_ends_at_its_absolute_deadline_despite_refreshes<S: Store>(store: S) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    let mut login = session_on(user, "phone", clock.now());
    login.absolute_expires_at = T0 + Duration::hours(2);
    store.insert_session(&login).await.unwrap();
    assert!(login.absolute_expires_at < T0 + ABSOLUTE);

    let mut current = login.refresh_hash;
    for _ in 0..3 {
        clock.advance(Duration::minutes(40));
        let mut swap = rotation(login.id, current, clock.now());
        swap.idle_expires_at = swap.idle_expires_at.min(login.absolute_expires_at);
        assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
        current = swap.successor;
    }
    let record = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(record.state.idle_expires_at, login.absolute_expires_at);
    assert_eq!(record.state.absolute_expires_at, login.absolute_expires_at);

    clock.set(login.absolute_expires_at - Duration::microseconds(1));
    assert_eq!(listed(&store, user, clock.now()).await.len(), 1);
    assert_eq!(
        liveness(&store, &record.state, clock.now()).await,
        Liveness::Live
    );
    clock.set(login.absolute_expires_at);
    assert!(listed(&store, user, clock.now()).await.is_empty());
    assert_eq!(
        liveness(&store, &record.state, clock.now()).await,
        Liveness::Expired
    );
}

/// The list holds the user's live sessions only, most recently seen first.
pub async fn live_sessions_are_listed_most_recently_seen_first<S: Store>(store: S) {
    let user = given_user(&store).await;
    let a = session_on(user, "a", T0);
    let b = session_on(user, "b", T0 + Duration::seconds(1));
    let c = session_on(user, "c", T0 + Duration::seconds(2));
    for s in [&a, &b, &c] {
        store.insert_session(s).await.unwrap();
    }
    let swap = rotation(a.id, a.refresh_hash, T0 + Duration::seconds(3));
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
    store
        .revoke_session(b.id, RevokeReason::RevokedByUser, T0 + Duration::seconds(4))
        .await
        .unwrap();
    let stranger = given_user(&store).await;
    store
        .insert_session(&session_on(stranger, "a", T0))
        .await
        .unwrap();

    let order: Vec<_> = store
        .list_sessions(user, T0 + Duration::seconds(5))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.state.id)
        .collect();
    assert_eq!(order, vec![a.id, c.id]);
}

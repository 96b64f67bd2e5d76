//! One live session per user and device: superseding, known devices, concurrent logins.

use std::collections::HashSet;
use std::sync::Arc;

use tessera_core::ids::SessionId;
use tessera_core::session::RevokeReason;
use time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{T0, given_user, session_on};
use crate::ports::{InsertedSession, Store};

/// A second login on the same device revokes the first (reason `superseded`, at the new
/// login's time) and reports it; other devices and other users are unaffected.
pub async fn a_second_login_on_a_device_supersedes_the_first<S: Store>(store: S) {
    let user = given_user(&store).await;
    let first = session_on(user, "phone", T0);
    let first_ever = store.insert_session(&first).await.unwrap();
    assert_eq!(
        first_ever,
        InsertedSession {
            superseded: None,
            known_device: false
        }
    );

    let laptop = session_on(user, "laptop", T0 + Duration::seconds(1));
    let other_device = store.insert_session(&laptop).await.unwrap();
    assert_eq!(
        other_device,
        InsertedSession {
            superseded: None,
            known_device: false
        }
    );

    let stranger = given_user(&store).await;
    let strangers_phone = session_on(stranger, "phone", T0 + Duration::seconds(2));
    let other_user = store.insert_session(&strangers_phone).await.unwrap();
    assert_eq!(
        other_user,
        InsertedSession {
            superseded: None,
            known_device: false
        }
    );

    let again_at = T0 + Duration::minutes(1);
    let second = session_on(user, "phone", again_at);
    let again = store.insert_session(&second).await.unwrap();
    assert_eq!(
        again,
        InsertedSession {
            superseded: Some(first.id),
            known_device: true
        }
    );

    let old = store.get_session(first.id).await.unwrap().unwrap();
    assert_eq!(
        old.state.revoked,
        Some((again_at, RevokeReason::Superseded))
    );
    for untouched in [laptop.id, strangers_phone.id, second.id] {
        let s = store.get_session(untouched).await.unwrap().unwrap();
        assert_eq!(s.state.revoked, None, "{untouched:?} must stay live");
    }
    let live: Vec<SessionId> = store
        .list_sessions(user, again_at)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.state.id)
        .collect();
    assert_eq!(live.len(), 2);
    assert!(live.contains(&second.id) && live.contains(&laptop.id));
}

/// A device whose sessions have all ended is still known, and a login on it supersedes
/// nothing.
pub async fn a_device_stays_known_after_its_sessions_end<S: Store>(store: S) {
    let user = given_user(&store).await;
    let first = session_on(user, "tablet", T0);
    store.insert_session(&first).await.unwrap();
    store
        .revoke_session(first.id, RevokeReason::Logout, T0 + Duration::minutes(1))
        .await
        .unwrap();
    let back = session_on(user, "tablet", T0 + Duration::minutes(2));
    let outcome = store.insert_session(&back).await.unwrap();
    assert_eq!(
        outcome,
        InsertedSession {
            superseded: None,
            known_device: true
        }
    );
    let old = store.get_session(first.id).await.unwrap().unwrap();
    assert_eq!(
        old.state.revoked.map(|(_, r)| r),
        Some(RevokeReason::Logout)
    );
}

const LOGINS: usize = 8;

/// Eight logins racing on one device all succeed, and exactly one session stays live:
/// every other one was superseded by a later login.
pub async fn concurrent_logins_on_one_device_leave_exactly_one_live_session<S: Store>(store: S) {
    let user = given_user(&store).await;
    let logins: Vec<_> = (0..LOGINS)
        .map(|i| session_on(user, "phone", T0 + Duration::milliseconds(i as i64)))
        .collect();
    let start = Arc::new(Barrier::new(LOGINS));
    let mut racers = JoinSet::new();
    for login in logins.clone() {
        let (store, start) = (store.clone(), start.clone());
        racers.spawn(async move {
            start.wait().await;
            store.insert_session(&login).await.unwrap()
        });
    }
    let outcomes = racers.join_all().await;

    let live = store
        .list_sessions(user, T0 + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        live.len(),
        1,
        "exactly one live session per device, got {live:?}"
    );
    let superseded: HashSet<SessionId> = outcomes.iter().filter_map(|o| o.superseded).collect();
    assert_eq!(
        superseded.len(),
        LOGINS - 1,
        "each later login supersedes exactly one distinct session: {outcomes:?}"
    );
    assert!(!superseded.contains(&live[0].state.id));
    let all: HashSet<SessionId> = logins.iter().map(|l| l.id).collect();
    assert!(superseded.is_subset(&all));
    let first_on_device = outcomes.iter().filter(|o| !o.known_device).count();
    assert_eq!(
        first_on_device, 1,
        "only the first committed login finds a new device"
    );
    for login in &logins {
        let s = store.get_session(login.id).await.unwrap().unwrap();
        let expected = if s.state.id == live[0].state.id {
            None
        } else {
            Some(RevokeReason::Superseded)
        };
        assert_eq!(s.state.revoked.map(|(_, r)| r), expected);
    }
}

//! Revoking one session, or all of a user's.

use std::collections::HashSet;

use tessera_core::ids::SessionId;
use tessera_core::session::RevokeReason;
use time::Duration;

use super::{T0, given_user, random, session_on};
use crate::ports::Store;

/// The first revocation changes the session and reports true; a second one (or one for
/// an unknown id) reports false and leaves the first reason and time in place.
pub async fn revoking_a_session_twice_reports_false_the_second_time<S: Store>(store: S) {
    let user = given_user(&store).await;
    let login = session_on(user, "phone", T0);
    store.insert_session(&login).await.unwrap();
    let at = T0 + Duration::minutes(3);

    assert!(
        store
            .revoke_session(login.id, RevokeReason::Logout, at)
            .await
            .unwrap()
    );
    let later = at + Duration::minutes(1);
    assert!(
        !store
            .revoke_session(login.id, RevokeReason::RevokedByAdmin, later)
            .await
            .unwrap()
    );
    let record = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(record.state.revoked, Some((at, RevokeReason::Logout)));
    assert!(store.list_sessions(user, at).await.unwrap().is_empty());

    let unknown = SessionId::from_random(random());
    assert!(
        !store
            .revoke_session(unknown, RevokeReason::Logout, at)
            .await
            .unwrap()
    );
    assert!(store.get_session(unknown).await.unwrap().is_none());
}

/// Revoking "all but this one" revokes every other unrevoked session of that user only,
/// and names exactly the sessions it revoked.
pub async fn revoking_all_sessions_keeps_the_given_one_and_returns_the_others<S: Store>(store: S) {
    let user = given_user(&store).await;
    let keep = session_on(user, "phone", T0);
    let laptop = session_on(user, "laptop", T0);
    let tablet = session_on(user, "tablet", T0);
    let gone = session_on(user, "old-pc", T0);
    for s in [&keep, &laptop, &tablet, &gone] {
        store.insert_session(s).await.unwrap();
    }
    let logged_out_at = T0 + Duration::minutes(1);
    store
        .revoke_session(gone.id, RevokeReason::Logout, logged_out_at)
        .await
        .unwrap();
    let stranger = given_user(&store).await;
    let strangers = session_on(stranger, "phone", T0);
    store.insert_session(&strangers).await.unwrap();

    let at = T0 + Duration::minutes(2);
    let revoked: HashSet<SessionId> = store
        .revoke_user_sessions(user, Some(keep.id), RevokeReason::PasswordChanged, at)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(revoked, HashSet::from([laptop.id, tablet.id]));
    for id in [laptop.id, tablet.id] {
        let s = store.get_session(id).await.unwrap().unwrap();
        assert_eq!(s.state.revoked, Some((at, RevokeReason::PasswordChanged)));
    }
    let kept = store.get_session(keep.id).await.unwrap().unwrap();
    assert_eq!(kept.state.revoked, None);
    let old = store.get_session(gone.id).await.unwrap().unwrap();
    assert_eq!(
        old.state.revoked,
        Some((logged_out_at, RevokeReason::Logout))
    );
    let theirs = store.get_session(strangers.id).await.unwrap().unwrap();
    assert_eq!(theirs.state.revoked, None);

    let rest = store
        .revoke_user_sessions(user, None, RevokeReason::RevokedByAdmin, at)
        .await
        .unwrap();
    assert_eq!(rest, vec![keep.id]);
    let none_left = store
        .revoke_user_sessions(user, None, RevokeReason::RevokedByAdmin, at)
        .await
        .unwrap();
    assert!(none_left.is_empty());
}

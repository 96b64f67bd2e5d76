//! Password-reset tokens: one pending per user, taken once, void when replaced or expired.

use std::sync::Arc;

use time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{T0, given_user, token_hash};
use crate::ports::{PendingReset, Store};

const TTL: Duration = Duration::minutes(30);

/// A pending reset is taken once, with its user and times; of eight concurrent takes of
/// one token exactly one gets it. A token put back after a take works again.
pub async fn a_reset_token_is_taken_exactly_once<S: Store>(store: S) {
    let user = given_user(&store).await;
    let other = given_user(&store).await;
    let token = token_hash();
    store
        .replace_reset_token(user, &token, T0, T0 + TTL)
        .await
        .unwrap();
    store
        .replace_reset_token(other, &token_hash(), T0, T0 + TTL)
        .await
        .unwrap();
    assert_eq!(
        store.take_reset_token(&token_hash(), T0).await.unwrap(),
        None
    );

    let now = T0 + Duration::minutes(10);
    let start = Arc::new(Barrier::new(8));
    let mut racers = JoinSet::new();
    for _ in 0..8 {
        let (store, start) = (store.clone(), start.clone());
        racers.spawn(async move {
            start.wait().await;
            store.take_reset_token(&token, now).await.unwrap()
        });
    }
    let taken: Vec<PendingReset> = racers.join_all().await.into_iter().flatten().collect();
    assert_eq!(
        taken,
        vec![PendingReset {
            user_id: user,
            created_at: T0,
            expires_at: T0 + TTL,
        }]
    );
    assert_eq!(store.take_reset_token(&token, now).await.unwrap(), None);

    store
        .replace_reset_token(user, &token, T0, T0 + TTL)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_reset_token(&token, now)
            .await
            .unwrap()
            .map(|r| r.user_id),
        Some(user)
    );
}

/// A new request replaces the user's pending reset: the earlier link no longer works.
pub async fn a_replaced_reset_token_no_longer_works<S: Store>(store: S) {
    let user = given_user(&store).await;
    let (old, new) = (token_hash(), token_hash());
    store
        .replace_reset_token(user, &old, T0, T0 + TTL)
        .await
        .unwrap();
    let later = T0 + Duration::minutes(5);
    store
        .replace_reset_token(user, &new, later, later + TTL)
        .await
        .unwrap();
    let now = later + Duration::minutes(1);
    assert_eq!(store.take_reset_token(&old, now).await.unwrap(), None);
    assert_eq!(
        store.take_reset_token(&new, now).await.unwrap(),
        Some(PendingReset {
            user_id: user,
            created_at: later,
            expires_at: later + TTL,
        })
    );
}

/// A token presented at or after its expiry answers None and is deleted, so not even a
/// clock turned back brings it back.
pub async fn an_expired_reset_token_answers_none_and_is_gone<S: Store>(store: S) {
    let user = given_user(&store).await;
    let token = token_hash();
    store
        .replace_reset_token(user, &token, T0, T0 + TTL)
        .await
        .unwrap();
    assert_eq!(
        store.take_reset_token(&token, T0 + TTL).await.unwrap(),
        None
    );
    assert_eq!(store.take_reset_token(&token, T0).await.unwrap(), None);
}

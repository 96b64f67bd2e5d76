//! The audit chain: events link into one unforked chain per user, whatever the
//! concurrency, and retention deletes only chain prefixes, recording where it stopped.

use serde_json::json;
use tessera_core::event::EventKind;
use tessera_core::ids::{EventId, SessionId, UserId};
use time::{Duration, OffsetDateTime};
use tokio::task::JoinSet;

use super::{RACERS, T0, given_user, race, random};
use crate::audit::{ChainHash, link};
use crate::ports::{ChainBounds, ChainedEvent, PurgeCutoffs, SecurityEvent, Store};

pub(crate) fn event_at(user: UserId, at: OffsetDateTime) -> SecurityEvent {
    SecurityEvent {
        id: EventId::from_random(random()),
        user_id: user,
        kind: EventKind::LoginSucceeded,
        at,
        ip: Some("2001:db8::7".parse().unwrap()),
        user_agent: Some("TesseraTest/1.0".into()),
        session_id: Some(SessionId::from_random(random())),
        // Several keys in an order that is not sorted: the hash must not depend on it.
        detail: json!({"zeta": 1, "alpha": {"y": [1, 2], "b": null}, "device_id": "phone"}),
    }
}

/// The user's whole chain as stored, in chain order.
pub(crate) async fn chain_of<S: Store>(store: &S, user: UserId) -> Vec<ChainedEvent> {
    store.audit_events(user, 0, 1_000).await.unwrap()
}

pub(crate) async fn bounds_of<S: Store>(store: &S, user: UserId) -> ChainBounds {
    let all = store.audit_chains(None, 1_000).await.unwrap();
    *all.iter()
        .find(|b| b.user_id == user)
        .expect("the user has a chain")
}

/// Asserts that `events` follow `from` without a gap and that every stored hash is the
/// link recomputed from the event as read back; returns the last point.
pub(crate) fn assert_links_from(
    from: (i64, ChainHash),
    events: &[ChainedEvent],
) -> (i64, ChainHash) {
    let (mut index, mut hash) = from;
    for e in events {
        assert_eq!(e.index, index + 1, "the chain has a gap or a fork");
        assert_eq!(
            e.prev_hash, hash,
            "event {} does not point at its predecessor",
            e.index
        );
        assert_eq!(
            e.hash,
            link(&hash, e.index, &e.event),
            "the stored hash of event {} is not its link",
            e.index
        );
        (index, hash) = (e.index, e.hash);
    }
    (index, hash)
}

/// 16 events of one user recorded at once form one chain 1..16 (no index twice, none
/// skipped), every stored hash equals the link recomputed from the event read back, and
/// the chain's head is its last event.
pub async fn sixteen_concurrent_events_of_one_user_form_one_unforked_chain<S: Store>(store: S) {
    let user = given_user(&store).await;
    let written: Vec<SecurityEvent> = (0..RACERS)
        .map(|i| event_at(user, T0 + Duration::seconds(i as i64)))
        .collect();
    race(&store, RACERS, |store, i| {
        let e = written[i].clone();
        async move { store.insert_event(&e, None).await.unwrap() }
    })
    .await;

    let chain = chain_of(&store, user).await;
    assert_eq!(chain.len(), RACERS);
    let head = assert_links_from((0, ChainHash::GENESIS), &chain);
    assert_eq!(head.0, RACERS as i64);
    let mut read: Vec<EventId> = chain.iter().map(|e| e.event.id).collect();
    let mut sent: Vec<EventId> = written.iter().map(|e| e.id).collect();
    read.sort();
    sent.sort();
    assert_eq!(read, sent, "every event is in the chain, once");
    for e in &chain {
        let original = written.iter().find(|w| w.id == e.event.id).unwrap();
        assert_eq!(
            &e.event, original,
            "the chain returns the event as recorded"
        );
    }
    assert_eq!(
        bounds_of(&store, user).await,
        ChainBounds {
            user_id: user,
            checkpoint_index: 0,
            checkpoint_hash: ChainHash::GENESIS,
            purged: 0,
            head_index: head.0,
            head_hash: head.1,
        }
    );
}

/// Events of two users, written interleaved (and concurrently), form two chains, each
/// starting at 1; chains list by user id and page with `after`; events page by index.
pub async fn events_of_two_users_form_two_chains_listed_by_user<S: Store>(store: S) {
    let first = given_user(&store).await;
    let second = given_user(&store).await;
    let no_events = given_user(&store).await;
    let mut racers = JoinSet::new();
    for i in 0..10 {
        let user = if i % 2 == 0 { first } else { second };
        let store = store.clone();
        racers.spawn(async move {
            let e = event_at(user, T0 + Duration::seconds(i));
            store.insert_event(&e, None).await.unwrap();
        });
    }
    racers.join_all().await;

    for user in [first, second] {
        let chain = chain_of(&store, user).await;
        assert!(chain.iter().all(|e| e.event.user_id == user));
        assert_eq!(assert_links_from((0, ChainHash::GENESIS), &chain).0, 5);
        let page = store.audit_events(user, 2, 2).await.unwrap();
        assert_eq!(page, chain[2..4].to_vec());
        assert!(store.audit_events(user, 5, 10).await.unwrap().is_empty());
    }

    let mut by_id = vec![first, second];
    by_id.sort();
    let chains = store.audit_chains(None, 10).await.unwrap();
    assert_eq!(
        chains.iter().map(|b| b.user_id).collect::<Vec<_>>(),
        by_id,
        "one chain per user with events, by user id (none for {no_events})"
    );
    let after_first = store.audit_chains(Some(by_id[0]), 10).await.unwrap();
    assert_eq!(after_first, chains[1..].to_vec());
    assert_eq!(
        store.audit_chains(None, 1).await.unwrap(),
        chains[..1].to_vec()
    );
}

fn events_cutoff(before: OffsetDateTime) -> PurgeCutoffs {
    PurgeCutoffs {
        sessions_ended_before: T0 - Duration::days(1000),
        challenges_expired_before: T0 - Duration::days(1000),
        events_before: before,
    }
}

/// Retention deletes only the front of a chain: old events up to the first recent one,
/// never an old event recorded after a recent one; the checkpoint moves onto the last
/// deleted event and `purged` counts them, so what remains links from the checkpoint. A
/// batch bounds the run, and a later run carries on from the checkpoint.
pub async fn purging_deletes_only_a_chain_prefix_and_moves_the_checkpoint<S: Store>(store: S) {
    let user = given_user(&store).await;
    let other = given_user(&store).await;
    let cutoff = T0 + Duration::days(10);
    // Old, old, old, recent, old again (a node with a slow clock), recent.
    let days = [0, 1, 2, 11, 3, 12];
    for d in days {
        store
            .insert_event(&event_at(user, T0 + Duration::days(d)), None)
            .await
            .unwrap();
    }
    let before = chain_of(&store, user).await;
    for d in [0, 20] {
        store
            .insert_event(&event_at(other, T0 + Duration::days(d)), None)
            .await
            .unwrap();
    }

    // A batch of 2 over both users' chains: at most two events go, from the fronts.
    let first = store
        .purge_expired(&events_cutoff(cutoff), 2)
        .await
        .unwrap();
    assert_eq!(first.security_events, 2);
    assert!(first.more);
    let mut total = first.security_events;
    for _ in 0..5 {
        let run = store
            .purge_expired(&events_cutoff(cutoff), 2)
            .await
            .unwrap();
        total += run.security_events;
        if !run.more {
            break;
        }
    }
    assert_eq!(total, 4, "three of the user's, one of the other's");

    let remaining = chain_of(&store, user).await;
    assert_eq!(
        remaining,
        before[3..].to_vec(),
        "the old event after a recent one stays"
    );
    let bounds = bounds_of(&store, user).await;
    assert_eq!(
        (
            bounds.checkpoint_index,
            bounds.checkpoint_hash,
            bounds.purged
        ),
        (3, before[2].hash, 3)
    );
    assert_eq!((bounds.head_index, bounds.head_hash), (6, before[5].hash));
    let end = assert_links_from(
        (bounds.checkpoint_index, bounds.checkpoint_hash),
        &remaining,
    );
    assert_eq!(end, (bounds.head_index, bounds.head_hash));

    let theirs = bounds_of(&store, other).await;
    assert_eq!((theirs.checkpoint_index, theirs.purged), (1, 1));
    assert_eq!(chain_of(&store, other).await.len(), 1);

    // Nothing more goes until the recent event is old too; then the rest of the prefix.
    let again = store
        .purge_expired(&events_cutoff(cutoff), 100)
        .await
        .unwrap();
    assert_eq!(again.security_events, 0);
    let later = store
        .purge_expired(&events_cutoff(T0 + Duration::days(12)), 100)
        .await
        .unwrap();
    assert_eq!(later.security_events, 2);
    let bounds = bounds_of(&store, user).await;
    assert_eq!((bounds.checkpoint_index, bounds.purged), (5, 5));
    let last = chain_of(&store, user).await;
    assert_links_from((bounds.checkpoint_index, bounds.checkpoint_hash), &last);

    // A new event still links to the head, not to the checkpoint.
    store
        .insert_event(&event_at(user, T0 + Duration::days(30)), None)
        .await
        .unwrap();
    let tail = chain_of(&store, user).await;
    assert_eq!(tail.len(), 2);
    assert_links_from((bounds.checkpoint_index, bounds.checkpoint_hash), &tail);
}

//! The notification outbox: rows written with their event (or not at all), claims under
//! a lease that concurrent workers never share, and how a delivery settles.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use tessera_core::Email;
use tessera_core::ids::{NotificationId, UserId};
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::audit::{chain_of, event_at};
use super::{T0, given_user, random};
use crate::ports::{Delivery, DeliveryOutcome, Notice, OutboxBacklog, SecurityEvent, Store};

pub(super) const LEASE: Duration = Duration::minutes(5);

pub(super) fn notice(channels: &[&str]) -> Notice {
    Notice {
        id: NotificationId::from_random(random()),
        email: Email::parse("Ana.Pereira@Example.com").unwrap(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        detail: json!({"device_name": "Ana's phone", "codes_left": 7}),
        sealed_secret: Some(vec![1, 2, 3, 250]),
    }
}

/// Records one event at `at` with a notice on `channels`.
async fn notify<S: Store>(
    store: &S,
    user: UserId,
    at: OffsetDateTime,
    channels: &[&str],
) -> (SecurityEvent, Notice) {
    let e = event_at(user, at);
    let n = notice(channels);
    store.insert_event(&e, Some(&n)).await.unwrap();
    (e, n)
}

/// Every channel the suite addresses rows to.
const ALL_CHANNELS: [&str; 3] = ["log", "smtp", "webhook"];

fn names(channels: &[&str]) -> Vec<String> {
    channels.iter().map(|c| c.to_string()).collect()
}

/// A claim by a worker that has every channel.
pub(super) async fn claim<S: Store>(store: &S, now: OffsetDateTime, limit: u32) -> Vec<Delivery> {
    claim_for(store, now, limit, &ALL_CHANNELS).await
}

async fn claim_for<S: Store>(
    store: &S,
    now: OffsetDateTime,
    limit: u32,
    channels: &[&str],
) -> Vec<Delivery> {
    store
        .claim_deliveries(now, LEASE, limit, &names(channels))
        .await
        .unwrap()
}

fn keys(deliveries: &[Delivery]) -> Vec<(NotificationId, String)> {
    deliveries
        .iter()
        .map(|d| (d.id, d.channel.clone()))
        .collect()
}

/// An event with a notice on two channels leaves two rows carrying the notice's id and
/// every fact of the event and notice; an event without a notice leaves none.
pub async fn an_event_with_a_notice_writes_one_outbox_row_per_channel<S: Store>(store: S) {
    let user = given_user(&store).await;
    store.insert_event(&event_at(user, T0), None).await.unwrap();
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog::default()
    );

    let at = T0 + Duration::minutes(1);
    let (e, n) = notify(&store, user, at, &["smtp", "webhook"]).await;
    let claimed = claim(&store, at, 10).await;
    let mut channels: Vec<&str> = claimed.iter().map(|d| d.channel.as_str()).collect();
    channels.sort();
    assert_eq!(channels, ["smtp", "webhook"]);
    for d in &claimed {
        assert_eq!(
            d,
            &Delivery {
                id: n.id,
                channel: d.channel.clone(),
                event_id: e.id,
                user_id: user,
                email: n.email.clone(),
                kind: e.kind,
                at,
                session_id: e.session_id,
                ip: e.ip,
                user_agent: e.user_agent.clone(),
                detail: n.detail.clone(),
                sealed_secret: n.sealed_secret.clone(),
                attempts: 1,
            }
        );
        assert_eq!(d.email.as_str(), "Ana.Pereira@Example.com");
    }
}

/// When the event cannot be recorded (here: its id is taken), neither its outbox rows nor
/// a link in the chain are left behind: they share its transaction.
pub async fn a_failed_event_insert_leaves_no_outbox_row<S: Store>(store: S) {
    let user = given_user(&store).await;
    let e = event_at(user, T0);
    store.insert_event(&e, None).await.unwrap();
    let mut again = e.clone();
    again.at = T0 + Duration::minutes(1);
    assert!(
        store
            .insert_event(&again, Some(&notice(&["smtp", "log"])))
            .await
            .is_err()
    );
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog::default()
    );
    assert!(claim(&store, T0 + Duration::days(1), 10).await.is_empty());
    assert_eq!(chain_of(&store, user).await.len(), 1);
    let next = event_at(user, T0 + Duration::minutes(2));
    store.insert_event(&next, None).await.unwrap();
    assert_eq!(
        chain_of(&store, user).await.last().unwrap().index,
        2,
        "the failed insert did not advance the chain"
    );
}

/// Eight workers claiming at once never get the same row; whatever they left, a later
/// claim gets, so every row is claimed exactly once. Claims come oldest first.
pub async fn concurrent_claimers_never_get_the_same_row<S: Store>(store: S) {
    let user = given_user(&store).await;
    for i in 0..12 {
        notify(
            &store,
            user,
            T0 + Duration::seconds(i),
            &["smtp", "webhook"],
        )
        .await;
    }
    let now = T0 + Duration::minutes(1);
    let workers = 8;
    let start = Arc::new(Barrier::new(workers));
    let mut racers = JoinSet::new();
    for _ in 0..workers {
        let (store, start) = (store.clone(), start.clone());
        racers.spawn(async move {
            start.wait().await;
            claim(&store, now, 4).await
        });
    }
    let mut all: Vec<Delivery> = racers.join_all().await.into_iter().flatten().collect();
    all.extend(claim(&store, now, 100).await);
    let distinct: HashSet<_> = keys(&all).into_iter().collect();
    assert_eq!(all.len(), 24, "each row claimed once: {:?}", keys(&all));
    assert_eq!(distinct.len(), 24);
    assert!(all.iter().all(|d| d.attempts == 1));
    for d in &all {
        store
            .settle_delivery(d.id, &d.channel, &DeliveryOutcome::Delivered)
            .await
            .unwrap();
    }

    let user2 = given_user(&store).await;
    let (_, newer) = notify(&store, user2, T0 + Duration::hours(2), &["log"]).await;
    let (_, older) = notify(&store, user2, T0 + Duration::hours(1), &["log"]).await;
    let later = T0 + Duration::hours(3);
    let first = claim(&store, later, 1).await;
    assert_eq!(
        keys(&first),
        [(older.id, "log".to_string())],
        "oldest first"
    );
    assert_eq!(
        keys(&claim(&store, later, 1).await),
        [(newer.id, "log".to_string())]
    );
}

/// A claimed row is not claimed again while its lease runs; once it has run out (the
/// worker died), the row is claimed again with its attempt count raised.
/// A worker claims only rows for channels it has: one without the webhook leaves the
/// webhook's row pending (not leased, no attempt counted) for a node that has it.
pub async fn a_worker_claims_only_rows_for_its_own_channels<S: Store>(store: S) {
    let user = given_user(&store).await;
    let (_, n) = notify(&store, user, T0, &["smtp", "webhook"]).await;
    let mailer = claim_for(&store, T0, 10, &["smtp"]).await;
    assert_eq!(keys(&mailer), [(n.id, "smtp".to_string())]);
    assert!(claim_for(&store, T0, 10, &["log"]).await.is_empty());
    assert!(claim_for(&store, T0, 10, &[]).await.is_empty());
    let hooked = claim_for(&store, T0, 10, &["webhook", "log"]).await;
    assert_eq!(keys(&hooked), [(n.id, "webhook".to_string())]);
    assert_eq!(
        hooked[0].attempts, 1,
        "no attempt was counted while it waited"
    );
}

pub async fn a_leased_row_is_claimed_again_only_when_its_lease_ends<S: Store>(store: S) {
    let user = given_user(&store).await;
    let (_, n) = notify(&store, user, T0, &["smtp"]).await;
    assert!(
        claim(&store, T0 - Duration::seconds(1), 10)
            .await
            .is_empty(),
        "not yet due"
    );
    let first = claim(&store, T0, 10).await;
    assert_eq!((first.len(), first[0].attempts), (1, 1));
    assert!(
        claim(&store, T0 + LEASE - Duration::seconds(1), 10)
            .await
            .is_empty()
    );
    let again = claim(&store, T0 + LEASE, 10).await;
    assert_eq!(keys(&again), [(n.id, "smtp".to_string())]);
    assert_eq!(again[0].attempts, 2);
}

/// Delivered removes the row; Retry hides it until its time and keeps it pending; Dead
/// takes it out of the queue for good and counts it; settling a row already gone is fine.
/// The backlog counts pending and dead rows and names the oldest pending one.
pub async fn settling_a_delivery_removes_retries_or_buries_it<S: Store>(store: S) {
    let user = given_user(&store).await;
    let (_, delivered) = notify(&store, user, T0, &["smtp"]).await;
    let (_, retried) = notify(&store, user, T0 + Duration::seconds(1), &["smtp"]).await;
    let (_, dead) = notify(&store, user, T0 + Duration::seconds(2), &["webhook"]).await;
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            pending: 3,
            dead: 0,
            oldest: Some(T0),
        }
    );
    let now = T0 + Duration::minutes(1);
    assert_eq!(claim(&store, now, 10).await.len(), 3);

    store
        .settle_delivery(delivered.id, "smtp", &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let retry_at = now + Duration::minutes(30);
    let retry = DeliveryOutcome::Retry {
        at: retry_at,
        error: "421 try later".into(),
    };
    store
        .settle_delivery(retried.id, "smtp", &retry)
        .await
        .unwrap();
    let bury = DeliveryOutcome::Dead {
        error: "550 no such user".into(),
    };
    store
        .settle_delivery(dead.id, "webhook", &bury)
        .await
        .unwrap();

    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            pending: 1,
            dead: 1,
            oldest: Some(T0 + Duration::seconds(1)),
        }
    );
    // The retried row waits for its time even though its lease was cleared; the dead one
    // and the delivered one never come back.
    assert!(
        claim(&store, retry_at - Duration::seconds(1), 10)
            .await
            .is_empty()
    );
    let back = claim(&store, retry_at + LEASE * 10, 10).await;
    assert_eq!(keys(&back), [(retried.id, "smtp".to_string())]);
    assert_eq!(back[0].attempts, 2);

    // A late settle from a worker whose lease ran out: the row is gone, nothing fails.
    store
        .settle_delivery(delivered.id, "smtp", &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    store
        .settle_delivery(delivered.id, "smtp", &retry)
        .await
        .unwrap();
    // A retry cannot revive a dead row.
    store
        .settle_delivery(dead.id, "webhook", &retry)
        .await
        .unwrap();
    assert!(
        claim(&store, retry_at + LEASE * 100, 10)
            .await
            .iter()
            .all(|d| d.id != dead.id)
    );
    assert_eq!(store.outbox_backlog().await.unwrap().dead, 1);
}

//! The Redis revocation bus: a publication on one instance reaches another instance's
//! subscriber (shared Redis, a channel prefix of its own per test), and against a private
//! `redis-server` that is killed and restarted, the subscriber reports the loss and, once
//! Redis is back, subscribes again and delivers again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_adapters::RedisBus;
use tessera_adapters::testing::skip_or_fail;
use tessera_app::ports::{BusHealth, Changes, RevocationBus, RevocationSink};
use tessera_core::ids::{SessionId, UserId};

use super::limiters::{REDIS_URL_VAR, unique_prefix};
use super::redis_outage::PrivateRedis;

/// Far above the bus's own deadlines and backoff (at most 5 s).
const BOUND: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Revoked(Vec<SessionId>),
    UsersChanged(Vec<UserId>),
    Lost,
    Connected,
}

/// A sink that writes down what the bus told it.
#[derive(Default)]
struct Recorder {
    heard: Mutex<Vec<Heard>>,
}

impl RevocationSink for Recorder {
    fn revoked(&self, sessions: &[SessionId]) {
        self.heard
            .lock()
            .unwrap()
            .push(Heard::Revoked(sessions.to_vec()));
    }
    fn users_changed(&self, users: &[UserId]) {
        self.heard
            .lock()
            .unwrap()
            .push(Heard::UsersChanged(users.to_vec()));
    }
    fn lost(&self) {
        self.heard.lock().unwrap().push(Heard::Lost);
    }
    fn connected(&self) {
        self.heard.lock().unwrap().push(Heard::Connected);
    }
}

impl Recorder {
    fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }

    /// Waits (polling) until `what` holds of what was heard, failing after [`BOUND`].
    async fn until(&self, what: &str, check: impl Fn(&[Heard]) -> bool) {
        let start = Instant::now();
        while !check(&self.heard()) {
            assert!(
                start.elapsed() < BOUND,
                "{what}: not within {BOUND:?}; heard {:?}",
                self.heard()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn sid(n: u8) -> SessionId {
    SessionId::from_random([n; 16])
}

fn subscribed(bus: &RedisBus) -> (Arc<Recorder>, Arc<dyn RevocationSink>) {
    let recorder = Arc::new(Recorder::default());
    let sink: Arc<dyn RevocationSink> = recorder.clone();
    bus.subscribe(Arc::clone(&sink));
    (recorder, sink)
}

fn last_is(heard: &[Heard], what: &Heard) -> bool {
    heard.last() == Some(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_published_on_one_bus_reaches_another_buses_subscriber() {
    let Ok(url) = std::env::var(REDIS_URL_VAR) else {
        skip_or_fail(
            "Redis tests",
            &format!("set {REDIS_URL_VAR}=redis://127.0.0.1:6379 to run them"),
        );
        return;
    };
    let prefix = unique_prefix();
    let node_a = RedisBus::new(&url, &prefix).unwrap();
    let node_b = RedisBus::new(&url, &prefix).unwrap();
    let elsewhere = RedisBus::new(&url, &unique_prefix()).unwrap();
    let (heard_b, _keep_b) = subscribed(&node_b);
    let (heard_elsewhere, _keep_e) = subscribed(&elsewhere);
    heard_b
        .until("node B subscribes", |h| last_is(h, &Heard::Connected))
        .await;
    heard_elsewhere
        .until("the other deployment subscribes", |h| {
            last_is(h, &Heard::Connected)
        })
        .await;
    assert_eq!(node_b.health(), BusHealth::Connected);
    assert_eq!(
        node_a.health(),
        BusHealth::Disconnected("not subscribed yet".into()),
        "a bus that only publishes is not subscribed"
    );

    node_a.publish(&[sid(1), sid(2)]).await;
    heard_b
        .until("node B hears the revocation", |h| {
            h.contains(&Heard::Revoked(vec![sid(1), sid(2)]))
        })
        .await;
    assert_eq!(node_a.publish_failures(), 0);
    assert_eq!(node_a.published(), 1);

    // One message may name users (whose roles or MFA changed) beside sessions.
    let user = UserId::from_random([9; 16]);
    node_a
        .publish_changes(Changes {
            sessions: &[sid(3)],
            users: &[user],
        })
        .await;
    heard_b
        .until("node B hears the session and the user", |h| {
            h.ends_with(&[
                Heard::Revoked(vec![sid(3)]),
                Heard::UsersChanged(vec![user]),
            ])
        })
        .await;
    assert_eq!(node_a.published(), 2);
    // Another key prefix is another deployment: it hears nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !heard_elsewhere
            .heard()
            .iter()
            .any(|h| matches!(h, Heard::Revoked(_))),
        "{:?}",
        heard_elsewhere.heard()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_is_reported_lost_and_after_a_restart_revocations_flow_again() {
    let Some(mut server) = PrivateRedis::start().await else {
        return;
    };
    let prefix = unique_prefix();
    let publisher = RedisBus::new(&server.url(), &prefix).unwrap();
    let subscriber = RedisBus::new(&server.url(), &prefix).unwrap();
    let (heard, _keep) = subscribed(&subscriber);
    heard
        .until("the subscription comes up", |h| {
            last_is(h, &Heard::Connected)
        })
        .await;

    server.kill();
    heard
        .until("the loss is reported", |h| last_is(h, &Heard::Lost))
        .await;
    assert!(matches!(subscriber.health(), BusHealth::Disconnected(_)));
    // Publishing into the void is bounded, counted, and does not fail the caller.
    let start = Instant::now();
    publisher.publish(&[sid(3)]).await;
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "publish took {:?}",
        start.elapsed()
    );
    assert_eq!(publisher.publish_failures(), 1);

    server.spawn().await.expect("redis-server ran a moment ago");
    heard
        .until("the subscription comes back", |h| {
            last_is(h, &Heard::Connected)
        })
        .await;
    assert_eq!(subscriber.health(), BusHealth::Connected);
    // The publisher's connection may need a call to notice the restart.
    let start = Instant::now();
    loop {
        publisher.publish(&[sid(4)]).await;
        if heard.heard().contains(&Heard::Revoked(vec![sid(4)])) {
            break;
        }
        assert!(start.elapsed() < BOUND, "no delivery after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !heard.heard().contains(&Heard::Revoked(vec![sid(3)])),
        "what was published during the outage is gone (hence the flush)"
    );
}

//! [`RedisBus`]: revocations as Redis pub/sub messages on `{prefix}revocations`, the payload
//! the session ids and `user:`-prefixed user ids separated by spaces (see `wire`; ids only:
//! never a token).
//!
//! ```text
//!   Lost ──SUBSCRIBE confirmed──► Connected ──stream ends / PING fails──► Lost
//!    ▲                                                                     │
//!    └────────────── retry after a backoff (0.1 s doubling to 5 s) ◄────────┘
//! ```
//!
//! The subscriber holds its own connection in a background task. Redis pub/sub delivers
//! at most once and only to connected subscribers, so every drop of that connection is
//! reported to the sink (`lost`) before anything else happens, and `connected` only after
//! the next SUBSCRIBE is confirmed. A hung server (no FIN) is caught by a PING every
//! second with a one-second deadline. Publishing uses a separate, multiplexed connection
//! with a 500 ms deadline; a failed publication is logged and counted, never raised.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{Client, Msg, RedisError};
use tessera_app::ports::{BoxFuture, BusHealth, Changes, RevocationBus, RevocationSink};
use tokio::sync::OnceCell;

/// The bound on one publication, connecting included.
const PUBLISH_DEADLINE: Duration = Duration::from_millis(500);
/// The bound on connecting and subscribing.
const SUBSCRIBE_DEADLINE: Duration = Duration::from_secs(2);
/// How often the subscriber checks its connection, and how long a PING may take.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_DEADLINE: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RedisBusError {
    /// The URL does not parse (it is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
}

/// Revocations shared through Redis pub/sub. Cheap to clone.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    channel: String,
    publisher: OnceCell<ConnectionManager>,
    health: Mutex<BusHealth>,
    subscribed: AtomicBool,
    published: AtomicU64,
    publish_failures: AtomicU64,
    /// Messages the subscriber handed to the sink (for tests and debugging).
    delivered: AtomicU64,
}

impl std::fmt::Debug for RedisBus {
    /// The URL is left out: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.inner.channel)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus on the Redis at `url`, on channel `{key_prefix}revocations`. No connection is
    /// made here; [`RevocationBus::subscribe`] starts the subscriber.
    /// `rediss://` speaks TLS, verified against the system's roots.
    pub fn new(url: &str, key_prefix: &str) -> Result<Self, RedisBusError> {
        crate::install_tls_provider();
        let client = Client::open(url).map_err(|e| RedisBusError::InvalidUrl(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                channel: format!("{key_prefix}revocations"),
                publisher: OnceCell::new(),
                health: Mutex::new(BusHealth::Disconnected("not subscribed yet".into())),
                subscribed: AtomicBool::new(false),
                published: AtomicU64::new(0),
                publish_failures: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
            }),
        })
    }

    /// The pub/sub channel.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Publications Redis accepted, since start.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Messages received and handed to the sink, since start.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }
}

impl RevocationBus for RedisBus {
    fn publish_changes<'a>(&'a self, changes: Changes<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if changes.is_empty() {
                return;
            }
            let payload = super::wire::encode(&changes);
            let outcome = tokio::time::timeout(PUBLISH_DEADLINE, self.inner.publish(&payload))
                .await
                .unwrap_or_else(|_| Err(PublishError::Deadline));
            match outcome {
                Ok(()) => {
                    self.inner.published.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    let failures = self.inner.publish_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(
                        %error,
                        named = %payload,
                        failures,
                        "revocation not published: other nodes may serve these sessions and \
                         users from their caches until their cache TTL"
                    );
                }
            }
        })
    }

    fn subscribe(&self, sink: Arc<dyn RevocationSink>) {
        sink.lost();
        if self.inner.subscribed.swap(true, Ordering::SeqCst) {
            tracing::warn!("RedisBus::subscribe called twice; the second sink is ignored");
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("RedisBus::subscribe outside a Tokio runtime: not subscribing");
            return;
        };
        let inner = Arc::clone(&self.inner);
        let sink = Arc::downgrade(&sink);
        runtime.spawn(async move { inner.subscriber(sink).await });
    }

    fn health(&self) -> BusHealth {
        self.inner
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish_failures(&self) -> u64 {
        self.inner.publish_failures.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("no answer within {} ms", PUBLISH_DEADLINE.as_millis())]
    Deadline,
}

/// Why the subscription ended.
#[derive(Debug, thiserror::Error)]
enum SubscriptionError {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("connecting and subscribing took over {} s", SUBSCRIBE_DEADLINE.as_secs())]
    SubscribeDeadline,
    #[error("no PING answer within {} ms", PING_DEADLINE.as_millis())]
    PingDeadline,
    #[error("the connection closed")]
    Closed,
    #[error("the application stopped")]
    SinkGone,
}

impl Inner {
    async fn publisher(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .publisher
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(PUBLISH_DEADLINE))
                    .set_connection_timeout(Some(PUBLISH_DEADLINE))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    async fn publish(&self, payload: &str) -> Result<(), PublishError> {
        let mut connection = self.publisher().await?;
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }

    fn set_health(&self, health: BusHealth) {
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = health;
    }

    /// Subscribes, delivers, and after every loss reports it and subscribes again, until the
    /// sink (the application) is gone.
    async fn subscriber(self: Arc<Self>, sink: Weak<dyn RevocationSink>) {
        let mut backoff = FIRST_BACKOFF;
        let mut was_connected = false;
        loop {
            let error = match self.subscribe_once().await {
                Ok((pubsub_sink, stream)) => {
                    let Some(app) = sink.upgrade() else { return };
                    self.set_health(BusHealth::Connected);
                    app.connected();
                    drop(app);
                    tracing::info!(channel = %self.channel, "revocation subscription up");
                    was_connected = true;
                    backoff = FIRST_BACKOFF;
                    self.deliver(pubsub_sink, stream, &sink).await
                }
                Err(error) => error,
            };
            if matches!(error, SubscriptionError::SinkGone) {
                return;
            }
            let Some(app) = sink.upgrade() else { return };
            // First tell the cache, so it trusts nothing from before the loss.
            app.lost();
            drop(app);
            self.set_health(BusHealth::Disconnected(format!(
                "revocation subscription down: {error}"
            )));
            if was_connected {
                tracing::warn!(%error, "revocation subscription lost; session cache flushed and bypassed until it is back");
                was_connected = false;
            } else {
                tracing::debug!(%error, retry_in_ms = backoff.as_millis() as u64, "revocation subscription not up");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn subscribe_once(&self) -> Result<(PubSubSink, PubSubStream), SubscriptionError> {
        tokio::time::timeout(SUBSCRIBE_DEADLINE, async {
            let pubsub = self.client.get_async_pubsub().await?;
            let (mut pubsub_sink, stream) = pubsub.split();
            pubsub_sink.subscribe(&self.channel).await?;
            Ok((pubsub_sink, stream))
        })
        .await
        .unwrap_or(Err(SubscriptionError::SubscribeDeadline))
    }

    /// Hands every message to the sink until the connection fails.
    async fn deliver(
        &self,
        mut pubsub_sink: PubSubSink,
        mut stream: PubSubStream,
        sink: &Weak<dyn RevocationSink>,
    ) -> SubscriptionError {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return SubscriptionError::Closed;
                    };
                    let Some(app) = sink.upgrade() else {
                        return SubscriptionError::SinkGone;
                    };
                    self.handle(&message, app.as_ref());
                }
                _ = ping.tick() => {
                    if sink.strong_count() == 0 {
                        return SubscriptionError::SinkGone;
                    }
                    match tokio::time::timeout(PING_DEADLINE, pubsub_sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return SubscriptionError::Redis(e),
                        Err(_) => return SubscriptionError::PingDeadline,
                    }
                }
            }
        }
    }

    fn handle(&self, message: &Msg, app: &dyn RevocationSink) {
        let payload = String::from_utf8_lossy(message.get_payload_bytes());
        match super::wire::decode(&payload) {
            Some(named) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                if !named.sessions.is_empty() {
                    app.revoked(&named.sessions);
                }
                if !named.users.is_empty() {
                    app.users_changed(&named.users);
                }
            }
            None => {
                // Something changed and we cannot tell what: trust nothing cached.
                tracing::warn!(
                    channel = %self.channel,
                    "unreadable revocation message; session cache flushed"
                );
                app.lost();
                app.connected();
            }
        }
    }
}

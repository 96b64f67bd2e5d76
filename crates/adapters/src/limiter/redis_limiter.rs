//! [`RedisLimiter`]: the rate limiter shared by every node, one Lua script per decision.
//!
//! Each key is a sorted set `{prefix}{storage_name}` of counted attempts (member: `p:`
//! for pending or `f:` for failed, then the ticket in hex; score: when it was counted,
//! unix microseconds of the `now` passed in),
//! expiring on its own one window after the last attempt counted. The script applies
//! `tessera_core::ratelimit::decide`'s rules atomically (`reserve.lua`, `fail.lua`); the first-denial
//! marker is `{prefix}{storage_name}:denied` (`first_denial.lua`), holding the instant it
//! stops being live, so that it too follows the `now` passed in rather than Redis's clock
//! (its time to live, one window, only cleans it up). Times are kept to the microsecond,
//! as the system clock gives them.
//!
//! Redis errors never reach the caller: that call is decided by the in-process
//! [`MemoryLimiter`] given at construction (never "allow all"), and [`health`] reports
//! `Degraded` until a Redis call succeeds again (see `outage`).
//!
//! A release or fail that cannot reach Redis (no answer in time, or another call probing
//! it during an outage) is queued (`backlog`) and sent once a call succeeds again: the
//! ticket may be counted there, and left pending it would count as a failure.
//!
//! [`health`]: RateLimiter::health

use std::future::Future;
use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};
use tessera_app::ports::{BoxFuture, LimiterHealth, RateLimiter, Ticket};
use tessera_core::ratelimit::{Decision, LimitKey, PENDING_LEASE, Policy};
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;

use super::backlog::{Backlog, Pending, Settlement};
use super::memory::MemoryLimiter;
use super::outage::Outage;

/// How long Redis has to answer one command, and to accept one connection.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// The bound on a whole call, connecting included: past it the fallback decides.
const CALL_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1000);
/// Queued settlements sent to Redis in one pipelined round trip.
const DRAIN_BATCH: usize = 256;

const RESERVE_LUA: &str = include_str!("reserve.lua");
const FIRST_DENIAL_LUA: &str = include_str!("first_denial.lua");
const FAIL_LUA: &str = include_str!("fail.lua");

/// The limiter could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum RedisLimiterError {
    /// The URL does not parse as a Redis URL (the URL itself is not repeated: it may
    /// hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
}

/// Why one Redis call did not give an answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("no answer within {} ms", CALL_DEADLINE.as_millis())]
    Deadline,
    #[error("unexpected reply from the limiter script: {0:?}")]
    Reply(Vec<i64>),
}

/// The rate limiter for several nodes sharing one Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Made on first use (it must be made inside the runtime); it reconnects by itself.
    manager: OnceCell<ConnectionManager>,
    prefix: String,
    fallback: MemoryLimiter,
    reserve: Script,
    fail: Script,
    first_denial: Script,
    outage: Outage,
    backlog: Backlog,
}

impl std::fmt::Debug for RedisLimiter {
    /// The URL is left out: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.inner.prefix)
            .field("health", &self.inner.outage.health())
            .field("fallback_decisions", &self.fallback_decisions())
            .field("settlements_queued", &self.inner.backlog.len())
            .field("settlements_dropped", &self.inner.backlog.dropped())
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// The Lua script behind every reservation (`reserve.lua`: `KEYS[1]` the key, then
    /// now, window, limit, ticket, time to live, lease), public so the benchmark can run
    /// this very script under `redis-benchmark` as the limit of the limiter's rate.
    pub const RESERVE_SCRIPT: &'static str = RESERVE_LUA;

    /// A limiter on the Redis at `url` (`redis://[:password@]host[:port][/db]`, or
    /// `rediss://…` for TLS, verified against the system's roots), its keys
    /// under `key_prefix` (e.g. `tessera:rl:`), deciding with `fallback` while Redis is
    /// unreachable. Fails only for a malformed URL: no connection is made here. Inside a
    /// Tokio runtime a connection is attempted in the background at once; until one
    /// succeeds, [`health`](RateLimiter::health) is `Degraded`.
    pub fn new(
        url: &str,
        key_prefix: &str,
        fallback: MemoryLimiter,
    ) -> Result<Self, RedisLimiterError> {
        crate::install_tls_provider();
        let client = Client::open(url).map_err(|e| RedisLimiterError::InvalidUrl(e.to_string()))?;
        let inner = Arc::new(Inner {
            client,
            manager: OnceCell::new(),
            prefix: key_prefix.to_owned(),
            fallback,
            reserve: Script::new(RESERVE_LUA),
            fail: Script::new(FAIL_LUA),
            first_denial: Script::new(FIRST_DENIAL_LUA),
            outage: Outage::not_yet_connected(),
            backlog: Backlog::default(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&inner);
            runtime.spawn(async move { inner.ping().await });
        }
        Ok(Self { inner })
    }

    /// How many reservations the in-process fallback decided (Redis unreachable), since
    /// start: a counter for metrics.
    pub fn fallback_decisions(&self) -> u64 {
        self.inner.outage.fallback_decisions()
    }

    /// Whether Redis answers a `PING` now (for readiness). Updates the health; when
    /// Redis answers, settlements queued during an outage are sent before returning.
    pub async fn ping(&self) -> bool {
        let up = self.inner.ping().await;
        if up {
            self.inner.drain().await;
        }
        up
    }

    /// Settlements waiting for Redis to answer again.
    pub fn settlements_queued(&self) -> usize {
        self.inner.backlog.len()
    }

    /// After a call: if settlements wait and Redis answers again, sends them in the
    /// background (the caller does not wait for them).
    fn drain_in_background(&self) {
        if self.inner.backlog.is_empty() || self.inner.outage.health() != LimiterHealth::Ok {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&self.inner);
            runtime.spawn(async move { inner.drain().await });
        }
    }
}

impl Inner {
    fn key(&self, key: &LimitKey) -> String {
        format!("{}{}", self.prefix, key.storage_name())
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    // One connection attempt per call: the next call tries again.
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    /// Runs `call` on Redis within [`CALL_DEADLINE`], recording the outcome in the health.
    /// `None` when Redis did not answer (or, while degraded, another call is probing it):
    /// the caller then asks the fallback.
    async fn attempt<T, F, Fut>(
        &self,
        operation: &'static str,
        kind: &'static str,
        call: F,
    ) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let _admission = self.outage.admit()?;
        self.call(operation, kind, call).await
    }

    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        kind: &'static str,
        call: F,
    ) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let outcome = tokio::time::timeout(CALL_DEADLINE, async {
            let connection = self.connection().await?;
            call(connection).await
        })
        .await
        .unwrap_or(Err(CallError::Deadline));
        match outcome {
            Ok(value) => {
                self.outage.succeeded();
                Some(value)
            }
            Err(error) => {
                self.outage.failed(operation, kind, &error);
                None
            }
        }
    }

    async fn ping(&self) -> bool {
        self.call("ping", "-", |mut connection| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map_err(CallError::from)
        })
        .await
        .is_some()
    }

    async fn reserve(
        &self,
        key: &LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> Decision {
        let name = self.key(key);
        let window = micros(policy.window);
        let from_redis = self
            .attempt("reserve", key.kind(), |mut connection| async move {
                let reply: Vec<i64> = self
                    .reserve
                    .key(&name)
                    .arg(unix_micros(now))
                    .arg(window)
                    .arg(policy.limit)
                    .arg(ticket.as_hex())
                    .arg(ttl_millis(window))
                    .arg(micros(PENDING_LEASE))
                    .invoke_async(&mut connection)
                    .await?;
                match reply.as_slice() {
                    [1, _] => Ok(Decision::Allow),
                    [2, _] => Ok(Decision::Busy),
                    [0, retry_after] => Ok(Decision::Deny {
                        retry_after: Duration::microseconds(*retry_after),
                    }),
                    _ => Err(CallError::Reply(reply)),
                }
            })
            .await;
        match from_redis {
            Some(decision) => decision,
            None => {
                self.outage.count_fallback_decision();
                self.fallback.reserve_now(key, policy, now, ticket)
            }
        }
    }

    async fn release(&self, key: &LimitKey, ticket: Ticket) {
        // The ticket may have been counted by the fallback during an outage.
        self.fallback.release_now(key, ticket);
        self.settle(Settlement::Release, key, ticket).await;
    }

    async fn fail(&self, key: &LimitKey, ticket: Ticket) {
        // The ticket may have been counted by the fallback during an outage.
        self.fallback.fail_now(key, ticket);
        self.settle(Settlement::Fail, key, ticket).await;
    }

    /// Tells Redis, or queues it for when Redis answers again: even a ticket the fallback
    /// decided may be counted there (a reserve whose answer was lost to the deadline).
    async fn settle(&self, settlement: Settlement, key: &LimitKey, ticket: Ticket) {
        let pending = Pending {
            settlement,
            key: self.key(key),
            ticket: ticket.as_hex(),
        };
        let done = match self.outage.admit() {
            None => None,
            Some(_admission) => {
                let one = &pending;
                self.call(
                    settlement.operation(),
                    key.kind(),
                    |mut connection| async move { self.settle_one(&mut connection, one).await },
                )
                .await
            }
        };
        if done.is_none() {
            self.backlog.push(pending);
        }
    }

    async fn settle_one(
        &self,
        connection: &mut ConnectionManager,
        pending: &Pending,
    ) -> Result<(), CallError> {
        match pending.settlement {
            Settlement::Release => {
                redis::cmd("ZREM")
                    .arg(&pending.key)
                    .arg(format!("p:{}", pending.ticket))
                    .arg(format!("f:{}", pending.ticket))
                    .query_async::<i64>(connection)
                    .await?;
            }
            Settlement::Fail => {
                self.fail
                    .key(&pending.key)
                    .arg(&pending.ticket)
                    .invoke_async::<i64>(connection)
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends the queued settlements, a batch per round trip, until none is left or Redis
    /// stops answering (the batch in flight is then queued again). One drain at a time.
    async fn drain(&self) {
        let Some(_draining) = self.backlog.begin_drain() else {
            return;
        };
        loop {
            let batch = self.backlog.take(DRAIN_BATCH);
            if batch.is_empty() {
                return;
            }
            let items = &batch;
            let sent = self
                .call("settle_queued", "-", |mut connection| async move {
                    let mut pipe = redis::pipe();
                    for pending in items {
                        match pending.settlement {
                            Settlement::Release => pipe
                                .cmd("ZREM")
                                .arg(&pending.key)
                                .arg(format!("p:{}", pending.ticket))
                                .arg(format!("f:{}", pending.ticket))
                                .ignore(),
                            // EVAL (not EVALSHA) inside a pipeline: a restarted Redis
                            // has no script cache yet.
                            Settlement::Fail => pipe
                                .cmd("EVAL")
                                .arg(FAIL_LUA)
                                .arg(1)
                                .arg(&pending.key)
                                .arg(&pending.ticket)
                                .ignore(),
                        };
                    }
                    pipe.query_async::<()>(&mut connection)
                        .await
                        .map_err(CallError::from)
                })
                .await;
            if sent.is_none() {
                self.backlog.put_back(batch);
                return;
            }
        }
    }

    async fn first_denial(&self, key: &LimitKey, window: Duration, now: OffsetDateTime) -> bool {
        let marker = format!("{}:denied", self.key(key));
        let from_redis = self
            .attempt("first_denial", key.kind(), |mut connection| async move {
                let now_us = unix_micros(now);
                let window_us = micros(window);
                self.first_denial
                    .key(&marker)
                    .arg(now_us)
                    .arg(now_us.saturating_add(window_us))
                    .arg(ttl_millis(window_us))
                    .invoke_async::<i64>(&mut connection)
                    .await
                    .map_err(CallError::from)
            })
            .await;
        match from_redis {
            Some(first) => first == 1,
            None => self.fallback.first_denial_now(key, window, now),
        }
    }
}

impl RateLimiter for RedisLimiter {
    fn reserve<'a>(
        &'a self,
        key: &'a LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let decision = self.inner.reserve(key, policy, now, ticket).await;
            self.drain_in_background();
            decision
        })
    }

    fn release<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.inner.release(key, ticket).await;
            self.drain_in_background();
        })
    }

    fn fail<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.inner.fail(key, ticket).await;
            self.drain_in_background();
        })
    }

    fn first_denial<'a>(
        &'a self,
        key: &'a LimitKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, bool> {
        Box::pin(self.inner.first_denial(key, window, now))
    }

    fn health(&self) -> LimiterHealth {
        self.inner.outage.health()
    }

    fn probe(&self) -> BoxFuture<'_, LimiterHealth> {
        Box::pin(async move {
            self.ping().await;
            self.health()
        })
    }

    fn fallback_decisions(&self) -> u64 {
        RedisLimiter::fallback_decisions(self)
    }
}

/// Unix microseconds (rounded down), saturating far outside any real clock's range.
fn unix_micros(at: OffsetDateTime) -> i64 {
    let micros = at.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

fn micros(duration: Duration) -> i64 {
    let micros = duration.whole_microseconds();
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// A key's time to live for a window: whole milliseconds, rounded up, at least 1.
fn ttl_millis(window_us: i64) -> i64 {
    (window_us.saturating_add(999) / 1_000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_sent_as_whole_unix_microseconds() {
        let at = datetime!(2026-03-01 09:15:30.123456789 UTC);
        assert_eq!(unix_micros(at), 1_772_356_530_123_456);
        assert_eq!(micros(Duration::minutes(10)), 600_000_000);
        assert_eq!(ttl_millis(600_000_000), 600_000);
        assert_eq!(ttl_millis(1), 1);
        assert_eq!(ttl_millis(0), 1);
    }

    #[test]
    fn a_malformed_url_is_the_only_construction_error_and_does_not_echo_the_url() {
        let err = RedisLimiter::new("http://:hunter2@localhost", "t:", MemoryLimiter::new())
            .expect_err("not a redis URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        // Nothing listens there, yet construction succeeds (outside a runtime, too).
        let limiter = RedisLimiter::new("redis://127.0.0.1:1", "t:", MemoryLimiter::new());
        assert!(limiter.is_ok());
    }

    #[test]
    fn a_rediss_url_is_accepted_by_the_limiter_and_the_bus() {
        let url = "rediss://:hunter2@redis.example.com:6380/0";
        let limiter = RedisLimiter::new(url, "t:", MemoryLimiter::new());
        assert!(limiter.is_ok(), "{limiter:?}");
        let bus = crate::RedisBus::new(url, "t:");
        assert!(bus.is_ok(), "{bus:?}");
    }
}

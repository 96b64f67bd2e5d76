//! The limiter conformance suite (`tessera_app::testkit::limiter_suite`), once per
//! backend. Memory always runs; Redis runs when `TESSERA_TEST_REDIS_URL` names a server
//! (each test under a key prefix of its own), and skips loudly otherwise — or fails,
//! under `TESSERA_TEST_REQUIRE=all`.

use tessera_adapters::testing::skip_or_fail;
use tessera_adapters::{MemoryLimiter, RedisLimiter};
use tessera_app::ports::{BoxFuture, LimiterHealth, RateLimiter, Ticket};
use tessera_core::ratelimit::{Decision, LimitKey, Policy};
use time::{Duration, OffsetDateTime};

/// The Redis server the Redis suites use (the outage tests start their own).
pub const REDIS_URL_VAR: &str = "TESSERA_TEST_REDIS_URL";

/// A key prefix no other test or run shares.
pub fn unique_prefix() -> String {
    format!("tessera-test:{}:", uuid::Uuid::new_v4().simple())
}

pub(super) async fn memory_limiter() -> Option<MemoryLimiter> {
    Some(MemoryLimiter::new())
}

pub(super) async fn redis_limiter() -> Option<RedisOnly> {
    let Ok(url) = std::env::var(REDIS_URL_VAR) else {
        skip_or_fail(
            "Redis tests",
            &format!("set {REDIS_URL_VAR}=redis://127.0.0.1:6379 to run them"),
        );
        return None;
    };
    let prefix = unique_prefix();
    let limiter = RedisLimiter::new(&url, &prefix, MemoryLimiter::new())
        .unwrap_or_else(|e| panic!("{REDIS_URL_VAR}: {e}"));
    assert!(
        limiter.ping().await,
        "cannot reach the Redis server in {REDIS_URL_VAR}"
    );
    Some(RedisOnly {
        limiter,
        url,
        prefix,
    })
}

/// A [`RedisLimiter`] that must decide in Redis: a call answered by the in-process
/// fallback would make the Redis suite prove nothing, so it fails the test. Its keys are
/// deleted when it is dropped.
pub(super) struct RedisOnly {
    limiter: RedisLimiter,
    url: String,
    prefix: String,
}

impl RedisOnly {
    fn assert_decided_in_redis(&self) {
        assert_eq!(self.limiter.health(), LimiterHealth::Ok);
        assert_eq!(
            self.limiter.fallback_decisions(),
            0,
            "a decision was made by the fallback, not by Redis"
        );
    }
}

impl RateLimiter for RedisOnly {
    fn reserve<'a>(
        &'a self,
        key: &'a LimitKey,
        policy: Policy,
        now: OffsetDateTime,
        ticket: Ticket,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let decision = self.limiter.reserve(key, policy, now, ticket).await;
            self.assert_decided_in_redis();
            decision
        })
    }

    fn release<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.limiter.release(key, ticket).await;
            self.assert_decided_in_redis();
        })
    }

    fn fail<'a>(&'a self, key: &'a LimitKey, ticket: Ticket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.limiter.fail(key, ticket).await;
            self.assert_decided_in_redis();
        })
    }

    fn first_denial<'a>(
        &'a self,
        key: &'a LimitKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let first = self.limiter.first_denial(key, window, now).await;
            self.assert_decided_in_redis();
            first
        })
    }

    fn health(&self) -> LimiterHealth {
        self.limiter.health()
    }

    fn probe(&self) -> BoxFuture<'_, LimiterHealth> {
        self.limiter.probe()
    }
}

impl Drop for RedisOnly {
    /// Deletes the test's keys (they would expire within a window anyway).
    fn drop(&mut self) {
        let (url, pattern) = (self.url.clone(), format!("{}*", self.prefix));
        // A thread of its own: this may run inside the test's runtime.
        let outcome = std::thread::spawn(move || -> ::redis::RedisResult<()> {
            let mut connection = ::redis::Client::open(url)?
                .get_connection_with_timeout(std::time::Duration::from_secs(2))?;
            let keys: Vec<String> = ::redis::cmd("KEYS").arg(pattern).query(&mut connection)?;
            if !keys.is_empty() {
                ::redis::cmd("DEL").arg(keys).exec(&mut connection)?;
            }
            Ok(())
        })
        .join();
        if let Ok(Err(e)) = outcome {
            eprintln!("could not delete a test's Redis keys: {e}");
        }
    }
}

tessera_app::limiter_conformance!(memory, memory_limiter());
tessera_app::limiter_conformance!(redis, redis_limiter());

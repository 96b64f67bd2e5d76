//! The Redis limiter against a Redis of its own: what it stores, and what it does when
//! Redis is absent, killed, restarted or hung. Each test starts a private `redis-server`
//! on a free port (never the shared one), and bounds every limiter call with a timeout,
//! so an outage shows up as a failure, not as a hung test.

use std::future::Future;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use tessera_adapters::testing::skip_or_fail;
use tessera_adapters::{MemoryLimiter, RedisLimiter};
use tessera_app::ports::{Clock, LimiterHealth, RateLimiter, Ticket};
use tessera_app::testkit::ManualClock;
use tessera_core::ratelimit::{Decision, LimitKey, Policy};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::limiters::unique_prefix;

const T0: OffsetDateTime = datetime!(2026-03-01 09:15:30.123456 UTC);
const POLICY: Policy = Policy {
    limit: 5,
    window: Duration::minutes(10),
};
/// Far above the limiter's own deadline (1 s): reaching it means the limiter hung.
const BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// A `redis-server` process owned by one test, killed when dropped.
pub(super) struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    /// `None` (after a loud notice, or a failure under `TESSERA_TEST_REQUIRE=all`) when
    /// there is no `redis-server` to run.
    pub(super) async fn start() -> Option<Self> {
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.spawn().await?;
        Some(server)
    }

    pub(super) async fn spawn(&mut self) -> Option<()> {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip_or_fail("redis-server binary", "apt-get install redis-server");
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        }
        for _ in 0..100 {
            if self.connect().await.is_ok() {
                return Some(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "the private redis-server on port {} did not start",
            self.port
        );
    }

    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Sends a signal (`STOP`, `CONT`) to the server.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A stopped process still dies of SIGKILL.
            self.kill();
        }
    }
}

/// A port nothing listens on (the listener is closed again at once).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn ticket() -> Ticket {
    Ticket(*uuid::Uuid::new_v4().as_bytes())
}

fn ip_key() -> LimitKey {
    LimitKey::login_ip("192.0.2.1".parse().unwrap(), "password")
}

/// Awaits `call`, failing the test if it takes longer than [`BOUND`].
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {BOUND:?}"))
}

fn limiter_on(url: &str, prefix: &str) -> RedisLimiter {
    RedisLimiter::new(url, prefix, MemoryLimiter::new()).expect("a valid URL")
}

/// Reserves `n` attempts a second apart, settling each allowed one as a failure.
async fn reserve_n(limiter: &RedisLimiter, clock: &ManualClock, n: usize) -> Vec<Decision> {
    let key = ip_key();
    let mut decisions = Vec::new();
    for _ in 0..n {
        let t = ticket();
        let decision = bounded("reserve", limiter.reserve(&key, POLICY, clock.now(), t)).await;
        if decision == Decision::Allow {
            bounded("fail", limiter.fail(&key, t)).await;
        }
        decisions.push(decision);
        clock.advance(Duration::seconds(1));
    }
    decisions
}

fn five_allowed_then_denied(decisions: &[Decision]) -> bool {
    decisions.len() == 6
        && decisions[..5].iter().all(|d| *d == Decision::Allow)
        && matches!(decisions[5], Decision::Deny { .. })
}

fn is_unreachable(health: &LimiterHealth) -> bool {
    matches!(health, LimiterHealth::Degraded(reason) if reason.starts_with("redis unreachable"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_keys_hold_the_tickets_and_expire_within_the_window() {
    let Some(server) = PrivateRedis::start().await else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = limiter_on(&server.url(), &prefix);
    let key = ip_key();
    let t = ticket();
    assert_eq!(limiter.reserve(&key, POLICY, T0, t).await, Decision::Allow);
    let short = Policy {
        limit: 2,
        window: Duration::seconds(90),
    };
    let account = LimitKey::login_account("ttl@example.com", "password");
    limiter.reserve(&account, short, T0, ticket()).await;
    assert!(limiter.first_denial(&key, POLICY.window, T0).await);
    assert_eq!(limiter.health(), LimiterHealth::Ok);

    let mut redis = server.connect().await.unwrap();
    let name = format!("{prefix}{}", key.storage_name());
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(&name)
        .arg(format!("p:{}", t.as_hex()))
        .query_async(&mut redis)
        .await
        .unwrap();
    let micros = T0.unix_timestamp_nanos() / 1_000;
    assert_eq!(
        score,
        Some(micros as f64),
        "member = p: (pending) and the ticket, score = now in µs"
    );
    for (redis_key, window_ms) in [
        (name.clone(), 600_000),
        (format!("{name}:denied"), 600_000),
        (format!("{prefix}{}", account.storage_name()), 90_000),
    ] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&redis_key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            ttl > 0 && ttl <= window_ms,
            "{redis_key} has TTL {ttl} ms, window {window_ms} ms"
        );
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| k.starts_with(&prefix)), "{keys:?}");
    assert_eq!(keys.len(), 3, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nothing_listening_the_fallback_still_denies_the_sixth_attempt() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let limiter = limiter_on(&url, &unique_prefix());
    let clock = ManualClock::new(T0);
    let decisions = reserve_n(&limiter, &clock, 6).await;
    assert!(five_allowed_then_denied(&decisions), "{decisions:?}");
    assert_eq!(limiter.fallback_decisions(), 6);
    assert!(!bounded("ping", limiter.ping()).await);
    assert!(is_unreachable(&limiter.health()), "{:?}", limiter.health());
    // The other operations fall back too.
    let key = ip_key();
    assert!(
        bounded(
            "first_denial",
            limiter.first_denial(&key, POLICY.window, T0)
        )
        .await
    );
    assert!(
        !bounded(
            "first_denial",
            limiter.first_denial(&key, POLICY.window, T0)
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_redis_is_replaced_by_the_fallback_and_used_again_once_restarted() {
    let Some(mut server) = PrivateRedis::start().await else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = limiter_on(&server.url(), &prefix);
    let clock = ManualClock::new(T0);
    let name = format!("{prefix}{}", ip_key().storage_name());
    let counted_in_redis = |mut redis: MultiplexedConnection| {
        let name = name.clone();
        async move {
            redis::cmd("ZCARD")
                .arg(&name)
                .query_async::<usize>(&mut redis)
                .await
                .unwrap()
        }
    };

    assert_eq!(reserve_n(&limiter, &clock, 2).await, [Decision::Allow; 2]);
    assert_eq!(counted_in_redis(server.connect().await.unwrap()).await, 2);
    assert_eq!(limiter.health(), LimiterHealth::Ok);

    server.kill();
    let decisions = reserve_n(&limiter, &clock, 6).await;
    assert!(
        five_allowed_then_denied(&decisions),
        "the fallback limits on its own: {decisions:?}"
    );
    assert_eq!(limiter.fallback_decisions(), 6);
    assert!(is_unreachable(&limiter.health()), "{:?}", limiter.health());

    server.spawn().await.expect("redis-server ran a moment ago");
    let mut tries = 0;
    while limiter.health() != LimiterHealth::Ok {
        tries += 1;
        assert!(tries <= 20, "not recovered: {:?}", limiter.health());
        reserve_n(&limiter, &clock, 1).await;
        if limiter.health() != LimiterHealth::Ok {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let fallbacks = limiter.fallback_decisions();
    assert_eq!(reserve_n(&limiter, &clock, 1).await, [Decision::Allow]);
    assert_eq!(
        limiter.fallback_decisions(),
        fallbacks,
        "decided in Redis again"
    );
    let fresh = counted_in_redis(server.connect().await.unwrap()).await;
    assert!(
        fresh >= 2,
        "the restarted Redis holds the new attempts: {fresh}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_redis_costs_one_deadline_at_a_time_not_one_per_request() {
    let Some(server) = PrivateRedis::start().await else {
        return;
    };
    let limiter = std::sync::Arc::new(limiter_on(&server.url(), &unique_prefix()));
    let clock = ManualClock::new(T0);
    assert_eq!(reserve_n(&limiter, &clock, 1).await, [Decision::Allow]);

    server.signal("STOP");
    let started = Instant::now();
    let decisions = reserve_n(&limiter, &clock, 1).await;
    assert_eq!(decisions, [Decision::Allow], "decided by the fallback");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(is_unreachable(&limiter.health()), "{:?}", limiter.health());

    // Twenty concurrent requests while hung: at most one waits for Redis.
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let limiter = limiter.clone();
        requests.spawn(async move {
            limiter
                .reserve(
                    &LimitKey::login_account("hung@example.com", "password"),
                    POLICY,
                    T0,
                    ticket(),
                )
                .await
        });
    }
    let decisions = bounded("concurrent reserves", requests.join_all()).await;
    assert_eq!(
        decisions.iter().filter(|d| **d == Decision::Allow).count(),
        5
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    server.signal("CONT");
    let mut tries = 0;
    while limiter.health() != LimiterHealth::Ok {
        tries += 1;
        assert!(tries <= 20, "not recovered: {:?}", limiter.health());
        reserve_n(&limiter, &clock, 1).await;
        if limiter.health() != LimiterHealth::Ok {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Whether Redis holds `member` in the key's sorted set.
async fn holds(server: &PrivateRedis, name: &str, member: String) -> bool {
    let mut redis = server.connect().await.unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(name)
        .arg(member)
        .query_async(&mut redis)
        .await
        .unwrap();
    score.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tickets_settled_while_redis_is_hung_are_settled_in_redis_once_it_answers_again() {
    let Some(server) = PrivateRedis::start().await else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = limiter_on(&server.url(), &prefix);
    let key = ip_key();
    let name = format!("{prefix}{}", key.storage_name());
    let (released, failed, during_probe) = (ticket(), ticket(), ticket());
    for t in [released, failed, during_probe] {
        let decision = bounded("reserve", limiter.reserve(&key, POLICY, T0, t)).await;
        assert_eq!(decision, Decision::Allow);
        assert!(holds(&server, &name, format!("p:{}", t.as_hex())).await);
    }

    server.signal("STOP");
    // A success and a failure settled while Redis does not answer (the limiter goes
    // degraded on the first), and one while another call is probing the hung Redis.
    bounded("release", limiter.release(&key, released)).await;
    bounded("fail", limiter.fail(&key, failed)).await;
    assert!(is_unreachable(&limiter.health()), "{:?}", limiter.health());
    let probe = {
        let limiter = limiter.clone();
        let key = LimitKey::login_account("probe@example.com", "password");
        tokio::spawn(async move { limiter.reserve(&key, POLICY, T0, ticket()).await })
    };
    tokio::task::yield_now().await;
    bounded("release", limiter.release(&key, during_probe)).await;
    bounded("probe", probe).await.unwrap();
    assert!(limiter.settlements_queued() >= 2);

    server.signal("CONT");
    let mut tries = 0;
    while !bounded("ping", limiter.ping()).await {
        tries += 1;
        assert!(tries <= 20, "not recovered: {:?}", limiter.health());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(limiter.settlements_queued(), 0);
    for t in [released, during_probe] {
        let hex = t.as_hex();
        assert!(
            !holds(&server, &name, format!("p:{hex}")).await,
            "a released ticket must not stay pending (it would count as a failure)"
        );
        assert!(!holds(&server, &name, format!("f:{hex}")).await);
    }
    let hex = failed.as_hex();
    assert!(!holds(&server, &name, format!("p:{hex}")).await);
    assert!(
        holds(&server, &name, format!("f:{hex}")).await,
        "a failed ticket keeps its slot as a failure"
    );
}

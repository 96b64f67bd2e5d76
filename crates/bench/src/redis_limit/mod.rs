//! The Redis limit: the limiter's decisions per second from this process (the adapter
//! Tessera uses, `tessera_adapters::RedisLimiter`) beside `redis-benchmark` running the
//! very script the limiter runs, same client count.
//!
//! Two budgets are measured, because the script does different work for each:
//! - refused: the account budget of a refused login, full of failures (`LOGIN_PER_ACCOUNT`,
//!   10 in 10 minutes). The script trims, counts, reads the ten entries and answers
//!   `Deny`, writing nothing. This is the path the refused-login scenario asks of Redis,
//!   and the headline figure. Each client has its own spent key; redis-benchmark's
//!   clients pick among the same keys.
//! - fresh: the first attempt on a budget: the script trims, counts, adds a pending entry
//!   and sets the key's expiry, answering `Allow`. Every decision uses a key of its own
//!   (redis-benchmark: a random one of two billion), so no budget ever fills.
//!
//! Only reservations are measured, as the app makes them for a login attempt (through
//! the `RateLimiter` port, one ticket per call, the system clock's `now`); settling them
//! is another script and is not part of either figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use redis::aio::MultiplexedConnection;
use tessera_adapters::{MemoryLimiter, RedisLimiter, SystemClock};
use tessera_app::ports::{Clock as _, RateLimiter, Ticket};
use tessera_core::ratelimit::{Decision, LimitKey, PENDING_LEASE, Policy};
use time::OffsetDateTime;

use benchmark::{Server, parse_csv_rps};

mod benchmark;

/// redis-benchmark as Debian's `redis-tools` installs it; on the `PATH` otherwise.
const REDIS_BENCHMARK: &str = "/usr/bin/redis-benchmark";
/// The budget a password login spends per account.
const POLICY: Policy = Policy::LOGIN_PER_ACCOUNT;
const PROVIDER: &str = "password";
/// Unmeasured calls before each measured interval (connections made, scripts cached).
const WARM_UP: Duration = Duration::from_millis(250);
/// redis-benchmark stops after a request count, not a time: a first run of this many
/// requests (its warm-up) gives the rate that sizes the measured run to `secs`.
const CALIBRATION_REQUESTS: u64 = 20_000;
/// redis-benchmark's `__rand_int__` range for fresh keys (its keyspace length is an int).
const FRESH_KEYSPACE: u64 = 2_000_000_000;

/// Decisions per second, ours and redis-benchmark's, from one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RedisFigures {
    pub clients: u32,
    /// The refused budget's rates (`refused`): the headline pair.
    pub limiter_decisions_per_sec: f64,
    pub redis_benchmark_per_sec: f64,
    /// A login refused on a spent budget: the script answers `Deny`, writes nothing.
    pub refused: Rates,
    /// A first attempt on a fresh budget: the script counts it (`Allow`).
    pub fresh: Rates,
    /// Pending entries found in Redis under the keys of the fresh run's measured
    /// interval, before clean-up: one per `Allow` the limiter reported.
    pub fresh_counted_in_redis: u64,
    /// Every key the run wrote starts with this; all were deleted before returning.
    pub key_prefix: String,
}

/// One budget's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Rates {
    /// Decisions the limiter returned in the measured interval.
    pub limiter_decisions: u64,
    pub limiter_per_sec: f64,
    /// `EVALSHA` calls of redis-benchmark's measured run.
    pub redis_benchmark_requests: u64,
    pub redis_benchmark_per_sec: f64,
}

pub async fn limiter_limit(
    redis_url: &str,
    clients: u32,
    secs: u64,
) -> anyhow::Result<RedisFigures> {
    if clients == 0 || secs == 0 {
        bail!("redis limiter limit: clients and seconds must be at least 1");
    }
    let client = redis::Client::open(redis_url)
        .map_err(|e| anyhow::anyhow!("redis limiter limit: invalid Redis URL ({:?})", e.kind()))?;
    let server = Server::from_info(client.get_connection_info())?;
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .context("redis limiter limit: connecting to Redis")?;
    let nanos = SystemClock.now().unix_timestamp_nanos();
    let prefix = format!("tessera-bench:{}-{nanos}:", std::process::id());

    let run = Run {
        server,
        prefix: prefix.clone(),
        clients,
        measured: Duration::from_secs(secs),
    };
    let outcome = run.both(redis_url, &mut admin).await;
    // Clean up whatever happened: the keys are ours and would otherwise live a window.
    let left = delete_keys(&mut admin, &format!("{prefix}*")).await;
    let (refused, fresh, fresh_counted_in_redis) = outcome?;
    left.context("redis limiter limit: deleting the run's keys")?;
    Ok(RedisFigures {
        clients,
        limiter_decisions_per_sec: refused.limiter_per_sec,
        redis_benchmark_per_sec: refused.redis_benchmark_per_sec,
        refused,
        fresh,
        fresh_counted_in_redis,
        key_prefix: prefix,
    })
}

struct Run {
    server: Server,
    prefix: String,
    clients: u32,
    measured: Duration,
}

impl Run {
    async fn both(
        &self,
        redis_url: &str,
        admin: &mut MultiplexedConnection,
    ) -> anyhow::Result<(Rates, Rates, u64)> {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(RedisLimiter::RESERVE_SCRIPT)
            .query_async(admin)
            .await
            .context("redis limiter limit: SCRIPT LOAD of the reserve script")?;
        let limiter = RedisLimiter::new(redis_url, &self.prefix, MemoryLimiter::new())
            .map_err(|e| anyhow::anyhow!("redis limiter limit: {e}"))?;
        if !limiter.ping().await {
            bail!("redis limiter limit: the limiter cannot reach Redis");
        }
        // Through the port, as the app holds it.
        let limiter: Arc<dyn RateLimiter> = Arc::new(limiter);

        let refused = self.refused(&limiter, admin, &sha).await?;
        let (fresh, counted) = self.fresh(&limiter, admin, &sha).await?;
        let fallback = limiter.fallback_decisions();
        if fallback > 0 {
            bail!(
                "redis limiter limit: {fallback} decisions were made in process (Redis did \
                 not answer in time): the figures would not measure Redis"
            );
        }
        Ok((refused, fresh, counted))
    }

    /// The key the limiter writes for `account`, and the same layout for redis-benchmark.
    fn key(&self, account: &str) -> (LimitKey, String) {
        let key = LimitKey::LoginAccount {
            account: account.to_owned(),
            provider: PROVIDER.to_owned(),
        };
        let name = format!("{}{}", self.prefix, key.storage_name());
        (key, name)
    }

    async fn refused(
        &self,
        limiter: &Arc<dyn RateLimiter>,
        admin: &mut MultiplexedConnection,
        sha: &str,
    ) -> anyhow::Result<Rates> {
        // redis-benchmark writes `__rand_int__` as twelve zero-padded digits.
        let account = |i: u64| format!("r{i:012}");
        let keys: Vec<(LimitKey, String)> = (0..u64::from(self.clients))
            .map(|i| self.key(&account(i)))
            .collect();
        let now = unix_micros(SystemClock.now());
        let window = micros(POLICY.window);
        let mut fill = redis::pipe();
        for (i, (_, name)) in keys.iter().enumerate() {
            for j in 0..POLICY.limit {
                // Failed a second ago: live for the rest of the window (ten minutes), so a
                // run shorter than that is refused throughout; a longer one fails `only`.
                fill.cmd("ZADD")
                    .arg(name)
                    .arg(now - 1_000_000)
                    .arg(format!("f:{}", ticket(i as u64, u64::from(j)).as_hex()))
                    .ignore();
            }
            fill.cmd("PEXPIRE")
                .arg(name)
                .arg(ttl_millis(window))
                .ignore();
        }
        fill.query_async::<()>(admin)
            .await
            .context("redis limiter limit: spending the refused budgets")?;

        let template = self.key("r__rand_int__").1;
        let args = reserve_args(now, ticket(u64::MAX, 0));
        let probe_key = keys
            .first()
            .map(|(_, name)| name.as_str())
            .unwrap_or_default();
        expect_reply(
            admin,
            sha,
            probe_key,
            &args,
            |r| matches!(r, [0, after] if *after > 0),
        )
        .await?;

        let by_client = move |client: u32, _: u64| keys[client as usize].0.clone();
        let tally = drive(limiter, self.clients, WARM_UP, by_client.clone()).await;
        tally.only(Verdict::Deny, "refused warm-up")?;
        let tally = drive(limiter, self.clients, self.measured, by_client).await;
        tally.only(Verdict::Deny, "refused")?;

        let bench = self
            .redis_benchmark(sha, &template, u64::from(self.clients), &args)
            .await?;
        // A refusal writes nothing: the budgets must still hold exactly their failures.
        for i in 0..u64::from(self.clients) {
            let name = self.key(&account(i)).1;
            let held: u64 = redis::cmd("ZCARD").arg(&name).query_async(admin).await?;
            if held != u64::from(POLICY.limit) {
                bail!("redis limiter limit: a refused budget changed ({held} entries)");
            }
        }
        Ok(Rates {
            limiter_decisions: tally.decisions(),
            limiter_per_sec: tally.rate(),
            redis_benchmark_requests: bench.requests,
            redis_benchmark_per_sec: bench.per_sec,
        })
    }

    async fn fresh(
        &self,
        limiter: &Arc<dyn RateLimiter>,
        admin: &mut MultiplexedConnection,
        sha: &str,
    ) -> anyhow::Result<(Rates, u64)> {
        // A key of its own per call: `tag`, the client, the call's number.
        let key_of = |tag: char| {
            move |client: u32, n: u64| LimitKey::LoginAccount {
                account: format!("{tag}{client:04}-{n:08}"),
                provider: PROVIDER.to_owned(),
            }
        };
        let tally = drive(limiter, self.clients, WARM_UP, key_of('w')).await;
        tally.only(Verdict::Allow, "fresh warm-up")?;
        let tally = drive(limiter, self.clients, self.measured, key_of('f')).await;
        tally.only(Verdict::Allow, "fresh")?;
        let counted = count_entries(admin, &format!("{}*", self.key("f").1)).await?;

        let now = unix_micros(SystemClock.now());
        let args = reserve_args(now, ticket(u64::MAX, 1));
        let probe_key = self.key("probe").1;
        expect_reply(admin, sha, &probe_key, &args, |r| r == [1, 0]).await?;
        let template = self.key("b__rand_int__").1;
        let bench = self
            .redis_benchmark(sha, &template, FRESH_KEYSPACE, &args)
            .await?;
        Ok((
            Rates {
                limiter_decisions: tally.decisions(),
                limiter_per_sec: tally.rate(),
                redis_benchmark_requests: bench.requests,
                redis_benchmark_per_sec: bench.per_sec,
            },
            counted,
        ))
    }

    /// `EVALSHA sha 1 key args…` from `clients` connections: a calibration run, then one
    /// sized to last about the measured interval.
    async fn redis_benchmark(
        &self,
        sha: &str,
        key: &str,
        keyspace: u64,
        args: &[String],
    ) -> anyhow::Result<BenchRun> {
        let calibration = self
            .redis_benchmark_once(sha, key, keyspace, args, CALIBRATION_REQUESTS)
            .await?;
        let requests = (calibration.per_sec * self.measured.as_secs_f64()).ceil();
        let requests = (requests as u64).max(CALIBRATION_REQUESTS);
        self.redis_benchmark_once(sha, key, keyspace, args, requests)
            .await
    }

    async fn redis_benchmark_once(
        &self,
        sha: &str,
        key: &str,
        keyspace: u64,
        args: &[String],
        requests: u64,
    ) -> anyhow::Result<BenchRun> {
        let program = super::pgbench::tool(REDIS_BENCHMARK, "redis-benchmark");
        let mut command = tokio::process::Command::new(&program);
        self.server.apply(&mut command);
        command
            .args(["-c", &self.clients.to_string()])
            .args(["-n", &requests.to_string()])
            .args(["-r", &keyspace.to_string()])
            .arg("--csv")
            .args(["EVALSHA", sha, "1", key])
            .args(args)
            .kill_on_drop(true);
        let output = command
            .output()
            .await
            .with_context(|| format!("running {}", program.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // It reports an error reply ("Error from server: …") or a lost connection on stderr
        // and may still exit 0: its rate would then count errors.
        if !output.status.success() || stderr.contains("Error") || stderr.contains("error") {
            bail!(
                "redis-benchmark failed ({}): {}",
                output.status,
                stderr.lines().take(4).collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(BenchRun {
            requests,
            per_sec: parse_csv_rps(&stdout)?,
        })
    }
}

struct BenchRun {
    requests: u64,
    per_sec: f64,
}

/// The arguments the limiter passes `reserve.lua` (see `RedisLimiter::RESERVE_SCRIPT`):
/// now, window, limit, ticket, time to live, lease.
fn reserve_args(now_us: i64, ticket: Ticket) -> Vec<String> {
    let window = micros(POLICY.window);
    vec![
        now_us.to_string(),
        window.to_string(),
        POLICY.limit.to_string(),
        ticket.as_hex(),
        ttl_millis(window).to_string(),
        micros(PENDING_LEASE).to_string(),
    ]
}

/// One call with the arguments redis-benchmark will send, checked: a reply of another
/// shape means the arguments no longer match the script, and its figure would be noise.
async fn expect_reply(
    admin: &mut MultiplexedConnection,
    sha: &str,
    key: &str,
    args: &[String],
    expected: impl Fn(&[i64]) -> bool,
) -> anyhow::Result<()> {
    let reply: Vec<i64> = redis::cmd("EVALSHA")
        .arg(sha)
        .arg(1)
        .arg(key)
        .arg(args)
        .query_async(admin)
        .await
        .context("redis limiter limit: the reserve script with redis-benchmark's arguments")?;
    if !expected(&reply) {
        bail!(
            "redis limiter limit: the reserve script answered {reply:?} to redis-benchmark's arguments"
        );
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verdict {
    Allow,
    Deny,
}

#[derive(Default)]
struct Tally {
    allow: u64,
    busy: u64,
    deny: u64,
    elapsed: Duration,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.allow += other.allow;
        self.busy += other.busy;
        self.deny += other.deny;
    }

    fn decisions(&self) -> u64 {
        self.allow + self.busy + self.deny
    }

    fn rate(&self) -> f64 {
        self.decisions() as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Every decision must be `verdict`: another one means the budget was not in the
    /// state this figure claims to measure.
    fn only(&self, verdict: Verdict, what: &str) -> anyhow::Result<()> {
        let matching = match verdict {
            Verdict::Allow => self.allow,
            Verdict::Deny => self.deny,
        };
        if self.decisions() == 0 || matching != self.decisions() {
            bail!(
                "redis limiter limit ({what}): expected only {verdict:?}, got {} allow, {} busy, \
                 {} deny",
                self.allow,
                self.busy,
                self.deny
            );
        }
        Ok(())
    }
}

/// `clients` tasks reserving through the port until `interval` has passed; the elapsed
/// time runs until the last call in flight has answered.
async fn drive<K>(limiter: &Arc<dyn RateLimiter>, clients: u32, interval: Duration, key: K) -> Tally
where
    K: Fn(u32, u64) -> LimitKey + Clone + Send + Sync + 'static,
{
    let start = Instant::now();
    let deadline = start + interval;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let limiter = Arc::clone(limiter);
        let key = key.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = key(client, n);
                let ticket = ticket(u64::from(client), n);
                match limiter
                    .reserve(&key, POLICY, SystemClock.now(), ticket)
                    .await
                {
                    Decision::Allow => tally.allow += 1,
                    Decision::Busy => tally.busy += 1,
                    Decision::Deny { .. } => tally.deny += 1,
                }
                n += 1;
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        // A task that panicked counted nothing; its absence shows in the checks.
        if let Ok(tally) = done {
            total.add(&tally);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// A distinct ticket per (client, call): the app draws a random one per reservation.
fn ticket(client: u64, n: u64) -> Ticket {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&client.to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    Ticket(bytes)
}

/// The entries of every sorted set matching `pattern`.
async fn count_entries(admin: &mut MultiplexedConnection, pattern: &str) -> anyhow::Result<u64> {
    let mut total = 0u64;
    each_batch(admin, pattern, async |admin, keys| {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("ZCARD").arg(key);
        }
        let counts: Vec<u64> = pipe.query_async(admin).await?;
        total += counts.iter().sum::<u64>();
        Ok(())
    })
    .await?;
    Ok(total)
}

async fn delete_keys(admin: &mut MultiplexedConnection, pattern: &str) -> anyhow::Result<()> {
    each_batch(admin, pattern, async |admin, keys| {
        redis::cmd("UNLINK")
            .arg(keys)
            .query_async::<u64>(admin)
            .await?;
        Ok(())
    })
    .await
}

/// Calls `each` with every batch of keys `SCAN` finds for `pattern` (every key that
/// exists throughout is found, so deleting the keys of a batch is safe).
async fn each_batch(
    admin: &mut MultiplexedConnection,
    pattern: &str,
    mut each: impl AsyncFnMut(&mut MultiplexedConnection, &[String]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(admin)
            .await?;
        if !keys.is_empty() {
            each(admin, &keys).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn unix_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

fn micros(duration: time::Duration) -> i64 {
    i64::try_from(duration.whole_microseconds()).unwrap_or(i64::MAX)
}

/// As the limiter rounds a window to a time to live: whole milliseconds, up, at least 1.
fn ttl_millis(window_us: i64) -> i64 {
    (window_us.saturating_add(999) / 1_000).max(1)
}

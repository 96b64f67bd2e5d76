//! The Redis limit: the limiter's decisions per second from this process (the adapter
//! Tessera uses, `tessera_adapters::RedisLimiter`) beside `redis-benchmark` running the
//! very script the limiter runs, same client count.

/// Decisions per second, ours and redis-benchmark's, from one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RedisFigures {
    pub clients: u32,
    pub limiter_decisions_per_sec: f64,
    pub redis_benchmark_per_sec: f64,
}

#[allow(dead_code)]
pub async fn limiter_limit(
    redis_url: &str,
    clients: u32,
    secs: u64,
) -> anyhow::Result<RedisFigures> {
    let _ = (redis_url, clients, secs);
    anyhow::bail!("redis limiter limit: not built yet")
}

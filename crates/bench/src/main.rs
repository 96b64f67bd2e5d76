//! `tessera-bench`: drives a release `tessera` server with its own keep-alive load
//! generator and prints, per scenario and concurrency, the figures beside the limits
//! measured in the same run (docs/performance.md).

mod pgbench;
mod redis_limit;

fn main() -> anyhow::Result<()> {
    anyhow::bail!("tessera-bench: not built yet")
}

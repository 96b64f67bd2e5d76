//! How long the PostgreSQL store waits for its database: `TESSERA_DATABASE_CONNECT_TIMEOUT`
//! and `TESSERA_DATABASE_ACQUIRE_TIMEOUT`.

use std::time::Duration;

use anyhow::{Context, bail};
use tessera_adapters::PoolDeadlines;

/// `from_file`: the file's `database_connect_timeout` and `database_acquire_timeout`.
pub(super) fn resolve(
    [file_connect, file_acquire]: [Option<i64>; 2],
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<PoolDeadlines> {
    let defaults = PoolDeadlines::default();
    let secs = |name: &str, from_file: Option<i64>, default: Duration, max: i64| {
        let v = match env(name) {
            Some(raw) => raw
                .parse::<i64>()
                .with_context(|| format!("{name}: {raw:?} is not a whole number of seconds"))?,
            None => from_file.unwrap_or(i64::try_from(default.as_secs()).unwrap_or(max)),
        };
        if !(1..=max).contains(&v) {
            bail!("{name} must be between 1 and {max} seconds");
        }
        Ok(Duration::from_secs(v.unsigned_abs()))
    };
    // A start may wait minutes for a database that is still coming up; a request may
    // not: past a minute a load balancer has long given up on it.
    Ok(PoolDeadlines {
        connect: secs(
            "TESSERA_DATABASE_CONNECT_TIMEOUT",
            file_connect,
            defaults.connect,
            600,
        )?,
        acquire: secs(
            "TESSERA_DATABASE_ACQUIRE_TIMEOUT",
            file_acquire,
            defaults.acquire,
            60,
        )?,
    })
}

//! How long the PostgreSQL store waits for its database: `TESSERA_DATABASE_CONNECT_TIMEOUT`
//! and `TESSERA_DATABASE_ACQUIRE_TIMEOUT`.

use std::time::Duration;

use tessera_adapters::PoolDeadlines;

use super::source::{Source, whole};

/// `from_file`: the file's `database_connect_timeout` and `database_acquire_timeout`.
pub(super) fn resolve(
    src: &Source,
    [file_connect, file_acquire]: [Option<i64>; 2],
) -> anyhow::Result<PoolDeadlines> {
    let defaults = PoolDeadlines::default();
    let secs = |name: &str, from_file: Option<i64>, default: Duration, max: i64| {
        let v = src.within(
            name,
            from_file,
            whole(default.as_secs()),
            1..=max,
            " seconds",
        )?;
        Ok::<_, anyhow::Error>(Duration::from_secs(v.unsigned_abs()))
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

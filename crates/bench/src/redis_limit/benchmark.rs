//! How redis-benchmark is pointed at the limiter's Redis, and how its figure is read.

use anyhow::{Context as _, bail};
use redis::{ConnectionAddr, ConnectionInfo};

/// Where redis-benchmark connects, taken from the same URL the limiter uses.
pub(super) struct Server {
    addr: Vec<String>,
    auth: Vec<String>,
}

impl Server {
    pub(super) fn from_info(info: &ConnectionInfo) -> anyhow::Result<Self> {
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                vec!["-h".into(), host.clone(), "-p".into(), port.to_string()]
            }
            ConnectionAddr::Unix(path) => vec!["-s".into(), path.display().to_string()],
            _ => bail!("redis limiter limit: redis-benchmark is run over plain TCP or a socket"),
        };
        let settings = info.redis_settings();
        let mut auth = vec!["--dbnum".to_owned(), settings.db().to_string()];
        if let Some(user) = settings.username() {
            auth.extend(["--user".to_owned(), user.to_owned()]);
        }
        if let Some(password) = settings.password() {
            // redis-benchmark 7 takes the password on its command line only.
            auth.extend(["-a".to_owned(), password.to_owned()]);
        }
        Ok(Self { addr, auth })
    }

    pub(super) fn apply(&self, command: &mut tokio::process::Command) {
        command.args(&self.addr).args(&self.auth);
    }
}

/// The `rps` column of redis-benchmark's `--csv` line (the test's name comes first and
/// may itself hold commas, so columns are counted from the end).
pub(super) fn parse_csv_rps(stdout: &str) -> anyhow::Result<f64> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("redis-benchmark printed no figures: {stdout}"))?;
    let fields: Vec<&str> = line.trim().trim_matches('"').split("\",\"").collect();
    // test, rps, avg, min, p50, p95, p99, max
    let rps = fields
        .len()
        .checked_sub(7)
        .and_then(|i| fields.get(i))
        .filter(|_| fields.len() >= 8)
        .with_context(|| format!("redis-benchmark's CSV line is not as expected: {line}"))?;
    let rps: f64 = rps
        .parse()
        .with_context(|| format!("redis-benchmark's rps is not a number: {line}"))?;
    Ok(rps)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redis_benchmark_csv_is_read_from_the_end() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\
                   \"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"EVALSHA abc 1 k,1 2\",\"65573.77\",\"0.049\",\"0.008\",\"0.031\",\
                   \"0.047\",\"0.095\",\"6.911\"\n";
        assert_eq!(parse_csv_rps(out).unwrap(), 65573.77);
        assert!(parse_csv_rps("").is_err());
        assert!(parse_csv_rps("\"only\",\"two\"").is_err());
    }
}

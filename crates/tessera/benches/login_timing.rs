//! Does a failed login's latency tell a known email from an unknown one? Starts the
//! release `tessera` binary, registers a set of accounts, then sends wrong-password logins
//! for known emails and for unknown emails, alternating, one at a time, and prints both
//! latency distributions side by side.
//!
//! On Postgres when `--database-url URL` or `TESSERA_TEST_DATABASE_URL` names a server (a
//! fresh database is created on it and dropped afterwards), else on a SQLite file.
//! `cargo bench -p tessera --bench login_timing -- [--database-url URL] [--rounds N]`
//!
//! Each attempt comes from its own forwarded address, and no email is tried more than
//! `PER_EMAIL` times, so neither the network budget nor the account budget ever answers:
//! every attempt runs the whole failure path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;

mod support;
use support::{Server, percentile};

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "not the password at all";
/// Below the account budget (10 failures per window).
const PER_EMAIL: usize = 8;

/// The database the server runs on, removed on drop.
enum Database {
    Sqlite(std::path::PathBuf),
    Postgres { server: String, name: String },
}

impl Database {
    fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}/timing.db", dir.display()),
            Self::Postgres { server, name } => with_database(server, name),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres { .. } => "Postgres",
        }
    }

    async fn drop_now(self) {
        match self {
            Self::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres { server, name } => {
                let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
                let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
        }
    }
}

/// `server` with its database path replaced by `name` (query parameters kept).
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| authority_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let rounds: usize = arg("--rounds").and_then(|s| s.parse().ok()).unwrap_or(60);
    let postgres = arg("--database-url").or_else(|| {
        std::env::var("TESSERA_TEST_DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = match postgres {
            Some(server) => {
                let name = format!("tessera_bench_{}", std::process::id());
                let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
                let sql = format!(r#"CREATE DATABASE "{name}""#);
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Database::Postgres { server, name }
            }
            None => {
                let dir = std::env::temp_dir()
                    .join(format!("tessera-timing-bench-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                Database::Sqlite(dir)
            }
        };
        let server = Server::start("timing-run", Some(&db.url()));
        let client = reqwest::Client::new();
        server.wait_ready(&client).await;
        let (known, unknown) = measure(&client, &server.base, rounds).await;
        drop(server);
        report(db.label(), &known, &unknown);
        db.drop_now().await;
    });
}

struct Sample {
    latencies: Vec<Duration>,
    /// Answers other than 401 (a limit, an error): each would spoil the comparison.
    other: usize,
}

/// Emails tried per round: this many known and as many unknown.
const PER_ROUND: usize = 10;

/// `rounds` rounds after one of warm-up; each tries `PER_ROUND` known accounts and as many
/// unknown emails with a wrong password, alternating which kind goes first. Every
/// `PER_EMAIL` rounds move on to fresh emails, so no email exceeds its budget.
async fn measure(client: &reqwest::Client, base: &str, rounds: usize) -> (Sample, Sample) {
    let accounts = (rounds / PER_EMAIL + 1) * PER_ROUND;
    for i in 0..accounts {
        let res = client
            .post(format!("{base}/v1/users"))
            .header("x-forwarded-for", address(i))
            .json(&json!({"email": format!("known-{i}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "register {i}: {}", res.status());
    }
    let mut known = Sample {
        latencies: Vec::new(),
        other: 0,
    };
    let mut unknown = Sample {
        latencies: Vec::new(),
        other: 0,
    };
    let mut sent = accounts;
    for round in 0..=rounds {
        for i in 0..PER_ROUND {
            let n = round / PER_EMAIL * PER_ROUND + i;
            let pairs = [
                (format!("known-{n}@example.com"), true),
                (format!("unknown-{n}@example.com"), false),
            ];
            let order = if (round + i) % 2 == 0 { [0, 1] } else { [1, 0] };
            for k in order {
                let (email, is_known) = &pairs[k];
                sent += 1;
                let started = Instant::now();
                let status = client
                    .post(format!("{base}/v1/auth/login"))
                    .header("x-forwarded-for", address(sent))
                    .json(&json!({"email": email, "password": WRONG, "device_id": "bench"}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                let took = started.elapsed();
                if round == 0 {
                    continue;
                }
                let sample = if *is_known { &mut known } else { &mut unknown };
                if status.as_u16() == 401 {
                    sample.latencies.push(took);
                } else {
                    sample.other += 1;
                }
            }
        }
    }
    known.latencies.sort_unstable();
    unknown.latencies.sort_unstable();
    (known, unknown)
}

fn report(label: &str, known: &Sample, unknown: &Sample) {
    println!(
        "wrong-password logins on {label}, one at a time, {} known / {} unknown (ms)",
        known.latencies.len(),
        unknown.latencies.len()
    );
    println!(
        "{:>8} {:>12} {:>12} {:>12}",
        "", "known email", "unknown", "difference"
    );
    for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        let (k, u) = (
            percentile(&known.latencies, q),
            percentile(&unknown.latencies, q),
        );
        println!("{name:>8} {k:>12.2} {u:>12.2} {:>+12.2}", k - u);
    }
    let (k, u) = (mean(&known.latencies), mean(&unknown.latencies));
    println!("{:>8} {k:>12.2} {u:>12.2} {:>+12.2}", "mean", k - u);
    if known.other + unknown.other > 0 {
        println!(
            "not 401 (limit or error): {} known, {} unknown",
            known.other, unknown.other
        );
    }
}

fn mean(values: &[Duration]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / values.len() as f64
}

/// A distinct private address per request, as a proxy would forward it.
fn address(n: usize) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

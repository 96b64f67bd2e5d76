//! Password logins under load, beside their limit: the raw Argon2id rate of this machine
//! measured in the same run. Starts the release `tessera` binary on its embedded default
//! (SQLite, in-process limiter), signs in with 1, 32 and 128 concurrent keep-alive
//! clients (each from its own forwarded address, as behind a proxy), and prints logins/s,
//! the ratio to the raw hash rate, latency percentiles, refusals, and the server's peak
//! and current resident memory.
//!
//! `cargo bench -p tessera --bench logins` (`-- --secs 10` for longer phases).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tessera_core::password::{Password, hash, verify};

mod support;
use support::{Server, percentile};

const PASSWORD: &str = "correct horse battery staple";
const LEVELS: [usize; 3] = [1, 32, 128];

fn main() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5u64);
    let phase = Duration::from_secs(secs);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let raw = raw_hash_rate(cores, phase);
    println!("raw Argon2id verify rate, {cores} threads on {cores} cores: {raw:.1}/s");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = Server::start("logins-bench", None);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        server.wait_ready(&client).await;
        for i in 0..*LEVELS.iter().max().unwrap() {
            let res = client
                .post(format!("{}/v1/users", server.base))
                .header("x-forwarded-for", address(i))
                .json(&json!({"email": email(i), "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "register {i}: {}", res.status());
        }
        println!(
            "\n{:>5} {:>9} {:>7} {:>8} {:>8} {:>8} {:>6} {:>6} {:>10} {:>9}",
            "conc",
            "logins/s",
            "×raw",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "503",
            "errors",
            "peak RSS",
            "RSS now"
        );
        // The last row: 32 clients behind one address (an office NAT), so at most five
        // attempts are in flight on its budget and the others wait for them.
        let rows = LEVELS.iter().map(|l| (*l, false)).chain([(32, true)]);
        for (level, one_address) in rows {
            let r = run_level(&server.base, level, phase, one_address).await;
            let (hwm, rss) = memory(server.child.id());
            let label = if one_address {
                format!("{level}/1ip")
            } else {
                level.to_string()
            };
            println!(
                "{:>7} {:>9.1} {:>7.2} {:>8.1} {:>8.1} {:>8.1} {:>6} {:>6} {:>7} MB {:>6} MB",
                label,
                r.rate,
                r.rate / raw,
                r.p(0.50),
                r.p(0.99),
                r.p(0.999),
                r.unavailable,
                r.errors,
                hwm / 1024,
                rss / 1024,
            );
        }
    });
}

fn email(i: usize) -> String {
    format!("bench-{i}@example.com")
}

/// One documentation-range address per client, as a proxy would forward it.
fn address(i: usize) -> String {
    format!("198.51.{}.{}", i / 250, i % 250 + 1)
}

/// Verifications per second with one thread per core, each verifying for `phase`.
fn raw_hash_rate(threads: usize, phase: Duration) -> f64 {
    let password = Password::presented(PASSWORD.into()).unwrap();
    let stored = hash(&password, &[7; 16]).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (password, stored) = (password.clone(), stored.clone());
            let (count, stop) = (count.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert!(verify(&password, &stored));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(phase);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for w in workers {
        w.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

struct LevelResult {
    rate: f64,
    latencies: Vec<Duration>,
    unavailable: u64,
    errors: u64,
}

impl LevelResult {
    fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies, q)
    }
}

/// `level` clients, each on its own keep-alive connection and address, logging in over
/// and over: a warm-up of a second (or three at high concurrency, so the queue fills),
/// then `phase` measured.
async fn run_level(base: &str, level: usize, phase: Duration, one_address: bool) -> LevelResult {
    let warmup = Duration::from_secs(if level > 8 { 3 } else { 1 });
    let start = Instant::now() + warmup;
    let end = start + phase;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..level {
        let base = base.to_owned();
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let body = json!({"email": email(i), "password": PASSWORD, "device_id": "bench"});
            let (mut lat, mut unavailable, mut errors, mut ok) = (Vec::new(), 0u64, 0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let from = if one_address { address(0) } else { address(i) };
                let res = client
                    .post(format!("{base}/v1/auth/login"))
                    .header("x-forwarded-for", from)
                    .json(&body)
                    .send()
                    .await;
                let done = Instant::now();
                // Throughput counts what completes inside the measured interval, whenever it
                // was sent: dropping requests that straddle its edges would undercount by
                // latency / interval.
                if done < start || done > end {
                    continue;
                }
                match res.map(|r| r.status().as_u16()) {
                    Ok(200) => {
                        ok += 1;
                        lat.push(done - sent);
                    }
                    Ok(503) => unavailable += 1,
                    _ => errors += 1,
                }
            }
            (ok, lat, unavailable, errors)
        });
    }
    let mut result = LevelResult {
        rate: 0.0,
        latencies: Vec::new(),
        unavailable: 0,
        errors: 0,
    };
    let mut ok = 0;
    for (n, lat, unavailable, errors) in tasks.join_all().await {
        ok += n;
        result.latencies.extend(lat);
        result.unavailable += unavailable;
        result.errors += errors;
    }
    result.latencies.sort_unstable();
    result.rate = ok as f64 / phase.as_secs_f64();
    result
}

/// The process's peak and current resident set, in KiB (Linux `/proc`).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

//! `tessera-bench`: drives a release `tessera` server with its own keep-alive load
//! generator and prints, per scenario and concurrency, the figures beside the limits
//! measured in the same run (docs/performance.md).
//!
//! `cargo build --release -p tessera -p tessera-bench && target/release/tessera-bench`
//! (`--help` for the options). It starts everything it measures itself: the server on
//! its embedded default (SQLite, in-process limiter) and on a private PostgreSQL and
//! Redis, and stops all of it on exit, on error and on Ctrl-C.

mod bare;
mod http;
mod load;
mod pgbench;
mod procs;
mod redis_limit;
mod report;
mod scenarios;
mod smoke;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use load::{Driver, Outcome};
use procs::{Bare, PrivatePostgres, PrivateRedis, Server};
use report::{Limit, RawHash, Report, Row};
use scenarios::{Kind, Workload};

#[derive(Parser)]
#[command(
    name = "tessera-bench",
    about = "Load, limits and figures for the Tessera server."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Which server set-ups to measure.
    #[arg(long, value_enum, default_value = "both")]
    backend: BackendChoice,
    /// A scenario to run (repeatable); all of them by default.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Kind>,
    /// Concurrency levels: that many keep-alive connections, each one request at a time.
    #[arg(long, value_delimiter = ',', default_value = "1,32,128")]
    conc: Vec<usize>,
    /// Seconds measured per scenario and level.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Seconds of warm-up before each measured interval.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Print the report as JSON (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// The `tessera` binary; by default the one beside this executable.
    #[arg(long)]
    tessera: Option<PathBuf>,
    /// Challenges prepared per level for `totp` (each costs a password hash to prepare).
    #[arg(long, default_value_t = 256)]
    totp_pool: usize,
    /// Idle keep-alive connections held open for the idle-memory row.
    #[arg(long, default_value_t = 128)]
    idle: usize,
    /// Only prove the load generator drives the server: a short refresh load, then the
    /// answers counted are checked against the sessions' refresh generations in the
    /// database. Exits non-zero when they disagree.
    #[arg(long)]
    smoke: bool,
}

#[derive(Subcommand)]
enum Sub {
    /// The bare token-verifying handler (started by the tool itself as the `me` limit).
    BareVerify {
        #[arg(long)]
        listen: SocketAddr,
        /// host:port of the server whose JWKS holds the keys.
        #[arg(long)]
        jwks_from: SocketAddr,
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        workers: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres+redis",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Sub::BareVerify {
        listen,
        jwks_from,
        issuer,
        workers,
    }) = cli.command
    {
        return bare::run(listen, jwks_from, issuer, workers);
    }
    tessera_adapters::install_tls_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Dropping `run` on Ctrl-C drops every guard it holds: children stopped, temp
        // dirs removed.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted: everything started was stopped"),
            _ = terminate.recv() => bail!("terminated: everything started was stopped"),
        }
    })
}

fn locate_tessera(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("this executable has no directory")?
            .join("tessera"),
    };
    if !path.is_file() {
        bail!(
            "no tessera binary at {}: build it beside this tool with \
             `cargo build --release -p tessera -p tessera-bench`, or pass --tessera PATH",
            path.display()
        );
    }
    Ok(path)
}

fn backends(choice: BackendChoice) -> Vec<Backend> {
    match choice {
        BackendChoice::Sqlite => vec![Backend::Sqlite],
        BackendChoice::Postgres => vec![Backend::Postgres],
        BackendChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
    }
}

/// The server of one backend and what it runs on (dropped last: server, then stores).
pub struct Stack {
    pub server: Server,
    pub redis: Option<PrivateRedis>,
    pub pg: Option<PrivatePostgres>,
}

pub async fn start_stack(binary: &std::path::Path, backend: Backend) -> anyhow::Result<Stack> {
    match backend {
        Backend::Sqlite => Ok(Stack {
            server: Server::start(binary, None, None).await?,
            redis: None,
            pg: None,
        }),
        Backend::Postgres => {
            let pg = PrivatePostgres::start().await?;
            let redis = PrivateRedis::start().await?;
            procs::migrate(binary, &pg.limits_url())?;
            let server = Server::start(binary, Some(pg.server_url()), Some(redis.url())).await?;
            Ok(Stack {
                server,
                redis: Some(redis),
                pg: Some(pg),
            })
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let binary = locate_tessera(cli.tessera.clone())?;
    if cli.smoke {
        for backend in backends(cli.backend) {
            smoke::run(&binary, backend, Duration::from_secs(cli.secs.min(2))).await?;
        }
        return Ok(());
    }
    if cli.conc.is_empty() || cli.conc.contains(&0) {
        bail!("--conc wants positive connection counts, e.g. 1,32,128");
    }
    let kinds = if cli.scenarios.is_empty() {
        Kind::ALL.to_vec()
    } else {
        cli.scenarios.clone()
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let phase = Duration::from_secs(cli.secs.max(1));
    let raw_hash = if kinds.contains(&Kind::Login) || kinds.contains(&Kind::LoginRefused) {
        eprintln!("measuring the raw Argon2id verify rate on {cores} threads...");
        Some(raw_hash_rate(cores, phase)?)
    } else {
        None
    };
    let mut report = Report {
        cores,
        secs: phase.as_secs(),
        warmup: cli.warmup,
        raw_hash,
        backends: Vec::new(),
    };
    for backend in backends(cli.backend) {
        eprintln!("== {}", backend.name());
        let b = run_backend(&cli, &binary, backend, &kinds, cores, &report).await?;
        report.backends.push(b);
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(())
}

struct Measured {
    outcome: Outcome,
    cpu_us_per_req: f64,
    peak_rss_kib: u64,
    statements_per_req: Option<f64>,
}

/// One level against the process `pid` listening at `addr`: the load, plus the process's
/// CPU and statements over exactly the measured interval, and its peak memory.
async fn measure(
    pid: u32,
    addr: SocketAddr,
    drivers: Vec<Driver>,
    warmup: Duration,
    secs: Duration,
    statements: Option<&sqlx::PgPool>,
) -> Measured {
    procs::reset_peak(pid);
    let (mut cpu0, mut cpu1) = (0u64, 0u64);
    let (mut st0, mut st1) = (None, None);
    let outcome = load::run_level(
        addr,
        drivers,
        warmup,
        secs,
        async || {
            cpu0 = procs::cpu_ticks(pid);
            if let Some(pool) = statements {
                st0 = procs::server_statements(pool).await.ok();
            }
        },
        async || {
            cpu1 = procs::cpu_ticks(pid);
            if let Some(pool) = statements {
                st1 = procs::server_statements(pool).await.ok();
            }
        },
    )
    .await;
    let (hwm, _) = procs::memory_kib(pid);
    let completed = outcome.completed.max(1) as f64;
    let cpu_secs = cpu1.saturating_sub(cpu0) as f64 / procs::clock_ticks();
    let statements_per_req = match (st0, st1) {
        (Some(a), Some(b)) => Some((b - a) as f64 / completed),
        _ => None,
    };
    Measured {
        cpu_us_per_req: cpu_secs * 1e6 / completed,
        peak_rss_kib: hwm,
        statements_per_req,
        outcome,
    }
}

fn row(backend: Backend, kind: &str, conc: usize, m: &Measured) -> Row {
    let o = &m.outcome;
    Row {
        backend: backend.name().to_owned(),
        scenario: kind.to_owned(),
        conc,
        requests: o.ok,
        measured_secs: o.measured.as_secs_f64(),
        req_per_sec: o.rate(),
        p50_ms: o.latencies.ms(0.50),
        p99_ms: o.latencies.ms(0.99),
        p999_ms: o.latencies.ms(0.999),
        errors: o.error_count(),
        error_kinds: o.errors.clone(),
        skipped: o.skipped,
        cpu_us_per_req: m.cpu_us_per_req,
        peak_rss_mb: m.peak_rss_kib as f64 / 1024.0,
        statements_per_req: m.statements_per_req,
        limits: Vec::new(),
    }
}

async fn run_backend(
    cli: &Cli,
    binary: &std::path::Path,
    backend: Backend,
    kinds: &[Kind],
    cores: usize,
    so_far: &Report,
) -> anyhow::Result<report::BackendReport> {
    let stack = start_stack(binary, backend).await?;
    let server = &stack.server;
    let statements = match &stack.pg {
        Some(pg) => Some(pg.admin_pool("postgres").await?),
        None => None,
    };
    let max_conc = cli.conc.iter().copied().max().unwrap_or(1);
    let warmup = Duration::from_secs(cli.warmup);
    let secs = Duration::from_secs(cli.secs.max(1));
    let mut rows = Vec::new();
    let mut bare: Option<Bare> = None;
    let mut latest_raw: Option<RawHash> = None;
    for &kind in kinds {
        eprintln!("-- {} set-up", kind.name());
        let mut workload = Workload::setup(kind, server, max_conc, cli.totp_pool)
            .await
            .with_context(|| format!("setting up {}", kind.name()))?;
        for &conc in &cli.conc {
            let drivers = workload
                .drivers(server, conc)
                .await
                .with_context(|| format!("preparing {} at {conc}", kind.name()))?;
            let w = if kind.pooled() {
                Duration::ZERO
            } else {
                warmup
            };
            let m = measure(
                server.pid(),
                server.addr,
                drivers,
                w,
                secs,
                statements.as_ref(),
            )
            .await;
            workload.give_back(&m.outcome.drivers);
            let mut r = row(backend, kind.name(), conc, &m);
            r.limits = limits_for(
                kind,
                backend,
                conc,
                &r,
                &stack,
                &mut bare,
                &mut workload,
                cores,
                cli,
                so_far,
                &mut latest_raw,
            )
            .await;
            eprintln!("{}", r.progress_line());
            rows.push(r);
        }
    }
    // Memory with many idle keep-alive connections, after everything above warmed it up.
    let (_, idle_rss) = load::idle_connections(server.addr, cli.idle, async || {
        tokio::time::sleep(Duration::from_millis(500)).await;
        procs::memory_kib(server.pid())
    })
    .await?;
    Ok(report::BackendReport {
        backend: backend.name().to_owned(),
        rows,
        idle_connections: cli.idle,
        idle_rss_mb: idle_rss as f64 / 1024.0,
    })
}

/// The limits printed beside a row, each measured now (same run, same machine state).
#[allow(clippy::too_many_arguments)]
async fn limits_for(
    kind: Kind,
    backend: Backend,
    conc: usize,
    r: &Row,
    stack: &Stack,
    bare: &mut Option<Bare>,
    workload: &mut Workload,
    cores: usize,
    cli: &Cli,
    so_far: &Report,
    latest_raw: &mut Option<RawHash>,
) -> Vec<Limit> {
    let secs = cli.secs.max(1);
    let mut out = Vec::new();
    match kind {
        Kind::Me => {
            let res: anyhow::Result<Limit> = async {
                if bare.is_none() {
                    *bare = Some(Bare::start(&stack.server, cores).await?);
                }
                let b = bare.as_ref().context("bare-verify not started")?;
                let drivers = workload.drivers(&stack.server, conc).await?;
                let m = measure(
                    b.pid(),
                    b.addr,
                    drivers,
                    Duration::from_secs(cli.warmup),
                    Duration::from_secs(secs),
                    None,
                )
                .await;
                let bare_row = row(backend, "bare-verify", conc, &m);
                Ok(Limit::new(
                    "bare-verify",
                    bare_row.req_per_sec,
                    "req/s",
                    r.req_per_sec / bare_row.req_per_sec,
                    Some(("≥", 0.7)),
                    serde_json::to_value(&bare_row)?,
                ))
            }
            .await;
            out.push(res.unwrap_or_else(|e| Limit::unavailable("bare-verify", &e)));
        }
        Kind::Login => {
            // Measured again right after the row: a hash rate taken minutes earlier, on
            // a machine shared with other work, would make the ratio meaningless.
            let phase = Duration::from_secs(secs);
            let raw = tokio::task::spawn_blocking(move || raw_hash_rate(cores, phase)).await;
            match raw {
                Ok(Ok(raw)) => {
                    out.push(Limit::new(
                        "raw Argon2id, all cores, just after",
                        raw.verifies_per_sec,
                        "hash/s",
                        r.req_per_sec / raw.verifies_per_sec,
                        None,
                        serde_json::to_value(&raw).unwrap_or_default(),
                    ));
                    *latest_raw = Some(raw);
                }
                Ok(Err(e)) => out.push(Limit::unavailable("raw Argon2id", &e)),
                Err(e) => out.push(Limit::unavailable("raw Argon2id", &e.into())),
            }
        }
        Kind::LoginRefused => {
            if let Some(raw) = latest_raw.as_ref().or(so_far.raw_hash.as_ref()) {
                out.push(Limit::new(
                    "CPU of one hash",
                    raw.cpu_us_per_hash,
                    "µs",
                    r.cpu_us_per_req / raw.cpu_us_per_hash,
                    Some(("≤", 0.01)),
                    serde_json::to_value(raw).unwrap_or_default(),
                ));
            }
            if let Some(redis) = &stack.redis {
                out.push(
                    match redis_limit::limiter_limit(&redis.url(), conc as u32, secs).await {
                        Ok(f) => Limit::new(
                            "redis limiter vs redis-benchmark",
                            f.redis_benchmark_per_sec,
                            "decisions/s",
                            f.limiter_decisions_per_sec / f.redis_benchmark_per_sec,
                            Some(("≥", 0.5)),
                            serde_json::to_value(&f).unwrap_or_default(),
                        ),
                        Err(e) => Limit::unavailable("redis limiter", &e),
                    },
                );
            }
        }
        Kind::Refresh => {
            if let (Backend::Postgres, Some(pg)) = (backend, &stack.pg) {
                out.push(
                    match pgbench::rotation_limit(&pg.limits_url(), conc as u32, secs).await {
                        Ok(f) => Limit::new(
                            "pgbench, rotation SQL",
                            f.tps,
                            "tx/s",
                            r.req_per_sec / f.tps,
                            Some(("≥", 0.8)),
                            serde_json::to_value(&f).unwrap_or_default(),
                        ),
                        Err(e) => Limit::unavailable("pgbench rotation", &e),
                    },
                );
            }
        }
        _ => {}
    }
    out
}

/// Argon2id verifications per second with one thread per core, and the CPU one takes
/// (this process's utime + stime over the run ÷ verifications).
fn raw_hash_rate(threads: usize, phase: Duration) -> anyhow::Result<RawHash> {
    use tessera_core::password::{Password, hash, verify};
    let password = Password::presented(scenarios::PASSWORD.into())
        .map_err(|e| anyhow::anyhow!("bench password: {e}"))?;
    let stored = hash(&password, &[7; 16]).map_err(|e| anyhow::anyhow!("hash: {e}"))?;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let me = std::process::id();
    let cpu0 = procs::cpu_ticks(me);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (password, stored) = (password.clone(), stored.clone());
            let (count, stop) = (count.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if verify(&password, &stored) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // The measured phase of real hashing threads: nothing to wait on but the clock.
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(phase);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    let cpu_secs = procs::cpu_ticks(me).saturating_sub(cpu0) as f64 / procs::clock_ticks();
    let n = count.load(Ordering::Relaxed);
    if n == 0 {
        bail!("no Argon2id verification finished in {phase:?}");
    }
    Ok(RawHash {
        threads,
        verifies_per_sec: n as f64 / elapsed.as_secs_f64(),
        cpu_us_per_hash: cpu_secs * 1e6 / n as f64,
    })
}

//! The load generator: a fixed number of keep-alive connections, each sending one
//! request after the other (a closed loop), a warm-up, then a measured interval.
//! Throughput counts what completes inside the interval, whenever it was sent: dropping
//! requests that straddle its edges would undercount by latency / interval.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::http::{self, Conn, Response};

/// What one connection sends, and what it expects back.
pub enum Driver {
    /// The same request every time.
    Fixed { request: Vec<u8>, expect: u16 },
    /// One refresh chain: each answer's refresh token is the next request's.
    Refresh { headers: Vec<String>, token: String },
    /// Login second steps from a prepared pool of challenges, each used once; the code
    /// is computed when sent, and each user's steps go strictly upwards (the server
    /// takes a step at most once per user).
    Totp {
        headers: Vec<String>,
        challenges: VecDeque<(usize, String)>,
        users: Vec<TotpUser>,
        /// Challenges dropped because their user had no step left (should stay 0).
        skipped: u64,
        pending_step: Option<(usize, i64)>,
    },
}

pub struct TotpUser {
    pub secret: tessera_core::mfa::totp::TotpSecret,
    pub last_step: i64,
}

/// The 6-digit code of `step`.
pub fn totp_code(secret: &tessera_core::mfa::totp::TotpSecret, step: i64) -> String {
    format!(
        "{:06}",
        tessera_core::mfa::totp::code_at_step(secret, step, 6)
    )
}

/// The TOTP step of the wall clock, which the server under load also reads.
#[allow(clippy::disallowed_methods)]
pub fn now_step() -> i64 {
    tessera_core::mfa::totp::step_at(time::OffsetDateTime::now_utc())
}

impl Driver {
    /// The next request into `out`; false when this connection has nothing left to send.
    fn next(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        match self {
            Self::Fixed { request, .. } => {
                out.extend_from_slice(request);
                true
            }
            Self::Refresh { headers, token } => {
                out.extend(http::json_request(
                    "/v1/auth/refresh",
                    headers,
                    &serde_json::json!({ "refresh_token": token }),
                ));
                true
            }
            Self::Totp {
                headers,
                challenges,
                users,
                skipped,
                pending_step,
            } => loop {
                let Some((user, mfa_token)) = challenges.pop_front() else {
                    return false;
                };
                let now = now_step();
                let Some(u) = users.get(user) else {
                    *skipped += 1;
                    continue;
                };
                let step = (u.last_step + 1).max(now - 1);
                if step > now + 1 {
                    *skipped += 1;
                    continue;
                }
                *pending_step = Some((user, step));
                out.extend(http::json_request(
                    "/v1/auth/login/mfa",
                    headers,
                    &serde_json::json!({"mfa_token": mfa_token, "code": totp_code(&u.secret, step)}),
                ));
                return true;
            },
        }
    }

    /// Judges an answer (and takes what the next request needs from it).
    fn judge(&mut self, res: &Response) -> Result<(), String> {
        match self {
            Self::Fixed { expect, .. } => {
                if res.status == *expect {
                    Ok(())
                } else {
                    Err(format!("status {}", res.status))
                }
            }
            Self::Refresh { token, .. } => {
                if res.status != 200 {
                    return Err(format!("status {}", res.status));
                }
                let next = res
                    .json()
                    .ok()
                    .and_then(|v| v["refresh_token"].as_str().map(str::to_owned))
                    .ok_or_else(|| "200 without a refresh_token".to_owned())?;
                *token = next;
                Ok(())
            }
            Self::Totp {
                users,
                pending_step,
                ..
            } => {
                // The step is spent whatever the answer: a rejected one may have been
                // taken by the server's replay guard all the same.
                if let Some((user, step)) = pending_step.take()
                    && let Some(u) = users.get_mut(user)
                {
                    u.last_step = step;
                }
                if res.status == 200 {
                    Ok(())
                } else {
                    Err(format!("status {}", res.status))
                }
            }
        }
    }
}

/// Latencies of one level, microseconds, sorted.
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    /// The `q` quantile in milliseconds (nearest rank), NaN when empty.
    pub fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        f64::from(self.0[i.min(self.0.len() - 1)]) / 1000.0
    }
}

pub struct Outcome {
    /// Expected answers completed inside the measured interval.
    pub ok: u64,
    /// Every expected answer, warm-up included (what the server must have seen).
    pub ok_total: u64,
    /// Answers and failures completed inside the interval.
    pub completed: u64,
    pub errors: BTreeMap<String, u64>,
    pub latencies: Latencies,
    /// The measured interval: `secs`, or less when every connection ran out of work.
    pub measured: Duration,
    pub skipped: u64,
    pub drivers: Vec<Driver>,
}

impl Outcome {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64().max(1e-9)
    }
}

struct ConnResult {
    ok: u64,
    ok_total: u64,
    completed: u64,
    errors: BTreeMap<String, u64>,
    latencies: Vec<u32>,
    last_done: Instant,
    exhausted: bool,
    driver: Driver,
}

async fn drive(addr: SocketAddr, mut driver: Driver, start: Instant, end: Instant) -> ConnResult {
    let mut r = ConnResult {
        ok: 0,
        ok_total: 0,
        completed: 0,
        errors: BTreeMap::new(),
        latencies: Vec::new(),
        last_done: start,
        exhausted: false,
        driver: Driver::Fixed {
            request: Vec::new(),
            expect: 0,
        },
    };
    let mut conn: Option<Conn> = None;
    let mut request = Vec::with_capacity(1024);
    let count = |r: &mut ConnResult, done: Instant, kind: Option<String>| {
        if done >= start && done <= end {
            r.completed += 1;
            if let Some(kind) = kind {
                *r.errors.entry(kind).or_default() += 1;
            }
        }
    };
    while Instant::now() < end {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    count(
                        &mut r,
                        Instant::now(),
                        Some(format!("io: connect: {}", e.kind())),
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if !driver.next(&mut request) {
            r.exhausted = true;
            break;
        }
        let sent = Instant::now();
        let res = c.send(&request).await;
        let done = Instant::now();
        match res {
            Ok(res) => {
                if res.close {
                    conn = None;
                }
                match driver.judge(&res) {
                    Ok(()) => {
                        r.ok_total += 1;
                        if done >= start && done <= end {
                            r.ok += 1;
                            r.latencies
                                .push(u32::try_from((done - sent).as_micros()).unwrap_or(u32::MAX));
                            r.last_done = done;
                        }
                        count(&mut r, done, None);
                    }
                    Err(kind) => count(&mut r, done, Some(kind)),
                }
            }
            Err(e) => {
                conn = None;
                count(&mut r, done, Some(format!("io: {}", e.kind())));
            }
        }
    }
    r.driver = driver;
    r
}

/// Measures one level: `drivers.len()` connections, `warmup` then `secs`. `at_start` and
/// `at_end` run exactly at the interval's edges (server CPU, statements), while the
/// connections keep going.
pub async fn run_level<S, E>(
    addr: SocketAddr,
    drivers: Vec<Driver>,
    warmup: Duration,
    secs: Duration,
    at_start: S,
    at_end: E,
) -> Outcome
where
    S: AsyncFnOnce(),
    E: AsyncFnOnce(),
{
    let start = Instant::now() + warmup;
    let end = start + secs;
    let mut tasks = tokio::task::JoinSet::new();
    let n = drivers.len();
    for driver in drivers {
        tasks.spawn(drive(addr, driver, start, end));
    }
    tokio::time::sleep_until(start).await;
    at_start().await;
    tokio::time::sleep_until(end).await;
    at_end().await;
    let mut out = Outcome {
        ok: 0,
        ok_total: 0,
        completed: 0,
        errors: BTreeMap::new(),
        latencies: Latencies::default(),
        measured: secs,
        skipped: 0,
        drivers: Vec::with_capacity(n),
    };
    let mut all_exhausted = true;
    let mut last_done = start;
    let mut joined = Vec::new();
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(r) => joined.push(r),
            Err(e) => {
                *out.errors.entry(format!("task: {e}")).or_default() += 1;
            }
        }
    }
    for r in joined {
        out.ok += r.ok;
        out.ok_total += r.ok_total;
        out.completed += r.completed;
        for (k, v) in r.errors {
            *out.errors.entry(k).or_default() += v;
        }
        out.latencies.0.extend(r.latencies);
        all_exhausted &= r.exhausted;
        last_done = last_done.max(r.last_done);
        if let Driver::Totp { skipped, .. } = &r.driver {
            out.skipped += skipped;
        }
        out.drivers.push(r.driver);
    }
    if all_exhausted && last_done > start {
        out.measured = last_done - start;
    }
    out.latencies.0.sort_unstable();
    out
}

/// Opens `n` keep-alive connections, each with one answered request, and holds them
/// idle while `measure` runs.
pub async fn idle_connections<T>(
    addr: SocketAddr,
    n: usize,
    measure: impl AsyncFnOnce() -> T,
) -> anyhow::Result<T> {
    let mut conns = Vec::with_capacity(n);
    let request = http::request("GET", "/healthz", &[], None);
    for _ in 0..n {
        let mut c = Conn::connect(addr).await?;
        let res = c.send(&request).await?;
        anyhow::ensure!(res.status == 200, "GET /healthz answered {}", res.status);
        conns.push(c);
    }
    let out = measure().await;
    drop(conns);
    Ok(out)
}

//! What a run measured, as a table for people and JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct RawHash {
    pub threads: usize,
    pub verifies_per_sec: f64,
    /// CPU time of one Argon2id verification (process utime + stime ÷ verifications).
    pub cpu_us_per_hash: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub name: String,
    pub value: Option<f64>,
    pub unit: String,
    /// The scenario's figure ÷ the limit (rates), or the limit's share (CPU).
    pub ratio: Option<f64>,
    /// The target for the ratio, e.g. "≥ 0.8".
    pub target: Option<String>,
    pub met: Option<bool>,
    pub detail: serde_json::Value,
}

impl Limit {
    pub fn new(
        name: &str,
        value: f64,
        unit: &str,
        ratio: f64,
        target: Option<(&str, f64)>,
        detail: serde_json::Value,
    ) -> Self {
        let met = target.map(|(op, t)| if op == "≥" { ratio >= t } else { ratio <= t });
        Self {
            name: name.to_owned(),
            value: Some(value),
            unit: unit.to_owned(),
            ratio: Some(ratio),
            target: target.map(|(op, t)| format!("{op} {t}")),
            met,
            detail,
        }
    }

    pub fn unavailable(name: &str, error: &anyhow::Error) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
            unit: String::new(),
            ratio: None,
            target: None,
            met: None,
            detail: serde_json::json!({ "unavailable": format!("{error:#}") }),
        }
    }

    fn text(&self) -> String {
        match (self.value, self.ratio) {
            (Some(v), Some(r)) => {
                let verdict = match (self.met, &self.target) {
                    (Some(true), Some(t)) => format!(" (target {t}: met)"),
                    (Some(false), Some(t)) => format!(" (target {t}: MISSED)"),
                    _ => String::new(),
                };
                format!(
                    "{}: {} {} → ×{r:.3}{verdict}",
                    self.name,
                    short(v),
                    self.unit
                )
            }
            _ => format!(
                "{}: unavailable ({})",
                self.name,
                self.detail["unavailable"].as_str().unwrap_or("?")
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub backend: String,
    pub scenario: String,
    pub conc: usize,
    /// Expected answers completed inside the measured interval.
    pub requests: u64,
    pub measured_secs: f64,
    pub req_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Prepared TOTP challenges dropped for want of an unused step (should be 0).
    pub skipped: u64,
    /// Server CPU (utime + stime) over the interval ÷ answers in it.
    pub cpu_us_per_req: f64,
    /// The server's VmHWM over this row (reset before it).
    pub peak_rss_mb: f64,
    /// pg_stat_statements calls of the server's role ÷ answers; None on SQLite.
    pub statements_per_req: Option<f64>,
    pub limits: Vec<Limit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub backend: String,
    pub rows: Vec<Row>,
    pub idle_connections: usize,
    pub idle_rss_mb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cores: usize,
    pub secs: u64,
    pub warmup: u64,
    pub raw_hash: Option<RawHash>,
    pub backends: Vec<BackendReport>,
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

const HEADER: &str = "scenario         conc     req/s   p50 ms   p99 ms p99.9 ms  errors  cpu µs/req  peak RSS  stmts/req";

impl Row {
    fn line(&self) -> String {
        let stmts = self
            .statements_per_req
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.2}"));
        let pooled = if self.skipped > 0 {
            format!("  ({} challenges skipped)", self.skipped)
        } else {
            String::new()
        };
        format!(
            "{:<15} {:>5} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>11.1} {:>6.0} MB {:>10}{pooled}",
            self.scenario,
            self.conc,
            self.req_per_sec,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.errors,
            self.cpu_us_per_req,
            self.peak_rss_mb,
            stmts,
        )
    }

    /// The row as it lands, on stderr, with its limits.
    pub fn progress_line(&self) -> String {
        let mut s = format!("{}  {}", self.backend, self.line());
        for l in &self.limits {
            s.push_str(&format!("\n      limit {}", l.text()));
        }
        s
    }
}

impl Report {
    pub fn print(&self) {
        println!(
            "tessera-bench: {} cores, {} s measured per row after {} s warm-up; load generator on the same cores",
            self.cores, self.secs, self.warmup
        );
        if let Some(raw) = &self.raw_hash {
            println!(
                "raw Argon2id verify: {:.1}/s on {} threads; one verification = {:.0} µs of CPU",
                raw.verifies_per_sec, raw.threads, raw.cpu_us_per_hash
            );
        }
        for b in &self.backends {
            println!("\n== {}", b.backend);
            println!("{HEADER}");
            for r in &b.rows {
                println!("{}", r.line());
                if r.errors > 0 {
                    let kinds: Vec<String> = r
                        .error_kinds
                        .iter()
                        .map(|(k, v)| format!("{k} ×{v}"))
                        .collect();
                    println!("{:>21} errors: {}", "", kinds.join(", "));
                }
                for l in &r.limits {
                    println!("{:>21} limit {}", "", l.text());
                    if let Some(bare) = l
                        .detail
                        .get("req_per_sec")
                        .and_then(|_| l.detail.as_object())
                    {
                        println!(
                            "{:>21}   (bare-verify p50 {:.2} ms, p99 {:.2} ms, {:.1} µs CPU/req)",
                            "",
                            bare.get("p50_ms")
                                .and_then(|v| v.as_f64())
                                .unwrap_or(f64::NAN),
                            bare.get("p99_ms")
                                .and_then(|v| v.as_f64())
                                .unwrap_or(f64::NAN),
                            bare.get("cpu_us_per_req")
                                .and_then(|v| v.as_f64())
                                .unwrap_or(f64::NAN),
                        );
                    }
                }
            }
            println!(
                "idle: {} keep-alive connections open after the run, server RSS {:.1} MB (target ≤ 60 MB: {})",
                b.idle_connections,
                b.idle_rss_mb,
                if b.idle_rss_mb <= 60.0 {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
        println!(
            "\nreq/s: expected answers completed in the interval ÷ its length (totp: until its prepared \
             challenges ran out). errors: unexpected status or I/O. cpu µs/req: the server process's \
             utime+stime over the interval ÷ answers. peak RSS: the server's VmHWM during the row. \
             stmts/req: pg_stat_statements calls of the server's role ÷ answers (BEGIN/COMMIT included); \
             '-' on SQLite, which has no statement counter."
        );
    }
}

//! Prometheus text exposition, kept small on purpose: a handful of labelled counters and
//! one latency histogram, with no registry crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::http::Method;
use tessera_app::AppError;
use tessera_app::liveness::CacheStats;
use tessera_app::outbox::ChannelCounts;
use tessera_app::ports::OutboxBacklog;

const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// (metric name, help) of every counter; rendered even before their first increment.
const COUNTERS: &[(&str, &str)] = &[
    ("tessera_logins_total", "Password logins by outcome."),
    (
        "tessera_refreshes_total",
        "Refresh-token presentations by outcome.",
    ),
    (
        "tessera_refresh_reuse_detected_total",
        "Rotated refresh tokens presented again (sessions revoked).",
    ),
    ("tessera_registrations_total", "Registrations by outcome."),
    ("tessera_mfa_total", "MFA code checks by step and outcome."),
    (
        "tessera_password_resets_total",
        "Password-reset requests and completions by step and outcome.",
    ),
    (
        "tessera_rate_limited_total",
        "Attempts refused unchecked because a budget was spent, by key kind.",
    ),
];

/// At most three labels per counter, all from closed sets (`&'static str`), held inline so
/// counting allocates nothing; unused slots are empty names.
const MAX_LABELS: usize = 3;
type Labels = [(&'static str, &'static str); MAX_LABELS];

/// The latency series: route template, then (method, status). Looked up by `&str`, so a
/// request allocates only the first time its route is seen.
type Latency = BTreeMap<Box<str>, BTreeMap<(&'static str, u16), Histogram>>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    latency: Mutex<Latency>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Metrics {
    /// Labels past the third are dropped (a programming error, caught in debug builds).
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &'static str)]) {
        debug_assert!(labels.len() <= MAX_LABELS, "{name}: too many labels");
        let mut key: Labels = [("", ""); MAX_LABELS];
        for (slot, label) in key.iter_mut().zip(labels) {
            *slot = *label;
        }
        *lock(&self.counters).entry((name, key)).or_default() += 1;
    }

    /// `route` must be a route template (or a fixed word), never a raw path.
    pub fn observe_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let mut map = lock(&self.latency);
        let per_route = match map.get_mut(route) {
            Some(per_route) => per_route,
            None => map.entry(route.into()).or_default(),
        };
        let h = per_route.entry((method_label(method), status)).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Counts a refresh by outcome, and a detected reuse on its own (operators alert on it).
    pub fn observe_refresh<T>(&self, result: &Result<T, AppError>) {
        self.inc("tessera_refreshes_total", &[("outcome", outcome(result))]);
        if matches!(result, Err(AppError::RefreshTokenReused)) {
            self.inc("tessera_refresh_reuse_detected_total", &[]);
        }
    }

    /// Counts a password login by outcome (and a refusal by its budget).
    pub fn observe_login<T>(&self, result: &Result<T, AppError>) {
        self.inc("tessera_logins_total", &[("outcome", outcome(result))]);
        self.count_rate_limited(result);
    }

    /// Counts a registration by outcome (the API's and the sign-up page's alike).
    pub fn observe_registration<T>(&self, result: &Result<T, AppError>) {
        self.inc(
            "tessera_registrations_total",
            &[("outcome", outcome(result))],
        );
    }

    /// Counts an MFA code check by step and outcome (and a refusal by its budget).
    pub fn observe_mfa<T>(&self, step: &'static str, result: &Result<T, AppError>) {
        self.inc(
            "tessera_mfa_total",
            &[("step", step), ("outcome", outcome(result))],
        );
        self.count_rate_limited(result);
    }

    /// Counts a password-reset request or completion by outcome (and a refusal by its
    /// budget).
    pub fn observe_password_reset<T>(&self, step: &'static str, result: &Result<T, AppError>) {
        self.inc(
            "tessera_password_resets_total",
            &[("step", step), ("outcome", outcome(result))],
        );
        self.count_rate_limited(result);
    }

    /// Every refused-unchecked attempt, by the kind of budget that was spent.
    pub fn count_rate_limited<T>(&self, result: &Result<T, AppError>) {
        if let Err(AppError::RateLimited { kind, .. }) = result {
            self.inc("tessera_rate_limited_total", &[("kind", kind)]);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = lock(&self.counters);
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), v) in counters.iter().filter(|((n, _), _)| n == name) {
                let labels: Vec<(&str, &str)> = labels
                    .iter()
                    .filter(|(k, _)| !k.is_empty())
                    .copied()
                    .collect();
                let _ = writeln!(out, "{n}{} {v}", fmt_labels(&labels, None));
            }
        }
        drop(counters);
        let name = "tessera_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP request latency.\n# TYPE {name} histogram"
        );
        let latency = lock(&self.latency);
        let mut series: Vec<(&str, &str, String, &Histogram)> = latency
            .iter()
            .flat_map(|(route, per)| {
                per.iter()
                    .map(move |((method, status), h)| (*method, &**route, status.to_string(), h))
            })
            .collect();
        series.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        for (method, route, status, h) in series {
            let labels = [("method", method), ("route", route), ("status", &*status)];
            for (i, bound) in BUCKETS.iter().enumerate() {
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    fmt_labels(&labels, Some(&le)),
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                fmt_labels(&labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(&labels, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", fmt_labels(&labels, None), h.count);
        }
        out
    }
}

/// The label a result is counted under in the metrics.
pub(crate) fn outcome<T>(result: &Result<T, AppError>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(AppError::InvalidField { .. } | AppError::UnsupportedProvider) => "invalid_request",
        Err(AppError::InvalidCredentials) => "invalid_credentials",
        Err(AppError::EmailTaken) => "email_taken",
        Err(AppError::InvalidRefreshToken) => "invalid_refresh_token",
        Err(AppError::RefreshTokenReused) => "reused",
        Err(AppError::SessionRevoked) => "session_revoked",
        Err(AppError::SessionExpired) => "session_expired",
        Err(AppError::RateLimited { .. }) => "rate_limited",
        Err(AppError::InvalidMfaCode) => "invalid_mfa_code",
        Err(AppError::InvalidMfaToken) => "invalid_mfa_token",
        Err(AppError::InvalidResetToken) => "invalid_reset_token",
        Err(_) => "error",
    }
}

/// The user-view cache's lines (`tessera_app::liveness`), beside the session cache's: how
/// `/v1/me`, `/v1/authorize` and the admin policy checks found the caller's roles and MFA
/// state.
pub fn render_user_view_cache(stats: &CacheStats) -> String {
    let name = "tessera_user_view_cache_total";
    let mut out = format!(
        "# HELP {name} User views (roles, MFA state) by how they were found: hit (cache), miss (read, then cached), bypass (read; cache off or not trusted).\n# TYPE {name} counter\n"
    );
    for (result, n) in [
        ("hit", stats.hits),
        ("miss", stats.misses),
        ("bypass", stats.bypasses),
    ] {
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {n}");
    }
    out
}

/// The outbox's lines: this node's deliveries and failures per channel (the names come
/// from the configuration, a closed set) and, when the store answered, the queue every
/// node shares.
pub fn render_outbox(
    channels: &[(&str, ChannelCounts)],
    backlog: Option<(OutboxBacklog, time::Duration)>,
) -> String {
    let mut out = String::new();
    type Read = fn(&ChannelCounts) -> u64;
    let per_channel: [(&str, &str, Read); 3] = [
        (
            "tessera_notifications_delivered_total",
            "Notifications a channel took, by channel (this node).",
            |c| c.delivered,
        ),
        (
            "tessera_notification_failures_total",
            "Delivery attempts that failed (retried or given up on), by channel (this node).",
            |c| c.failed,
        ),
        (
            "tessera_notifications_dead_total",
            "Notifications this node gave up on, by channel.",
            |c| c.dead,
        ),
    ];
    for (name, help, value) in per_channel {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (channel, counts) in channels {
            let labels = [("channel", *channel)];
            let _ = writeln!(out, "{name}{} {}", fmt_labels(&labels, None), value(counts));
        }
    }
    if let Some((backlog, age)) = backlog {
        let gauges = [
            (
                "tessera_outbox_pending",
                "Notifications waiting to be delivered (every node's).",
                backlog.pending.to_string(),
            ),
            (
                "tessera_outbox_dead",
                "Notifications given up on and kept for inspection (every node's).",
                backlog.dead.to_string(),
            ),
            (
                "tessera_outbox_oldest_age_seconds",
                "How long the oldest waiting notification has waited (0 when none).",
                age.whole_seconds().max(0).to_string(),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
    out
}

/// The `method` label: the methods of RFC 9110 and PATCH by name, anything else as
/// `other`, so a client cannot add series by inventing methods.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn fmt_labels(labels: &[(&str, &str)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_prometheus_text() {
        let m = Metrics::default();
        m.inc("tessera_logins_total", &[("outcome", "success")]);
        m.inc("tessera_logins_total", &[("outcome", "success")]);
        m.observe_request(&Method::POST, "/v1/auth/login", 200, 0.02);
        let text = m.render();
        assert!(
            text.contains("tessera_logins_total{outcome=\"success\"} 2"),
            "{text}"
        );
        assert!(text.contains("# TYPE tessera_refreshes_total counter"));
        assert!(text.contains(
            "tessera_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/auth/login\",status=\"200\",le=\"0.025\"} 1"
        ));
        assert!(text.contains(
            "tessera_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/auth/login\",status=\"200\",le=\"0.01\"} 0"
        ));
    }

    #[test]
    fn the_outbox_renders_per_channel_counters_and_the_shared_gauges() {
        let counts = ChannelCounts {
            delivered: 3,
            failed: 2,
            dead: 1,
        };
        let backlog = OutboxBacklog {
            pending: 4,
            dead: 1,
            oldest: None,
        };
        let text = render_outbox(
            &[("smtp", counts)],
            Some((backlog, time::Duration::seconds(42))),
        );
        for line in [
            "tessera_notifications_delivered_total{channel=\"smtp\"} 3",
            "tessera_notification_failures_total{channel=\"smtp\"} 2",
            "tessera_notifications_dead_total{channel=\"smtp\"} 1",
            "tessera_outbox_pending 4",
            "tessera_outbox_dead 1",
            "tessera_outbox_oldest_age_seconds 42",
            "# TYPE tessera_outbox_pending gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        // A store that did not answer leaves the gauges out rather than reporting zero.
        assert!(!render_outbox(&[], None).contains("tessera_outbox_pending"));
    }

    #[test]
    fn known_methods_keep_their_name_and_every_other_method_is_other() {
        for known in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let method = Method::from_bytes(known.as_bytes()).unwrap();
            assert_eq!(method_label(&method), known);
        }
        for invented in ["BOGUS1", "BOGUS2", "get", "PROPFIND", "X"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{invented}");
        }
    }

    #[test]
    fn invented_methods_share_one_latency_series() {
        let m = Metrics::default();
        for i in 0..50 {
            let method = Method::from_bytes(format!("BOGUS{i}").as_bytes()).unwrap();
            m.observe_request(&method, "unmatched", 404, 0.001);
        }
        let text = m.render();
        let counts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tessera_http_request_duration_seconds_count"))
            .collect();
        assert_eq!(
            counts,
            [
                "tessera_http_request_duration_seconds_count{method=\"other\",route=\"unmatched\",status=\"404\"} 50"
            ]
        );
    }
}

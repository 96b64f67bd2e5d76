//! Prometheus text exposition, kept small on purpose: a handful of labelled counters and
//! one latency histogram, with no registry crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::http::Method;

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

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    latency: Mutex<BTreeMap<Labels, Histogram>>,
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
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        let labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        *lock(&self.counters).entry((name, labels)).or_default() += 1;
    }

    /// `route` must be a route template (or a fixed word), never a raw path.
    pub fn observe_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let labels = vec![
            ("method", method_label(method).to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let mut map = lock(&self.latency);
        let h = map.entry(labels).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = lock(&self.counters);
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), v) in counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{n}{} {v}", fmt_labels(labels, None));
            }
        }
        drop(counters);
        let name = "tessera_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP request latency.\n# TYPE {name} histogram"
        );
        for (labels, h) in lock(&self.latency).iter() {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    fmt_labels(labels, Some(&le)),
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                fmt_labels(labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
        }
        out
    }
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

fn fmt_labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
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

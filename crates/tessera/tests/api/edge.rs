//! The HTTP edge bounds every client: slow heads, slow bodies, idle connections and too
//! many connections are cut off; invented methods add no metric series.
//!
//! Storage plays no part here, so these run on SQLite only. Timeouts are set short and the
//! assertions only say "closed before a generous bound", never how fast.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use tessera::edge::HttpLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::edge::{assert_serves_again, limits, read_until_closed};
use crate::helpers::{Backend, Options, TestApp};

async fn spawn(http: HttpLimits) -> Option<TestApp> {
    let options = Options {
        http: Some(http),
        ..Options::default()
    };
    TestApp::spawn_with(Backend::Sqlite, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_head_is_disconnected_after_the_header_timeout() {
    let Some(app) = spawn(limits(|l| l.header_timeout = Duration::from_secs(1))).await else {
        return;
    };
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(!sent.contains("200 OK"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_within_the_body_timeout_is_cut_off() {
    let Some(app) = spawn(limits(|l| l.body_timeout = Duration::from_secs(1))).await else {
        return;
    };
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"email\": ",
        )
        .await
        .unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(
        sent.is_empty(),
        "no answer is owed to a stalled body: {sent}"
    );
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout() {
    let Some(app) = spawn(limits(|l| l.keepalive_timeout = Duration::from_secs(1))).await else {
        return;
    };
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then nothing more is asked: the server hangs up by itself.
    let sent = read_until_closed(&mut stream).await;
    assert!(sent.starts_with("HTTP/1.1 200 OK"), "{sent}");
}

/// A connection the server has taken a slot for: it answered a request on it, and keeps it
/// open (keep-alive) until the client leaves.
async fn held_connection(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_while_it_is_full_and_are_served_once_it_frees() {
    let Some(app) = spawn(limits(|l| l.max_connections = 2)).await else {
        return;
    };
    let held = [held_connection(&app).await, held_connection(&app).await];

    // The probe sends nothing, so the refusal is the only thing it can read.
    let mut probe = TcpStream::connect(app.addr).await.unwrap();
    let refused = read_until_closed(&mut probe).await;
    assert!(
        refused.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{refused}"
    );
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(
        refused.contains(r#""code":"service_unavailable""#),
        "{refused}"
    );

    drop(held);
    assert_serves_again(&app).await;
}

/// The `method` labels of the latency histogram.
async fn method_labels(app: &TestApp) -> BTreeSet<String> {
    app.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("tessera_http_request_duration_seconds_count"))
        .filter_map(|l| l.split("method=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_add_no_metric_series() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let series_before = app.metrics().await.lines().count();
    for i in 1..=50 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let request = format!("BOGUS{i} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let sent = read_until_closed(&mut stream).await;
        assert!(sent.starts_with("HTTP/1.1 405"), "{sent}");
    }
    let text = app.metrics().await;
    assert!(!text.contains("BOGUS"), "{text}");
    let known: BTreeSet<String> = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let labels = method_labels(&app).await;
    assert!(labels.is_subset(&known), "{labels:?}");
    assert!(labels.contains("other"), "{labels:?}");
    // New since the first scrape: that scrape's own series and ONE series for the 50
    // invented methods (15 lines of histogram each), not 50.
    let series_after = text.lines().count();
    assert!(
        series_after <= series_before + 2 * 15,
        "{series_before} lines before, {series_after} after:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_of_hundreds_of_kilobytes_is_refused_and_the_server_stays_healthy() {
    let Some(app) = spawn(limits(|_| {})).await else {
        return;
    };
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    // About 200 KB: within hyper's default buffer, far past what a real head needs.
    for i in 0..1_700 {
        head.extend_from_slice(format!("X-Flood-{i}: {}\r\n", "a".repeat(100)).as_bytes());
    }
    // The server may stop reading (and close) before all of it is written.
    let _ = stream.write_all(&head).await;
    let sent = read_until_closed(&mut stream).await;
    assert!(!sent.contains("200 OK"), "{sent}");
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

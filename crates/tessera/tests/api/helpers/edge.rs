//! The HTTP edge's limits for a test server, and reading a raw connection to its end.

use std::time::Duration;

use reqwest::StatusCode;
use tessera::edge::HttpLimits;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::TestApp;

/// Far beyond every short timeout below, and below the defaults a broken setting would
/// fall back to (hyper's own 30 s header timeout, our 30 s request timeout).
pub const BOUND: Duration = Duration::from_secs(20);

pub fn limits(f: impl FnOnce(&mut HttpLimits)) -> HttpLimits {
    let long = Duration::from_secs(60);
    let mut l = HttpLimits {
        header_timeout: long,
        request_timeout: long,
        body_timeout: long,
        keepalive_timeout: long,
        max_connections: 64,
    };
    f(&mut l);
    l
}

/// Everything the server sends until it closes the connection; fails if it is still open
/// after `BOUND`. A reset counts as closed.
pub async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let outcome = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        outcome.is_ok(),
        "the server kept the connection open; it sent: {text:?}"
    );
    text
}

/// Once clients holding every slot have left, the server answers again. It notices the
/// departures on its own schedule: ask until it answers, within `BOUND`.
pub async fn assert_serves_again(app: &TestApp) {
    let answered = tokio::time::timeout(BOUND, async {
        loop {
            let fresh = reqwest::Client::new();
            if let Ok(res) = fresh.get(app.url("/healthz")).send().await
                && res.status() == StatusCode::OK
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "the server stayed full after its clients left"
    );
}

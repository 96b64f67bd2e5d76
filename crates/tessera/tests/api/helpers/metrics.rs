//! Reading the server's Prometheus text.

use std::time::{Duration, Instant};

/// A counter or gauge from Prometheus text, by its full name with labels.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// Polls `/metrics` at `base` until the node says its revocation subscription is up.
pub async fn until_subscribed(client: &reqwest::Client, metrics_url: &str) {
    let start = Instant::now();
    loop {
        let text = client
            .get(metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&text, "tessera_revocation_subscribed") == 1 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{metrics_url}: the revocation subscription did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

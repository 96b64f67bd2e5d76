//! The relay down for a while: events are recorded, the outbox grows where operators see
//! it, the node stays ready, and when the relay is back every message arrives, once.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use tessera_adapters::notify::testing::{SmtpSink, unused_port};

use crate::both_backends;
use crate::helpers::notify::{Channels, PATIENCE, drained, metric, spawn_notifying, until};
use crate::helpers::{Backend, PASSWORD};

const DEVICES: [&str; 3] = ["laptop", "phone", "tablet"];

async fn nothing_is_lost_while_the_relay_is_down(backend: Backend) {
    let port = unused_port();
    let channels = Channels {
        smtp: Some(format!("smtp://127.0.0.1:{port}")),
        webhook: None,
    };
    let Some(app) = spawn_notifying(backend, channels).await else {
        return;
    };
    assert_eq!(metric(&app, "tessera_outbox_pending").await, Some(0));
    let email = format!("olga-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    for device in DEVICES {
        assert_eq!(app.login(&email, PASSWORD, device).await.status(), 200);
    }

    // Recorded, queued, tried and failed; the node still serves and says what waits.
    assert_eq!(app.count_events("new_device").await, 3);
    let failures = "tessera_notification_failures_total{channel=\"smtp\"}";
    let tried = until(&app, |m| {
        m.lines().any(|l| {
            l.strip_prefix(failures)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n >= 1)
        })
    })
    .await;
    assert!(tried, "{}", app.metrics().await);
    assert_eq!(metric(&app, "tessera_outbox_pending").await, Some(3));
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["checks"]["database"], "ok", "{ready}");
    assert!(
        ["ok", "backlog"].contains(&ready["checks"]["outbox"].as_str().unwrap()),
        "{ready}"
    );
    assert_eq!(ready["outbox"]["pending"], 3, "{ready}");

    // The relay comes back on the same port; time moves past every backoff.
    let sink = SmtpSink::start_on(port).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while sink.mails().len() < 3 && tokio::time::Instant::now() < deadline {
        app.clock.advance(time::Duration::hours(1));
        sink.wait_for(3, Duration::from_millis(500)).await;
    }
    drained(&app).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 3, "{mails:?}");
    let ids: BTreeSet<String> = mails
        .iter()
        .map(|m| m.header("Tessera-Notification-Id").unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "each message once: {mails:?}");
    assert!(mails.iter().all(|m| m.rcpt_to == [email.as_str()]));
    let delivered = "tessera_notifications_delivered_total{channel=\"smtp\"}";
    assert_eq!(metric(&app, delivered).await, Some(3));
}

both_backends!(nothing_is_lost_while_the_relay_is_down, Backend => nothing_is_lost_while_the_relay_is_down);

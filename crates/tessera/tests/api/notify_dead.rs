//! Notices that can never be delivered are given up on, kept and counted, without holding
//! up the others.

use tessera_adapters::notify::testing::{REFUSED_PREFIX, SmtpSink, unused_port};

use crate::both_backends;
use crate::helpers::notify::{Channels, PATIENCE, metric, second_node, spawn_notifying, until};
use crate::helpers::{Backend, PASSWORD};

async fn a_refused_mailbox_ends_dead_and_the_rest_arrives(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = Channels {
        smtp: Some(sink.url()),
        webhook: None,
    };
    let Some(app) = spawn_notifying(backend, smtp).await else {
        return;
    };
    let bounced = format!(
        "{REFUSED_PREFIX}-{}@example.com",
        uuid::Uuid::new_v4().simple()
    );
    let fine = format!("fine-{}@example.com", uuid::Uuid::new_v4().simple());
    for email in [&bounced, &fine] {
        app.register(email, PASSWORD).await;
        assert_eq!(app.login(email, PASSWORD, "laptop").await.status(), 200);
    }
    let settled = until(&app, |m| {
        m.lines().any(|l| l == "tessera_outbox_pending 0")
            && m.lines().any(|l| l == "tessera_outbox_dead 1")
    })
    .await;
    assert!(settled, "{}", app.metrics().await);
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].rcpt_to, [fine.as_str()]);
    let dead = "tessera_notifications_dead_total{channel=\"smtp\"}";
    assert_eq!(metric(&app, dead).await, Some(1));
    // Given up on means given up on: moving time on sends nothing more.
    app.clock.advance(time::Duration::hours(2));
    assert_eq!(metric(&app, "tessera_outbox_dead").await, Some(1));
}

async fn a_row_for_a_channel_the_node_no_longer_has_ends_dead(backend: Backend) {
    // Queued for SMTP while the relay is down...
    let down = Channels {
        smtp: Some(format!("smtp://127.0.0.1:{}", unused_port())),
        webhook: None,
    };
    let Some(first) = spawn_notifying(backend, down).await else {
        return;
    };
    let email = format!("ivo-{}@example.com", uuid::Uuid::new_v4().simple());
    first.register(&email, PASSWORD).await;
    assert_eq!(first.login(&email, PASSWORD, "laptop").await.status(), 200);
    let failures = "tessera_notification_failures_total{channel=\"smtp\"} 1";
    assert!(until(&first, |m| m.lines().any(|l| l == failures)).await);
    // ...then the operator drops SMTP: the next node on the database only logs.
    let second = second_node(&first, Channels::default()).await;
    drop(first);
    second.clock.advance(time::Duration::hours(1));
    let dead = until(&second, |m| {
        m.lines().any(|l| l == "tessera_outbox_dead 1")
            && m.lines().any(|l| l == "tessera_outbox_pending 0")
    })
    .await;
    assert!(dead, "{}", second.metrics().await);
    let counted = "tessera_notifications_dead_total{channel=\"unconfigured\"}";
    assert_eq!(metric(&second, counted).await, Some(1));
}

both_backends!(a_row_for_a_channel_the_node_no_longer_has_ends_dead, Backend => a_row_for_a_channel_the_node_no_longer_has_ends_dead);

both_backends!(a_refused_mailbox_ends_dead_and_the_rest_arrives, Backend => a_refused_mailbox_ends_dead_and_the_rest_arrives);

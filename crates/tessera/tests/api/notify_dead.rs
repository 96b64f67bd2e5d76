//! Notices that can never be delivered are given up on, kept and counted, without holding
//! up the others; a notice for a channel this node lacks is not one of them.

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

/// A node claims only rows for its own channels: a notice queued for SMTP waits, neither
/// tried nor given up on, on a node that only logs, and the next node with SMTP sends it.
async fn a_row_for_a_channel_the_node_lacks_waits_for_a_node_that_has_it(backend: Backend) {
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
    // ...then a node that only logs takes over (the operator is moving channels).
    let second = second_node(&first, Channels::default()).await;
    drop(first);
    second.clock.advance(time::Duration::hours(1));
    // Its own notice, queued after the SMTP row came due again, is delivered: its worker
    // has passed over the older row by then (claims go oldest first).
    assert_eq!(second.login(&email, PASSWORD, "phone").await.status(), 200);
    // (The counter moves before the row is settled, so all three are waited for.)
    let logged = "tessera_notifications_delivered_total{channel=\"log\"} 1";
    let waiting = until(&second, |m| {
        m.lines().any(|l| l == logged)
            && m.lines().any(|l| l == "tessera_outbox_dead 0")
            && m.lines().any(|l| l == "tessera_outbox_pending 1")
    })
    .await;
    assert!(waiting, "{}", second.metrics().await);

    // A node with SMTP sends it.
    let sink = SmtpSink::start().await;
    let third = second_node(
        &second,
        Channels {
            smtp: Some(sink.url()),
            webhook: None,
        },
    )
    .await;
    third.clock.advance(time::Duration::hours(1));
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(mails.len(), 1, "the waiting notice arrived");
    assert_eq!(mails[0].rcpt_to, [email.as_str()]);
}

both_backends!(a_row_for_a_channel_the_node_lacks_waits_for_a_node_that_has_it, Backend => a_row_for_a_channel_the_node_lacks_waits_for_a_node_that_has_it);

both_backends!(a_refused_mailbox_ends_dead_and_the_rest_arrives, Backend => a_refused_mailbox_ends_dead_and_the_rest_arrives);

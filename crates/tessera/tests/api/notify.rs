//! Notifications end to end: the server's outbox worker delivering over a real SMTP
//! conversation (the in-process sink) and a signed webhook. Topics live in `notify_*`.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::notify::{metric, one_more, spawn_with_sink};
use crate::helpers::{Backend, PASSWORD};

const HOSTILE_UA: &str = "Evil <b>Browser</b> & \"co\"";

async fn signing_in_on_a_new_device_emails_the_user_once(backend: Backend) {
    let Some((app, sink)) = spawn_with_sink(backend).await else {
        return;
    };
    let email = format!("nina-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", HOSTILE_UA)
        .json(&json!({"email": email, "password": PASSWORD, "device_id": "laptop", "device_name": "Nina's Laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let mail = one_more(&app, &sink, &email, "New sign-in to your account", 0).await;
    assert_eq!(sink.mails().len(), 1, "one email in all");
    let text = mail.part("text/plain").unwrap();
    assert!(text.contains("Nina's Laptop"), "{text}");
    assert!(text.contains(HOSTILE_UA), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(
        text.contains("https://auth.test/account/security"),
        "{text}"
    );
    let html = mail.part("text/html").unwrap();
    assert!(html.contains("127.0.0.1"), "{html}");
    assert!(!html.contains("<b>Browser</b>"), "{html}");
    assert!(
        html.contains("Evil &#60;b&#62;Browser") || html.contains("Evil &lt;b&gt;Browser"),
        "{html}"
    );
    let delivered = "tessera_notifications_delivered_total{channel=\"smtp\"}";
    assert_eq!(metric(&app, delivered).await, Some(1));
}

both_backends!(signing_in_on_a_new_device_emails_the_user_once, Backend => signing_in_on_a_new_device_emails_the_user_once);

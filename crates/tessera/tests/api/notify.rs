//! Notifications over a real SMTP conversation: the server's channels, end to end.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tessera::config::Config;
use tessera_adapters::notify::ChannelSettings;
use tessera_adapters::notify::testing::SmtpSink;

use crate::helpers::{Backend, Options, PASSWORD, TestApp};

tokio::task_local! {
    /// `Options::configure` is a plain `fn`; the sink's URL reaches it through the task.
    static SINK_URL: String;
}

fn point_smtp_at_the_sink(config: &mut Config) {
    let url = SINK_URL.with(Clone::clone);
    config.notify = ChannelSettings::from_raw(
        Some(&url),
        Some("Tessera <security@auth.test>"),
        None,
        None,
        &config.issuer,
    )
    .unwrap();
}

/// A server whose email goes to a fresh in-process SMTP sink; None after a skip notice.
pub(crate) async fn spawn_with_sink(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start().await;
    let options = Options {
        configure: Some(point_smtp_at_the_sink),
        ..Options::default()
    };
    let app = SINK_URL
        .scope(sink.url(), TestApp::spawn_with(backend, options))
        .await?;
    Some((app, sink))
}

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
        .json(&json!({"email": email, "password": PASSWORD, "device_id": "laptop", "device_name": "Laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Delivery is in the background: wait (bounded) for it, then look at what came.
    let mails = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, [email.as_str()]);
    assert!(
        uuid::Uuid::parse_str(&mail.header("Tessera-Notification-Id").unwrap()).is_ok(),
        "{mail:?}"
    );
    let text = mail.part("text/plain").unwrap();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_on_a_new_device_emails_the_user_once_sqlite() {
    signing_in_on_a_new_device_emails_the_user_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_on_a_new_device_emails_the_user_once_postgres() {
    signing_in_on_a_new_device_emails_the_user_once(Backend::Postgres).await;
}

//! Servers whose notifications go to a test's own channels (the in-process SMTP sink, a
//! webhook receiver), and waiting on the outbox through `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use tessera::config::{Config, OutboxConfig};
use tessera_adapters::notify::ChannelSettings;
use tessera_adapters::notify::testing::{ReceivedMail, SmtpSink};
use tessera_adapters::testing::TestDatabase;

use super::{Backend, Options, TestApp};

/// A bound on waiting for the worker, never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);
pub const WEBHOOK_SECRET: &str = "webhook-secret-for-the-tests";

/// Where a test's server sends its notifications.
#[derive(Clone, Default)]
pub struct Channels {
    pub smtp: Option<String>,
    pub webhook: Option<String>,
}

tokio::task_local! {
    /// `Options::configure` is a plain `fn`; the channels reach it through the task.
    static CHANNELS: Channels;
}

pub fn configure(config: &mut Config) {
    CHANNELS.with(|c| {
        config.notify = ChannelSettings::from_raw(
            c.smtp.as_deref(),
            c.smtp.as_ref().map(|_| "Tessera <security@auth.test>"),
            c.webhook.as_deref(),
            c.webhook.as_ref().map(|_| WEBHOOK_SECRET),
            &config.issuer,
        )
        .unwrap();
    });
    // A quick poll keeps the tests short; retries come due only when a test moves the
    // server's clock, whatever the base.
    config.outbox = OutboxConfig {
        poll_ms: 20,
        retry_base_ms: 1_000,
    };
}

pub fn options(master_key: Option<String>) -> Options {
    Options {
        configure: Some(configure),
        master_key,
        ..Options::default()
    }
}

/// A server whose notifications go to `channels`; None when the backend is skipped.
pub async fn spawn_notifying(backend: Backend, channels: Channels) -> Option<TestApp> {
    CHANNELS
        .scope(channels, TestApp::spawn_with(backend, options(None)))
        .await
}

/// Another server on `first`'s database (same master key), notifying `channels`.
pub async fn second_node(first: &TestApp, channels: Channels) -> TestApp {
    let opts = options(Some(first.master_key.clone()));
    start_notifying_on(first.db.clone(), opts, channels).await
}

/// A server on `db` started with `options` (built on [`options`], so that the channels
/// apply), notifying `channels`.
pub async fn start_notifying_on(
    db: Arc<TestDatabase>,
    options: Options,
    channels: Channels,
) -> TestApp {
    CHANNELS
        .scope(channels, TestApp::start_on(db, None, options))
        .await
        .unwrap()
}

/// A value of `/metrics`, by its whole series name (`tessera_outbox_pending`).
pub async fn metric(app: &TestApp, series: &str) -> Option<u64> {
    let text = app.metrics().await;
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits (bounded) until `done` holds for the server's metrics; whether it did.
pub async fn until(app: &TestApp, done: impl Fn(&str) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if done(&app.metrics().await) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until nothing is pending in the outbox, and asserts nothing died: after this no
/// further message can come out of what was queued before.
pub async fn drained(app: &TestApp) {
    let empty = until(app, |m| m.lines().any(|l| l == "tessera_outbox_pending 0")).await;
    assert!(empty, "the outbox did not drain: {}", app.metrics().await);
    assert_eq!(metric(app, "tessera_outbox_dead").await, Some(0));
}

/// The mails to `to` whose subject is `subject`.
pub fn mails_of(sink: &SmtpSink, to: &str, subject: &str) -> Vec<ReceivedMail> {
    sink.mails()
        .into_iter()
        .filter(|m| m.rcpt_to == [to] && m.header("Subject").as_deref() == Some(subject))
        .collect()
}

/// After an action: exactly one more mail of `subject` to `to` than `before`, once the
/// outbox is empty; it carries a notification id. Returns it.
pub async fn one_more(
    app: &TestApp,
    sink: &SmtpSink,
    to: &str,
    subject: &str,
    before: usize,
) -> ReceivedMail {
    drained(app).await;
    let mails = mails_of(sink, to, subject);
    assert_eq!(mails.len(), before + 1, "{subject}: {mails:?}");
    let mail = mails.last().unwrap().clone();
    let id = mail.header("Tessera-Notification-Id").unwrap();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    mail
}

/// A server whose email goes to a fresh in-process SMTP sink; None after a skip notice.
pub async fn spawn_with_sink(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    spawn_with_sink_configured(backend, configure).await
}

/// As `spawn_with_sink`, configured by `configure_with`, which calls [`configure`] first.
pub async fn spawn_with_sink_configured(
    backend: Backend,
    configure_with: fn(&mut Config),
) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start().await;
    let channels = Channels {
        smtp: Some(sink.url()),
        webhook: None,
    };
    let options = Options {
        configure: Some(configure_with),
        ..options(None)
    };
    let app = CHANNELS
        .scope(channels, TestApp::spawn_with(backend, options))
        .await?;
    Some((app, sink))
}

/// The token of the reset link in the first mail to `to` that carries one, and that
/// mail's text. Delivery is in the background: waits for it, bounded.
pub async fn reset_link(sink: &SmtpSink, to: &str) -> (String, String) {
    const LINK: &str = "/reset-password?token=";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = sink.mails().into_iter().find_map(|mail| {
            let text = mail.part("text/plain")?;
            let start = text.find(LINK)? + LINK.len();
            let token: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "_-".contains(*c))
                .collect();
            (mail.rcpt_to == [to]).then_some((token, text))
        });
        if let Some(found) = found {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reset link reached {to}: {:?}",
            sink.mails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

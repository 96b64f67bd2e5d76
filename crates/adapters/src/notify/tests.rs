use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{NotificationId, SessionId, UserId};
use tokio::net::TcpListener;

use super::testing::SmtpSink;
use super::*;

const PATIENCE: Duration = Duration::from_secs(20);
pub(super) const LINK: &str = "https://id.example.com/reset-password?token=tok-SECRET-123";

pub(super) fn message(user_agent: &str) -> OutgoingMessage {
    OutgoingMessage {
        id: NotificationId::from_random([1; 16]),
        kind: EventKind::NewDevice,
        at: time::macros::datetime!(2026-12-06 07:08:09 UTC),
        user_id: UserId::from_random([7; 16]),
        email: Email::parse("Alice@Example.com").unwrap(),
        session_id: Some(SessionId::from_random([9; 16])),
        ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        user_agent: Some(user_agent.to_owned()),
        detail: serde_json::json!({"device_name": "Work laptop"}),
        reset_link: None,
    }
}

pub(super) fn reset_message() -> OutgoingMessage {
    OutgoingMessage {
        kind: EventKind::PasswordResetRequested,
        session_id: None,
        detail: serde_json::json!({}),
        reset_link: Some(LINK.to_owned()),
        ..message("Firefox")
    }
}

pub(super) fn clock() -> std::sync::Arc<dyn tessera_app::ports::Clock> {
    std::sync::Arc::new(crate::SystemClock)
}

fn smtp_channel(sink: &SmtpSink) -> SmtpChannel {
    let settings = SmtpSettings::parse(&sink.url(), "Tessera <security@example.com>").unwrap();
    SmtpChannel::new(&settings, "https://id.example.com/").unwrap()
}

#[tokio::test]
async fn a_new_device_message_over_smtp_is_one_email_to_the_user_with_its_id_and_both_bodies() {
    let sink = SmtpSink::start().await;
    let msg = message("Firefox 140 on Linux");
    smtp_channel(&sink).deliver(&msg).await.unwrap();

    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["Alice@Example.com"]);
    assert_eq!(mail.mail_from, "security@example.com");
    assert_eq!(
        mail.header("Tessera-Notification-Id"),
        Some(msg.id.to_string())
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{mail:?}"
    );
    let text = mail.part("text/plain").expect("a text part");
    let html = mail.part("text/html").expect("an HTML part");
    for body in [&text, &html] {
        assert!(
            body.contains("Work laptop (Firefox 140 on Linux)"),
            "{body}"
        );
        assert!(body.contains("203.0.113.7"), "{body}");
        assert!(body.contains("2026-12-06T07:08:09Z"), "{body}");
        assert!(
            body.contains("https://id.example.com/account/security"),
            "{body}"
        );
        assert!(body.contains("not seen before"), "{body}");
    }
}

#[tokio::test]
async fn a_hostile_device_name_comes_out_escaped_in_the_html_email() {
    let sink = SmtpSink::start().await;
    let hostile = r#"<script>alert("x")</script><img src=x onerror=y>"#;
    smtp_channel(&sink)
        .deliver(&message(hostile))
        .await
        .unwrap();

    let mails = sink.wait_for(1, PATIENCE).await;
    let html = mails[0].part("text/html").expect("an HTML part");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    // The plain text shows it as it was: text is never interpreted.
    let text = mails[0].part("text/plain").unwrap();
    assert!(text.contains(hostile), "{text}");
}

#[tokio::test]
async fn an_unreachable_smtp_relay_is_a_delivery_error() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings =
        SmtpSettings::parse(&format!("smtp://127.0.0.1:{port}"), "a@example.com").unwrap();
    let channel = SmtpChannel::new(&settings, "http://x").unwrap();
    let err = channel.deliver(&message("d")).await.unwrap_err();
    assert!(matches!(err, ChannelError::Retry(_)), "{err:?}");
}

#[tokio::test]
async fn the_reset_email_carries_the_link_says_it_expires_and_that_it_can_be_ignored() {
    let sink = SmtpSink::start().await;
    smtp_channel(&sink).deliver(&reset_message()).await.unwrap();
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Reset your password")
    );
    let text = mails[0].part("text/plain").unwrap();
    let html = mails[0].part("text/html").unwrap();
    for body in [&text, &html] {
        assert!(body.contains(LINK), "{body}");
        assert!(body.contains("30 minutes"), "{body}");
        assert!(
            body.contains("did not ask for this, ignore this email"),
            "{body}"
        );
    }
    assert!(html.contains(&format!("href=\"{LINK}\"")), "{html}");
}

#[tokio::test]
async fn each_kind_says_what_happened_in_its_own_words() {
    let sink = SmtpSink::start().await;
    let channel = smtp_channel(&sink);
    let cases = [
        (
            EventKind::PasswordReset,
            serde_json::json!({}),
            "every device signed in to it was signed out",
        ),
        (
            EventKind::RecoveryCodeUsed,
            serde_json::json!({"remaining": 7}),
            "7 unused codes remain",
        ),
        (
            EventKind::PasswordChanged,
            serde_json::json!({}),
            "password of your account was changed",
        ),
        (EventKind::MfaEnabled, serde_json::json!({}), "turned on"),
    ];
    for (kind, detail, _) in &cases {
        let m = OutgoingMessage {
            kind: *kind,
            detail: detail.clone(),
            ..message("d")
        };
        channel.deliver(&m).await.unwrap();
    }
    let mails = sink.wait_for(cases.len(), PATIENCE).await;
    for (mail, (kind, _, words)) in mails.iter().zip(&cases) {
        let text = mail.part("text/plain").unwrap();
        assert!(text.contains(words), "{kind:?}: {text}");
        assert!(
            !text.contains("reset-password"),
            "{kind:?} carries no link: {text}"
        );
    }
}

/// A subscriber that keeps every formatted log line, for asserting what is NOT logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_channel_names_the_notice_but_never_the_link_the_address_or_the_device() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut m = reset_message();
    m.user_agent = Some("Secret Browser 9".into());
    LogChannel.deliver(&m).await.unwrap();
    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("user notified"), "{logged}");
    assert!(logged.contains(&m.id.to_string()), "{logged}");
    for secret in [
        "tok-SECRET-123",
        "reset-password",
        "Alice@Example.com",
        "alice@example.com",
        "Secret Browser",
        "203.0.113.7",
    ] {
        assert!(!logged.contains(secret), "{secret} leaked: {logged}");
    }
}

#[tokio::test]
async fn with_neither_channel_configured_notifications_go_to_the_log_and_with_both_to_both() {
    let none = ChannelSettings::from_raw(None, None, None, None, "http://x").unwrap();
    let names: Vec<_> = channels(&none, clock())
        .unwrap()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(names, ["log"]);
    assert_eq!(none.names(), names);
    let both = ChannelSettings::from_raw(
        Some("smtp://127.0.0.1:2525"),
        Some("a@example.com"),
        Some("https://127.0.0.1:9/hook"),
        Some("a-test-secret-of-some-length"),
        "http://x",
    )
    .unwrap();
    let names: Vec<_> = channels(&both, clock())
        .unwrap()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(names, ["smtp", "webhook"]);
    assert_eq!(
        both.names(),
        names,
        "rows are queued under the names the worker holds"
    );
}

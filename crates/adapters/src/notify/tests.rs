use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tessera_core::Email;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::testing::SmtpSink;
use super::*;

const PATIENCE: Duration = Duration::from_secs(20);
const SECRET: &str = "a-test-secret-of-some-length";

fn message(user_agent: &str) -> Message {
    Message {
        id: Uuid::now_v7(),
        kind: EventKind::NewDevice,
        at: time::macros::datetime!(2026-12-06 07:08:09 UTC),
        user_id: UserId::from_random([7; 16]),
        email: Email::parse("Alice@Example.com").unwrap(),
        session_id: Some(SessionId::from_random([9; 16])),
        ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        user_agent: Some(user_agent.to_owned()),
        detail: serde_json::json!({}),
    }
}

fn clock() -> std::sync::Arc<dyn tessera_app::ports::Clock> {
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
        assert!(body.contains("Firefox 140 on Linux"), "{body}");
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
    assert!(channel.deliver(&message("d")).await.is_err());
}

/// One request as a tiny HTTP receiver saw it.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Answers one POST with `status`, and hands back what it received.
async fn receiver(status: &'static str) -> (String, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/tessera", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the head ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        Seen {
            head,
            body: buf[head_end..head_end + length].to_vec(),
        }
    });
    (url, task)
}

fn webhook(url: &str) -> WebhookChannel {
    WebhookChannel::new(&WebhookSettings::parse(url, SECRET).unwrap(), clock())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The receiver's side of the contract, computed here independently of the channel.
fn verify(signature: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fresh = t
        .parse::<i64>()
        .is_ok_and(|t| (clock().now().unix_timestamp() - t).abs() <= 300);
    fresh && expected == v1
}

#[tokio::test]
async fn the_webhook_posts_the_message_as_json_signed_over_timestamp_and_body() {
    let (url, seen) = receiver("204 No Content").await;
    let msg = message("Firefox 140 on Linux");
    webhook(&url).deliver(&msg).await.unwrap();
    let seen = seen.await.unwrap();

    assert!(
        seen.head.starts_with("POST /hooks/tessera HTTP/1.1"),
        "{}",
        seen.head
    );
    let signature = header(&seen.head, "Tessera-Signature").expect("a signature");
    assert!(verify(signature, &seen.body), "{signature}");
    let mut tampered = seen.body.clone();
    tampered[1] ^= 1;
    assert!(!verify(signature, &tampered), "a tampered body must fail");

    let json: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(json["id"], msg.id.to_string());
    assert_eq!(json["type"], "new_device");
    assert_eq!(json["at"], "2026-12-06T07:08:09Z");
    assert_eq!(json["user_id"], msg.user_id.to_string());
    assert_eq!(json["email"], "Alice@Example.com");
    assert_eq!(json["session_id"], msg.session_id.unwrap().to_string());
    assert_eq!(json["ip"], "203.0.113.7");
    assert_eq!(json["user_agent"], "Firefox 140 on Linux");
    assert_eq!(json["detail"], serde_json::json!({}));
}

#[tokio::test]
async fn a_webhook_answer_outside_2xx_is_a_delivery_error() {
    let (url, seen) = receiver("500 Internal Server Error").await;
    let err = webhook(&url).deliver(&message("d")).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Refused { .. }), "{err:?}");
    seen.await.unwrap();
}

// The pooled SMTP transport lives on a Tokio runtime, as it does in `serve`.
#[tokio::test]
async fn with_neither_channel_configured_notifications_go_to_the_log_and_with_both_to_both() {
    let none = ChannelSettings::from_raw(None, None, None, None, "http://x").unwrap();
    let names: Vec<_> = channels(&none, clock())
        .unwrap()
        .iter()
        .map(Channel::name)
        .collect();
    assert_eq!(names, ["log"]);
    let both = ChannelSettings::from_raw(
        Some("smtp://127.0.0.1:2525"),
        Some("a@example.com"),
        Some("http://127.0.0.1:9/hook"),
        Some(SECRET),
        "http://x",
    )
    .unwrap();
    let names: Vec<_> = channels(&both, clock())
        .unwrap()
        .iter()
        .map(Channel::name)
        .collect();
    assert_eq!(names, ["smtp", "webhook"]);
}

#[tokio::test]
async fn the_notifier_port_delivers_a_notification_through_the_channels_in_the_background() {
    let sink = SmtpSink::start().await;
    let settings = ChannelSettings::from_raw(
        Some(&sink.url()),
        Some("security@example.com"),
        None,
        None,
        "http://id.example.com",
    )
    .unwrap();
    let notifier = ChannelNotifier::new(channels(&settings, clock()).unwrap());
    let m = message("Safari on iPhone");
    notifier.notify(&Notification {
        user_id: m.user_id,
        email: m.email.clone(),
        kind: EventKind::PasswordChanged,
        at: m.at,
        session_id: None,
        device_id: None,
        ip: m.ip,
        user_agent: m.user_agent.clone(),
    });
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .part("text/plain")
            .unwrap()
            .contains("password of your account was changed")
    );
    assert!(mails[0].header("Tessera-Notification-Id").is_some());
}

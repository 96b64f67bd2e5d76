//! The webhook as a receiver sees it: signed, verifiable, the same id as the email, and
//! a body changed on the way fails verification. Also: two nodes, one message each.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tessera_adapters::notify::testing::SmtpSink;
use tessera_app::ports::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::both_backends;
use crate::helpers::notify::{
    Channels, WEBHOOK_SECRET, drained, one_more, second_node, spawn_notifying,
};
use crate::helpers::{Backend, PASSWORD};

/// One POST as the receiver got it.
#[derive(Debug, Clone)]
struct Posted {
    signature: String,
    notification_id: String,
    body: Vec<u8>,
}

/// A receiver on 127.0.0.1 that answers 204 to every POST and keeps what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Posted>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/tessera", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let keep = Arc::clone(&keep);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "closed mid-request");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let length: usize =
                            header(&head, "content-length").unwrap().parse().unwrap();
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0);
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                keep.lock().unwrap().push(Posted {
                    signature: header(&head, "tessera-signature").unwrap(),
                    notification_id: header(&head, "tessera-notification-id").unwrap(),
                    body: buf[head_end..head_end + length].to_vec(),
                });
                let answer = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
                let _ = stream.write_all(answer).await;
            });
        }
    });
    (url, seen)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// What a receiver must check: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
/// with `t` within 300 s of `now`. Written from the contract, not from the server's code.
fn verify(signature: &str, body: &[u8], now: i64) -> bool {
    let Some((t, v1)) = signature
        .strip_prefix("t=")
        .and_then(|r| r.split_once(",v1="))
    else {
        return false;
    };
    let Ok(t_secs) = t.parse::<i64>() else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (now - t_secs).abs() <= 300 && expected == v1
}

async fn a_webhook_receiver_verifies_each_notice_and_a_tampered_one_fails(backend: Backend) {
    let sink = SmtpSink::start().await;
    let (url, posted) = receiver().await;
    let channels = Channels {
        smtp: Some(sink.url()),
        webhook: Some(url),
    };
    let Some(app) = spawn_notifying(backend, channels).await else {
        return;
    };
    let (email, _) = app.signed_in_user("laptop").await;
    let mail = one_more(&app, &sink, &email, "New sign-in to your account", 0).await;

    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let post = &posted[0];
    let now = app.clock.now().unix_timestamp();
    assert!(verify(&post.signature, &post.body, now), "{post:?}");
    let json: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(json["type"], "new_device");
    assert_eq!(json["email"], email);
    assert_eq!(json["ip"], "127.0.0.1");
    assert_eq!(json["detail"]["device_name"], "Test device");
    // One notification, one id, whichever channel carried it.
    assert_eq!(json["id"], post.notification_id);
    assert_eq!(
        Some(post.notification_id.clone()),
        mail.header("Tessera-Notification-Id")
    );

    // Changed on the way (the address swapped), or replayed much later: refused.
    let tampered = String::from_utf8(post.body.clone())
        .unwrap()
        .replace(&email, "mallory@example.com");
    assert_ne!(tampered.as_bytes(), post.body.as_slice());
    assert!(!verify(&post.signature, tampered.as_bytes(), now));
    assert!(!verify(&post.signature, &post.body, now + 301));
}

both_backends!(a_webhook_receiver_verifies_each_notice_and_a_tampered_one_fails, Backend => a_webhook_receiver_verifies_each_notice_and_a_tampered_one_fails);

/// Two nodes on one PostgreSQL database, both workers running: each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_send_each_message_once() {
    let sink = SmtpSink::start().await;
    let channels = Channels {
        smtp: Some(sink.url()),
        webhook: None,
    };
    let Some(a) = spawn_notifying(Backend::Postgres, channels.clone()).await else {
        return;
    };
    let b = second_node(&a, channels).await;
    let mut emails = Vec::new();
    for i in 0..6 {
        // Alternate nodes, so rows are written next to either worker.
        let node = if i % 2 == 0 { &a } else { &b };
        let email = format!("dora-{i}-{}@example.com", uuid::Uuid::new_v4().simple());
        node.register(&email, PASSWORD).await;
        for device in ["laptop", "phone"] {
            assert_eq!(node.login(&email, PASSWORD, device).await.status(), 200);
        }
        emails.push(email);
    }
    drained(&a).await;
    drained(&b).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 12, "{mails:?}");
    let ids: BTreeSet<String> = mails
        .iter()
        .map(|m| m.header("Tessera-Notification-Id").unwrap())
        .collect();
    assert_eq!(ids.len(), 12, "no message twice");
    for email in &emails {
        assert_eq!(
            mails
                .iter()
                .filter(|m| m.rcpt_to == [email.as_str()])
                .count(),
            2
        );
    }
}

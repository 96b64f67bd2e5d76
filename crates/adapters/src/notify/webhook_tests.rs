//! The webhook channel against tiny receivers written here (plain HTTP and TLS).

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::tests::{LINK, clock, message, reset_message};
use super::*;

const SECRET: &str = "a-test-secret-of-some-length";

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
        let (stream, _) = listener.accept().await.unwrap();
        exchange(stream, status).await
    });
    (url, task)
}

/// Reads one request from `stream` and answers it with `status`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, status: &str) -> Seen {
    {
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
        let _ = stream.shutdown().await;
        Seen {
            head,
            body: buf[head_end..head_end + length].to_vec(),
        }
    }
}

fn webhook(url: &str) -> WebhookChannel {
    WebhookChannel::new(&WebhookSettings::parse(url, SECRET).unwrap(), clock()).unwrap()
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
    assert_eq!(
        json["detail"],
        serde_json::json!({"device_name": "Work laptop"})
    );
    let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "at",
            "detail",
            "email",
            "id",
            "ip",
            "session_id",
            "type",
            "user_agent",
            "user_id"
        ],
        "exactly the fields of the contract"
    );
}

#[tokio::test]
async fn a_webhook_answer_outside_2xx_is_a_delivery_error() {
    let (url, seen) = receiver("500 Internal Server Error").await;
    let err = webhook(&url).deliver(&message("d")).await.unwrap_err();
    assert!(matches!(err, ChannelError::Retry(_)), "{err:?}");
    seen.await.unwrap();
}

#[tokio::test]
async fn the_reset_link_reaches_a_webhook_receiver_inside_detail() {
    let (url, seen) = receiver("200 OK").await;
    webhook(&url).deliver(&reset_message()).await.unwrap();
    let seen = seen.await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(json["type"], "password_reset_requested");
    assert_eq!(json["detail"]["reset_link"], LINK);
    assert!(verify(
        header(&seen.head, "Tessera-Signature").unwrap(),
        &seen.body
    ));
}

/// A self-signed certificate for 127.0.0.1 made by `openssl`: (certificate, key), DER.
fn self_signed() -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = std::env::temp_dir().join(format!("tessera-webhook-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let made = run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
    ]) && run(&[
        "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
    ]) && run(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der",
    ]);
    let out = made.then(|| {
        (
            std::fs::read(dir.join("cert.der")).unwrap(),
            std::fs::read(dir.join("key.der")).unwrap(),
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    if out.is_none() {
        crate::testing::skip_or_fail(
            "openssl (to make a test certificate)",
            "apt-get install openssl",
        );
    }
    out
}

#[tokio::test]
async fn an_https_webhook_is_posted_over_tls_to_a_receiver_the_roots_trust_and_refused_otherwise() {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let Some((cert, key)) = self_signed() else {
        return;
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hooks/tessera", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        // The first connection (from a channel that does not trust the certificate) fails
        // its handshake; the second is served.
        while seen.is_empty() {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(tls) = acceptor.accept(tcp).await {
                seen.push(exchange(tls, "204 No Content").await);
            }
        }
        seen.remove(0)
    });
    let settings = WebhookSettings::parse(&url, SECRET).unwrap();

    let untrusted = WebhookChannel::new(&settings, clock()).unwrap();
    let err = untrusted.deliver(&message("d")).await.unwrap_err();
    assert!(matches!(err, ChannelError::Retry(_)), "{err:?}");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert)).unwrap();
    let trusted = WebhookChannel::with_roots(&settings, roots, clock()).unwrap();
    let msg = message("Firefox");
    trusted.deliver(&msg).await.unwrap();
    let seen = task.await.unwrap();
    assert!(verify(
        header(&seen.head, "Tessera-Signature").unwrap(),
        &seen.body
    ));
    let json: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(json["id"], msg.id.to_string());
}

//! SIGTERM to a real `tessera serve` while a request is in flight and the outbox worker
//! is in the middle of a delivery: the node stops accepting at once, answers the request,
//! lets the worker finish its batch, and exits 0.

use serde_json::json;
use tessera_adapters::notify::testing::SmtpSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::PASSWORD;
use crate::node::{Node, PATIENCE, email, master_key, temp_dir};

/// Reads from `conn` until `needle` has arrived; everything read.
async fn read_until(conn: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?}: {}", String::from_utf8_lossy(&seen)));
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_the_outbox_batch_then_exits_0() {
    let smtp = SmtpSink::start_holding().await;
    let dir = temp_dir("sigterm");
    let key = master_key();
    let smtp_url = smtp.url();
    let mut node = Node::start(
        &dir,
        &[
            ("TESSERA_DATABASE_URL", "sqlite://tessera.db"),
            ("TESSERA_MASTER_KEY", key.as_str()),
            ("TESSERA_SMTP_URL", smtp_url.as_str()),
            ("TESSERA_SMTP_FROM", "security@example.com"),
        ],
    )
    .await;
    let who = email("sigterm");
    node.register(&who).await;
    // A first sign-in on a device mails its owner: the worker's delivery is now held
    // by the relay, mid-batch.
    node.login_ok(&who, "laptop").await;
    let held = smtp.wait_for(1, PATIENCE).await;
    assert_eq!(held.len(), 1, "the notice reached the relay");

    // A request in flight: its head is in and the handler is reading the body (the
    // server asked for it with 100 Continue), the body not sent yet.
    let newcomer = email("in-flight");
    let body = json!({"email": newcomer, "password": PASSWORD}).to_string();
    let mut conn = TcpStream::connect(node.addr()).await.unwrap();
    let head = format!(
        "POST /v1/users HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        node.addr(),
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    read_until(&mut conn, "100 Continue").await;

    node.terminate();

    // No longer accepting: new connections are refused while the request is still open.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while TcpStream::connect(node.addr()).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        node.try_exit_status().is_none(),
        "exited with a request and a delivery in flight"
    );

    conn.write_all(body.as_bytes()).await.unwrap();
    let answer = read_until(&mut conn, "\r\n\r\n").await;
    assert!(answer.contains("HTTP/1.1 201"), "{answer}");

    smtp.release();
    let status = node.exited().await;
    let log = node.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("outbox worker stopped"), "{log}");

    // The delivery in flight was finished and recorded: nothing is left leased.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("tessera.db").display()))
        .await
        .unwrap();
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notification_outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(waiting, 0, "a notification was left in the outbox");
    let registered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email_normalized = ?1")
            .bind(&newcomer)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(registered, 1, "the request in flight was carried out");
    std::fs::remove_dir_all(&dir).ok();
}

/// A reset request answers 202 before its link is stored and queued. SIGTERM right after
/// must not drop that half: the node waits for it (here held up by another process's
/// write lock on the SQLite file) and exits 0 with the link stored and its email queued
/// or sent; the next node to run mails it if this one did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_reset_link_still_being_stored_and_it_is_mailed() {
    let smtp = SmtpSink::start().await;
    let dir = temp_dir("sigterm-reset");
    let key = master_key();
    let smtp_url = smtp.url();
    let settings = [
        ("TESSERA_DATABASE_URL", "sqlite://tessera.db"),
        ("TESSERA_MASTER_KEY", key.as_str()),
        ("TESSERA_SMTP_URL", smtp_url.as_str()),
        ("TESSERA_SMTP_FROM", "security@example.com"),
    ];
    let mut node = Node::start(&dir, &settings).await;
    let who = email("reset-at-stop");
    node.register(&who).await;

    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("tessera.db").display()))
        .await
        .unwrap();
    let mut lock = db.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let asked = node
        .post("/v1/password-reset", serde_json::json!({ "email": who }))
        .await;
    assert_eq!(asked.status(), 202);

    node.terminate();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while TcpStream::connect(node.addr()).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sqlx::query("COMMIT").execute(&mut *lock).await.unwrap();
    drop(lock);

    let status = node.exited().await;
    let log = node.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("did not finish in time"), "{log}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM password_resets")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the link was stored before the node exited");
    db.close().await;

    // Whether the stopping node's worker got to it or not, the email is not lost.
    let mut next = Node::start(&dir, &settings).await;
    let (token, _) = crate::helpers::notify::reset_link(&smtp, &who).await;
    assert!(!token.is_empty(), "the mail carries the link's token");
    next.terminate();
    assert_eq!(next.exited().await.code(), Some(0), "{}", next.log());
    std::fs::remove_dir_all(&dir).ok();
}

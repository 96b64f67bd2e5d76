//! Hostile input over HTTP: unicode and invisible characters in addresses, NUL bytes in
//! every string field, oversized and deeply nested bodies, duplicate keys, huge passwords,
//! header floods and thousands of idle connections. Each is answered with the right
//! problem (or a closed connection), changes nothing, and leaves the server healthy.
//!
//! Where storage keeps what was sent the case runs on both backends; the edge cases run on
//! SQLite only (storage plays no part). edge.rs holds the slow-client and 200 KB head
//! cases this extends.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::helpers::edge::{BOUND, assert_serves_again, limits, read_until_closed};
use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, client_from, s};

/// `/healthz` answers 200 and a brand-new user can register and sign in (from an address
/// of its own, so no earlier budget of the test is spent).
async fn assert_healthy(app: &TestApp) {
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let client = client_from("127.0.9.1");
    let email = format!("healthy-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": PASSWORD});
    let res = client
        .post(app.url("/v1/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let login = json!({"email": email, "password": PASSWORD, "device_id": "after"});
    let res = client
        .post(app.url("/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn post_raw(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A body over the limit: refused on its declared length with a 413, or, when the server
/// has answered and closed while the body was still being written, a closed connection.
async fn assert_too_large(app: &TestApp, path: &str, body: String) {
    let sent = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) => {
            // Without it a pooled client sends its next request down the closing socket.
            assert_eq!(res.headers()["connection"], "close");
            assert_problem(res, 413, "payload_too_large").await;
        }
        Err(e) => assert!(e.is_request(), "{e}"),
    }
}

async fn me_email(app: &TestApp, login: &Value) -> String {
    let me: Value = app.me(&s(login, "access_token")).await;
    s(&me, "email")
}

both_backends!(
    unicode_addresses_are_one_account_per_lower_cased_spelling_and_invisible_ones_are_refused,
    |app: TestApp| async move {
        let created = app.register("Zoë.Ünal@Bücher.example", PASSWORD).await;
        assert_eq!(created["email"], "Zoë.Ünal@Bücher.example");
        // Any case of the same letters is the same account, shown as registered.
        let lower = app
            .login_ok("zoë.ünal@bücher.example", PASSWORD, "d1")
            .await;
        assert_eq!(me_email(&app, &lower).await, "Zoë.Ünal@Bücher.example");
        app.login_ok("ZOË.ÜNAL@BÜCHER.EXAMPLE", PASSWORD, "d2")
            .await;
        let again = json!({"email": "ZOË.ünal@bücher.EXAMPLE", "password": PASSWORD});
        assert_problem(app.post("/v1/users", again).await, 409, "email_taken").await;

        // The Kelvin sign lower-cases to a plain k: the same account, never a second one.
        app.register("kate@example.com", PASSWORD).await;
        let kelvin = "\u{212A}ate@example.com";
        let twin = json!({"email": kelvin, "password": PASSWORD});
        assert_problem(app.post("/v1/users", twin).await, 409, "email_taken").await;
        let via_kelvin = app.login_ok(kelvin, PASSWORD, "d3").await;
        assert_eq!(me_email(&app, &via_kelvin).await, "kate@example.com");

        // Invisible, bidi and control characters would make look-alike accounts: refused
        // at registration and at login alike, and nothing is created.
        let stranger = client_from("127.0.8.1");
        for bad in [
            "zoë.ünal\u{200B}@bücher.example",
            "\u{202E}kate@example.com",
            "kate\u{2066}@example.com",
            "kate@exa\u{0000}mple.com",
            "kate@bücher",
        ] {
            let res = stranger
                .post(app.url("/v1/users"))
                .json(&json!({"email": bad, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            let body = assert_problem(res, 400, "invalid_request").await;
            assert!(s(&body, "detail").contains("email"), "{body}");
            let res = stranger
                .post(app.url("/v1/auth/login"))
                .json(&json!({"email": bad, "password": PASSWORD, "device_id": "d9"}))
                .send()
                .await
                .unwrap();
            assert_problem(res, 400, "invalid_request").await;
        }
        assert_eq!(app.count_events("user_registered").await, 2);
        assert_healthy(&app).await;
    }
);

/// `(path, body, bearer?)`: every string field of the API, one at a time carrying a NUL.
fn nul_cases(login: &Value) -> Vec<(&'static str, Value, bool)> {
    let n = "a\u{0000}b";
    let rt = s(login, "refresh_token");
    vec![
        (
            "/v1/users",
            json!({"email": format!("x{n}@example.com"), "password": PASSWORD}),
            false,
        ),
        (
            "/v1/auth/login",
            json!({"email": format!("x{n}@example.com"), "password": PASSWORD, "device_id": "d"}),
            false,
        ),
        (
            "/v1/auth/login",
            json!({"email": "nul@example.com", "password": n, "device_id": "d"}),
            false,
        ),
        (
            "/v1/auth/login",
            json!({"email": "nul@example.com", "password": PASSWORD, "device_id": n}),
            false,
        ),
        (
            "/v1/auth/login",
            json!({"email": "nul@example.com", "password": PASSWORD, "device_id": "d", "device_name": n}),
            false,
        ),
        (
            "/v1/auth/login",
            json!({"email": "nul@example.com", "password": PASSWORD, "device_id": "d", "provider": n}),
            false,
        ),
        (
            "/v1/auth/refresh",
            json!({"refresh_token": format!("{rt}\u{0000}")}),
            false,
        ),
        (
            "/v1/auth/login/mfa",
            json!({"mfa_token": n, "code": "123456"}),
            false,
        ),
        (
            "/v1/auth/login/mfa",
            json!({"mfa_token": "mt_x", "code": "123\u{0000}456"}),
            false,
        ),
        (
            "/v1/password-reset/complete",
            json!({"token": n, "new_password": PASSWORD}),
            false,
        ),
        ("/v1/authorize", json!({"action": n}), true),
        (
            "/v1/me/password",
            json!({"current_password": n, "new_password": "another passphrase"}),
            true,
        ),
        ("/v1/mfa/totp/setup", json!({"password": n}), true),
        (
            "/v1/mfa/totp/confirm",
            json!({"code": "12\u{0000}3456"}),
            true,
        ),
        ("/v1/mfa/step-up", json!({"code": n}), true),
    ]
}

both_backends!(
    a_nul_byte_in_any_string_field_is_a_problem_never_a_server_error_and_changes_nothing,
    |app: TestApp| async move {
        app.register("nul@example.com", PASSWORD).await;
        let login = app.login_ok("nul@example.com", PASSWORD, "d").await;
        let at = s(&login, "access_token");
        for (path, body, bearer) in nul_cases(&login) {
            let mut req = app.client.post(app.url(path)).json(&body);
            if bearer {
                req = req.bearer_auth(&at);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            assert!((400..500).contains(&status), "{path} {body}: {status}");
            assert_eq!(
                res.headers()["content-type"],
                "application/problem+json",
                "{path} {body}"
            );
        }
        // Nothing changed: no account, no sign-in, no new session; the device's session and
        // refresh token are the ones it had.
        assert_eq!(app.count_events("user_registered").await, 1);
        assert_eq!(app.count_events("login_succeeded").await, 1);
        let res = app.refresh(&s(&login, "refresh_token")).await;
        assert_eq!(res.status(), StatusCode::OK);
        // A NUL in a header never reaches a handler: the request is refused as malformed.
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x00b\r\n\r\n")
            .await
            .unwrap();
        let sent = read_until_closed(&mut stream).await;
        assert!(
            sent.is_empty() || sent.starts_with("HTTP/1.1 400"),
            "{sent}"
        );
        assert_healthy(&app).await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_too_long_to_be_ours_is_refused_before_any_hashing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    app.register("long@example.com", PASSWORD).await;
    let checks = app.password_checks().await;
    let megabyte = "p".repeat(1 << 20);
    // Over the body limit: refused on its length.
    let login = json!({"email": "long@example.com", "password": megabyte, "device_id": "d"});
    assert_too_large(&app, "/v1/auth/login", login.to_string()).await;
    // Within the body limit but past any password we accept: refused as a bad field.
    for long in ["p".repeat(60_000), "p".repeat(257)] {
        let res = app.login("long@example.com", &long, "d").await;
        let body = assert_problem(res, 400, "invalid_request").await;
        assert!(s(&body, "detail").contains("password"), "{body}");
        let res = app
            .post(
                "/v1/users",
                json!({"email": "other@example.com", "password": long}),
            )
            .await;
        assert_problem(res, 400, "invalid_request").await;
    }
    let register = json!({"email": "other@example.com", "password": megabyte});
    assert_too_large(&app, "/v1/users", register.to_string()).await;
    assert_eq!(app.password_checks().await, checks, "a hash was computed");
    // Not failures of the account either: its budget is whole and the owner gets in.
    assert_eq!(app.count_events("login_failed").await, 0);
    app.login_ok("long@example.com", PASSWORD, "d").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_arrays_and_trailing_objects_are_refused_and_create_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    // serde_json alone keeps the last of two keys, a JavaScript proxy too, some other
    // readers the first: the only safe answer is none.
    let two_emails = r#"{"email": "first@example.com", "email": "second@example.com", "password": "correct horse battery staple"}"#;
    let body = assert_problem(
        post_raw(&app, "/v1/users", two_emails).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        s(&body, "detail").contains("duplicate field `email`"),
        "{body}"
    );
    let positional = r#"["first@example.com", "correct horse battery staple"]"#;
    let body = assert_problem(
        post_raw(&app, "/v1/users", positional).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(s(&body, "detail").contains("object"), "{body}");
    // Two objects back to back: a reader that stops after the first and one that keeps
    // the last would register different addresses.
    let two_objects = r#"{"email": "first@example.com", "password": "correct horse battery staple"}
        {"email": "second@example.com", "password": "correct horse battery staple"}"#;
    let body = assert_problem(
        post_raw(&app, "/v1/users", two_objects).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(s(&body, "detail").contains("trailing"), "{body}");
    assert_eq!(app.count_events("user_registered").await, 0);

    app.register("dup@example.com", PASSWORD).await;
    let checks = app.password_checks().await;
    let two_passwords = r#"{"email": "dup@example.com", "password": "guess", "password": "correct horse battery staple", "device_id": "d"}"#;
    assert_problem(
        post_raw(&app, "/v1/auth/login", two_passwords).await,
        400,
        "invalid_request",
    )
    .await;
    let two_tokens = r#"{"refresh_token": "rt_a", "refresh_token": "rt_b"}"#;
    assert_problem(
        post_raw(&app, "/v1/auth/refresh", two_tokens).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(app.password_checks().await, checks);
    assert_eq!(app.count_events("login_failed").await, 0);
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused_without_exhausting_the_stack() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    // 10^5 brackets are past the body limit; 60 000 fit and are refused unread or at
    // serde_json's depth limit, never by recursion down the stack.
    assert_too_large(&app, "/v1/auth/login", "[".repeat(100_000)).await;
    for body in [
        "[".repeat(60_000),
        format!(r#"{{"email": {}"#, "[".repeat(60_000)),
        format!(
            r#"{{"email": "a@example.com", "password": {}"#,
            "{\"a\":".repeat(12_000)
        ),
    ] {
        let res = post_raw(&app, "/v1/auth/login", body).await;
        assert_problem(res, 400, "invalid_request").await;
    }
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_body_is_refused_before_it_is_read() {
    let Some(app) = spawn_with(limits(|_| {})).await else {
        return;
    };
    // Declared: the answer comes although not one byte of the body was sent.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 10485760\r\n\r\n",
        )
        .await
        .unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(sent.starts_with("HTTP/1.1 413"), "{sent}");
    assert!(sent.contains(r#""code":"payload_too_large""#), "{sent}");

    // Chunked, so no length is declared: 10 MB are promised, 128 KiB are sent, and the
    // refusal arrives while the rest is still owed.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
    for _ in 0..2 {
        // The server may stop reading (and close) once it has seen enough.
        let _ = stream.write_all(chunk.as_bytes()).await;
    }
    let mut head = [0u8; 12];
    let answered = tokio::time::timeout(BOUND, stream.read_exact(&mut head)).await;
    match answered {
        Ok(Ok(_)) => assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head)),
        // Closed without an answer is the other acceptable refusal.
        Ok(Err(_)) => {}
        Err(_) => panic!("the server waited for the rest of a 10 MB body"),
    }
    assert_healthy(&app).await;
}

async fn spawn_with(http: tessera::edge::HttpLimits) -> Option<TestApp> {
    let options = Options {
        http: Some(http),
        ..Options::default()
    };
    TestApp::spawn_with(Backend::Sqlite, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_headers_or_one_huge_header_are_refused_and_the_server_stays_healthy() {
    let Some(app) = spawn_with(limits(|_| {})).await else {
        return;
    };
    // Ten thousand tiny headers: far past any header count a client needs.
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        many.extend_from_slice(format!("x{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    // One header of a megabyte.
    let mut huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\n");
    for head in [many, huge] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        // The server may stop reading (and close) before all of it is written.
        let _ = stream.write_all(&head).await;
        let sent = read_until_closed(&mut stream).await;
        assert!(
            sent.is_empty() || sent.starts_with("HTTP/1.1 431"),
            "{}",
            &sent[..sent.len().min(200)]
        );
    }
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_meet_the_cap_and_the_server_recovers() {
    const CAP: usize = 64;
    const IDLE: usize = 2_000;
    let Some(app) = spawn_with(limits(|l| l.max_connections = CAP as u32)).await else {
        return;
    };
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // The ones the server has no slot for are refused with a 503 and closed; the rest
    // wait (they have sent nothing) for their header timeout, a minute away.
    let outcomes = futures::future::join_all(idle.into_iter().map(|mut stream| async move {
        let mut seen = Vec::new();
        let closed = tokio::time::timeout(BOUND, stream.read_to_end(&mut seen))
            .await
            .is_ok();
        (closed, String::from_utf8_lossy(&seen).into_owned(), stream)
    }))
    .await;
    let mut held = Vec::new();
    let mut refused = 0;
    for (closed, sent, stream) in outcomes {
        if closed {
            assert!(sent.starts_with("HTTP/1.1 503"), "{sent}");
            assert!(sent.contains(r#""code":"service_unavailable""#), "{sent}");
            refused += 1;
        } else {
            held.push(stream);
        }
    }
    assert!(held.len() <= CAP, "{} connections held", held.len());
    assert!(refused >= IDLE - CAP, "{refused} refused");
    // Gone idle clients free their slots: the server serves again, logins included.
    drop(held);
    assert_serves_again(&app).await;
    assert_healthy(&app).await;
}

//! PostgreSQL stopped under a running node: every request that needs it answers 503
//! `service_unavailable` with `Retry-After` within the pool's deadline (not after the
//! driver's 30 s), `/readyz` says 503 at once, nothing is half-done, and once PostgreSQL
//! is back the same process serves again.

use std::time::Duration;

use reqwest::Response;

use crate::helpers::FormClient;
use crate::helpers::{PASSWORD, assert_problem};
use crate::node::{Node, email, master_key, temp_dir};
use crate::postgres::PrivatePostgres;

/// What a client would wait at most: the old 30 s hang fails here as a client timeout.
/// A bound, never a measure of speed (the deadlines under test are 3 s and 2 s).
const CLIENT_BOUND: Duration = Duration::from_secs(25);

const ACCOUNT: &str = "/account/security";
const SESSION_COOKIE: &str = "__Host-tessera_session";
const REFRESH_COOKIE: &str = "__Host-tessera_refresh";

async fn assert_unavailable(res: reqwest::Result<Response>, what: &str) {
    let res = res.unwrap_or_else(|e| panic!("{what}: no answer within the bound: {e}"));
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = assert_problem(res, 503, "service_unavailable").await;
    let wait: u64 = retry_after
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    assert!(wait >= 1, "{what}: Retry-After {wait}");
    // Hosts, ports and driver words go to the log only.
    let text = body.to_string().to_lowercase();
    for leak in ["127.0.0.1", "postgres", "pool", "refused", "connection"] {
        assert!(!text.contains(leak), "{what}: {leak} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_run_answers_503_and_the_same_node_recovers() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let dir = temp_dir("pg-outage");
    let url = pg.url();
    let key = master_key();
    // The request timeout far above the pool's deadline: a 503 here can only come from
    // the pool giving up, not from the edge's own timeout.
    let node = Node::start(
        &dir,
        &[
            ("TESSERA_DATABASE_URL", url.as_str()),
            ("TESSERA_MASTER_KEY", key.as_str()),
            ("TESSERA_HTTP_REQUEST_TIMEOUT", "120"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(CLIENT_BOUND)
        .build()
        .unwrap();
    let who = email("pg-outage");
    node.register(&who).await;
    let login = node.login_ok(&who, "laptop").await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(node.me(&access).await.status(), 200);
    assert_eq!(node.readyz().await.0, 200);
    let mut browser = FormClient::at(node.url(""));
    assert_eq!(browser.sign_in(&who).await.status(), 303);
    assert_eq!(browser.get(ACCOUNT).await.status(), 200);

    pg.stop();

    // Without Redis there is no session cache: /v1/me reads the session every time.
    let me = client.get(node.url("/v1/me")).bearer_auth(&access).send();
    let rotate = client
        .post(node.url("/v1/auth/refresh"))
        .json(&serde_json::json!({"refresh_token": refresh}))
        .send();
    let sign_in = client
        .post(node.url("/v1/auth/login"))
        .json(&serde_json::json!({"email": who, "password": PASSWORD, "device_id": "phone"}))
        .send();
    let ready = client.get(node.url("/readyz")).send();
    let (me, rotate, sign_in, ready) = tokio::join!(me, rotate, sign_in, ready);
    assert_unavailable(me, "/v1/me").await;
    assert_unavailable(rotate, "refresh").await;
    assert_unavailable(sign_in, "login").await;
    let ready = ready.expect("/readyz answered within the bound");
    let body = assert_problem(ready, 503, "service_unavailable").await;
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    // A page says so too, and the browser keeps its cookies: an outage signs no one out.
    let page = browser.get(ACCOUNT).await;
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    for cookie in [SESSION_COOKIE, REFRESH_COOKIE] {
        assert!(browser.cookie(cookie).is_some(), "{cookie} was removed");
    }
    // Someone who keeps trying through the outage checks nothing and spends nothing: five
    // more attempts (six with the one above, past the budget of five) are each a 503,
    // never a 429, and the sign-in after the outage goes through.
    let retries = (0..5).map(|_| {
        client
            .post(node.url("/v1/auth/login"))
            .json(&serde_json::json!({"email": who, "password": PASSWORD, "device_id": "phone"}))
            .send()
    });
    for retry in futures::future::join_all(retries).await {
        assert_unavailable(retry, "a login retried through the outage").await;
    }

    pg.start_again();

    // The probe alone brings the node back: no restart, no other request first.
    node.readyz_until("ready", |status, _| status == 200).await;
    assert_eq!(node.me(&access).await.status(), 200);
    // The refresh refused during the outage changed nothing: its token still rotates.
    let rotated = node.refresh(&refresh).await;
    assert_eq!(rotated.status(), 200, "{}", rotated.text().await.unwrap());
    node.login_ok(&who, "phone").await;
    assert_eq!(browser.get(ACCOUNT).await.status(), 200);
    let log = node.log();
    assert!(log.contains("database unreachable"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

/// No PostgreSQL where the settings point: `serve` stops with an error naming what it
/// could not reach once the connect deadline passes, rather than waiting for ever or
/// serving without a database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_gives_up_on_an_unreachable_database_after_the_connect_deadline() {
    let dir = temp_dir("pg-absent");
    let port = tessera_adapters::notify::testing::unused_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_clear()
        .current_dir(&dir)
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_DATABASE_URL", &url)
        .env("TESSERA_MASTER_KEY", master_key())
        .env("TESSERA_DATABASE_CONNECT_TIMEOUT", "1")
        .kill_on_drop(true)
        .output();
    // sqlx alone would keep retrying the refused connection for 30 s.
    let out = tokio::time::timeout(CLIENT_BOUND, run)
        .await
        .expect("serve gave up within the bound")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("connecting to PostgreSQL"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

//! The embedded default (one server on a SQLite file, no Redis) caches sessions and user
//! views too: steady-state authenticated reads touch nothing, and a change written by
//! another process (the admin CLI) drops the cache by the watch's next look.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, metric, s};

const SESSION_HITS: &str = "tessera_session_cache_total{result=\"hit\"}";
const SESSION_MISSES: &str = "tessera_session_cache_total{result=\"miss\"}";
const VIEW_HITS: &str = "tessera_user_view_cache_total{result=\"hit\"}";
const VIEW_MISSES: &str = "tessera_user_view_cache_total{result=\"miss\"}";
const FLUSHES: &str = "tessera_session_cache_flushes_total";

async fn me(app: &TestApp, at: &str) -> reqwest::Response {
    app.get_auth("/v1/me", at).await
}

/// Waits (bounded) for `/v1/me` to answer `done`.
async fn until_me(app: &TestApp, at: &str, done: impl Fn(StatusCode, &Value) -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let res = me(app, at).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if done(status, &body) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn served_from_the_cache(app: &TestApp, at: &str) {
    // The watch's first look turns the cache on.
    until_me(app, at, |status, _| status == StatusCode::OK).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let before = app.metrics().await;
        assert_eq!(me(app, at).await.status(), StatusCode::OK);
        let after = app.metrics().await;
        if metric(&after, VIEW_HITS) > metric(&before, VIEW_HITS) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never cached");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_reads_on_the_embedded_default_come_from_the_cache() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (_, login) = app.signed_in_user("phone").await;
    let at = s(&login, "access_token");
    served_from_the_cache(&app, &at).await;

    let before = app.metrics().await;
    for _ in 0..20 {
        assert_eq!(me(&app, &at).await.status(), StatusCode::OK);
    }
    // This server's own writes (a rotation) reach its cache directly: no flush.
    let res = app.refresh(&s(&login, "refresh_token")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let after = app.metrics().await;
    let moved = |name| metric(&after, name) - metric(&before, name);
    assert_eq!(moved(SESSION_HITS), 20);
    assert_eq!(moved(VIEW_HITS), 20);
    assert_eq!((moved(SESSION_MISSES), moved(VIEW_MISSES)), (0, 0));
    assert_eq!(moved(FLUSHES), 0, "its own writes must not flush the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_written_by_another_process_ends_a_cached_session() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (email, login) = app.signed_in_user("phone").await;
    let at = s(&login, "access_token");
    served_from_the_cache(&app, &at).await;

    // Another process: the admin CLI on the same file, with no Redis to publish to.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "grant-role", "--email", &email, "--role", "vendor"])
        .args(["--operator", "ops-ana"])
        .env_clear()
        .env("TESSERA_DATABASE_URL", app.db.url())
        .env("TESSERA_MASTER_KEY", &app.master_key)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server's clock stands still, so only the watch can end the cached copy.
    until_me(&app, &at, |_, me| me["roles"] == json!(["vendor"])).await;

    app.sql_unwatched("UPDATE sessions SET revoked_at = 1, revoked_reason = 'revoked_by_admin'")
        .await;
    until_me(&app, &at, |status, _| status == StatusCode::UNAUTHORIZED).await;
}

//! Revocation across nodes: two `tessera serve` processes on one Postgres and one Redis
//! (a logout on one is refused on the other within a second), and what the per-node
//! session cache does and does not read.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::process::{serve_with, temp_dir};
use crate::helpers::{
    Backend, Options, PASSWORD, TestApp, assert_problem, metric, rand32, redis_prefix, redis_url,
    until_subscribed,
};

/// The promise: a revoked token is refused on every node within this.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);

const HITS: &str = "tessera_session_cache_total{result=\"hit\"}";
const MISSES: &str = "tessera_session_cache_total{result=\"miss\"}";
const BYPASSES: &str = "tessera_session_cache_total{result=\"bypass\"}";

async fn me(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    client.get(url).bearer_auth(token).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_node_is_refused_on_another_node_within_one_second() {
    let Some(redis) = redis_url() else { return };
    let Some(db) = tessera_adapters::testing::TestDatabase::postgres().await else {
        return;
    };
    let master_key = data_encoding::BASE64.encode(&rand32());
    let prefix = redis_prefix();
    let settings = [
        ("TESSERA_DATABASE_URL", db.url()),
        ("TESSERA_MASTER_KEY", master_key.as_str()),
        ("TESSERA_REDIS_URL", redis.as_str()),
        ("TESSERA_REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    // One after the other, so the second finds the schema and the signing key in place.
    let node_a = serve_with(&temp_dir("node-a"), &settings).await;
    let node_b = serve_with(&temp_dir("node-b"), &settings).await;
    let client = reqwest::Client::new();
    until_subscribed(&client, &node_a.url("/metrics")).await;
    until_subscribed(&client, &node_b.url("/metrics")).await;

    let email = format!("nodes-{}@example.com", uuid::Uuid::new_v4().simple());
    let res = client
        .post(node_a.url("/v1/users"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let login: Value = client
        .post(node_a.url("/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD, "device_id": "d1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();

    // Node B accepts the token and, the second time, answers from its cache.
    let on_b = node_b.url("/v1/me");
    assert_eq!(me(&client, &on_b, &access).await.status(), StatusCode::OK);
    assert_eq!(me(&client, &on_b, &access).await.status(), StatusCode::OK);
    let text = client
        .get(node_b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, HITS), 1, "{text}");

    let res = client
        .post(node_a.url("/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    let refused = loop {
        let res = me(&client, &on_b, &access).await;
        if res.status() == StatusCode::UNAUTHORIZED {
            break res;
        }
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            revoked_at.elapsed() < REVOCATION_BOUND,
            "node B still accepted the token {:?} after the logout on node A",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = revoked_at.elapsed();
    assert!(took < REVOCATION_BOUND, "refused only after {took:?}");
    assert_problem(refused, 401, "session_revoked").await;

    let log_b = node_b.stop().await;
    let log_a = node_a.stop().await;
    for log in [&log_a, &log_b] {
        assert!(
            log.contains("session cache on"),
            "the cache choice is logged:\n{log}"
        );
        assert!(!log.contains(&access), "an access token was logged");
    }
}

/// Marks every session revoked straight in the database, behind the application's back
/// (so only a node that reads the session row sees it).
async fn revoke_behind_the_apps_back(app: &TestApp) {
    app.sql("UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout'")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_on_a_second_request_does_not_read_the_session_from_the_database() {
    let options = Options {
        redis: true,
        ..Options::default()
    };
    let Some(app) = TestApp::spawn_with(Backend::Postgres, options).await else {
        return;
    };
    until_subscribed(&app.client, &app.url("/metrics")).await;
    let (_, login) = app.signed_in_user("d1").await;
    let access = login["access_token"].as_str().unwrap();

    let before = app.metrics().await;
    assert_eq!(
        app.get_auth("/v1/me", access).await.status(),
        StatusCode::OK
    );
    let after_first = app.metrics().await;
    assert_eq!(metric(&after_first, MISSES), metric(&before, MISSES) + 1);
    assert_eq!(metric(&after_first, HITS), metric(&before, HITS));

    // The row now says revoked, but the node does not read it again: the second request
    // is answered from the cache (which is why every revocation must go through the app).
    revoke_behind_the_apps_back(&app).await;
    assert_eq!(
        app.get_auth("/v1/me", access).await.status(),
        StatusCode::OK
    );
    let after_second = app.metrics().await;
    assert_eq!(metric(&after_second, HITS), metric(&before, HITS) + 1);
    assert_eq!(metric(&after_second, MISSES), metric(&after_first, MISSES));
    assert_eq!(metric(&after_second, BYPASSES), metric(&before, BYPASSES));

    // The cache holds a session for at most its TTL (60 s by default, on the app's clock).
    app.clock.advance(time::Duration::seconds(61));
    assert_problem(app.get_auth("/v1/me", access).await, 401, "session_revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_on_postgres_every_request_reads_its_session() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let (_, login) = app.signed_in_user("d1").await;
    let access = login["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/v1/me", access).await.status(),
        StatusCode::OK
    );
    // Another node, or `tessera admin`, revoking on the shared database: seen at once.
    revoke_behind_the_apps_back(&app).await;
    assert_problem(app.get_auth("/v1/me", access).await, 401, "session_revoked").await;
    let text = app.metrics().await;
    assert_eq!(metric(&text, HITS), 0);
    assert_eq!(metric(&text, MISSES), 0);
    assert!(metric(&text, BYPASSES) >= 2);
    assert_eq!(metric(&text, "tessera_revocation_subscribed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mfa_confirmation_replaces_the_cached_session_at_once() {
    let options = Options {
        redis: true,
        ..Options::default()
    };
    let Some(app) = TestApp::spawn_with(Backend::Postgres, options).await else {
        return;
    };
    until_subscribed(&app.client, &app.url("/metrics")).await;
    // Set-up caches the session (no MFA yet); confirming makes it MFA-verified now.
    let Some((_, login, _, _)) = crate::helpers::enrolled(&app, "d1").await else {
        return;
    };
    let access = login["access_token"].as_str().unwrap();
    app.clock.advance(time::Duration::seconds(30));
    // Needs an MFA within 300 s: a cache still holding the pre-confirmation copy says no.
    let res = app
        .post_auth("/v1/mfa/recovery-codes", access, json!({}))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let text = app.metrics().await;
    assert!(metric(&text, HITS) >= 1, "the cache was in play:\n{text}");
}

//! Redis stopped under a running node: the documented fallback holds (per-node budgets,
//! revocation still immediate on the node), `/readyz` stays 200 with the limiter check
//! `degraded`, and when Redis is back the probe alone turns the check `ok` again.

use crate::helpers::{PrivateRedis, assert_problem};
use crate::node::{Node, email, master_key, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_falls_back_per_node_and_readiness_recovers_by_probing() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let dir = temp_dir("redis-outage");
    let key = master_key();
    let redis_url = redis.url();
    let prefix = crate::helpers::redis_prefix();
    let node = Node::start(
        &dir,
        &[
            ("TESSERA_DATABASE_URL", "sqlite://tessera.db"),
            ("TESSERA_MASTER_KEY", key.as_str()),
            ("TESSERA_REDIS_URL", redis_url.as_str()),
            ("TESSERA_REDIS_KEY_PREFIX", prefix.as_str()),
        ],
    )
    .await;
    node.readyz_until("the limiter on Redis", |status, body| {
        status == 200 && body["checks"]["rate_limiter"] == "ok"
    })
    .await;
    let who = email("redis-outage");
    node.register(&who).await;
    let laptop = node.login_ok(&who, "laptop").await;
    let phone = node.login_ok(&who, "phone").await;
    // The phone's session is cached on this node (Redis carries revocations).
    let phone_access = phone["access_token"].as_str().unwrap().to_owned();
    assert_eq!(node.me(&phone_access).await.status(), 200);

    redis.kill();

    let (status, body) = node.readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["rate_limiter"], "degraded", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["status"], "degraded", "{body}");

    // Per-node budgets: five failures from this network, then 429.
    for _ in 0..5 {
        let res = node.login(&who, "wrong password", "tablet").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = node.login(&who, "wrong password", "tablet").await;
    assert_problem(res, 429, "rate_limited").await;

    // Revocation holds at once on this node, though no message can travel.
    let sessions: serde_json::Value = node
        .client
        .get(node.url("/v1/sessions"))
        .bearer_auth(laptop["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let phone_session = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["device_id"] == "phone")
        .unwrap_or_else(|| panic!("{sessions}"))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = node
        .client
        .delete(node.url(&format!("/v1/sessions/{phone_session}")))
        .bearer_auth(laptop["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_problem(node.me(&phone_access).await, 401, "session_revoked").await;

    assert!(redis.restart().await, "redis-server restarts");

    // Only /readyz is asked from here on: no login touches the limiter.
    let body = node
        .readyz_until("the limiter back on Redis", |status, body| {
            status == 200 && body["checks"]["rate_limiter"] == "ok"
        })
        .await;
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    // The revocation subscription comes back by itself too, and with it `ready`.
    node.readyz_until("ready", |status, body| {
        status == 200 && body["status"] == "ready" && body["checks"]["revocation_bus"] == "ok"
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

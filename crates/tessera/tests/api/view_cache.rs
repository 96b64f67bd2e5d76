//! The user-view cache over HTTP: with the revocation bus up, `/v1/me` and the step-up
//! policy answer from the node's cache (no database read in the steady state), every
//! write that changes a user's roles or MFA state reaches every node's cache through the
//! bus, and while the subscription is down nothing is answered from the cache.
//!
//! The nodes' clocks are manual and never move on their own: a change that failed to
//! reach a node would leave its old answer standing for good, not just for the TTL.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;

use crate::admin_cli::cli_with;
use crate::both_backends;
use crate::helpers::{
    Backend, Options, PASSWORD, PrivateRedis, TestApp, assert_problem, enroll, enrolled, metric,
    oathtool, redis_prefix, redis_url, s, subscribed_node, until_subscribed,
};

const VIEW_HITS: &str = "tessera_user_view_cache_total{result=\"hit\"}";
const VIEW_MISSES: &str = "tessera_user_view_cache_total{result=\"miss\"}";
const VIEW_BYPASSES: &str = "tessera_user_view_cache_total{result=\"bypass\"}";
const SESSION_HITS: &str = "tessera_session_cache_total{result=\"hit\"}";
const SESSION_MISSES: &str = "tessera_session_cache_total{result=\"miss\"}";

/// Not a speed claim: how long a test waits for another node to hear a change before it
/// calls the change lost.
const HEARD_WITHIN: Duration = Duration::from_secs(5);

/// (hits, misses, bypasses) of the user-view cache.
async fn view_counts(app: &TestApp) -> (u64, u64, u64) {
    let text = app.metrics().await;
    (
        metric(&text, VIEW_HITS),
        metric(&text, VIEW_MISSES),
        metric(&text, VIEW_BYPASSES),
    )
}

async fn me(app: &TestApp, token: &str) -> Value {
    let res = app.get_auth("/v1/me", token).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Gives the user with this address a role straight in the database: only before any
/// node read the user's view, since a node with the cache on would not read it again.
async fn grant_by_email(app: &TestApp, email: &str, role: &str) {
    app.sql(&format!(
        "INSERT INTO user_roles (user_id, role) SELECT id, '{role}' FROM users \
         WHERE email_normalized = '{}'",
        email.to_lowercase()
    ))
    .await;
}

/// A node with the cache on, its revocation subscription up.
async fn cached_node(backend: Backend, redis: String) -> Option<TestApp> {
    let options = Options {
        redis_url: Some(redis),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await?;
    until_subscribed(&app.client, &app.url("/metrics")).await;
    Some(app)
}

/// Two nodes on one database and one Redis channel, both subscribed.
async fn two_nodes(backend: Backend) -> Option<(TestApp, TestApp)> {
    let redis = redis_url()?;
    let prefix = redis_prefix();
    let a = TestApp::spawn_with(
        backend,
        Options {
            redis_url: Some(redis.clone()),
            redis_key_prefix: Some(prefix.clone()),
            ..Options::default()
        },
    )
    .await?;
    // Started after A, so it finds the schema and the signing key in place.
    let b = TestApp::start_on(
        a.db.clone(),
        Some(redis),
        Options {
            master_key: Some(a.master_key.clone()),
            redis_key_prefix: Some(prefix),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    until_subscribed(&a.client, &a.url("/metrics")).await;
    until_subscribed(&b.client, &b.url("/metrics")).await;
    Some((a, b))
}

/// Asks `node` for `/v1/me` until `changed` holds of the answer; every answer before that
/// must be a 200 (the old state).
async fn until_me(node: &TestApp, token: &str, what: &str, changed: impl Fn(&Value) -> bool) {
    let start = Instant::now();
    loop {
        let body = me(node, token).await;
        if changed(&body) {
            return;
        }
        assert!(
            start.elapsed() < HEARD_WITHIN,
            "{what}: the other node still answers {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asks `node` for `path` until it answers `status`; every answer before that must be a
/// 200. Returns that answer.
async fn until_status(
    node: &TestApp,
    token: &str,
    path: &str,
    status: StatusCode,
) -> reqwest::Response {
    let start = Instant::now();
    loop {
        let res = node.get_auth(path, token).await;
        if res.status() == status {
            return res;
        }
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            start.elapsed() < HEARD_WITHIN,
            "{path}: the other node still answers 200"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn set_roles(node: &TestApp, admin_at: &str, target: &str, roles: Value) {
    let res = node
        .post_auth(
            &format!("/v1/admin/users/{target}/roles"),
            admin_at,
            json!({"roles": roles}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
}

both_backends!(
    in_the_steady_state_me_and_authorize_answer_from_the_cache_without_reading_the_user,
    Backend => |backend: Backend| async move {
        let Some(redis) = redis_url() else { return };
        let Some(app) = cached_node(backend, redis).await else {
            return;
        };
        let Some((email, login, _, _)) = enrolled(&app, "d1").await else {
            return;
        };
        grant_by_email(&app, &email, "vendor").await;
        let at = s(&login, "access_token");
        assert_eq!(me(&app, &at).await["roles"], json!(["vendor"]));

        const N: u64 = 20;
        let before = app.metrics().await;
        for _ in 0..N {
            let body = me(&app, &at).await;
            assert_eq!(body["roles"], json!(["vendor"]));
            assert_eq!(body["mfa"]["totp_enabled"], true);
            assert_eq!(body["mfa"]["recovery_codes_remaining"], 10);
        }
        let res = app
            .post_auth("/v1/authorize", &at, json!({"action": "vendor.payout"}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let after = app.metrics().await;
        let moved = |name| metric(&after, name) - metric(&before, name);
        // Every one of them: the session and the view from the cache, nothing read.
        assert_eq!(moved(VIEW_HITS), N + 1, "{after}");
        assert_eq!(moved(VIEW_MISSES), 0, "{after}");
        assert_eq!(moved(VIEW_BYPASSES), 0, "{after}");
        assert_eq!(moved(SESSION_HITS), N + 1, "{after}");
        assert_eq!(moved(SESSION_MISSES), 0, "{after}");

        // The rows change behind the application's back and the answer does not: it
        // really is not read (and is why every write must go through the application).
        app.sql("DELETE FROM user_roles").await;
        app.sql("DELETE FROM user_totp").await;
        let body = me(&app, &at).await;
        assert_eq!(body["roles"], json!(["vendor"]));
        assert_eq!(body["mfa"]["totp_enabled"], true);
        // At most the TTL (60 s by default, on the application's clock).
        app.clock.advance(time::Duration::seconds(61));
        let body = me(&app, &at).await;
        assert_eq!(body["roles"], json!([]));
        assert_eq!(body["mfa"]["totp_enabled"], false);
    }
);

both_backends!(
    a_role_granted_or_removed_on_one_node_holds_on_the_other_at_once,
    Backend => |backend: Backend| async move {
        let Some((a, b)) = two_nodes(backend).await else {
            return;
        };
        let Some((admin_email, admin_login, _, _)) = enrolled(&a, "admin-laptop").await else {
            return;
        };
        grant_by_email(&a, &admin_email, "admin").await;
        let admin_at = s(&admin_login, "access_token");
        let admin_id = s(&me(&a, &admin_at).await, "user_id");
        let Some((_, target_login, _, _)) = enrolled(&a, "target-phone").await else {
            return;
        };
        let target_at = s(&target_login, "access_token");
        let admin_action = format!("/v1/admin/users/{admin_id}/security-events");

        // B reads the target's view once, then answers it from its cache.
        let target_id = s(&me(&b, &target_at).await, "user_id");
        let (hits, _, _) = view_counts(&b).await;
        assert_eq!(me(&b, &target_at).await["roles"], json!([]));
        assert_eq!(view_counts(&b).await.0, hits + 1);

        // A grant on A: B's next answers carry it, and its policy lets the target act.
        set_roles(&a, &admin_at, &target_id, json!(["admin"])).await;
        until_me(&b, &target_at, "grant", |me| {
            me["roles"] == json!(["admin"])
        })
        .await;
        let res = b.get_auth(&admin_action, &target_at).await;
        assert_eq!(res.status(), StatusCode::OK);
        let (hits, _, _) = view_counts(&b).await;
        assert_eq!(b.get_auth(&admin_action, &target_at).await.status(), 200);
        assert_eq!(
            view_counts(&b).await.0,
            hits + 1,
            "B's policy check answers from its cache"
        );

        // The removal on A: B's policy check refuses the very next admin action it hears
        // of, though it had the role cached.
        set_roles(&a, &admin_at, &target_id, json!([])).await;
        let refused = until_status(&b, &target_at, &admin_action, StatusCode::FORBIDDEN).await;
        assert_problem(refused, 403, "forbidden").await;
        assert_eq!(me(&b, &target_at).await["roles"], json!([]));
    }
);

both_backends!(
    totp_enabled_or_disabled_on_one_node_holds_on_the_other_at_once,
    Backend => |backend: Backend| async move {
        let Some((a, b)) = two_nodes(backend).await else {
            return;
        };
        let (email, login) = a.signed_in_user("d1").await;
        grant_by_email(&a, &email, "admin").await;
        let at = s(&login, "access_token");
        let own = s(&me(&a, &at).await, "user_id");
        let admin_action = format!("/v1/admin/users/{own}/security-events");

        // B holds the view without TOTP: its policy asks for enrolment.
        assert_eq!(me(&b, &at).await["mfa"]["totp_enabled"], false);
        assert_problem(
            b.get_auth(&admin_action, &at).await,
            403,
            "mfa_enrollment_required",
        )
        .await;

        // Enrolled on A: B says so, and lets the (now MFA-verified) session act.
        let Some((secret, _)) = enroll(&a, &at).await else {
            return;
        };
        until_me(&b, &at, "enable", |me| {
            me["mfa"] == json!({"totp_enabled": true, "recovery_codes_remaining": 10})
        })
        .await;
        assert_eq!(b.get_auth(&admin_action, &at).await.status(), 200);

        // Disabled on A (with the next code): B's policy asks for enrolment again.
        a.clock.advance(time::Duration::seconds(30));
        let code = oathtool(&secret, a.clock.now()).unwrap();
        let res = a
            .client
            .delete(a.url("/v1/mfa/totp"))
            .bearer_auth(&at)
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let refused = until_status(&b, &at, &admin_action, StatusCode::FORBIDDEN).await;
        assert_problem(refused, 403, "mfa_enrollment_required").await;
        assert_eq!(
            me(&b, &at).await["mfa"],
            json!({"totp_enabled": false, "recovery_codes_remaining": 0})
        );
    }
);

both_backends!(
    a_recovery_code_used_or_codes_regenerated_on_one_node_show_on_the_other_at_once,
    Backend => |backend: Backend| async move {
        let Some((a, b)) = two_nodes(backend).await else {
            return;
        };
        let Some((_, login, _, codes)) = enrolled(&a, "d1").await else {
            return;
        };
        let at = s(&login, "access_token");
        assert_eq!(me(&b, &at).await["mfa"]["recovery_codes_remaining"], 10);
        let (hits, _, _) = view_counts(&b).await;
        assert_eq!(me(&b, &at).await["mfa"]["recovery_codes_remaining"], 10);
        assert_eq!(
            view_counts(&b).await.0,
            hits + 1,
            "B answers from its cache"
        );

        let res = a
            .post_auth("/v1/mfa/step-up", &at, json!({"code": codes[0]}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        until_me(&b, &at, "recovery code used", |me| {
            me["mfa"]["recovery_codes_remaining"] == 9
        })
        .await;

        let res = a.post_auth("/v1/mfa/recovery-codes", &at, json!({})).await;
        assert_eq!(res.status(), StatusCode::OK);
        until_me(&b, &at, "codes regenerated", |me| {
            me["mfa"]["recovery_codes_remaining"] == 10
        })
        .await;
    }
);

both_backends!(
    a_password_changed_on_one_node_ends_the_other_sessions_there_at_once,
    Backend => |backend: Backend| async move {
        let Some((a, b)) = two_nodes(backend).await else {
            return;
        };
        let (email, first) = a.signed_in_user("d1").await;
        let second = a.login_ok(&email, PASSWORD, "d2").await;
        let (kept, ended) = (s(&first, "access_token"), s(&second, "access_token"));
        // B caches both sessions and the user's view.
        for token in [&kept, &ended, &ended] {
            me(&b, token).await;
        }
        let res = a
            .post_auth(
                "/v1/me/password",
                &kept,
                json!({"current_password": PASSWORD, "new_password": "a new and long password"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let refused = until_status(&b, &ended, "/v1/me", StatusCode::UNAUTHORIZED).await;
        assert_problem(refused, 401, "session_revoked").await;
        assert_eq!(me(&b, &kept).await["email"], email.as_str());
    }
);

both_backends!(
    a_role_granted_by_the_cli_reaches_a_running_node_at_once,
    Backend => |backend: Backend| async move {
        let Some((app, redis, prefix)) = subscribed_node(backend).await else {
            return;
        };
        let (email, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        assert_eq!(me(&app, &at).await["roles"], json!([]));
        let publish = [
            ("TESSERA_REDIS_URL", redis.as_str()),
            ("TESSERA_REDIS_KEY_PREFIX", prefix.as_str()),
        ];
        let out = cli_with(
            &app,
            &publish,
            &["admin", "grant-role", "--email", &email, "--role", "vendor", "--operator", "ops-ana"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        until_me(&app, &at, "grant-role", |me| {
            me["roles"] == json!(["vendor"])
        })
        .await;
    }
);

both_backends!(
    while_the_subscription_is_down_every_view_is_read_from_the_store,
    Backend => |backend: Backend| async move {
        let Some(mut redis) = PrivateRedis::start().await else {
            return;
        };
        let Some(app) = cached_node(backend, redis.url()).await else {
            return;
        };
        let (email, login) = app.signed_in_user("d1").await;
        grant_by_email(&app, &email, "vendor").await;
        let at = s(&login, "access_token");
        me(&app, &at).await;
        let (hits, misses, bypasses) = view_counts(&app).await;
        assert_eq!(me(&app, &at).await["roles"], json!(["vendor"]));
        assert_eq!(view_counts(&app).await, (hits + 1, misses, bypasses));

        redis.kill();
        let start = Instant::now();
        while metric(&app.metrics().await, "tessera_revocation_subscribed") != 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "loss not seen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Invalidations published now would be missed: the store is read, every time.
        app.sql("DELETE FROM user_roles").await;
        for _ in 0..3 {
            assert_eq!(me(&app, &at).await["roles"], json!([]));
        }
        assert_eq!(
            view_counts(&app).await,
            (hits + 1, misses, bypasses + 3),
            "nothing answered from the cache while unsubscribed"
        );

        assert!(redis.restart().await);
        until_subscribed(&app.client, &app.url("/metrics")).await;
        me(&app, &at).await;
        me(&app, &at).await;
        assert_eq!(
            view_counts(&app).await,
            (hits + 2, misses + 1, bypasses + 3),
            "cached again once the subscription is confirmed"
        );
    }
);

//! Login brute-force regressions, on the embedded limiter and on Redis.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, client_from};

/// Runs one case on the in-process limiter and on the Redis limiter.
macro_rules! both_limiters {
    ($name:ident, $trusted:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let options = Options {
                    trusted_proxies: $trusted,
                    ..Options::default()
                };
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await {
                    ($body)(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let options = Options {
                    trusted_proxies: $trusted,
                    redis: true,
                    ..Options::default()
                };
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

/// Five wrong passwords, each through the proxy hop `hop(i)` and for its own account
/// (so only the network budget is spent).
async fn fail_five_via(app: &TestApp, hop: impl Fn(u32) -> String) {
    for i in 1..=5 {
        let res = app
            .login_via(&hop(i), &format!("u{i}@example.com"), "guess")
            .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": email, "password": password, "device_id": "d1"}))
        .send()
        .await
        .unwrap()
}

both_limiters!(
    the_sixth_wrong_password_from_one_ip_is_refused_unchecked,
    vec![],
    |app: TestApp| async move {
        app.register("victim@example.com", PASSWORD).await;
        for _ in 0..5 {
            assert_problem(
                app.login("victim@example.com", "wrong guess", "d1").await,
                401,
                "invalid_credentials",
            )
            .await;
        }
        let res = app.login("victim@example.com", "wrong guess", "d1").await;
        let retry_after: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after > 0 && retry_after <= 600, "{retry_after}");
        assert_eq!(res.headers()["ratelimit-policy"], "\"ip\";q=5;w=600");
        assert!(
            res.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with("\"ip\";r=0;t=")
        );
        let problem = assert_problem(res, 429, "rate_limited").await;
        assert!(problem["detail"].as_str().unwrap().contains("seconds"));

        // The right password does not get through either: nothing is checked.
        assert_eq!(app.password_checks().await, 5);
        assert_problem(
            app.login("victim@example.com", PASSWORD, "d1").await,
            429,
            "rate_limited",
        )
        .await;
        assert_eq!(
            app.password_checks().await,
            5,
            "a refused attempt ran Argon2"
        );
        // Only the five real checks were failures.
        assert_eq!(app.count_events("login_failed").await, 5);

        // Another address is unaffected.
        let other = client_from("127.0.0.2");
        assert_eq!(
            login_from(&app, &other, "victim@example.com", PASSWORD)
                .await
                .status(),
            StatusCode::OK
        );

        // The window passes: the first address may try again.
        app.clock.advance(time::Duration::seconds(601));
        assert_eq!(
            app.login("victim@example.com", PASSWORD, "d1")
                .await
                .status(),
            StatusCode::OK
        );
    }
);

both_limiters!(
    of_thirty_concurrent_wrong_attempts_exactly_five_reach_the_password_check,
    vec![],
    |app: TestApp| async move {
        app.register("victim@example.com", PASSWORD).await;
        let app = Arc::new(app);
        let attempts = (0..30).map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.login("victim@example.com", "wrong guess", "d1")
                    .await
                    .status()
            })
        });
        let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        // The others wait for the five in flight and are then refused: none slips past,
        // and none is refused while a slot could still free up.
        assert_eq!((checked, refused), (5, 25), "{statuses:?}");
        assert_eq!(app.count_events("login_failed").await, 5);
        // What the limit is for: Argon2 ran exactly five times, whatever the answers say.
        assert_eq!(app.password_checks().await, 5);
    }
);

both_limiters!(
    a_success_does_not_reset_the_ip_budget,
    vec![],
    |app: TestApp| async move {
        app.register("attacker@example.com", PASSWORD).await;
        for _ in 0..4 {
            assert_problem(
                app.login("victim@example.com", "guess", "d1").await,
                401,
                "invalid_credentials",
            )
            .await;
        }
        // The attacker's own valid login succeeds, but clears nothing...
        assert_eq!(
            app.login("attacker@example.com", PASSWORD, "d1")
                .await
                .status(),
            StatusCode::OK
        );
        assert_problem(
            app.login("victim@example.com", "guess", "d1").await,
            401,
            "invalid_credentials",
        )
        .await;
        // ...so the budget is spent after five failures all the same.
        assert_problem(
            app.login("attacker@example.com", PASSWORD, "d1").await,
            429,
            "rate_limited",
        )
        .await;
    }
);

both_limiters!(
    eleven_wrong_attempts_on_one_account_from_eleven_ips_are_throttled,
    vec!["127.0.0.1/32"],
    |app: TestApp| async move {
        app.register("victim@example.com", PASSWORD).await;
        for i in 1..=10 {
            let res = app
                .login_via(&format!("198.51.100.{i}"), "victim@example.com", "guess")
                .await;
            assert_problem(res, 401, "invalid_credentials").await;
        }
        let res = app
            .login_via("198.51.100.11", "victim@example.com", "guess")
            .await;
        assert_eq!(res.headers()["ratelimit-policy"], "\"account\";q=10;w=600");
        assert_problem(res, 429, "rate_limited").await;
        // Other accounts from those addresses are not affected by this account's budget.
        app.register("other@example.com", PASSWORD).await;
        assert_eq!(
            app.login_via("198.51.100.12", "other@example.com", PASSWORD)
                .await
                .status(),
            StatusCode::OK
        );
    }
);

both_limiters!(
    two_addresses_in_one_ipv6_64_share_a_budget,
    vec!["127.0.0.1/32"],
    |app: TestApp| async move {
        fail_five_via(&app, |i| format!("2001:db8:1:2::{i}")).await;
        let res = app
            .login_via("2001:db8:1:2:ffff:ffff:ffff:1", "u9@example.com", "guess")
            .await;
        assert_problem(res, 429, "rate_limited").await;
        let res = app
            .login_via("2001:db8:1:3::1", "u9@example.com", "guess")
            .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
);

both_limiters!(
    a_forged_forwarded_for_from_an_untrusted_peer_does_not_escape,
    vec![],
    |app: TestApp| async move {
        fail_five_via(&app, |i| format!("203.0.113.{i}")).await;
        let res = app
            .login_via("203.0.113.99", "u9@example.com", "guess")
            .await;
        assert_problem(res, 429, "rate_limited").await;
    }
);

both_limiters!(
    behind_a_trusted_proxy_the_forwarded_client_is_keyed_and_recorded,
    vec!["127.0.0.1/32"],
    |app: TestApp| async move {
        for _ in 0..5 {
            assert_problem(
                app.login_via("192.0.2.10", "a@example.com", "guess").await,
                401,
                "invalid_credentials",
            )
            .await;
        }
        assert_problem(
            app.login_via("192.0.2.10", "a@example.com", "guess").await,
            429,
            "rate_limited",
        )
        .await;
        // A spoofed hop left of the real client changes nothing.
        assert_problem(
            app.login_via("10.9.9.9, 192.0.2.10", "a@example.com", "guess")
                .await,
            429,
            "rate_limited",
        )
        .await;
        // Another forwarded client through the same proxy has its own budget, and is the IP
        // recorded on its events.
        app.register("b@example.com", PASSWORD).await;
        assert_eq!(
            app.login_via("192.0.2.11", "b@example.com", PASSWORD)
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            app.event_ips("login_succeeded").await,
            vec!["192.0.2.11".to_owned()]
        );
    }
);

both_limiters!(
    a_flood_is_recorded_once_per_window_and_counted_every_time,
    vec![],
    |app: TestApp| async move {
        app.register("victim@example.com", PASSWORD).await;
        for _ in 0..5 {
            app.login("victim@example.com", "guess", "d1").await;
        }
        for _ in 0..3 {
            assert_problem(
                app.login("victim@example.com", "guess", "d1").await,
                429,
                "rate_limited",
            )
            .await;
        }
        assert_eq!(app.count_events("login_rate_limited").await, 1);
        let text = app.metrics().await;
        assert!(
            text.contains("tessera_rate_limited_total{kind=\"ip\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("tessera_logins_total{outcome=\"rate_limited\"} 3"),
            "{text}"
        );
    }
);

both_limiters!(
    wrong_current_passwords_spend_the_session_budget_and_the_account_budget,
    vec![],
    |app: TestApp| async move {
        let (email, login) = app.signed_in_user("d1").await;
        let at = login["access_token"].as_str().unwrap();
        let body = json!({"current_password": "wrong guess", "new_password": "a new passphrase"});
        for _ in 0..5 {
            assert_problem(
                app.post_auth("/v1/me/password", at, body.clone()).await,
                401,
                "invalid_credentials",
            )
            .await;
        }
        assert_problem(
            app.post_auth("/v1/me/password", at, body).await,
            429,
            "rate_limited",
        )
        .await;
        // Those five were guesses at the account's password too: five more wrong logins,
        // each from an address of its own, fill the account's budget of ten.
        for i in 1..=5 {
            let client = client_from(&format!("127.0.1.{i}"));
            let res = login_from(&app, &client, &email, "guess").await;
            assert_problem(res, 401, "invalid_credentials").await;
        }
        let client = client_from("127.0.1.9");
        let res = login_from(&app, &client, &email, PASSWORD).await;
        assert_problem(res, 429, "rate_limited").await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_stay_limited_and_answered_while_redis_is_down_and_redis_resumes_by_itself() {
    let Some(mut redis) = crate::helpers::PrivateRedis::start().await else {
        return;
    };
    let options = Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    };
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await else {
        return;
    };
    let ready = |app: &TestApp| app.client.get(app.url("/readyz")).send();
    assert_eq!(ready(&app).await.unwrap().status(), StatusCode::OK);
    for _ in 0..2 {
        assert_problem(
            app.login("victim@example.com", "guess", "d1").await,
            401,
            "invalid_credentials",
        )
        .await;
    }

    redis.kill();
    // Answered every time (no 500, no hang), and still limited: per node now, so the
    // budget starts afresh, but it is a budget, never "allow all".
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let res = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            app.login("victim@example.com", "guess", "d1"),
        )
        .await
        .expect("a login is answered while Redis is down");
        statuses.push(res.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses[5..], [429, 429, 429], "{statuses:?}");
    // Still serving safely (per-node budgets), so still ready: a 503 here would take
    // every node out of the load balancer at once. The degradation is named instead.
    let res = ready(&app).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["rate_limiter"], "degraded", "{body}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tessera_rate_limiter_degraded 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("tessera_rate_limiter_fallback_total 0\n"),
        "{metrics}"
    );

    // Redis comes back: the shared path resumes without a restart, and without traffic:
    // readiness probes Redis itself, so no login is needed to notice.
    assert!(redis.restart().await);
    let mut recovered = false;
    for _ in 0..40 {
        let res = ready(&app).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.unwrap();
        if body["checks"]["rate_limiter"] == "ok" {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(recovered, "readiness did not recover after Redis returned");
}

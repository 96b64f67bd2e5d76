//! Abuse resistance: fair limits (attempts in flight wait, only failures lock out), known
//! devices, the registration limit, sessions that strangers cannot lock, and overload as a
//! prompt 503. On the embedded limiter and on Redis where the limiter decides.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::config::Config;

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, client_from};

/// Runs one case on the in-process limiter and on the Redis limiter.
macro_rules! both_limiters {
    ($name:ident, $configure:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let options = Options {
                    configure: $configure,
                    ..Options::default()
                };
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await {
                    ($body)(Arc::new(app)).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let options = Options {
                    configure: $configure,
                    redis: true,
                    ..Options::default()
                };
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await {
                    ($body)(Arc::new(app)).await;
                }
            }
        }
    };
}

async fn login_with(app: &TestApp, client: &reqwest::Client, body: Value) -> reqwest::Response {
    client
        .post(app.url("/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Ten wrong passwords for `email`, each from an address of its own: the account's
/// budget is spent while no network's is.
async fn flood_account(app: &TestApp, email: &str) {
    for i in 1..=10 {
        let client = client_from(&format!("127.0.3.{i}"));
        let body = json!({"email": email, "password": "guess", "device_id": "attacker"});
        assert_problem(
            login_with(app, &client, body).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    let client = client_from("127.0.3.200");
    let body = json!({"email": email, "password": PASSWORD, "device_id": "attacker"});
    assert_problem(login_with(app, &client, body).await, 429, "rate_limited").await;
}

both_limiters!(
    twenty_four_concurrent_correct_logins_from_one_address_all_succeed,
    None,
    |app: Arc<TestApp>| async move {
        app.register("office@example.com", PASSWORD).await;
        let logins = (0..24).map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.login("office@example.com", PASSWORD, &format!("desk-{i}"))
                    .await
                    .status()
            })
        });
        let statuses: Vec<StatusCode> = futures::future::join_all(logins)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        assert_eq!(app.count_events("login_succeeded").await, 24);
    }
);

both_limiters!(
    a_known_device_gets_in_while_its_account_is_flooded_from_many_addresses,
    None,
    |app: Arc<TestApp>| async move {
        app.register("owner@example.com", PASSWORD).await;
        let first = app.login_ok("owner@example.com", PASSWORD, "phone").await;
        let device_token = first["device_token"].as_str().unwrap().to_owned();
        assert!(device_token.starts_with("dt1."), "{first}");

        flood_account(&app, "owner@example.com").await;

        let phone = client_from("127.0.4.1");
        let with_token = json!({"email": "owner@example.com", "password": PASSWORD,
            "device_id": "phone", "device_token": device_token});
        let res = login_with(&app, &phone, with_token).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert!(body["device_token"].as_str().unwrap().starts_with("dt1."));

        // Its own budget still stops guessing through it: five failures, then 429.
        for _ in 0..5 {
            let guess = json!({"email": "owner@example.com", "password": "guess",
                "device_id": "phone", "device_token": device_token});
            assert_problem(
                login_with(&app, &phone, guess).await,
                401,
                "invalid_credentials",
            )
            .await;
        }
        let again = json!({"email": "owner@example.com", "password": PASSWORD,
            "device_id": "phone", "device_token": device_token});
        assert_problem(login_with(&app, &phone, again).await, 429, "rate_limited").await;
    }
);

both_limiters!(
    a_foreign_forged_or_misbound_device_token_changes_nothing,
    None,
    |app: Arc<TestApp>| async move {
        app.register("owner@example.com", PASSWORD).await;
        app.register("other@example.com", PASSWORD).await;
        let own = app.login_ok("owner@example.com", PASSWORD, "phone").await;
        let own = own["device_token"].as_str().unwrap().to_owned();
        let foreign = app.login_ok("other@example.com", PASSWORD, "phone").await;
        let foreign = foreign["device_token"].as_str().unwrap().to_owned();
        // The same token with one character of its tag changed.
        let mut forged = own.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });

        flood_account(&app, "owner@example.com").await;

        let client = client_from("127.0.4.2");
        for (token, device) in [
            (foreign.as_str(), "phone"),
            (forged.as_str(), "phone"),
            (own.as_str(), "laptop"),
            ("dt1.garbage.garbage", "phone"),
        ] {
            let body = json!({"email": "owner@example.com", "password": PASSWORD,
                "device_id": device, "device_token": token});
            assert_problem(login_with(&app, &client, body).await, 429, "rate_limited").await;
        }
    }
);

both_limiters!(
    the_eleventh_registration_from_one_address_in_an_hour_is_refused_even_for_a_taken_address,
    None,
    |app: Arc<TestApp>| async move {
        app.register("taken@example.com", PASSWORD).await;
        // Nine more attempts of every outcome: created, taken, malformed.
        for i in 0..3 {
            app.register(&format!("new-{i}@example.com"), PASSWORD)
                .await;
        }
        for _ in 0..3 {
            let res = app
                .post(
                    "/v1/users",
                    json!({"email": "taken@example.com", "password": PASSWORD}),
                )
                .await;
            assert_problem(res, 409, "email_taken").await;
        }
        for _ in 0..3 {
            let res = app
                .post(
                    "/v1/users",
                    json!({"email": "not an address", "password": PASSWORD}),
                )
                .await;
            assert_problem(res, 400, "invalid_request").await;
        }
        let checks_before = app.password_checks().await;
        let res = app
            .post(
                "/v1/users",
                json!({"email": "taken@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            res.headers()["retry-after"].to_str().unwrap(),
            "3600",
            "the first attempt leaves the window an hour after it was made"
        );
        assert_problem(res, 429, "rate_limited").await;
        // Another address is not limited by this one's attempts.
        let res = client_from("127.0.5.1")
            .post(app.url("/v1/users"))
            .json(&json!({"email": "elsewhere@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(app.password_checks().await, checks_before);
        app.clock.advance(time::Duration::hours(1));
        app.register("an-hour-later@example.com", PASSWORD).await;
    }
);

both_limiters!(
    a_live_session_changes_its_password_while_strangers_flood_the_account,
    None,
    |app: Arc<TestApp>| async move {
        let (email, login) = app.signed_in_user("d1").await;
        let at = login["access_token"].as_str().unwrap().to_owned();
        flood_account(&app, &email).await;
        let res = app
            .post_auth(
                "/v1/me/password",
                &at,
                json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
);

fn one_worker_no_queue(config: &mut Config) {
    config.hash_workers = 1;
    config.hash_queue = 1;
    config.hash_wait_ms = 1;
}

both_limiters!(
    a_login_that_gets_no_hashing_slot_in_time_is_a_503_with_retry_after,
    Some(one_worker_no_queue),
    |app: Arc<TestApp>| async move {
        app.register("busy@example.com", PASSWORD).await;
        let logins = (0..16).map(|i| {
            let app = app.clone();
            let client = client_from(&format!("127.0.6.{}", i + 1));
            tokio::spawn(async move {
                let body = json!({"email": "busy@example.com", "password": PASSWORD,
                    "device_id": format!("d{i}")});
                login_with(&app, &client, body).await
            })
        });
        let mut overloaded = 0;
        for res in futures::future::join_all(logins).await {
            let res = res.unwrap();
            match res.status() {
                StatusCode::OK => {}
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(res.headers()["retry-after"].to_str().unwrap(), "1");
                    assert_problem(res, 503, "service_unavailable").await;
                    overloaded += 1;
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert!(
            overloaded > 0,
            "one worker and no queue should refuse some of 16"
        );
        // Overload is not a failure: the budgets are untouched and the next login works.
        assert_eq!(app.count_events("login_failed").await, 0);
        let res = app.login("busy@example.com", PASSWORD, "after").await;
        assert_eq!(res.status(), StatusCode::OK);
        // The account's whole budget of ten failures is still there.
        for i in 1..=10 {
            let client = client_from(&format!("127.0.7.{i}"));
            let body = json!({"email": "busy@example.com", "password": "guess",
                "device_id": "guesser"});
            assert_problem(
                login_with(&app, &client, body).await,
                401,
                "invalid_credentials",
            )
            .await;
        }
    }
);

//! Password reset by email (API.md "Password reset"): the request's constant answer and
//! its limits, and refusals of bad input. The emailed link end to end: `reset_mail.rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem, client_from, retry_after};

async fn ask_from(app: &TestApp, ip: &str, email: &str) -> reqwest::Response {
    client_from(ip)
        .post(app.url("/v1/password-reset"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

/// Status, content type and the exact body bytes of an answer.
async fn answer(res: reqwest::Response) -> (StatusCode, String, Vec<u8>) {
    let status = res.status();
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    (status, ct, res.bytes().await.unwrap().to_vec())
}

/// A 429 for the reset budget `kind`, with a `Retry-After` within the hour.
async fn assert_limited(res: reqwest::Response, kind: &str) {
    retry_after(&res);
    let policy = res.headers()["ratelimit-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.starts_with(&format!("\"{kind}\"")), "{policy}");
    assert_problem(res, 429, "rate_limited").await;
}

both_backends!(
    known_unknown_and_malformed_addresses_get_byte_identical_answers,
    |app: TestApp| async move {
        app.register("known@example.com", PASSWORD).await;
        let known = answer(app.ask_reset("known@example.com").await).await;
        assert_eq!(known.0, StatusCode::ACCEPTED);
        assert_eq!(known.1, "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&known.2).unwrap(),
            json!({"status": "accepted"})
        );
        for other in [
            "nobody@example.com",
            "KNOWN@example.com ",
            "not an address",
            "",
        ] {
            assert_eq!(answer(app.ask_reset(other).await).await, known, "{other:?}");
        }
    }
);

both_backends!(
    the_fourth_request_for_one_address_in_an_hour_is_refused_whether_or_not_it_exists,
    |app: TestApp| async move {
        app.register("ana@example.com", PASSWORD).await;
        for address in ["ana@example.com", "ghost@example.com"] {
            // Spelled three ways from three networks: one address, one budget.
            let upper = address.to_uppercase();
            let padded = format!("  {address}");
            for (i, spelling) in [address, upper.as_str(), padded.as_str()]
                .iter()
                .enumerate()
            {
                let res = ask_from(&app, &format!("127.0.1.{}", i + 1), spelling).await;
                assert_eq!(res.status(), StatusCode::ACCEPTED, "{spelling}");
            }
            assert_limited(ask_from(&app, "127.0.1.9", address).await, "reset_account").await;
        }
        // Other addresses keep their own budgets.
        assert_eq!(
            app.ask_reset("bob@example.com").await.status(),
            StatusCode::ACCEPTED
        );
        // An hour later the address may ask again.
        app.clock.advance(time::Duration::hours(1));
        assert_eq!(
            app.ask_reset("ana@example.com").await.status(),
            StatusCode::ACCEPTED
        );
    }
);

both_backends!(
    the_eleventh_request_from_one_network_is_refused_whatever_the_earlier_outcomes,
    |app: TestApp| async move {
        app.register("known@example.com", PASSWORD).await;
        let long = format!("{}@example.com", "a".repeat(300));
        for i in 0..10 {
            let res = match i {
                0 => app.ask_reset("known@example.com").await,
                1 => app.ask_reset("not an address").await,
                2 => {
                    // A 400 spends the budget too: no free probing with absurd input.
                    let res = app.ask_reset(&long).await;
                    assert_problem(res, 400, "invalid_request").await;
                    continue;
                }
                _ => app.ask_reset(&format!("visitor{i}@example.com")).await,
            };
            assert_eq!(res.status(), StatusCode::ACCEPTED, "request {i}");
        }
        assert_limited(app.ask_reset("fresh@example.com").await, "reset_ip").await;
        // Another network is not affected.
        let res = ask_from(&app, "127.0.2.1", "fresh@example.com").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
);

both_backends!(
    bad_reset_input_is_refused_with_problem_details,
    |app: TestApp| async move {
        // An over-long address is malformed input, not an ordinary request.
        let long = format!("{}@example.com", "a".repeat(250));
        let body = assert_problem(app.ask_reset(&long).await, 400, "invalid_request").await;
        assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");
        for bad in [json!({}), json!({"email": 7}), json!({"email": null})] {
            let res = app.post("/v1/password-reset", bad.clone()).await;
            assert_problem(res, 400, "invalid_request").await;
        }

        let forged = format!("pr_{}", "A".repeat(43));
        for token in ["", "pr_", "rt_not-a-reset-token", "pr_!!!", forged.as_str()] {
            let res = app.complete_reset(token, "a brand new passphrase").await;
            assert_problem(res, 400, "invalid_reset_token").await;
        }
        // The password is judged before the token, whatever the token.
        for (token, short) in [(forged.as_str(), ""), ("pr_!!!", "seven77")] {
            let body = assert_problem(
                app.complete_reset(token, short).await,
                400,
                "invalid_request",
            )
            .await;
            assert!(
                body["detail"].as_str().unwrap().contains("new_password"),
                "{body}"
            );
        }
        let res = app.complete_reset(&forged, &"x".repeat(257)).await;
        assert_problem(res, 400, "invalid_request").await;
        for bad in [
            json!({"token": forged}),
            json!({"new_password": PASSWORD}),
            json!({"token": 1, "new_password": PASSWORD}),
        ] {
            let res = app.post("/v1/password-reset/complete", bad).await;
            assert_problem(res, 400, "invalid_request").await;
        }
        let res = app
            .client
            .post(app.url("/v1/password-reset"))
            .header("content-type", "text/plain")
            .body("email=a@example.com")
            .send()
            .await
            .unwrap();
        assert_problem(res, 415, "unsupported_media_type").await;
        // None of it touched the account.
        app.register("still@example.com", PASSWORD).await;
        let res = app.login("still@example.com", PASSWORD, "d").await;
        assert_eq!(res.status(), StatusCode::OK);
    }
);

//! Bearer authentication and the account endpoints.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_cut_off, assert_problem, s};

both_backends!(
    a_missing_or_forged_bearer_token_is_unauthorized,
    |app: TestApp| async move {
        let res = app.client.get(app.url("/v1/me")).send().await.unwrap();
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert_problem(res, 401, "unauthorized").await;

        let (_, login) = app.signed_in_user("d1").await;
        let token = s(&login, "access_token");
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(parts[1].as_bytes())
                .unwrap(),
        )
        .unwrap();
        claims["acr"] = json!("aal2");
        let payload = data_encoding::BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        for bad in [tampered.as_str(), "not.a.jwt", "x"] {
            let res = app.get_auth("/v1/me", bad).await;
            assert_eq!(
                res.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\""
            );
            assert_problem(res, 401, "unauthorized").await;
        }
        let res = app
            .client
            .get(app.url("/v1/me"))
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "unauthorized").await;
    }
);

both_backends!(
    an_access_token_dies_with_its_expiry,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        app.clock.advance(time::Duration::seconds(900));
        let res = app.get_auth("/v1/me", &s(&login, "access_token")).await;
        assert_problem(res, 401, "unauthorized").await;
    }
);

both_backends!(
    changing_the_password_revokes_the_other_sessions,
    |app: TestApp| async move {
        let (email, laptop) = app.signed_in_user("laptop").await;
        let phone = app.login_ok(&email, PASSWORD, "phone").await;
        let laptop_at = s(&laptop, "access_token");

        let res = app
            .post_auth(
                "/v1/me/password",
                &laptop_at,
                json!({"current_password": "wrong password", "new_password": "a new passphrase"}),
            )
            .await;
        assert_problem(res, 401, "invalid_credentials").await;
        let res = app
            .post_auth(
                "/v1/me/password",
                &laptop_at,
                json!({"current_password": PASSWORD, "new_password": "short"}),
            )
            .await;
        assert_problem(res, 400, "invalid_request").await;
        // Neither refused request changed anything.
        assert_eq!(
            app.get_auth("/v1/me", &s(&phone, "access_token"))
                .await
                .status(),
            StatusCode::OK
        );

        let res = app
            .post_auth(
                "/v1/me/password",
                &laptop_at,
                json!({"current_password": PASSWORD, "new_password": "a new passphrase"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);

        assert_eq!(
            app.get_auth("/v1/me", &laptop_at).await.status(),
            StatusCode::OK
        );
        assert_cut_off(&app, &phone).await;
        assert_problem(
            app.login(&email, PASSWORD, "tablet").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(
            app.login(&email, "a new passphrase", "tablet")
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(app.count_events("password_changed").await, 1);
    }
);

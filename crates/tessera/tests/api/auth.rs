//! Registration, login and the input rules of the contract.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem};

both_backends!(
    registration_returns_the_user_and_refuses_a_taken_address,
    |app: TestApp| async move {
        let body = app.register("Ana@Example.com", PASSWORD).await;
        assert_eq!(body["email"], "Ana@Example.com");
        assert!(uuid::Uuid::parse_str(body["user_id"].as_str().unwrap()).is_ok());
        let res = app
            .post(
                "/v1/users",
                json!({"email": "ana@EXAMPLE.com", "password": PASSWORD}),
            )
            .await;
        assert_problem(res, 409, "email_taken").await;
    }
);

both_backends!(
    out_of_bounds_fields_are_refused_naming_the_field,
    |app: TestApp| async move {
        let cases = [
            (
                json!({"email": "not-an-address", "password": PASSWORD}),
                "email",
            ),
            (
                json!({"email": "a@example.com", "password": "short"}),
                "password",
            ),
            (
                json!({"email": "a@example.com", "password": "x".repeat(257)}),
                "password",
            ),
            (json!({"email": "a@example.com"}), "password"),
            (json!({"email": 5, "password": PASSWORD}), "email"),
        ];
        for (body, field) in cases {
            let res = app.post("/v1/users", body).await;
            let problem = assert_problem(res, 400, "invalid_request").await;
            assert!(
                problem["detail"].as_str().unwrap().contains(field),
                "{problem}"
            );
        }
        let login_cases = [
            (
                json!({"email": "a@example.com", "password": PASSWORD, "device_id": ""}),
                "device_id",
            ),
            (
                json!({"email": "a@example.com", "password": PASSWORD, "device_id": "has space"}),
                "device_id",
            ),
            (
                json!({"email": "a@example.com", "password": PASSWORD, "device_id": "x".repeat(129)}),
                "device_id",
            ),
            (
                json!({"email": "a@example.com", "password": PASSWORD, "device_id": "d1", "device_name": "n".repeat(101)}),
                "device_name",
            ),
            (
                json!({"email": "a@example.com", "password": PASSWORD}),
                "device_id",
            ),
        ];
        for (body, field) in login_cases {
            let res = app.post("/v1/auth/login", body).await;
            let problem = assert_problem(res, 400, "invalid_request").await;
            assert!(
                problem["detail"].as_str().unwrap().contains(field),
                "{problem}"
            );
        }
        // Nothing was created by any of the refused requests.
        assert_eq!(app.count_events("user_registered").await, 0);
    }
);

both_backends!(
    malformed_oversized_and_mistyped_bodies_get_400_413_415,
    |app: TestApp| async move {
        let res = app
            .client
            .post(app.url("/v1/users"))
            .header("content-type", "application/json")
            .body("{\"email\": ")
            .send()
            .await
            .unwrap();
        assert_problem(res, 400, "invalid_request").await;

        let res = app
            .client
            .post(app.url("/v1/users"))
            .header("content-type", "text/plain")
            .body("email=a@example.com")
            .send()
            .await
            .unwrap();
        assert_problem(res, 415, "unsupported_media_type").await;

        let huge = json!({"email": "a@example.com", "password": "x".repeat(70 * 1024)});
        let res = app.post("/v1/users", huge).await;
        assert_problem(res, 413, "payload_too_large").await;
    }
);

both_backends!(
    login_returns_tokens_for_the_device,
    |app: TestApp| async move {
        let (_, body) = app.signed_in_user("laptop-1").await;
        assert_eq!(body["status"], "authenticated");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(body["refresh_token"].as_str().unwrap().starts_with("rt_"));
        assert!(uuid::Uuid::parse_str(body["session_id"].as_str().unwrap()).is_ok());
        let res = app
            .get_auth("/v1/me", body["access_token"].as_str().unwrap())
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let me: serde_json::Value = res.json().await.unwrap();
        assert_eq!(me["roles"], json!([]));
        assert_eq!(
            me["mfa"],
            json!({"totp_enabled": false, "recovery_codes_remaining": 0})
        );
        assert_eq!(app.count_events("login_succeeded").await, 1);
        assert_eq!(app.count_events("new_device").await, 1);
    }
);

both_backends!(
    wrong_password_and_unknown_email_get_the_same_401,
    |app: TestApp| async move {
        app.register("bo@example.com", PASSWORD).await;
        let wrong = app.login("bo@example.com", "not the password", "d1").await;
        let wrong = assert_problem(wrong, 401, "invalid_credentials").await;
        let unknown = app
            .login("nobody@example.com", "not the password", "d1")
            .await;
        let unknown = assert_problem(unknown, 401, "invalid_credentials").await;
        assert_eq!(wrong, unknown);
        assert_eq!(app.count_events("login_failed").await, 1);
    }
);

both_backends!(another_provider_is_refused, |app: TestApp| async move {
    let res = app
        .post(
            "/v1/auth/login",
            json!({"email": "a@example.com", "password": PASSWORD, "device_id": "d", "provider": "google"}),
        )
        .await;
    assert_problem(res, 400, "unsupported_provider").await;
});

both_backends!(
    logging_in_again_on_a_device_supersedes_its_session,
    |app: TestApp| async move {
        let (email, first) = app.signed_in_user("phone").await;
        let second = app
            .login(&email, PASSWORD, "phone")
            .await
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_ne!(first["session_id"], second["session_id"]);
        let res = app
            .get_auth("/v1/me", first["access_token"].as_str().unwrap())
            .await;
        assert_problem(res, 401, "session_revoked").await;
        let res = app.refresh(first["refresh_token"].as_str().unwrap()).await;
        assert_problem(res, 401, "session_revoked").await;
        let res = app
            .get_auth("/v1/me", second["access_token"].as_str().unwrap())
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        // Same device again: not a new device.
        assert_eq!(app.count_events("new_device").await, 1);
    }
);

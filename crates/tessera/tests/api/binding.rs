//! Binding a new authenticator needs the account's password: a stolen access token alone
//! must not let a thief enrol his own phone and so pass every step-up check.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem, s};

const SETUP: &str = "/v1/mfa/totp/setup";

both_backends!(
    a_password_only_token_cannot_enrol_totp_without_the_password,
    |app: TestApp| async move {
        // The thief holds the access token of a vendor who signed in with the password.
        let (email, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        let me: Value = app.me(&at).await;
        app.grant_role(&s(&me, "user_id"), "vendor").await;

        let body = assert_problem(
            app.post_auth(SETUP, &at, json!({})).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(s(&body, "detail").contains("password"), "{body}");
        assert_problem(
            app.post_auth(SETUP, &at, json!({"password": ""})).await,
            400,
            "invalid_request",
        )
        .await;

        // Each wrong password is a failed login, decided on the session's own budget (5)
        // and charged to the account's too.
        for _ in 0..5 {
            assert_problem(
                app.post_auth(SETUP, &at, json!({"password": "not the password"}))
                    .await,
                401,
                "invalid_credentials",
            )
            .await;
        }
        assert_eq!(app.count_events("login_failed").await, 5);
        // Spent: the right password is refused unchecked now through this session, while
        // the owner (five failures left on the account) still signs in elsewhere.
        assert_problem(
            app.post_auth(SETUP, &at, json!({"password": PASSWORD}))
                .await,
            429,
            "rate_limited",
        )
        .await;
        assert_eq!(
            app.login(&email, PASSWORD, "d2").await.status(),
            StatusCode::OK
        );

        // Nothing was bound, so nothing raises this session to AAL2.
        assert_problem(
            app.post_auth("/v1/mfa/totp/confirm", &at, json!({"code": "123456"}))
                .await,
            409,
            "no_pending_setup",
        )
        .await;
        let me: Value = app.me(&at).await;
        assert_eq!(me["mfa"]["totp_enabled"], false);
        assert_problem(
            app.post_auth("/v1/authorize", &at, json!({"action": "vendor.payout"}))
                .await,
            403,
            "mfa_enrollment_required",
        )
        .await;
    }
);

both_backends!(
    the_owner_enrols_with_the_password_and_a_success_gives_its_slot_back,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        for _ in 0..4 {
            let res = app
                .post_auth(SETUP, &at, json!({"password": "wrong"}))
                .await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        // Four failures leave the session one slot; successes do not use it up.
        for _ in 0..3 {
            let res = app
                .post_auth(SETUP, &at, json!({"password": PASSWORD}))
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            let setup: Value = res.json().await.unwrap();
            assert!(s(&setup, "otpauth_uri").starts_with("otpauth://totp/"));
        }
    }
);

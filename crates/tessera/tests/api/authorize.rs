//! `/v1/authorize` and step-up: the step-up policy's checks in order (role, enrolment, a
//! recent second factor), on SQLite and Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem, claims, oathtool, s};

both_backends!(
    authorize_applies_the_step_up_policy_in_order,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        let authorize =
            |action: &'static str| app.post_auth("/v1/authorize", &at, json!({"action": action}));
        assert_problem(authorize("nuke.everything").await, 400, "unknown_action").await;
        assert_problem(authorize("vendor.payout").await, 403, "forbidden").await;
        let me: Value = app.me(&at).await;
        app.grant_role(&s(&me, "user_id"), "vendor").await;
        assert_problem(
            authorize("vendor.payout").await,
            403,
            "mfa_enrollment_required",
        )
        .await;

        let setup: Value = app
            .post_auth("/v1/mfa/totp/setup", &at, json!({"password": PASSWORD}))
            .await
            .json()
            .await
            .unwrap();
        let secret = s(&setup, "secret");
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        assert_eq!(
            app.post_auth("/v1/mfa/totp/confirm", &at, json!({"code": code}))
                .await
                .status(),
            StatusCode::OK
        );
        // Confirming counts as an MFA on this session.
        let res = authorize("vendor.payout").await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["allowed"], true);
        assert_eq!(body["action"], "vendor.payout");
        assert_eq!(body["session_id"], login["session_id"]);

        app.clock.advance(time::Duration::seconds(301));
        let res = authorize("vendor.payout").await;
        assert_eq!(
            res.headers()["www-authenticate"].to_str().unwrap(),
            "Bearer error=\"insufficient_user_authentication\", error_description=\"a second factor within the last 300 seconds is required\", max_age=300"
        );
        assert_problem(res, 401, "step_up_required").await;

        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let res = app
            .post_auth("/v1/mfa/step-up", &at, json!({"code": code}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let stepped: Value = res.json().await.unwrap();
        assert_eq!(stepped["token_type"], "Bearer");
        let c = claims(&s(&stepped, "access_token"));
        assert_eq!(c["acr"], "aal2");
        assert_eq!(
            c["auth_time"].as_i64().unwrap(),
            app.clock.now().unix_timestamp()
        );
        assert_eq!(authorize("vendor.payout").await.status(), StatusCode::OK);
        assert_eq!(app.count_events("step_up_succeeded").await, 1);
    }
);

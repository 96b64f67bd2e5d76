//! The admin API: an MFA reset that ends the user's sessions, roles, revoking sessions;
//! only for an admin with a fresh second factor, on SQLite and Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem, enrolled, enrolled_admin, login_mfa, s};

/// An admin with a fresh MFA, and a target user with TOTP and two sessions.
async fn admin_and_target(app: &TestApp) -> Option<(String, String, Value, Value)> {
    let admin_at = enrolled_admin(app).await?;
    let (target_email, target_login, _, codes) = enrolled(app, "target-phone").await?;
    let pending = app.login_ok(&target_email, PASSWORD, "target-laptop").await;
    let second: Value = login_mfa(app, &s(&pending, "mfa_token"), &codes[0])
        .await
        .json()
        .await
        .unwrap();
    Some((admin_at, target_email, target_login, second))
}

both_backends!(
    an_admin_reset_removes_the_factor_and_ends_the_sessions,
    |app: TestApp| async move {
        let Some((admin_at, target_email, target_login, second)) = admin_and_target(&app).await
        else {
            return;
        };
        let target_me: Value = app.me(&s(&target_login, "access_token")).await;
        let target_id = s(&target_me, "user_id");

        // A non-admin cannot; an unknown user is 404; a reason is required.
        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/mfa/reset"),
                &s(&second, "access_token"),
                json!({"reason": "x"}),
            )
            .await;
        assert_problem(res, 403, "forbidden").await;
        let res = app
            .post_auth(
                &format!("/v1/admin/users/{}/mfa/reset", uuid::Uuid::new_v4()),
                &admin_at,
                json!({"reason": "ticket 1"}),
            )
            .await;
        assert_problem(res, 404, "not_found").await;
        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/mfa/reset"),
                &admin_at,
                json!({"reason": " "}),
            )
            .await;
        assert_problem(res, 400, "invalid_request").await;

        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/mfa/reset"),
                &admin_at,
                json!({"reason": "ticket 4711: identity verified by video call"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        for token in [s(&target_login, "access_token"), s(&second, "access_token")] {
            assert_problem(app.get_auth("/v1/me", &token).await, 401, "session_revoked").await;
        }
        let fresh = app.login_ok(&target_email, PASSWORD, "target-new").await;
        assert_eq!(fresh["status"], "authenticated");
        assert_eq!(app.count_events("mfa_reset_by_admin").await, 1);

        // The admin's MFA goes stale: the admin API asks for a step-up.
        app.clock.advance(time::Duration::seconds(301));
        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/sessions/revoke"),
                &admin_at,
                json!({}),
            )
            .await;
        assert_problem(res, 401, "step_up_required").await;
    }
);

both_backends!(
    admins_set_roles_and_revoke_sessions,
    |app: TestApp| async move {
        let Some((admin_at, _, target_login, _)) = admin_and_target(&app).await else {
            return;
        };
        let target_at = s(&target_login, "access_token");
        let target_me: Value = app.me(&target_at).await;
        let target_id = s(&target_me, "user_id");
        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/roles"),
                &admin_at,
                json!({"roles": ["vendor", "support", "vendor"]}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.json::<Value>().await.unwrap()["roles"],
            json!(["support", "vendor"])
        );
        let me: Value = app.me(&target_at).await;
        assert_eq!(me["roles"], json!(["support", "vendor"]));
        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/roles"),
                &admin_at,
                json!({"roles": ["Bad Role"]}),
            )
            .await;
        assert_problem(res, 400, "invalid_request").await;

        let res = app
            .post_auth(
                &format!("/v1/admin/users/{target_id}/sessions/revoke"),
                &admin_at,
                json!({}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 2);
        assert_problem(
            app.get_auth("/v1/me", &target_at).await,
            401,
            "session_revoked",
        )
        .await;
    }
);

//! TOTP MFA over HTTP: codes come from the real `oathtool`, QR codes are decoded by
//! `zbarimg`, on SQLite and Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;
use time::OffsetDateTime;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, s};

/// The TOTP code `oathtool` computes for `secret` at `at` (the server's manual clock).
/// None, after the skip notice, when oathtool is not installed.
pub(crate) fn oathtool(secret: &str, at: OffsetDateTime) -> Option<String> {
    let now = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match std::process::Command::new("oathtool")
        .args(["--totp", "-b", "--now", &now, secret])
        .output()
    {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
        }
        _ => {
            tessera_adapters::testing::skip_or_fail("oathtool", "apt-get install oathtool");
            None
        }
    }
}

/// A signed-in user who enrolled TOTP. Returns (email, login body, secret, recovery codes).
pub(crate) async fn enrolled(
    app: &TestApp,
    device: &str,
) -> Option<(String, Value, String, Vec<String>)> {
    let (email, login) = app.signed_in_user(device).await;
    let (secret, codes) = enroll(app, &s(&login, "access_token")).await?;
    Some((email, login, secret, codes))
}

/// Enrols TOTP for the session behind `at` (set-up, then a current code). Returns (secret,
/// recovery codes).
pub(crate) async fn enroll(app: &TestApp, at: &str) -> Option<(String, Vec<String>)> {
    let setup: Value = app
        .post_auth("/v1/mfa/totp/setup", at, json!({"password": PASSWORD}))
        .await
        .json()
        .await
        .unwrap();
    let secret = s(&setup, "secret");
    let code = oathtool(&secret, app.clock.now())?;
    let res = app
        .post_auth("/v1/mfa/totp/confirm", at, json!({"code": code}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    Some((secret, codes))
}

/// The login's second step.
pub(crate) async fn login_mfa(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post(
        "/v1/auth/login/mfa",
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

/// A six-digit code that is not `right`.
fn wrong_code(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// Moves the clock to the next TOTP step, so a fresh code exists.
fn next_step(app: &TestApp) {
    app.clock.advance(time::Duration::seconds(30));
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

both_backends!(
    enrolment_needs_a_right_code_and_returns_ten_recovery_codes,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        assert_problem(
            app.post_auth("/v1/mfa/totp/confirm", &at, json!({"code": "123456"}))
                .await,
            409,
            "no_pending_setup",
        )
        .await;

        let first: Value = app
            .post_auth("/v1/mfa/totp/setup", &at, json!({"password": PASSWORD}))
            .await
            .json()
            .await
            .unwrap();
        let secret = s(&first, "secret");
        assert!(secret.len() >= 32, "at least 160 bits of base32: {secret}");
        assert!(s(&first, "otpauth_uri").starts_with("otpauth://totp/"));
        assert!(s(&first, "otpauth_uri").contains(&format!("secret={secret}")));
        assert!(s(&first, "otpauth_uri").contains("algorithm=SHA1&digits=6&period=30"));
        assert!(s(&first, "qr_svg").contains("<svg"));

        // Setup again replaces the pending secret: the first one's codes no longer confirm.
        let second: Value = app
            .post_auth("/v1/mfa/totp/setup", &at, json!({"password": PASSWORD}))
            .await
            .json()
            .await
            .unwrap();
        let secret2 = s(&second, "secret");
        assert_ne!(secret, secret2);
        let Some(stale) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let Some(code) = oathtool(&secret2, app.clock.now()) else {
            return;
        };
        if stale != code {
            assert_problem(
                app.post_auth("/v1/mfa/totp/confirm", &at, json!({"code": stale}))
                    .await,
                401,
                "invalid_mfa_code",
            )
            .await;
        }
        let wrong = wrong_code(&code);
        assert_problem(
            app.post_auth("/v1/mfa/totp/confirm", &at, json!({"code": wrong}))
                .await,
            401,
            "invalid_mfa_code",
        )
        .await;
        let res = app
            .post_auth("/v1/mfa/totp/confirm", &at, json!({"code": code}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let codes: Vec<&str> = body["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(codes.len(), 10);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 10);

        let me: Value = app.get_auth("/v1/me", &at).await.json().await.unwrap();
        assert_eq!(
            me["mfa"],
            json!({"totp_enabled": true, "recovery_codes_remaining": 10})
        );
        assert_problem(
            app.post_auth("/v1/mfa/totp/setup", &at, json!({"password": PASSWORD}))
                .await,
            409,
            "mfa_already_enabled",
        )
        .await;
        assert_problem(
            app.post_auth("/v1/mfa/totp/confirm", &at, json!({"code": code}))
                .await,
            409,
            "mfa_already_enabled",
        )
        .await;
        assert_eq!(app.count_events("mfa_enabled").await, 1);

        // The secret is not readable in the database.
        let raw = app.raw_totp_row().await;
        assert!(!raw.contains(&secret2), "base32 secret stored in clear");
        let raw_secret = data_encoding::BASE32_NOPAD
            .decode(secret2.as_bytes())
            .unwrap();
        assert!(
            !raw.as_bytes()
                .windows(raw_secret.len())
                .any(|w| w == raw_secret.as_slice()),
            "raw secret stored in clear"
        );
    }
);

#[tokio::test]
async fn the_setup_qr_code_decodes_to_the_otpauth_uri() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (_, login) = app.signed_in_user("d1").await;
    let setup: Value = app
        .post_auth(
            "/v1/mfa/totp/setup",
            &s(&login, "access_token"),
            json!({"password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tessera-qr-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("qr.svg");
    let png = dir.join("qr.png");
    std::fs::write(&svg, s(&setup, "qr_svg")).unwrap();
    let rendered = std::process::Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png)
        .arg(&svg)
        .status();
    if !rendered.is_ok_and(|s| s.success()) {
        tessera_adapters::testing::skip_or_fail("rsvg-convert", "apt-get install librsvg2-bin");
        return;
    }
    let Ok(out) = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&png)
        .output()
    else {
        tessera_adapters::testing::skip_or_fail("zbarimg", "apt-get install zbar-tools");
        return;
    };
    assert!(out.status.success(), "zbarimg found no QR code");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        s(&setup, "otpauth_uri")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

both_backends!(
    login_with_totp_takes_a_second_step_and_yields_aal2,
    |app: TestApp| async move {
        let Some((email, _, secret, _)) = enrolled(&app, "d1").await else {
            return;
        };
        next_step(&app);
        let res = app.login(&email, PASSWORD, "d2").await;
        assert_eq!(res.status(), StatusCode::OK);
        let pending: Value = res.json().await.unwrap();
        assert_eq!(pending["status"], "mfa_required");
        assert_eq!(pending["expires_in"], 300);
        assert_eq!(pending["methods"], json!(["totp", "recovery_code"]));
        assert!(pending.get("access_token").is_none() && pending.get("session_id").is_none());
        let token = s(&pending, "mfa_token");
        // No session exists before the second step: only the enrolment login signed in.
        assert_eq!(app.count_events("login_succeeded").await, 1);

        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let wrong = wrong_code(&code);
        let res = login_mfa(&app, &token, wrong).await;
        assert_problem(res, 401, "invalid_mfa_code").await;
        // The token survives a wrong code.
        let res = login_mfa(&app, &token, &code).await;
        assert_eq!(res.status(), StatusCode::OK);
        let tokens: Value = res.json().await.unwrap();
        let c = claims(&s(&tokens, "access_token"));
        assert_eq!(c["amr"], json!(["pwd", "otp"]));
        assert_eq!(c["acr"], "aal2");
        assert_eq!(
            app.get_auth("/v1/me", &s(&tokens, "access_token"))
                .await
                .status(),
            StatusCode::OK
        );
        // Refresh keeps the assurance.
        let refreshed: Value = app
            .refresh(&s(&tokens, "refresh_token"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(claims(&s(&refreshed, "access_token"))["acr"], "aal2");

        // The mfa_token is used up.
        next_step(&app);
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let res = login_mfa(&app, &token, &code).await;
        assert_problem(res, 401, "invalid_mfa_token").await;
    }
);

both_backends!(a_totp_code_is_accepted_once, |app: TestApp| async move {
    let Some((email, _, secret, _)) = enrolled(&app, "d1").await else {
        return;
    };
    next_step(&app);
    let Some(code) = oathtool(&secret, app.clock.now()) else {
        return;
    };
    for (device, expected) in [("d2", 200), ("d3", 401)] {
        let pending: Value = app
            .login(&email, PASSWORD, device)
            .await
            .json()
            .await
            .unwrap();
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &code).await;
        assert_eq!(res.status().as_u16(), expected, "{device}");
        if expected == 401 {
            assert_problem(res, 401, "invalid_mfa_code").await;
        }
    }
});

both_backends!(
    a_recovery_code_works_once_in_any_spelling,
    |app: TestApp| async move {
        let Some((email, _, _, codes)) = enrolled(&app, "d1").await else {
            return;
        };
        let pending: Value = app
            .login(&email, PASSWORD, "d2")
            .await
            .json()
            .await
            .unwrap();
        let typed = codes[0].to_uppercase().replace('-', " ");
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &typed).await;
        assert_eq!(res.status(), StatusCode::OK);
        let tokens: Value = res.json().await.unwrap();
        let me: Value = app
            .get_auth("/v1/me", &s(&tokens, "access_token"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["mfa"]["recovery_codes_remaining"], 9);
        let pending: Value = app
            .login(&email, PASSWORD, "d3")
            .await
            .json()
            .await
            .unwrap();
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &codes[0]).await;
        assert_problem(res, 401, "invalid_mfa_code").await;
        assert_eq!(app.count_events("recovery_code_used").await, 1);
    }
);

both_backends!(
    an_mfa_token_expires_after_five_minutes,
    |app: TestApp| async move {
        let Some((email, _, secret, _)) = enrolled(&app, "d1").await else {
            return;
        };
        let pending: Value = app
            .login(&email, PASSWORD, "d2")
            .await
            .json()
            .await
            .unwrap();
        app.clock.advance(time::Duration::seconds(301));
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &code).await;
        assert_problem(res, 401, "invalid_mfa_token").await;
        let res = login_mfa(&app, "mt_nope", &code).await;
        assert_problem(res, 401, "invalid_mfa_token").await;
    }
);

both_backends!(
    wrong_codes_are_limited_per_user_even_with_the_right_code_after,
    |app: TestApp| async move {
        let Some((email, _, secret, _)) = enrolled(&app, "d1").await else {
            return;
        };
        next_step(&app);
        let pending: Value = app
            .login(&email, PASSWORD, "d2")
            .await
            .json()
            .await
            .unwrap();
        let token = s(&pending, "mfa_token");
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let wrong = wrong_code(&code);
        for _ in 0..5 {
            let res = login_mfa(&app, &token, wrong).await;
            assert_problem(res, 401, "invalid_mfa_code").await;
        }
        let res = login_mfa(&app, &token, &code).await;
        assert!(res.headers().contains_key("retry-after"));
        assert_problem(res, 429, "rate_limited").await;
        assert_eq!(app.count_events("mfa_failed").await, 5);
    }
);

both_backends!(
    authorize_applies_the_step_up_policy_in_order,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        let authorize =
            |action: &'static str| app.post_auth("/v1/authorize", &at, json!({"action": action}));
        assert_problem(authorize("nuke.everything").await, 400, "unknown_action").await;
        assert_problem(authorize("vendor.payout").await, 403, "forbidden").await;
        let me: Value = app.get_auth("/v1/me", &at).await.json().await.unwrap();
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

both_backends!(
    step_up_and_disable_need_an_enabled_factor_and_a_right_code,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        assert_problem(
            app.post_auth("/v1/mfa/step-up", &at, json!({"code": "123456"}))
                .await,
            409,
            "mfa_not_enabled",
        )
        .await;
        let res = app
            .client
            .delete(app.url("/v1/mfa/totp"))
            .bearer_auth(&at)
            .json(&json!({"code": "123456"}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 409, "mfa_not_enabled").await;
        let res = app
            .post_auth("/v1/mfa/step-up", &at, json!({"code": "12345x"}))
            .await;
        assert_problem(res, 400, "invalid_request").await;

        let Some((email, login, secret, _)) = enrolled(&app, "d2").await else {
            return;
        };
        let at = s(&login, "access_token");
        next_step(&app);
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let wrong = wrong_code(&code);
        let res = app
            .client
            .delete(app.url("/v1/mfa/totp"))
            .bearer_auth(&at)
            .json(&json!({"code": wrong}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "invalid_mfa_code").await;
        let res = app
            .client
            .delete(app.url("/v1/mfa/totp"))
            .bearer_auth(&at)
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let me: Value = app.get_auth("/v1/me", &at).await.json().await.unwrap();
        assert_eq!(
            me["mfa"],
            json!({"totp_enabled": false, "recovery_codes_remaining": 0})
        );
        let res: Value = app
            .login(&email, PASSWORD, "d3")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(res["status"], "authenticated");
        assert_eq!(app.count_events("mfa_disabled").await, 1);
    }
);

both_backends!(
    regenerating_recovery_codes_needs_a_recent_mfa_and_retires_the_old_ones,
    |app: TestApp| async move {
        let Some((email, login, _, old)) = enrolled(&app, "d1").await else {
            return;
        };
        let at = s(&login, "access_token");
        let res = app
            .post_auth("/v1/mfa/recovery-codes", &at, json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let new: Value = res.json().await.unwrap();
        assert_eq!(new["recovery_codes"].as_array().unwrap().len(), 10);
        let pending: Value = app
            .login(&email, PASSWORD, "d2")
            .await
            .json()
            .await
            .unwrap();
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &old[1]).await;
        assert_problem(res, 401, "invalid_mfa_code").await;
        app.clock.advance(time::Duration::seconds(301));
        let res = app
            .post_auth("/v1/mfa/recovery-codes", &at, json!({}))
            .await;
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("max_age=300")
        );
        assert_problem(res, 401, "step_up_required").await;
    }
);

/// An admin with a fresh MFA, and a target user with TOTP and two sessions.
/// A user with TOTP on, granted `admin`, signed in with a fresh second factor: their
/// access token. None when the machine lacks `oathtool` (after a skip notice).
pub(crate) async fn enrolled_admin(app: &TestApp) -> Option<String> {
    let (_, admin_login, _, _) = enrolled(app, "admin-laptop").await?;
    let admin_at = s(&admin_login, "access_token");
    let admin_me: Value = app
        .get_auth("/v1/me", &admin_at)
        .await
        .json()
        .await
        .unwrap();
    app.grant_role(&s(&admin_me, "user_id"), "admin").await;
    Some(admin_at)
}

async fn admin_and_target(app: &TestApp) -> Option<(String, String, Value, Value)> {
    let admin_at = enrolled_admin(app).await?;
    let (target_email, target_login, _, codes) = enrolled(app, "target-phone").await?;
    let pending: Value = app
        .login(&target_email, PASSWORD, "target-laptop")
        .await
        .json()
        .await
        .unwrap();
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
        let target_me: Value = app
            .get_auth("/v1/me", &s(&target_login, "access_token"))
            .await
            .json()
            .await
            .unwrap();
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
        let fresh: Value = app
            .login(&target_email, PASSWORD, "target-new")
            .await
            .json()
            .await
            .unwrap();
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
        let target_me: Value = app
            .get_auth("/v1/me", &target_at)
            .await
            .json()
            .await
            .unwrap();
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
        let me: Value = app
            .get_auth("/v1/me", &target_at)
            .await
            .json()
            .await
            .unwrap();
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

both_backends!(
    the_cli_resets_mfa_and_grants_roles_on_the_same_database,
    |app: TestApp| async move {
        let Some((email, login, _, _)) = enrolled(&app, "d1").await else {
            return;
        };
        let cli = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
                .args(args)
                .env_clear()
                .env("TESSERA_DATABASE_URL", app.db.url())
                .env("TESSERA_MASTER_KEY", &app.master_key)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        };
        let out = cli(&[
            "admin",
            "grant-role",
            "--email",
            &email,
            "--role",
            "vendor",
            "--operator",
            "ops-ana",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cli(&[
            "admin",
            "mfa-reset",
            "--email",
            &email,
            "--reason",
            "ticket 99: verified in person",
            "--operator",
            "ops-ana",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s) revoked"));
        assert_problem(
            app.get_auth("/v1/me", &s(&login, "access_token")).await,
            401,
            "session_revoked",
        )
        .await;
        let fresh: Value = app
            .login(&email, PASSWORD, "d2")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fresh["status"], "authenticated");
        let me: Value = app
            .get_auth("/v1/me", &s(&fresh, "access_token"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["roles"], json!(["vendor"]));
        assert_eq!(me["mfa"]["totp_enabled"], false);
        let out = cli(&["admin", "revoke-sessions", "--email", "nobody@example.com"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user with that email address"));
    }
);

#[tokio::test]
async fn a_permissive_policy_file_cannot_open_the_admin_api() {
    use tessera_core::ids::Role;
    use tessera_core::policy::{ActionPolicy, StepUpPolicy};
    // A misconfigured policy: support staff, no enrolment, an hour-old MFA is fine.
    let lax = StepUpPolicy::new(vec![(
        "admin.*".to_owned(),
        ActionPolicy {
            role: Role::parse("support").unwrap(),
            max_age: time::Duration::hours(1),
            require_enrollment: false,
        },
    )])
    .unwrap();
    let options = crate::helpers::Options {
        step_up: Some(lax),
        ..Default::default()
    };
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await else {
        return;
    };
    let (_, support) = app.signed_in_user("d1").await;
    let at = s(&support, "access_token");
    let me: Value = app.get_auth("/v1/me", &at).await.json().await.unwrap();
    let id = s(&me, "user_id");
    app.grant_role(&id, "support").await;
    // The configured policy alone would allow this action...
    assert_eq!(
        app.post_auth("/v1/authorize", &at, json!({"action": "admin.roles"}))
            .await
            .status(),
        StatusCode::OK
    );
    // ...but the admin API still demands the admin role, enrolment and a fresh MFA.
    let res = app
        .post_auth(
            &format!("/v1/admin/users/{id}/roles"),
            &at,
            json!({"roles": ["admin"]}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .post_auth(
            &format!("/v1/admin/users/{id}/roles"),
            &at,
            json!({"roles": ["Not A Role"]}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let me: Value = app.get_auth("/v1/me", &at).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["support"]));
}

both_backends!(
    an_mfa_token_from_before_a_password_change_cannot_complete_the_login,
    |app: TestApp| async move {
        let Some((email, login, secret, _)) = enrolled(&app, "d1").await else {
            return;
        };
        // Someone with the old password reaches the second step on another device...
        let pending: Value = app
            .login(&email, PASSWORD, "d2")
            .await
            .json()
            .await
            .unwrap();
        // ...then the owner changes the password from their session.
        let res = app
            .post_auth(
                "/v1/me/password",
                &s(&login, "access_token"),
                json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        next_step(&app);
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &code).await;
        assert_problem(res, 401, "invalid_mfa_token").await;
    }
);

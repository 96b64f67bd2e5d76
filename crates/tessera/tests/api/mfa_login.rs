//! The login's second step over HTTP: a TOTP code or a recovery code, each accepted once,
//! the MFA token's life, and the per-user limit on wrong codes, on SQLite and Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;

use crate::both_backends;
use crate::helpers::{
    Db, PASSWORD, TestApp, assert_issued_codes, assert_problem, claims, enrolled, login_mfa,
    next_step, oathtool, s, wrong_code,
};

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
        let wrong = wrong_code(&secret, app.clock.now());
        let res = login_mfa(&app, &token, &wrong).await;
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
        let pending = app.login_ok(&email, PASSWORD, device).await;
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
        let pending = app.login_ok(&email, PASSWORD, "d2").await;
        let typed = codes[0].to_uppercase().replace('-', " ");
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &typed).await;
        assert_eq!(res.status(), StatusCode::OK);
        let tokens: Value = res.json().await.unwrap();
        let me: Value = app.me(&s(&tokens, "access_token")).await;
        assert_eq!(me["mfa"]["recovery_codes_remaining"], 9);
        let pending = app.login_ok(&email, PASSWORD, "d3").await;
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &codes[0]).await;
        assert_problem(res, 401, "invalid_mfa_code").await;
        assert_eq!(app.count_events("recovery_code_used").await, 1);
    }
);

/// A code handed out before codes grew to 120 bits: 16 base32 characters, and the row the
/// store wrote for it then, SHA-256 of `tessera:recovery-code:` and the lower-case code
/// (`printf 'tessera:recovery-code:abcdefgh2345mnop' | sha256sum`), fixed here rather than
/// computed by the code under test.
const LEGACY_CODE: &str = "ABCD EFGH-2345 mnop";
const LEGACY_HASH: &str = "970975a6c10bdb047dec3f12648ee9437908b9c564324fc76ff97433ee29ecfe";

both_backends!(
    a_new_120_bit_code_and_a_legacy_80_bit_code_both_sign_in_once,
    |app: TestApp| async move {
        let Some((email, login, _, codes)) = enrolled(&app, "d1").await else {
            return;
        };
        assert_issued_codes(&codes);
        let pending = app.login_ok(&email, PASSWORD, "d2").await;
        let res = login_mfa(&app, &s(&pending, "mfa_token"), &codes[3]).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", codes[3]);

        // The user still holds a code from before the change: its stored hash is a row
        // like any other of theirs.
        let me: Value = app.me(&s(&login, "access_token")).await;
        let db = Db::open(&app).await;
        let user = db.uuid_literal(uuid::Uuid::parse_str(&s(&me, "user_id")).unwrap());
        let micros = app.clock.now().unix_timestamp_nanos() / 1000;
        app.sql(&format!(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ({user}, {}, {})",
            db.dialect(
                &format!("X'{LEGACY_HASH}'"),
                &format!("decode('{LEGACY_HASH}', 'hex')")
            ),
            db.dialect(
                &micros.to_string(),
                &format!("to_timestamp({micros} / 1e6)")
            ),
        ))
        .await;
        let pending = app.login_ok(&email, PASSWORD, "d3").await;
        let res = login_mfa(&app, &s(&pending, "mfa_token"), LEGACY_CODE).await;
        assert_eq!(res.status(), StatusCode::OK);
        let tokens: Value = res.json().await.unwrap();
        let me: Value = app.me(&s(&tokens, "access_token")).await;
        // Ten issued and one legacy, less the two used.
        assert_eq!(me["mfa"]["recovery_codes_remaining"], 9, "{me}");
        let pending = app.login_ok(&email, PASSWORD, "d4").await;
        let res = login_mfa(&app, &s(&pending, "mfa_token"), LEGACY_CODE).await;
        assert_problem(res, 401, "invalid_mfa_code").await;
        assert_eq!(app.count_events("recovery_code_used").await, 2);
    }
);

both_backends!(
    an_mfa_token_expires_after_five_minutes,
    |app: TestApp| async move {
        let Some((email, _, secret, _)) = enrolled(&app, "d1").await else {
            return;
        };
        let pending = app.login_ok(&email, PASSWORD, "d2").await;
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
        let pending = app.login_ok(&email, PASSWORD, "d2").await;
        let token = s(&pending, "mfa_token");
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        let wrong = wrong_code(&secret, app.clock.now());
        for _ in 0..5 {
            let res = login_mfa(&app, &token, &wrong).await;
            assert_problem(res, 401, "invalid_mfa_code").await;
        }
        let res = login_mfa(&app, &token, &code).await;
        assert!(res.headers().contains_key("retry-after"));
        assert_problem(res, 429, "rate_limited").await;
        assert_eq!(app.count_events("mfa_failed").await, 5);
    }
);

both_backends!(
    an_mfa_token_from_before_a_password_change_cannot_complete_the_login,
    |app: TestApp| async move {
        let Some((email, login, secret, _)) = enrolled(&app, "d1").await else {
            return;
        };
        // Someone with the old password reaches the second step on another device...
        let pending = app.login_ok(&email, PASSWORD, "d2").await;
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

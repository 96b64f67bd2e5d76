//! Setting TOTP up and managing it over HTTP: enrolment with a right code (the code from
//! the real `oathtool`, the QR code decoded by `zbarimg`), turning it off, new recovery
//! codes, on SQLite and Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;

use crate::both_backends;
use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_issued_codes, assert_problem, enrolled, issued_codes,
    login_mfa, next_step, oathtool, s, wrong_code,
};

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
        let wrong = wrong_code(&secret2, app.clock.now());
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
        let codes = issued_codes(&body);
        assert_eq!(codes.len(), 10);
        assert_issued_codes(&codes);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 10);

        let me: Value = app.me(&at).await;
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
        let wrong = wrong_code(&secret, app.clock.now());
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
        let me: Value = app.me(&at).await;
        assert_eq!(
            me["mfa"],
            json!({"totp_enabled": false, "recovery_codes_remaining": 0})
        );
        let res = app.login_ok(&email, PASSWORD, "d3").await;
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
        let codes = issued_codes(&new);
        assert_eq!(codes.len(), 10);
        assert_issued_codes(&codes);
        let pending = app.login_ok(&email, PASSWORD, "d2").await;
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

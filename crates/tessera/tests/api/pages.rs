//! The web pages over plain HTTP: cookies, CSRF, CSP, sign-out and the browser session's
//! refresh. (What a person sees and clicks is tested in a real browser in `web`.)

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::json;
use tessera_app::ports::Clock;

use crate::helpers::{
    Backend, FormClient, PASSWORD, TestApp, assert_cut_off, assert_issued_codes, location,
    new_user, oathtool, retry_after, s, wrong_code,
};

/// The TOTP secret a set-up page shows as text.
fn shown_secret(html: &str) -> String {
    html.split("id=\"totp-secret\" aria-describedby=\"secret-grouped\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned()
}

/// The recovery codes a page lists.
fn listed_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn signing_in_sets_only_host_prefixed_httponly_secure_lax_cookies() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    let res = web.sign_in(&email).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/security");
    for name in ["session", "refresh", "device", "csrf"] {
        assert!(
            web.cookie(&format!("__Host-tessera_{name}")).is_some(),
            "{name} cookie missing"
        );
    }
    assert!(web.set_cookies.len() >= 4);
    for line in &web.set_cookies {
        assert!(line.starts_with("__Host-"), "{line}");
        for attr in ["; HttpOnly", "; Secure", "; SameSite=Lax", "; Path=/"] {
            assert!(line.contains(attr), "{line} lacks {attr}");
        }
        assert!(!line.to_ascii_lowercase().contains("domain="), "{line}");
    }
    let page = web.get("/account/security").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(&email));
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.get("/login").await;
    for token in ["", "forged-but-well-formed-aaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let res = web
            .post_raw(
                "/login",
                &[("csrf", token), ("email", &email), ("password", PASSWORD)],
                &[],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
    assert!(web.cookie("__Host-tessera_session").is_none());
    assert_eq!(app.count_events("login_succeeded").await, 0);

    // Signed in, a forged "sign out all other devices" leaves the other device alone.
    let other = app.login(&email, PASSWORD, "phone").await;
    let other: serde_json::Value = other.json().await.unwrap();
    assert_eq!(web.sign_in(&email).await.status(), StatusCode::SEE_OTHER);
    let res = web
        .post_raw("/account/security/sessions/revoke-others", &[], &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let me = app.get_auth("/v1/me", &s(&other, "access_token")).await;
    assert_eq!(me.status(), StatusCode::OK);
    // The same form with its token works.
    let res = web
        .post("/account/security/sessions/revoke-others", &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_cut_off(&app, &other).await;
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_even_with_the_token() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.get("/login").await;
    let csrf = web.cookie("__Host-tessera_csrf").unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("email", &email),
        ("password", PASSWORD),
    ];
    for headers in [
        [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        [
            ("sec-fetch-site", "same-site"),
            ("origin", "https://evil.example"),
        ],
    ] {
        let res = web.post_raw("/login", &form, &headers).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "refused before the page handler"
        );
    }
    let origin = format!("http://{}", app.addr);
    let res = web
        .post_raw(
            "/login",
            &form,
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", origin.as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    let login = web.get("/login").await;
    web.post("/login", &[("email", &email), ("password", PASSWORD)])
        .await;
    let account = web.get("/account/security").await;
    for res in [login, account] {
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{csp} lacks {directive}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "inline script or style"
        );
    }
    let css = web.get("/static/tessera.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn signing_out_revokes_the_session_on_the_server() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let tokens = json!({
        "access_token": web.cookie("__Host-tessera_session").unwrap(),
        "refresh_token": web.cookie("__Host-tessera_refresh").unwrap(),
    });
    let res = web.post("/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
    assert!(web.cookie("__Host-tessera_session").is_none());
    assert!(web.cookie("__Host-tessera_refresh").is_none());
    // Copies of the cookies taken before are worthless: the session itself is gone.
    assert_cut_off(&app, &tokens).await;
    let res = web.get("/account/security").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn the_login_page_answers_429_with_the_wait_when_throttled() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.get("/login").await;
    for _ in 0..5 {
        let res = web
            .post(
                "/login",
                &[("email", &email), ("password", "wrong password!")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("The email address or password is wrong.")
        );
    }
    let res = web
        .post("/login", &[("email", &email), ("password", PASSWORD)])
        .await;
    let retry = retry_after(&res);
    assert!(retry <= 600, "{retry}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Too many failed attempts. Try again in 10 minutes."),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{email}\"")),
        "the email is kept"
    );
    assert!(web.cookie("__Host-tessera_session").is_none());
}

async fn tabs_reloading_together_stay_signed_in(app: TestApp) {
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let old_refresh = web.cookie("__Host-tessera_refresh").unwrap();
    app.clock.advance(time::Duration::seconds(901));
    // Four tabs reload at once with the same expired access token and refresh token.
    let cookie = web.cookie_header();
    let pages = futures::future::join_all((0..4).map(|_| {
        web.http
            .get(app.url("/account/security"))
            .header("cookie", cookie.clone())
            .send()
    }))
    .await;
    let mut renewed = Vec::new();
    for res in pages {
        let res = res.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "every tab stays signed in");
        for line in res.headers().get_all(SET_COOKIE) {
            let line = line.to_str().unwrap();
            if let Some(v) = line.strip_prefix("__Host-tessera_refresh=") {
                renewed.push(v.split(';').next().unwrap().to_owned());
            }
        }
    }
    assert_eq!(renewed.len(), 4);
    assert!(
        renewed
            .iter()
            .all(|t| *t == renewed[0] && *t != old_refresh)
    );
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
    let res = app.refresh(&renewed[0]).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the one successor is the live token"
    );
}

mod tabs_within_the_retry_window {
    use super::*;

    /// Tabs racing on one refresh cookie rely on the retry window, as API clients do
    /// (a node also shares a rotation still running, which no test can time reliably).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stay_signed_in_with_one_live_successor() {
        let options = crate::helpers::Options {
            retry_window_secs: 10,
            ..Default::default()
        };
        if let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await {
            tabs_reloading_together_stay_signed_in(app).await;
        }
    }
}

#[tokio::test]
async fn an_old_refresh_cookie_replayed_after_a_page_rotated_it_is_reuse() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let stolen = web.cookie_header();
    app.clock.advance(time::Duration::seconds(901));
    assert_eq!(web.get("/account/security").await.status(), StatusCode::OK);
    let tokens = json!({
        "access_token": web.cookie("__Host-tessera_session").unwrap(),
        "refresh_token": web.cookie("__Host-tessera_refresh").unwrap(),
    });
    // The thief's copy, presented once the browser's retry window has passed.
    app.clock
        .advance(tessera_app::BROWSER_RETRY_WINDOW + time::Duration::seconds(1));
    let replay = web
        .http
        .get(app.url("/account/security"))
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&replay), "/login");
    assert_eq!(app.count_events("refresh_token_reused").await, 1);
    assert_cut_off(&app, &tokens).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tessera_refresh_reuse_detected_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_refreshes_total{outcome=\"success\"} 1"),
        "page rotations are counted: {metrics}"
    );
}

#[tokio::test]
async fn setting_up_two_step_verification_from_the_page_needs_the_password() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let res = web.post("/account/security/mfa/setup", &[]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"form-error\"") && !html.contains("id=\"totp-secret\""));
    let res = web
        .post(
            "/account/security/mfa/setup",
            &[("password", "not the password")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let html = res.text().await.unwrap();
    assert!(html.contains("That password is wrong.") && !html.contains("id=\"totp-secret\""));
    assert_eq!(app.count_events("login_failed").await, 1);
    let res = web
        .post("/account/security/mfa/setup", &[("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("id=\"totp-secret\""));
}

#[tokio::test]
async fn a_failed_confirm_shows_the_secret_again_only_to_the_page_that_showed_it() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut owner = FormClient::new(&app);
    owner.sign_in(&email).await;
    let setup = owner
        .post("/account/security/mfa/setup", &[("password", PASSWORD)])
        .await;
    let html = setup.text().await.unwrap();
    let secret = shown_secret(&html);
    // Another session of the same user (signed in with the password alone).
    let mut other = FormClient::new(&app);
    other.sign_in(&email).await;
    for (code, shown) in [
        ("x", ""),
        ("123456", ""),
        ("123456", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let res = other
            .post(
                "/account/security/mfa/confirm",
                &[("code", code), ("secret", shown)],
            )
            .await;
        assert!(res.status().is_client_error(), "{}", res.status());
        let page = res.text().await.unwrap();
        assert!(
            !page.contains(&secret),
            "another session read the pending secret"
        );
    }
    // The page that showed it gets it back after a typo, to try again without a new scan.
    let res = owner
        .post(
            "/account/security/mfa/confirm",
            &[("code", "12345"), ("secret", &secret)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains(&secret) && page.contains("id=\"form-error\""));
}

#[tokio::test]
async fn signing_out_right_after_a_rotation_leaves_no_refresh_cookie() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    app.clock.advance(time::Duration::seconds(901));
    // The access cookie has expired: this request rotates, then signs out.
    let res = web.post("/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
    assert_eq!(web.cookie("__Host-tessera_refresh"), None);
    assert_eq!(web.cookie("__Host-tessera_session"), None);
}

#[tokio::test]
async fn someone_else_signing_in_on_the_same_browser_ends_the_previous_session() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let first = new_user(&app).await;
    let second = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&first).await;
    let tokens = json!({
        "access_token": web.cookie("__Host-tessera_session").unwrap(),
        "refresh_token": web.cookie("__Host-tessera_refresh").unwrap(),
    });
    let res = web
        .post("/login", &[("email", &second), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_cut_off(&app, &tokens).await;
    let page = web.get("/account/security").await.text().await.unwrap();
    assert!(page.contains(&second) && !page.contains(&first));
}

#[tokio::test]
async fn someone_else_signing_in_after_the_access_cookie_expired_still_ends_the_previous_session() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let first = new_user(&app).await;
    let second = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&first).await;
    app.clock.advance(time::Duration::seconds(901));
    let res = web
        .post("/login", &[("email", &second), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The first user's session (its refresh cookie rotated on the way) has ended: signing
    // in again elsewhere, only that new sign-in is listed.
    let mut again = FormClient::new(&app);
    again.sign_in(&first).await;
    let listed = again.get("/account/security").await.text().await.unwrap();
    assert_eq!(
        listed.matches("data-session-id=").count(),
        1,
        "only the new sign-in is live: {listed}"
    );
}

/// Enables TOTP through the pages; returns the secret and the recovery codes shown.
async fn enable_mfa_through_the_pages(
    app: &TestApp,
    web: &mut FormClient,
) -> Option<(String, Vec<String>)> {
    let setup = web
        .post("/account/security/mfa/setup", &[("password", PASSWORD)])
        .await;
    let secret = shown_secret(&setup.text().await.unwrap());
    let code = oathtool(&secret, app.clock.now())?;
    let res = web
        .post(
            "/account/security/mfa/confirm",
            &[("code", &code), ("secret", &secret)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let codes = listed_codes(&res.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    assert_issued_codes(&codes);
    Some((secret, codes))
}

#[tokio::test]
async fn new_recovery_codes_from_the_page_replace_the_old_ones_after_a_code() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let Some((secret, first_codes)) = enable_mfa_through_the_pages(&app, &mut web).await else {
        return;
    };
    // A wrong code changes nothing and says so on the account page.
    let wrong = wrong_code(&secret, app.clock.now());
    let res = web
        .post("/account/security/mfa/recovery-codes", &[("code", &wrong)])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().await.unwrap().contains("That code is wrong"));
    assert_eq!(app.count_events("recovery_codes_regenerated").await, 0);

    app.clock.advance(time::Duration::seconds(30));
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let before = web.cookie("__Host-tessera_session").unwrap();
    let res = web
        .post("/account/security/mfa/recovery-codes", &[("code", &code)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("Your new recovery codes"));
    let codes = listed_codes(&html);
    assert_eq!(codes.len(), 10);
    assert_issued_codes(&codes);
    assert!(
        codes.iter().all(|c| !first_codes.contains(c)),
        "new codes, not the old ones"
    );
    assert_eq!(app.count_events("recovery_codes_regenerated").await, 1);
    let after = web.cookie("__Host-tessera_session").unwrap();
    assert_ne!(
        after, before,
        "the stepped-up access token replaces the old one"
    );
    let me: serde_json::Value = app.me(&after).await;
    assert_eq!(me["mfa"]["recovery_codes_remaining"], 10, "{me}");
}

#[tokio::test]
async fn turning_mfa_off_from_the_page_needs_a_code() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let Some((secret, _)) = enable_mfa_through_the_pages(&app, &mut web).await else {
        return;
    };
    let wrong = wrong_code(&secret, app.clock.now());
    let res = web
        .post("/account/security/mfa/disable", &[("code", &wrong)])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count_events("mfa_disabled").await, 0);

    app.clock.advance(time::Duration::seconds(30));
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let res = web
        .post("/account/security/mfa/disable", &[("code", &code)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/security?notice=mfa-disabled");
    let page = web.get(location(&res).to_owned().as_str()).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Two-step verification is off."));
    assert!(html.contains("id=\"enable-mfa\""));
    assert_eq!(app.count_events("mfa_disabled").await, 1);
}

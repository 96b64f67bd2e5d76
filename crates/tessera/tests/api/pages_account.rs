//! The account pages over plain HTTP: `/signup` and `/account/password`. Each form is
//! refused without its CSRF token, shows its errors on the page with the API's status,
//! and changes nothing when it refuses.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{
    Backend, FormClient, PASSWORD, TestApp, alert, assert_cut_off, assert_problem, fresh_address,
    location, new_user, retry_after, s,
};

const NEW_PASSWORD: &str = "a brand new passphrase";
const SESSION: &str = "__Host-tessera_session";
const REFRESH: &str = "__Host-tessera_refresh";

/// Opens `/signup` and sends its form.
async fn sign_up(
    web: &mut FormClient,
    email: &str,
    password: &str,
    confirm: &str,
) -> reqwest::Response {
    assert_eq!(web.get("/signup").await.status(), StatusCode::OK);
    web.post(
        "/signup",
        &[
            ("email", email),
            ("password", password),
            ("confirm", confirm),
        ],
    )
    .await
}

/// Opens `/account/password` (signed in) and sends its form.
async fn change(
    web: &mut FormClient,
    current: &str,
    new: &str,
    confirm: &str,
) -> reqwest::Response {
    assert_eq!(web.get("/account/password").await.status(), StatusCode::OK);
    web.post(
        "/account/password",
        &[
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", confirm),
        ],
    )
    .await
}

async fn api_login(app: &TestApp, email: &str, password: &str, device: &str) -> StatusCode {
    app.login(email, password, device).await.status()
}

async fn signing_up_creates_the_account_and_signs_this_browser_in(app: TestApp) {
    let email = fresh_address("new");
    let mut web = FormClient::new(&app);
    let res = sign_up(&mut web, &email, PASSWORD, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/security");
    assert!(web.cookie(SESSION).is_some() && web.cookie(REFRESH).is_some());
    let account = web.get("/account/security").await;
    assert_eq!(account.status(), StatusCode::OK);
    assert!(account.text().await.unwrap().contains(&email));
    assert_eq!(app.count_events("user_registered").await, 1);
    assert_eq!(app.count_events("login_succeeded").await, 1);
    // The password chosen on the page is the account's.
    assert_eq!(
        api_login(&app, &email, PASSWORD, "api").await,
        StatusCode::OK
    );
    // A signed-in browser has nothing to do on the sign-up page.
    let again = web.get("/signup").await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&again), "/account/security");
}

both_backends!(
    signing_up_creates_the_account_and_signs_this_browser_in,
    signing_up_creates_the_account_and_signs_this_browser_in
);

#[tokio::test]
async fn a_taken_email_on_the_signup_page_is_answered_as_the_api_does_and_changes_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    // Case does not make another account (addresses compare case-insensitively).
    let shouted = email.to_uppercase();
    let res = sign_up(&mut web, &shouted, "someone else's pw", "someone else's pw").await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "as the API's 409 email_taken"
    );
    let html = res.text().await.unwrap();
    assert!(alert(&html).contains("already exists"), "{html}");
    assert!(html.contains("href=\"/login\"") && html.contains("href=\"/forgot-password\""));
    assert!(
        html.contains(&format!("value=\"{shouted}\"")),
        "the address is kept"
    );
    assert!(web.cookie(SESSION).is_none());
    assert_eq!(app.count_events("user_registered").await, 1);
    // The owner's password still works, the intruder's does not.
    assert_eq!(api_login(&app, &email, PASSWORD, "d").await, StatusCode::OK);
    assert_eq!(
        api_login(&app, &email, "someone else's pw", "d").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_signup_page_refuses_passwords_out_of_bounds_or_typed_differently() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = fresh_address("new");
    let long = "x".repeat(257);
    let mut web = FormClient::new(&app);
    for (password, confirm, says) in [
        (
            "short77",
            "short77",
            "The password must be 8 to 256 characters.",
        ),
        (
            long.as_str(),
            long.as_str(),
            "The password must be 8 to 256 characters.",
        ),
        (
            PASSWORD,
            "correct horse battery stapl",
            "The two passwords differ.",
        ),
    ] {
        let res = sign_up(&mut web, &email, password, confirm).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{says}");
        let html = res.text().await.unwrap();
        assert!(alert(&html).starts_with(says), "{html}");
        assert!(!html.contains(password), "a password is never shown back");
    }
    let res = sign_up(&mut web, "not an address", PASSWORD, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(alert(&res.text().await.unwrap()).starts_with("The email"));
    assert!(web.cookie(SESSION).is_none());
    assert_eq!(app.count_events("user_registered").await, 0);
    assert_eq!(
        api_login(&app, &email, PASSWORD, "d").await,
        StatusCode::UNAUTHORIZED,
        "no account was made"
    );
}

#[tokio::test]
async fn the_signup_page_answers_429_with_the_wait_after_ten_attempts_from_one_network() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let taken = new_user(&app).await;
    let mut web = FormClient::new(&app);
    // The API's own attempt counts too: one budget per network, whatever the door.
    for _ in 0..9 {
        let res = sign_up(&mut web, &taken, PASSWORD, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
    }
    let fresh = fresh_address("new");
    let res = sign_up(&mut web, &fresh, PASSWORD, PASSWORD).await;
    retry_after(&res);
    let html = res.text().await.unwrap();
    assert!(
        alert(&html).starts_with("Too many sign-ups from your network. Try again in"),
        "{html}"
    );
    assert_eq!(
        api_login(&app, &fresh, PASSWORD, "d").await,
        StatusCode::UNAUTHORIZED,
        "nothing was created"
    );
}

#[tokio::test]
async fn the_new_forms_refuse_a_missing_or_forged_csrf_token_and_change_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let fresh = fresh_address("new");
    let mut web = FormClient::new(&app);
    web.get("/signup").await;
    for token in ["", "forged-but-well-formed-aaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let res = web
            .post_raw(
                "/signup",
                &[
                    ("csrf", token),
                    ("email", &fresh),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
                &[],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
    assert_eq!(
        app.count_events("user_registered").await,
        1,
        "only `email`'s"
    );

    // Signed in, a forged password change leaves the password and the other device alone.
    let other = app.login_ok(&email, PASSWORD, "phone").await;
    assert_eq!(web.sign_in(&email).await.status(), StatusCode::SEE_OTHER);
    for token in ["", "forged-but-well-formed-aaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let res = web
            .post_raw(
                "/account/password",
                &[
                    ("csrf", token),
                    ("current_password", PASSWORD),
                    ("new_password", NEW_PASSWORD),
                    ("confirm_password", NEW_PASSWORD),
                ],
                &[],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let me = app.get_auth("/v1/me", &s(&other, "access_token")).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(app.count_events("password_changed").await, 0);
    assert_eq!(api_login(&app, &email, PASSWORD, "d").await, StatusCode::OK);

    // Nor does a forged request for a reset link reach the use case (its budget unspent).
    web.get("/forgot-password").await;
    for _ in 0..4 {
        let res = web
            .post_raw("/forgot-password", &[("csrf", ""), ("email", &email)], &[])
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let res = web.post("/forgot-password", &[("email", &email)]).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "three an hour per address: none spent"
    );
}

async fn changing_the_password_signs_out_the_other_devices_and_keeps_this_one(app: TestApp) {
    let email = new_user(&app).await;
    let other = app.login_ok(&email, PASSWORD, "phone").await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;

    // A wrong current password: refused on the page, nothing changed.
    let res = change(&mut web, "not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        alert(&res.text().await.unwrap()),
        "Your current password is wrong."
    );
    let me = app.get_auth("/v1/me", &s(&other, "access_token")).await;
    assert_eq!(me.status(), StatusCode::OK, "the other device is still in");
    assert_eq!(app.count_events("password_changed").await, 0);

    let session = web.cookie(SESSION).unwrap();
    let refresh = web.cookie(REFRESH).unwrap();
    let res = change(&mut web, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/security?notice=password-changed");
    assert_eq!(app.count_events("password_changed").await, 1);
    // The other device is out: its refresh token and its access token are refused.
    assert_cut_off(&app, &other).await;
    // This browser is the session the change kept: same cookies, still signed in...
    assert_eq!(web.cookie(SESSION).as_deref(), Some(session.as_str()));
    assert_eq!(web.cookie(REFRESH).as_deref(), Some(refresh.as_str()));
    let page = web.get("/account/security?notice=password-changed").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Every other device has been signed out.")
    );
    // ...and its refresh cookie still renews it once the access token has expired.
    app.clock.advance(time::Duration::seconds(901));
    let page = web.get("/account/security").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_ne!(web.cookie(REFRESH).as_deref(), Some(refresh.as_str()));
    // The new password signs in, the old one does not.
    assert_eq!(
        api_login(&app, &email, NEW_PASSWORD, "d").await,
        StatusCode::OK
    );
    assert_eq!(
        api_login(&app, &email, PASSWORD, "d").await,
        StatusCode::UNAUTHORIZED
    );
}

both_backends!(
    changing_the_password_signs_out_the_other_devices_and_keeps_this_one,
    changing_the_password_signs_out_the_other_devices_and_keeps_this_one
);

#[tokio::test]
async fn the_password_page_refuses_a_new_password_out_of_bounds_or_typed_differently() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    for (new, confirm, says) in [
        (
            "short77",
            "short77",
            "The new password must be 8 to 256 characters.",
        ),
        (
            NEW_PASSWORD,
            "a brand new passphrase!",
            "The two passwords differ.",
        ),
    ] {
        let res = change(&mut web, PASSWORD, new, confirm).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{says}");
        let html = res.text().await.unwrap();
        assert!(alert(&html).starts_with(says), "{html}");
    }
    assert_eq!(app.count_events("password_changed").await, 0);
    assert_eq!(api_login(&app, &email, PASSWORD, "d").await, StatusCode::OK);
}

#[tokio::test]
async fn the_password_page_is_for_signed_in_browsers_only() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = FormClient::new(&app);
    let res = web.get("/account/password").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
    // A post without a session goes the same way, before its fields are looked at.
    web.get("/login").await;
    let res = web
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn the_login_page_links_to_sign_up_and_reset_and_the_account_page_to_the_password() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    let login = web.get("/login").await.text().await.unwrap();
    assert!(
        login.contains("href=\"/signup\">Create an account</a>"),
        "{login}"
    );
    assert!(login.contains("href=\"/forgot-password\">Forgot your password?</a>"));
    web.sign_in(&email).await;
    let account = web.get("/account/security").await.text().await.unwrap();
    assert!(account.contains("href=\"/account/password\""), "{account}");
}

#[tokio::test]
async fn the_new_pages_carry_the_strict_content_security_policy_and_label_their_fields() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    let mut pages = vec![
        ("/signup", web.get("/signup").await),
        ("/forgot-password", web.get("/forgot-password").await),
    ];
    web.sign_in(&email).await;
    pages.push(("/account/password", web.get("/account/password").await));
    for (path, res) in pages {
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("<script") && !html.contains(" style="),
            "{path}"
        );
        assert_eq!(
            html.matches("<form").count(),
            html.matches("name=\"csrf\" value=\"").count(),
            "{path}: every form carries the CSRF token"
        );
        // Every visible input has a <label for=…>.
        for input in html.split("<input ").skip(1) {
            if input.starts_with("type=\"hidden\"") {
                continue;
            }
            let id = input
                .split("id=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(
                html.contains(&format!("<label for=\"{id}\">")),
                "{path}: #{id}"
            );
        }
    }
    // Sanity: the API refuses what the page refused (same bounds, one use case).
    let res = app
        .post(
            "/v1/users",
            serde_json::json!({"email": "x@example.com", "password": "short77"}),
        )
        .await;
    assert_problem(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn wrong_current_passwords_on_the_page_are_throttled_and_the_wait_is_shown() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    for attempt in 1..=5 {
        let res = change(&mut web, "a wrong guess", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Now even the right password waits: nothing is checked until the window has room.
    let res = change(&mut web, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    retry_after(&res);
    let html = res.text().await.unwrap();
    assert!(
        alert(&html).starts_with("Too many failed attempts. Try again in"),
        "{html}"
    );
    assert_eq!(app.count_events("password_changed").await, 0);
    assert_eq!(api_login(&app, &email, PASSWORD, "d").await, StatusCode::OK);
}

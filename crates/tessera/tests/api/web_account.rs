//! End to end in headless Chromium: signing up, changing the password, and resetting a
//! forgotten one from the emailed link (read from the in-process SMTP sink), each time
//! signing in again. Every page leaves a screenshot in `target/e2e-screenshots/`, at
//! desktop and at phone width.

use reqwest::StatusCode;

use crate::helpers::Browser;
use crate::helpers::notify::reset_link;
use crate::helpers::notify::spawn_with_sink;
use crate::helpers::web::{
    ENTER, TAB, assert_fits_and_labelled, assert_no_token_visible_to_js, response_status, set_up,
    sign_in, submit_login,
};
use crate::helpers::{Backend, PASSWORD, assert_cut_off};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Fills the three fields of the sign-up page and sends it.
async fn submit_signup(browser: &Browser, email: &str, password: &str, confirm: &str) {
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.fill("#confirm", confirm).await;
    browser.click_and_wait("#create").await;
}

/// Fills the password-change form and sends it.
async fn submit_change(browser: &Browser, current: &str, new: &str) {
    browser.fill("#current-password", current).await;
    browser.fill("#new-password", new).await;
    browser.fill("#confirm-password", new).await;
    browser.click_and_wait("#change-password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_signs_up_from_the_login_page_and_lands_signed_in() {
    let Some((app, taken, browser)) = set_up().await else {
        return;
    };
    browser.open(&app, "/login").await;
    browser.click_and_wait("#create-account").await;
    assert_eq!(browser.path().await, "/signup");
    // From the keyboard: focus starts in the first field and Tab follows the form.
    assert_eq!(browser.focused_id().await, "email");
    let mut order = Vec::new();
    for _ in 0..3 {
        browser.keys(TAB).await;
        order.push(browser.focused_id().await);
    }
    assert_eq!(order, ["password", "confirm", "create"]);
    browser.screenshot("signup").await;

    // A taken address is answered on the page, with the ways back into that account.
    submit_signup(&browser, &taken, PASSWORD, PASSWORD).await;
    assert_eq!(browser.path().await, "/signup");
    assert_eq!(response_status(&browser).await, 409);
    assert!(browser.text("#form-error").await.contains("already exists"));
    assert_eq!(
        browser.attr("#form-error", "role").await.as_deref(),
        Some("alert")
    );
    assert_eq!(browser.count("#form-error a#taken-reset").await, 1);
    browser.screenshot("signup-email-taken").await;

    let email = "ben@example.com";
    submit_signup(&browser, email, PASSWORD, PASSWORD).await;
    assert_eq!(browser.path().await, "/account/security");
    assert_eq!(browser.text("h1").await, "Account security");
    assert_eq!(browser.text(".who").await, email);
    assert_eq!(browser.count("section#devices li.device").await, 1);
    assert_no_token_visible_to_js(&browser).await;
    browser.screenshot("signup-signed-in").await;

    // The account is real: its password signs in elsewhere.
    let res = app.login(email, PASSWORD, "api").await;
    assert_eq!(res.status(), StatusCode::OK);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changes_the_password_and_signs_in_again_with_the_new_one() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };
    let phone = app.login_ok(&email, PASSWORD, "phone").await;
    sign_in(&browser, &app, &email).await;
    browser.click_and_wait("#change-password-link").await;
    assert_eq!(browser.path().await, "/account/password");
    assert_eq!(browser.focused_id().await, "current-password");
    browser.screenshot("account-password").await;

    submit_change(&browser, "not my password", NEW_PASSWORD).await;
    assert_eq!(browser.path().await, "/account/password");
    assert_eq!(response_status(&browser).await, 401);
    assert_eq!(
        browser.text("#form-error").await,
        "Your current password is wrong."
    );
    browser.screenshot("account-password-wrong").await;

    submit_change(&browser, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(browser.path().await, "/account/security");
    assert!(
        browser
            .text("#notice")
            .await
            .contains("Every other device has been signed out")
    );
    // This browser stayed signed in; the phone did not.
    assert_eq!(browser.count("section#devices li.device").await, 1);
    assert_cut_off(&app, &phone).await;
    browser.screenshot("account-password-changed").await;

    browser.click_and_wait("#sign-out").await;
    submit_login(&browser, &app, &email, PASSWORD).await;
    assert_eq!(
        browser.path().await,
        "/login",
        "the old password still works"
    );
    submit_login(&browser, &app, &email, NEW_PASSWORD).await;
    assert_eq!(browser.path().await, "/account/security");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_resets_a_forgotten_password_from_the_emailed_link() {
    let Some((app, sink)) = spawn_with_sink(Backend::Sqlite).await else {
        return;
    };
    let email = "ana@example.com";
    app.register(email, PASSWORD).await;
    let phone = app.login_ok(email, PASSWORD, "phone").await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open(&app, "/login").await;
    browser.click_and_wait("#forgot-password").await;
    assert_eq!(browser.path().await, "/forgot-password");
    assert_eq!(browser.focused_id().await, "email");
    browser.screenshot("forgot-password").await;
    browser.keys(email).await;
    browser.keys_and_wait(ENTER).await;
    assert_eq!(browser.path().await, "/forgot-password");
    assert!(browser.text("#notice").await.contains(email));
    browser.screenshot("forgot-password-sent").await;

    // The email's link names the public URL (TESSERA_ISSUER); here it is the test server.
    let (token, text) = reset_link(&sink, email).await;
    let link = format!("/reset-password?token={token}");
    assert!(text.contains(&format!("https://auth.test{link}")), "{text}");
    browser.open(&app, &link).await;
    assert_eq!(browser.text("h1").await, "Choose a new password");
    assert_eq!(browser.focused_id().await, "new-password");
    assert_no_token_visible_to_js(&browser).await;
    browser.screenshot("reset-password").await;
    browser.fill("#new-password", NEW_PASSWORD).await;
    browser.fill("#confirm-password", NEW_PASSWORD).await;
    browser.click_and_wait("#set-password").await;
    assert_eq!(browser.path().await, "/reset-password");
    assert_eq!(browser.text("h1").await, "Your password has been reset");
    browser.screenshot("reset-password-done").await;
    assert_cut_off(&app, &phone).await;

    browser.click_and_wait("#sign-in-link").await;
    submit_login(&browser, &app, email, NEW_PASSWORD).await;
    assert_eq!(browser.path().await, "/account/security");

    // The link worked once.
    browser.open(&app, &link).await;
    browser
        .fill("#new-password", "yet another passphrase")
        .await;
    browser
        .fill("#confirm-password", "yet another passphrase")
        .await;
    browser.click_and_wait("#set-password").await;
    assert_eq!(response_status(&browser).await, 400);
    assert_eq!(browser.text("h1").await, "This link does not work");
    browser.screenshot("reset-password-invalid").await;
    browser.click_and_wait("#new-link").await;
    assert_eq!(browser.path().await, "/forgot-password");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_pages_fit_a_phone_and_label_every_field() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };
    assert_eq!(browser.set_window_size(390, 844).await, 390);
    let unknown_link = "/reset-password?token=pr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (path, shot) in [
        ("/signup", "signup-phone"),
        ("/forgot-password", "forgot-password-phone"),
        (unknown_link, "reset-password-phone"),
    ] {
        browser.open(&app, path).await;
        assert_fits_and_labelled(&browser).await;
        browser.screenshot(shot).await;
    }
    sign_in(&browser, &app, &email).await;
    browser.open(&app, "/account/password").await;
    assert_eq!(browser.path().await, "/account/password");
    assert_fits_and_labelled(&browser).await;
    browser.screenshot("account-password-phone").await;
    browser.close().await;
}

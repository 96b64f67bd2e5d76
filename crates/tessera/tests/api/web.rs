//! End to end through the server-rendered pages: a headless Chromium signs in, enrols
//! TOTP, manages its devices and is signed out, against a real server over SQLite.
//! Every stage leaves a screenshot in `target/e2e-screenshots/`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;

use crate::helpers::Browser;
use crate::helpers::web::{
    ENTER, TAB, assert_fits_and_labelled, assert_no_token_visible_to_js, response_status, set_up,
    sign_in, submit_login,
};
use crate::helpers::{PASSWORD, TestApp, assert_cut_off, assert_issued_codes, oathtool, s};

const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// The TOTP code of the next 30 s step: the replay guard takes one code per step and user.
fn next_code(app: &TestApp, secret: &str) -> Option<String> {
    app.clock.advance(time::Duration::seconds(30));
    oathtool(secret, app.clock.now())
}

/// Every listed recovery code lies within its own list item: a code wider than its column
/// would run into the codes of the next one, unreadable, and no sideways scroll shows it.
async fn assert_codes_fit_their_column(browser: &Browser) {
    let spill = browser
        .execute(
            r#"
            return [...document.querySelectorAll('ol#recovery-codes li')]
                .filter(li => {
                    const item = li.getBoundingClientRect();
                    return [...li.querySelector('code').getClientRects()]
                        .some(r => r.left < item.left - 0.5 || r.right > item.right + 0.5);
                })
                .map(li => li.textContent.trim());
            "#,
        )
        .await;
    assert_eq!(spill, json!([]), "codes spill out of their column");
}

/// Whether the account page says MFA is on ("On") or off ("Off").
async fn assert_mfa_status(browser: &Browser, expected: &str) {
    let status = browser.text("section#mfa #mfa-status").await;
    assert!(
        status.contains(expected),
        "#mfa-status says {status:?}, expected {expected:?}"
    );
}

/// A second device (a phone, through the JSON API) completes a TOTP login.
async fn phone_signs_in(app: &TestApp, email: &str, secret: &str) -> Option<Value> {
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", SAFARI_IPHONE)
        .json(&json!({"email": email, "password": PASSWORD, "device_id": "phone-2", "device_name": "Ana's phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pending: Value = res.json().await.unwrap();
    assert_eq!(pending["status"], "mfa_required", "{pending}");
    let code = next_code(app, secret)?;
    let res = app
        .client
        .post(app.url("/v1/auth/login/mfa"))
        .header("user-agent", SAFARI_IPHONE)
        .json(&json!({"mfa_token": s(&pending, "mfa_token"), "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    Some(res.json().await.unwrap())
}

/// The `data-session-id` of every device row, as written in the page.
async fn device_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .execute(
            "return Array.from(document.querySelectorAll('section#devices li.device'), \
             li => li.getAttribute('data-session-id'));",
        )
        .await;
    serde_json::from_value(ids).unwrap()
}

/// The row of `session_id` (any UUID spelling in the page), as a CSS selector.
async fn row_of(browser: &Browser, session_id: &str) -> String {
    let wanted = uuid::Uuid::parse_str(session_id).unwrap();
    let ids = device_ids(browser).await;
    let id = ids
        .iter()
        .find(|id| uuid::Uuid::parse_str(id).ok() == Some(wanted))
        .unwrap_or_else(|| panic!("no device row for {session_id} among {ids:?}"));
    format!("section#devices li.device[data-session-id=\"{id}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_enables_mfa_and_revokes_another_device_from_the_account_page() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };

    browser.open(&app, "/login").await;
    browser.screenshot("login").await;

    // Signed in with the password: MFA is off and this browser is the only device.
    sign_in(&browser, &app, &email).await;
    assert_mfa_status(&browser, "Off").await;
    assert_eq!(browser.count("section#devices li.device").await, 1);
    assert_eq!(
        browser
            .count("section#devices li.device .this-device")
            .await,
        1
    );
    assert_eq!(
        browser.text("section#devices li.device .this-device").await,
        "This device"
    );
    assert_eq!(browser.count("section#devices button.revoke").await, 0);
    assert!(browser.count("section#activity li.event").await >= 1);
    assert_no_token_visible_to_js(&browser).await;
    browser.screenshot("account-signed-in").await;

    // Setup (after the password): the secret as text and as a QR code; the code oathtool
    // computes confirms it.
    browser.fill("#setup-password", PASSWORD).await;
    browser.click_and_wait("#enable-mfa").await;
    assert_eq!(browser.path().await, "/account/security/mfa/setup");
    let secret = browser.text("#totp-secret").await;
    assert!(
        secret.len() >= 32
            && secret
                .chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "#totp-secret is not bare base32: {secret:?}"
    );
    assert_eq!(browser.count("#totp-qr svg").await, 1);
    assert_no_token_visible_to_js(&browser).await;
    browser.screenshot("mfa-setup").await;
    let Some(code) = oathtool(&secret, app.clock.now()) else {
        return;
    };
    assert_eq!(browser.count("form#mfa-confirm-form").await, 1);
    browser.fill("#confirm-code", &code).await;
    browser.click_and_wait("#confirm-mfa").await;

    // Ten distinct recovery codes, with a way to keep them.
    assert_eq!(browser.path().await, "/account/security/mfa/confirm");
    let codes = browser.texts("ol#recovery-codes li code").await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10, "{codes:?}");
    assert_issued_codes(&codes);
    assert_codes_fit_their_column(&browser).await;
    let download = browser.attr("a#download-codes", "href").await;
    assert!(
        download.is_some_and(|href| !href.is_empty()),
        "a#download-codes has no href"
    );
    assert_eq!(browser.count("button#copy-codes").await, 1);
    browser.screenshot("mfa-recovery-codes").await;
    browser.click_and_wait("a#continue").await;
    assert_eq!(browser.path().await, "/account/security");
    assert_mfa_status(&browser, "On").await;
    assert_eq!(browser.count("#enable-mfa").await, 0);
    for css in [
        "form#regenerate-form input#regenerate-code",
        "form#regenerate-form button#regenerate",
        "form#disable-form input#disable-code",
        "form#disable-form button#disable-mfa",
    ] {
        assert_eq!(browser.count(css).await, 1, "{css}");
    }

    // A phone signs in with a TOTP code: two devices, only the other one revocable.
    let Some(phone) = phone_signs_in(&app, &email, &secret).await else {
        return;
    };
    browser.open(&app, "/account/security").await;
    assert_eq!(browser.count("section#devices li.device").await, 2);
    let phone_row = row_of(&browser, &s(&phone, "session_id")).await;
    assert_eq!(
        browser
            .count(&format!("{phone_row} form.revoke-form button.revoke"))
            .await,
        1
    );
    assert_eq!(browser.count(&format!("{phone_row} .this-device")).await, 0);
    let this_row = "section#devices li.device:has(.this-device)";
    assert_eq!(browser.count(this_row).await, 1);
    assert_eq!(browser.count(&format!("{this_row} button.revoke")).await, 0);
    assert_eq!(browser.count("button#revoke-others").await, 1);
    browser.screenshot("devices-two").await;

    // Revoking the phone's row cuts off both of its tokens.
    browser
        .click_and_wait(&format!("{phone_row} button.revoke"))
        .await;
    assert_eq!(browser.path().await, "/account/security");
    assert_eq!(browser.count("section#devices li.device").await, 1);
    assert_eq!(browser.count(this_row).await, 1);
    assert!(!browser.text("#notice").await.is_empty());
    assert_eq!(
        browser.attr("#notice", "role").await.as_deref(),
        Some("status")
    );
    browser.screenshot("devices-after-revoke").await;
    assert_cut_off(&app, &phone).await;

    // Signing out ends this session; the next sign-in takes a second step.
    browser.click_and_wait("#sign-out").await;
    assert_eq!(browser.path().await, "/login");
    browser.open(&app, "/account/security").await;
    assert_eq!(browser.path().await, "/login", "signed out, yet let in");
    submit_login(&browser, &app, &email, PASSWORD).await;
    assert_eq!(browser.path().await, "/login/mfa");
    assert_eq!(browser.count("form#mfa-form").await, 1);
    assert_no_token_visible_to_js(&browser).await;
    browser.screenshot("login-mfa-step").await;
    let Some(code) = next_code(&app, &secret) else {
        return;
    };
    browser.fill("#code", &code).await;
    browser.click_and_wait("#verify").await;
    assert_eq!(browser.path().await, "/account/security");
    assert_mfa_status(&browser, "On").await;
    assert_eq!(browser.count("section#devices li.device").await, 1);
    assert_no_token_visible_to_js(&browser).await;
    browser.screenshot("account-signed-in-with-mfa").await;

    // A recovery code typed as shown, 29 characters with its dashes, fits the same field.
    browser.click_and_wait("#sign-out").await;
    submit_login(&browser, &app, &email, PASSWORD).await;
    assert_eq!(browser.path().await, "/login/mfa");
    browser.fill("#code", &codes[0]).await;
    browser.click_and_wait("#verify").await;
    assert_eq!(browser.path().await, "/account/security", "{}", codes[0]);
    assert_eq!(app.count_events("recovery_code_used").await, 1);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_tells_a_throttled_user_how_long_to_wait() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };
    for attempt in 1..=5 {
        submit_login(&browser, &app, &email, "wrong guess").await;
        assert_eq!(browser.path().await, "/login", "attempt {attempt}");
        let error = browser.text("#form-error").await;
        assert!(!error.is_empty(), "attempt {attempt}");
        assert!(
            !error.contains("Try again in"),
            "attempt {attempt}: {error}"
        );
    }
    assert_eq!(
        browser.attr("#form-error", "role").await.as_deref(),
        Some("alert")
    );

    submit_login(&browser, &app, &email, "wrong guess").await;
    assert_eq!(browser.path().await, "/login");
    assert_eq!(response_status(&browser).await, 429);
    let error = browser.text("#form-error").await;
    assert!(error.contains("Try again in"), "{error}");
    browser.screenshot("login-rate-limited").await;

    // The right password waits too: nothing is checked until the window passes.
    submit_login(&browser, &app, &email, PASSWORD).await;
    assert_eq!(browser.path().await, "/login");
    assert!(browser.text("#form-error").await.contains("Try again in"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_fits_a_phone_and_labels_every_field() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };
    assert_eq!(browser.set_window_size(390, 844).await, 390);
    browser.open(&app, "/login").await;
    assert_fits_and_labelled(&browser).await;
    browser.screenshot("login-phone").await;

    sign_in(&browser, &app, &email).await;
    browser.open(&app, "/account/security").await;
    assert_eq!(browser.path().await, "/account/security");
    assert_fits_and_labelled(&browser).await;
    browser.screenshot("account-phone").await;

    browser.fill("#setup-password", PASSWORD).await;
    browser.click_and_wait("#enable-mfa").await;
    assert_eq!(browser.path().await, "/account/security/mfa/setup");
    assert_fits_and_labelled(&browser).await;
    browser.screenshot("mfa-setup-phone").await;

    // The codes, 29 characters each, never wrap and stay on the screen.
    let secret = browser.text("#totp-secret").await;
    let Some(code) = oathtool(&secret, app.clock.now()) else {
        return;
    };
    browser.fill("#confirm-code", &code).await;
    browser.click_and_wait("#confirm-mfa").await;
    assert_eq!(browser.path().await, "/account/security/mfa/confirm");
    assert_eq!(browser.texts("ol#recovery-codes li code").await.len(), 10);
    assert_fits_and_labelled(&browser).await;
    assert_codes_fit_their_column(&browser).await;
    browser.screenshot("mfa-recovery-codes-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_browser_session_is_sent_back_to_sign_in() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };
    sign_in(&browser, &app, &email).await;

    // From another device, the user signs out everywhere else: this browser included.
    let res = app.login(&email, PASSWORD, "api-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let other: Value = res.json().await.unwrap();
    let res = app
        .client
        .post(app.url("/v1/sessions/revoke-others"))
        .bearer_auth(s(&other, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"revoked": 1}));

    browser.open(&app, "/account/security").await;
    assert_eq!(browser.path().await, "/login");
    assert_eq!(browser.count("form#login-form").await, 1);
    browser.screenshot("revoked-session-at-login").await;
    browser.close().await;
}

/// Sign-in and turning on two-step verification work from the keyboard alone: focus
/// starts in the first field, Tab follows the visual order, Enter submits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_from_the_keyboard_alone() {
    let Some((app, email, browser)) = set_up().await else {
        return;
    };
    browser.open(&app, "/login").await;
    assert_eq!(
        browser.focused_id().await,
        "email",
        "focus starts in the form"
    );
    browser.keys(&email).await;
    browser.keys(TAB).await;
    assert_eq!(browser.focused_id().await, "password");
    browser.keys(PASSWORD).await;
    browser.keys(TAB).await;
    assert_eq!(browser.focused_id().await, "sign-in");
    browser.keys_and_wait(ENTER).await;
    assert_eq!(browser.path().await, "/account/security");

    // From the top of the account page: the skip link, sign out, the password set-up
    // needs, then the MFA button.
    let mut order = Vec::new();
    for _ in 0..3 {
        browser.keys(TAB).await;
        order.push(browser.focused_id().await);
    }
    assert_eq!(
        order,
        ["", "sign-out", "setup-password"],
        "skip link, sign out, the password"
    );
    browser.keys(PASSWORD).await;
    browser.keys(TAB).await;
    assert_eq!(browser.focused_id().await, "enable-mfa");
    browser.keys_and_wait(ENTER).await;
    assert_eq!(browser.path().await, "/account/security/mfa/setup");
    assert_eq!(browser.focused_id().await, "confirm-code");
    let secret = browser.text("#totp-secret").await;
    let Some(code) = oathtool(&secret, app.clock.now()) else {
        return;
    };
    browser.keys(&code).await;
    browser.keys_and_wait(ENTER).await;
    assert_eq!(browser.path().await, "/account/security/mfa/confirm");
    assert_eq!(browser.texts("ol#recovery-codes li code").await.len(), 10);
    browser.screenshot("keyboard-recovery-codes").await;
    browser.close().await;
}

//! The web pages in the browser: a server with a user and a browser, signing in, and the
//! checks every page passes (no token readable by script, fits a phone, labelled).

use serde_json::json;

use super::Browser;
use super::{Backend, PASSWORD, TestApp};

/// A server over SQLite, a registered user and a browser; None after a skip notice.
pub async fn set_up() -> Option<(TestApp, String, Browser)> {
    let app = TestApp::spawn(Backend::Sqlite).await?;
    // Each test has its own database, so one readable address serves (it shows in the
    // screenshots of the user guide).
    let email = "ana@example.com".to_owned();
    app.register(&email, PASSWORD).await;
    let browser = Browser::start().await?;
    Some((app, email, browser))
}

/// Fills and submits the login form (from wherever the browser is).
pub async fn submit_login(browser: &Browser, app: &TestApp, email: &str, password: &str) {
    if browser.path().await != "/login" {
        browser.open(app, "/login").await;
    }
    assert_eq!(browser.count("form#login-form").await, 1);
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.click_and_wait("#sign-in").await;
}

/// Signs in with the password alone and lands on the account page.
pub async fn sign_in(browser: &Browser, app: &TestApp, email: &str) {
    submit_login(browser, app, email, PASSWORD).await;
    assert_eq!(browser.path().await, "/account/security");
    assert_eq!(browser.text("h1").await, "Account security");
}

/// No token is within reach of page scripts: every cookie is HttpOnly, nothing is stored.
pub async fn assert_no_token_visible_to_js(browser: &Browser) {
    let seen = browser
        .execute(
            "return {cookie: document.cookie, local: localStorage.length, \
             session: sessionStorage.length};",
        )
        .await;
    assert_eq!(
        seen,
        json!({"cookie": "", "local": 0, "session": 0}),
        "on {}",
        browser.path().await
    );
}

/// The HTTP status of the document on screen.
pub async fn response_status(browser: &Browser) -> u64 {
    browser
        .execute("return performance.getEntriesByType('navigation')[0].responseStatus;")
        .await
        .as_u64()
        .unwrap()
}

/// The page fits the viewport's width, and every visible control has an accessible name.
pub async fn assert_fits_and_labelled(browser: &Browser) {
    let report = browser
        .execute(
            r#"
            const shown = el => el.getClientRects().length > 0
                && getComputedStyle(el).visibility !== 'hidden';
            const aria = el => (el.getAttribute('aria-label') || '').trim() !== ''
                || (el.getAttribute('aria-labelledby') || '').trim() !== '';
            const unnamed = [];
            for (const el of document.querySelectorAll('input, button, select')) {
                if (el.type === 'hidden' || !shown(el)) continue;
                let named;
                if (el.tagName === 'BUTTON') {
                    named = el.textContent.trim() !== '' || aria(el);
                } else if (['submit', 'button', 'reset'].includes(el.type)) {
                    named = (el.value || '').trim() !== '' || aria(el);
                } else {
                    named = (el.labels && el.labels.length > 0) || aria(el);
                }
                if (!named) unnamed.push(el.outerHTML);
            }
            const viewport = document.querySelector('meta[name="viewport"]');
            return {
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                viewport: viewport ? viewport.getAttribute('content') : null,
                unnamed,
            };
            "#,
        )
        .await;
    let path = browser.path().await;
    assert!(
        report["scrollWidth"].as_u64() <= report["innerWidth"].as_u64(),
        "{path} scrolls sideways on a phone: {report}"
    );
    assert!(
        report["viewport"]
            .as_str()
            .is_some_and(|v| v.contains("width=device-width")),
        "{path} has no <meta name=viewport content=\"width=device-width…\">: {report}"
    );
    assert_eq!(
        report["unnamed"],
        json!([]),
        "{path} has controls without an accessible name"
    );
}

/// WebDriver key codes.
pub const TAB: &str = "\u{e004}";
pub const ENTER: &str = "\u{e007}";

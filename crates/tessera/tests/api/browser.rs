//! The browser helper itself: Chromium opens a page the test server serves.

use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_opens_a_page_served_by_the_test_server() {
    let Some(app) = TestApp::spawn(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open(&app, "/healthz").await;
    assert_eq!(browser.path().await, "/healthz");
    let body = browser.text("body").await;
    let health: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/healthz shows JSON, not {body:?}: {e}"));
    assert_eq!(health, json!({"status": "ok"}));
    assert_eq!(browser.execute("return 6 * 7;").await, json!(42));
    let shot = browser.screenshot("smoke-healthz").await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", shot.display());
    browser.close().await;
}

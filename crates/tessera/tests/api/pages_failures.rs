//! How a failure reads and where it goes. A refusal on a page says what to do next;
//! "went wrong on our side" is kept for our own faults, and those are logged once, with
//! the request's id, never shown.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::Value;
use tessera_app::AppError;
use tessera_server::ui::views::failure_page;

use crate::helpers::{Backend, FormClient, TestApp, new_user, s};

const OUR_SIDE: &str = "went wrong on our side";

async fn page_of(e: AppError) -> (StatusCode, String) {
    let res = failure_page(e);
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_refused_action_reads_as_not_allowed_not_as_our_fault() {
    let (status, html) = page_of(AppError::Forbidden).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("not allowed"), "{html}");
    assert!(html.contains("Not allowed"), "the heading: {html}");
    assert!(!html.contains(OUR_SIDE), "{html}");
    assert!(!html.contains("Something went wrong"), "{html}");

    let (status, html) = page_of(AppError::MfaEnrollmentRequired).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Turn it on"), "{html}");
    assert!(!html.contains(OUR_SIDE), "{html}");
}

#[tokio::test]
async fn a_step_up_page_asks_for_an_authenticator_code_and_says_where() {
    let (status, html) = page_of(AppError::StepUpRequired { max_age_secs: 300 }).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("code from your authenticator app"), "{html}");
    assert!(html.contains("account security page"), "{html}");
    assert!(html.contains("href=\"/account/security\""), "{html}");
    assert!(
        html.contains("Please confirm it is you"),
        "the heading: {html}"
    );
    assert!(!html.contains(OUR_SIDE), "{html}");
    assert!(!html.contains("Something went wrong"), "{html}");
}

#[tokio::test]
async fn only_our_own_fault_is_headed_as_something_that_went_wrong() {
    let (status, html) = page_of(AppError::Internal("a broken row".into())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(html.contains("Something went wrong"), "{html}");
    assert!(!html.contains("a broken row"), "{html}");

    let (status, html) = page_of(AppError::InvalidCredentials).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!html.contains("Something went wrong"), "{html}");
}

/// Every log line written while the guard of `capture` lives on this thread, as JSON.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The fields of each `internal error` line.
    fn internal_errors(&self) -> Vec<Value> {
        let raw = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        raw.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["fields"].clone())
            .filter(|f| f["message"] == "internal error")
            .collect()
    }
}

fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers["x-request-id"].to_str().unwrap().to_owned()
}

// A single-threaded runtime: the server's tasks run on this thread, under its subscriber.
#[tokio::test]
async fn an_internal_error_is_logged_once_with_the_request_id_and_never_shown() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (_, login) = app.signed_in_user("laptop").await;
    let mut web = FormClient::new(&app);
    web.sign_in(&new_user(&app).await).await;
    // A kind no version wrote: reading the events is now a failure on our side.
    app.sql("UPDATE security_events SET kind = 'not_a_kind'")
        .await;
    const CHAIN: &str = "invalid event kind";

    let res = app
        .get_auth("/v1/security-events", &s(&login, "access_token"))
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let api_request = request_id(res.headers());
    let body = res.text().await.unwrap();
    assert!(
        body.contains("internal_error") && !body.contains(CHAIN),
        "{body}"
    );

    let res = web.get("/account/security").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let page_request = request_id(res.headers());
    let html = res.text().await.unwrap();
    assert!(html.contains(OUR_SIDE) && !html.contains(CHAIN), "{html}");

    let logged = logs.internal_errors();
    assert_eq!(logged.len(), 2, "one line per failed request: {logged:?}");
    for (line, id) in logged.iter().zip([&api_request, &page_request]) {
        assert_eq!(line["request_id"], id.as_str(), "{line}");
        assert!(line["error"].as_str().unwrap().contains(CHAIN), "{line}");
    }
}

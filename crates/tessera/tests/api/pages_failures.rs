//! How a failure reads on a page: a refusal says what to do next; "went wrong on our
//! side" is kept for our own faults.

use axum::http::StatusCode;
use tessera_app::AppError;
use tessera_server::ui::views::failure_page;

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
    assert!(!html.contains(OUR_SIDE), "{html}");

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
    assert!(!html.contains(OUR_SIDE), "{html}");
}

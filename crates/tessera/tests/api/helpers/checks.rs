//! Assertions on answers shared by many tests, and reading JSON fields.

use reqwest::Response;
use serde_json::Value;

use super::TestApp;

/// Asserts a problem+json answer with the given status and code; returns the body.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        res.status().as_u16(),
        status,
        "status for expected `{code}`"
    );
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:tessera:problem:{code}"));
    assert_eq!(body["status"], status);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    body
}

/// A string field of a JSON body.
pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

/// The device behind `login` (a login or refresh body) is cut off: its access token and
/// its refresh token are both refused with `session_revoked`.
pub async fn assert_cut_off(app: &TestApp, login: &Value) {
    assert_problem(
        app.get_auth("/v1/me", &s(login, "access_token")).await,
        401,
        "session_revoked",
    )
    .await;
    assert_problem(
        app.refresh(&s(login, "refresh_token")).await,
        401,
        "session_revoked",
    )
    .await;
}

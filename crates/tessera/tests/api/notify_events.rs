//! Each event the contract names delivers exactly one message to its user, with an id.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_adapters::notify::testing::SmtpSink;

use crate::both_backends;
use crate::helpers::notify::{Channels, drained, mails_of, one_more, spawn_notifying};
use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, enrolled, enrolled_admin, s};

async fn login(app: &TestApp, email: &str, device: &str) -> Value {
    let res = app.login(email, PASSWORD, device).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn every_event_the_contract_names_delivers_one_message(backend: Backend) {
    let sink = SmtpSink::start().await;
    let channels = Channels {
        smtp: Some(sink.url()),
        webhook: None,
    };
    let Some(app) = spawn_notifying(backend, channels).await else {
        return;
    };
    let (email, laptop) = app.signed_in_user("laptop").await;
    let count = |subject: &str| mails_of(&sink, &email, subject).len();
    const NEW_DEVICE: &str = "New sign-in to your account";
    const REVOKED: &str = "A session on your account was signed out";
    one_more(&app, &sink, &email, NEW_DEVICE, 0).await;

    // Remote revoke: the laptop ends the phone's session.
    let phone = login(&app, &email, "phone").await;
    let before = count(REVOKED);
    let res = app
        .client
        .delete(app.url(&format!("/v1/sessions/{}", s(&phone, "session_id"))))
        .bearer_auth(s(&laptop, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    one_more(&app, &sink, &email, REVOKED, before).await;

    // Revoke-others ending two sessions is one message that says two.
    login(&app, &email, "phone").await;
    login(&app, &email, "tablet").await;
    drained(&app).await;
    let before = count(REVOKED);
    let res = app
        .post_auth(
            "/v1/sessions/revoke-others",
            &s(&laptop, "access_token"),
            json!({}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["revoked"], 2);
    let mail = one_more(&app, &sink, &email, REVOKED, before).await;
    let text = mail.part("text/plain").unwrap();
    assert!(text.contains("2 of your sessions"), "{text}");

    // Reuse of a rotated refresh token.
    let rotated: Value = app
        .refresh(&s(&laptop, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(rotated["refresh_token"].is_string());
    assert_problem(
        app.refresh(&s(&laptop, "refresh_token")).await,
        401,
        "refresh_token_reused",
    )
    .await;
    one_more(
        &app,
        &sink,
        &email,
        "A copied sign-in was stopped on your account",
        0,
    )
    .await;

    // Password change.
    let desk = login(&app, &email, "desk").await;
    let res = app
        .post_auth(
            "/v1/me/password",
            &s(&desk, "access_token"),
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    one_more(&app, &sink, &email, "Your password was changed", 0).await;

    // MFA enabled, then reset by an administrator through the API.
    let Some((target_email, target_login, _, _)) = enrolled(&app, "target-phone").await else {
        return;
    };
    one_more(
        &app,
        &sink,
        &target_email,
        "Two-factor authentication turned on",
        0,
    )
    .await;
    let Some(admin_at) = enrolled_admin(&app).await else {
        return;
    };
    let target: Value = app.me(&s(&target_login, "access_token")).await;
    let res = app
        .post_auth(
            &format!("/v1/admin/users/{}/mfa/reset", s(&target, "user_id")),
            &admin_at,
            json!({"reason": "lost phone, identity checked on a call"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let subject = "Two-factor authentication reset by an administrator";
    one_more(&app, &sink, &target_email, subject, 0).await;

    // Every message ever sent here carries its own id, once.
    let ids: Vec<String> = sink
        .mails()
        .iter()
        .map(|m| m.header("Tessera-Notification-Id").unwrap())
        .collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

both_backends!(every_event_the_contract_names_delivers_one_message, Backend => every_event_the_contract_names_delivers_one_message);

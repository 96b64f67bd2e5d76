//! Password reset end to end over a real SMTP conversation: the emailed link is the only
//! way to the token, as for a user.

use reqwest::StatusCode;
use serde_json::Value;
use tessera_adapters::notify::testing::{ReceivedMail, SmtpSink};

use crate::both_backends;
use crate::helpers::notify::{Channels, PATIENCE, drained, mails_of, spawn_notifying};
use crate::helpers::{Backend, PASSWORD, TestApp, assert_cut_off, assert_problem, s};

const NEW_PASSWORD: &str = "a brand new passphrase";
const LINK: &str = "https://auth.test/reset-password?token=";
const LINK_SUBJECT: &str = "Reset your password";
const DONE_SUBJECT: &str = "Your password was reset";

async fn app_with_sink(backend: Backend, sink: &SmtpSink) -> Option<TestApp> {
    let channels = Channels {
        smtp: Some(sink.url()),
        webhook: None,
    };
    spawn_notifying(backend, channels).await
}

/// The token of the reset link in a mail's plain text, if it holds one.
fn link_token(mail: &ReceivedMail) -> Option<String> {
    let text = mail.part("text/plain")?;
    let start = text.find(LINK)? + LINK.len();
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}

/// Waits for the `n`th mail and returns the reset-link tokens received so far, in order.
async fn link_tokens(sink: &SmtpSink, n: usize) -> Vec<String> {
    let mails = sink.wait_for(n, PATIENCE).await;
    assert!(mails.len() >= n, "{} of {n} mails arrived", mails.len());
    mails.iter().filter_map(link_token).collect()
}

async fn the_emailed_link_resets_the_password_and_ends_every_session(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = app_with_sink(backend, &sink).await else {
        return;
    };
    let email = format!("rita-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    let mut devices = Vec::new();
    for device in ["laptop", "phone"] {
        let res = app.login(&email, PASSWORD, device).await;
        assert_eq!(res.status(), StatusCode::OK);
        devices.push(res.json::<Value>().await.unwrap());
    }
    // Two new-device notices, then the reset link; nothing for the unknown address.
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.ask_reset(&unknown).await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let tokens = link_tokens(&sink, 3).await;
    assert_eq!(tokens.len(), 1, "{:?}", sink.mails());
    let token = &tokens[0];
    assert!(token.starts_with("pr_") && token.len() == 46, "{token}");

    // A typo in the new password does not use the link up.
    assert_problem(
        app.complete_reset(token, "short").await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(
        app.complete_reset(token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    // Single use.
    assert_problem(
        app.complete_reset(token, "yet another passphrase").await,
        400,
        "invalid_reset_token",
    )
    .await;

    assert_problem(
        app.login(&email, PASSWORD, "tablet").await,
        401,
        "invalid_credentials",
    )
    .await;
    let res = app.login(&email, NEW_PASSWORD, "tablet").await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh: Value = res.json().await.unwrap();
    for device in &devices {
        assert_cut_off(&app, device).await;
    }

    let events = app.security_events(&s(&fresh, "access_token")).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"password_reset_requested"), "{types:?}");
    assert!(types.contains(&"password_reset"), "{types:?}");
    for device in &devices {
        let revoked = events
            .iter()
            .find(|e| e["type"] == "session_revoked" && e["session_id"] == device["session_id"]);
        let revoked = revoked.unwrap_or_else(|| panic!("no revocation event: {events:?}"));
        assert_eq!(revoked["detail"]["reason"], "password_reset");
    }

    // The reset's own notice arrives; every mail went to the account's address (none to
    // the unknown one), and only the link email carries a token.
    drained(&app).await;
    let mails = sink.mails();
    for mail in &mails {
        assert_eq!(mail.rcpt_to, [email.as_str()], "{mail:?}");
    }
    assert_eq!(mails_of(&sink, &email, LINK_SUBJECT).len(), 1);
    let done = mails_of(&sink, &email, DONE_SUBJECT);
    assert_eq!(done.len(), 1, "{mails:?}");
    for mail in mails.iter().filter(|m| link_token(m).is_none()) {
        assert!(!mail.data.contains(token.as_str()), "{mail:?}");
    }
}

/// Email is not a second factor (ASVS 6.3.6, 6.4.3): a reset sets the password and
/// nothing else, so an account with TOTP still asks for a code at the next sign-in.
async fn a_reset_leaves_totp_on_and_the_next_sign_in_still_asks_for_a_code(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = app_with_sink(backend, &sink).await else {
        return;
    };
    let Some((email, _, _, codes)) = crate::helpers::enrolled(&app, "laptop").await else {
        return;
    };
    drained(&app).await;
    let before = sink.mails().len();
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let tokens = link_tokens(&sink, before + 1).await;
    let token = tokens.last().expect("a reset link");
    assert_eq!(
        app.complete_reset(token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    let res = app.login(&email, NEW_PASSWORD, "tablet").await;
    assert_eq!(res.status(), StatusCode::OK);
    let pending: Value = res.json().await.unwrap();
    assert_eq!(pending["status"], "mfa_required", "{pending}");
    assert!(pending.get("access_token").is_none(), "{pending}");
    assert!(pending.get("refresh_token").is_none(), "{pending}");
    // The factor is the one enrolled before the reset: its recovery codes still work.
    let res = crate::helpers::login_mfa(&app, &s(&pending, "mfa_token"), &codes[0]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

both_backends!(a_reset_leaves_totp_on_and_the_next_sign_in_still_asks_for_a_code, Backend => a_reset_leaves_totp_on_and_the_next_sign_in_still_asks_for_a_code);

async fn a_newer_link_voids_the_older_and_a_link_expires_after_30_minutes(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = app_with_sink(backend, &sink).await else {
        return;
    };
    let email = format!("otto-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let first = link_tokens(&sink, 1).await;
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let tokens = link_tokens(&sink, 2).await;
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], first[0]);
    assert_ne!(tokens[0], tokens[1]);

    assert_problem(
        app.complete_reset(&tokens[0], NEW_PASSWORD).await,
        400,
        "invalid_reset_token",
    )
    .await;
    // The newer link works to the end of its 30 minutes...
    app.clock.advance(time::Duration::minutes(29));
    assert_eq!(
        app.complete_reset(&tokens[1], NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    // ...and not a second past them.
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let tokens = link_tokens(&sink, 4).await;
    assert_eq!(tokens.len(), 3, "{:?}", sink.mails());
    app.clock
        .advance(time::Duration::minutes(30) + time::Duration::seconds(1));
    assert_problem(
        app.complete_reset(&tokens[2], "an expired choice").await,
        400,
        "invalid_reset_token",
    )
    .await;
    assert_eq!(
        app.login(&email, NEW_PASSWORD, "d").await.status(),
        StatusCode::OK
    );
}

both_backends!(the_emailed_link_resets_the_password_and_ends_every_session, Backend => the_emailed_link_resets_the_password_and_ends_every_session);

both_backends!(a_newer_link_voids_the_older_and_a_link_expires_after_30_minutes, Backend => a_newer_link_voids_the_older_and_a_link_expires_after_30_minutes);

//! Notices are budgeted per user and kind: whoever can sign in to an account (or
//! registered someone else's address) cannot turn it into a mail bomb, and a flood of one
//! kind never silences another.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::ratelimit::Policy;

use crate::both_backends;
use crate::helpers::notify::{
    configure, drained, mails_of, spawn_with_sink, spawn_with_sink_configured,
};
use crate::helpers::{Backend, PASSWORD, s};

const NEW_DEVICE: &str = "New sign-in to your account";
const PASSWORD_CHANGED: &str = "Your password was changed";

async fn a_flood_of_new_device_sign_ins_sends_at_most_the_budget_and_records_them_all(
    backend: Backend,
) {
    let Some((app, sink)) = spawn_with_sink(backend).await else {
        return;
    };
    let budget = Policy::NOTICES_PER_USER_KIND.limit as usize;
    let email = format!("bomb-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    let mut last = Value::Null;
    for i in 0..budget + 3 {
        last = app
            .login_ok(&email, PASSWORD, &format!("fresh-device-{i}"))
            .await;
    }
    drained(&app).await;
    assert_eq!(
        mails_of(&sink, &email, NEW_DEVICE).len(),
        budget,
        "at most the budget of new-device mails in the hour"
    );

    let token = s(&last, "access_token");
    let all = app.security_events(&token).await;
    let new_device: Vec<&Value> = all.iter().filter(|e| e["type"] == "new_device").collect();
    assert_eq!(
        new_device.len(),
        budget + 3,
        "every sign-in is still recorded"
    );
    let withheld = new_device
        .iter()
        .filter(|e| e["detail"]["notice"] == "withheld")
        .count();
    assert_eq!(
        withheld, 3,
        "the ones past the budget say no message went out"
    );

    // Another kind has its own budget: the owner still hears of a password change.
    let res = app
        .post_auth(
            "/v1/me/password",
            &token,
            json!({"current_password": PASSWORD, "new_password": "a-new-passphrase-42"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    drained(&app).await;
    assert_eq!(mails_of(&sink, &email, PASSWORD_CHANGED).len(), 1);
}

both_backends!(
    a_flood_of_new_device_sign_ins_sends_at_most_the_budget,
    Backend => a_flood_of_new_device_sign_ins_sends_at_most_the_budget_and_records_them_all
);

/// One notice an hour, three resets: past the notice budget.
fn one_notice_three_resets(config: &mut tessera::config::Config) {
    configure(config);
    config.notice_limit = 1;
    config.reset_account_limit = 3;
}

/// A reset link replaces the one before it, so it is never withheld by the notice budget
/// (its own budget limits it): each request the reset budget allows mails a link.
async fn every_reset_the_budget_allows_mails_its_link(backend: Backend) {
    let Some((app, sink)) = spawn_with_sink_configured(backend, one_notice_three_resets).await
    else {
        return;
    };
    let email = format!("resets-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    for _ in 0..3 {
        let res = app
            .post("/v1/password-reset", json!({"email": email}))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let mails = sink.mails().len();
        // The link is made in the background and then delivered: wait for it, bounded.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while sink.mails().len() == mails {
            assert!(tokio::time::Instant::now() < deadline, "no reset mail");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    drained(&app).await;
    let links: Vec<_> = sink
        .mails()
        .into_iter()
        .filter(|m| m.rcpt_to == [email.clone()])
        .collect();
    assert_eq!(links.len(), 3, "every allowed reset sends its link");
    for mail in links {
        let text = mail.part("text/plain").unwrap();
        assert!(text.contains("/reset-password?token="), "{text}");
    }
}

both_backends!(
    every_reset_the_budget_allows_mails_its_link_whatever_the_notice_budget,
    Backend => every_reset_the_budget_allows_mails_its_link
);

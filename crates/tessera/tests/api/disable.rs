//! ASVS 7.4.2: `tessera admin disable-user` ends every session and keeps it ended. The
//! right password then signs nobody in (answered as a wrong one), a pending second step
//! cannot complete, no reset link goes out or opens the account, and the running
//! server's cache hears of it at once; `enable-user` lets the password in again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;

use crate::admin_cli::cli_with;
use crate::both_backends;
use crate::helpers::notify::{drained, mails_of, reset_link, spawn_with_sink};
use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_cut_off, assert_problem, enrolled, login_mfa, metric,
    next_step, oathtool, s, subscribed_node,
};

const OPERATOR: &str = "ops-ana";
const REASON: &str = "ticket 41: vendor offboarded, laptop not returned";
const LINK_SUBJECT: &str = "Reset your password";
const DISABLED_SUBJECT: &str = "Your account was disabled";

/// `tessera admin <action> --email E [--reason R]` as `OPERATOR`, with `settings`.
fn admin(
    app: &TestApp,
    settings: &[(&str, &str)],
    action: &str,
    email: &str,
    reason: Option<&str>,
) -> std::process::Output {
    let mut args = vec!["admin", action, "--email", email, "--operator", OPERATOR];
    if let Some(reason) = reason {
        args.extend(["--reason", reason]);
    }
    cli_with(app, settings, &args)
}

/// The command succeeded; its stdout.
fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

both_backends!(
    a_disabled_account_is_signed_out_everywhere_and_its_password_opens_nothing,
    |app: TestApp| async move {
        let (email, laptop) = app.signed_in_user("laptop").await;
        let phone = app.login_ok(&email, PASSWORD, "phone").await;

        let out = ok(&admin(&app, &[], "disable-user", &email, Some(REASON)));
        assert!(out.contains("disabled, 2 session(s) revoked"), "{out}");
        for device in [&laptop, &phone] {
            assert_cut_off(&app, device).await;
        }

        // The right password is answered exactly as a wrong one, and the laptop's
        // known-device token (which only skips a budget) changes nothing.
        let wrong = assert_problem(
            app.login(&email, "not the password at all", "tablet").await,
            401,
            "invalid_credentials",
        )
        .await;
        let right = assert_problem(
            app.login(&email, PASSWORD, "tablet").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(right, wrong);
        let known = app
            .post(
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD, "device_id": "laptop",
                       "device_token": s(&laptop, "device_token")}),
            )
            .await;
        assert_problem(known, 401, "invalid_credentials").await;

        // Again: nothing changes and the operator is told so.
        let again = ok(&admin(&app, &[], "disable-user", &email, Some("twice")));
        assert!(again.contains("already disabled"), "{again}");

        let out = ok(&admin(
            &app,
            &[],
            "enable-user",
            &email,
            Some("ticket 41: returned"),
        ));
        assert!(out.contains(": enabled"), "{out}");
        let back = app.login_ok(&email, PASSWORD, "tablet").await;
        assert_eq!(back["status"], "authenticated");
        // The old sessions stay ended: enabling brings back the password, not them.
        assert_cut_off(&app, &phone).await;

        let events = app.security_events(&s(&back, "access_token")).await;
        let disabled = of_type(&events, "account_disabled");
        assert_eq!(
            disabled.len(),
            1,
            "the second disable recorded nothing: {events:?}"
        );
        let detail = &disabled[0]["detail"];
        assert_eq!(detail["actor"]["kind"], "operator");
        assert_eq!(detail["actor"]["name"], OPERATOR);
        assert_eq!(detail["reason"], REASON);
        assert_eq!(detail["sessions_revoked"], 2);
        let enabled = of_type(&events, "account_enabled");
        assert_eq!(enabled.len(), 1, "{events:?}");
        assert_eq!(enabled[0]["detail"]["reason"], "ticket 41: returned");
        for device in [&laptop, &phone] {
            let revoked = events.iter().find(|e| {
                e["type"] == "session_revoked" && e["session_id"] == device["session_id"]
            });
            let revoked = revoked.unwrap_or_else(|| panic!("no revocation: {events:?}"));
            assert_eq!(revoked["detail"]["reason"], "revoked_by_admin");
        }
        // The operator can tell a right password tried on the disabled account.
        let failed: Vec<&Value> = of_type(&events, "login_failed");
        let reasons: Vec<&Value> = failed.iter().map(|e| &e["detail"]["reason"]).collect();
        assert_eq!(
            reasons.iter().filter(|r| **r == "account_disabled").count(),
            2,
            "{reasons:?}"
        );
        assert_eq!(
            reasons.iter().filter(|r| **r == "invalid_password").count(),
            1,
            "{reasons:?}"
        );
    }
);

both_backends!(
    a_second_step_begun_before_the_disable_cannot_complete,
    |app: TestApp| async move {
        let Some((email, _, secret, _)) = enrolled(&app, "laptop").await else {
            return;
        };
        let first = app.login_ok(&email, PASSWORD, "phone").await;
        assert_eq!(first["status"], "mfa_required");

        ok(&admin(&app, &[], "disable-user", &email, Some(REASON)));
        next_step(&app);
        let Some(code) = oathtool(&secret, app.clock.now()) else {
            return;
        };
        assert_problem(
            login_mfa(&app, &s(&first, "mfa_token"), &code).await,
            401,
            "invalid_mfa_token",
        )
        .await;
        // Nor does a new first step begin one.
        assert_problem(
            app.login(&email, PASSWORD, "phone").await,
            401,
            "invalid_credentials",
        )
        .await;

        // Refused before any session was opened: none shows in the record, not even one
        // revoked at once.
        ok(&admin(&app, &[], "enable-user", &email, Some("cleared")));
        let again = app.login_ok(&email, PASSWORD, "laptop").await;
        next_step(&app);
        let code = oathtool(&secret, app.clock.now()).unwrap();
        let res = login_mfa(&app, &s(&again, "mfa_token"), &code).await;
        assert_eq!(res.status(), StatusCode::OK);
        let back: Value = res.json().await.unwrap();
        let events = app.security_events(&s(&back, "access_token")).await;
        let on_phone = of_type(&events, "login_succeeded")
            .into_iter()
            .filter(|e| e["detail"]["device_id"] == "phone")
            .count();
        assert_eq!(on_phone, 0, "{events:?}");
    }
);

/// A link mailed before the disable no longer opens the account, and a request made
/// while it is disabled mails none, though it is answered like any other.
async fn no_reset_link_reopens_a_disabled_account(backend: Backend) {
    let Some((app, sink)) = spawn_with_sink(backend).await else {
        return;
    };
    let email = format!("vendor-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let (before, _) = reset_link(&sink, &email).await;

    let smtp = sink.url();
    let settings = [
        ("TESSERA_SMTP_URL", smtp.as_str()),
        ("TESSERA_SMTP_FROM", "security@auth.test"),
        ("TESSERA_ISSUER", "https://auth.test"),
    ];
    ok(&admin(
        &app,
        &settings,
        "disable-user",
        &email,
        Some(REASON),
    ));
    // The CLI queued its notice at the wall clock's time, ahead of the server's clock.
    app.clock.advance(time::Duration::minutes(1));

    assert_problem(
        app.complete_reset(&before, "a password the holder chose")
            .await,
        400,
        "invalid_reset_token",
    )
    .await;
    assert_eq!(app.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    // A request for another account, made after, mails its link: by then the disabled
    // account's request has had as long.
    let control = format!("control-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&control, PASSWORD).await;
    assert_eq!(app.ask_reset(&control).await.status(), StatusCode::ACCEPTED);
    reset_link(&sink, &control).await;
    drained(&app).await;
    assert_eq!(
        mails_of(&sink, &email, LINK_SUBJECT).len(),
        1,
        "only the link from before the disable: {:?}",
        sink.mails()
    );
    // Nor does an operator's reset: the command refuses and says why.
    let out = admin(&app, &settings, "send-password-reset", &email, Some(REASON));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("disabled"));
    drained(&app).await;
    assert_eq!(mails_of(&sink, &email, LINK_SUBJECT).len(), 1);
    let told = mails_of(&sink, &email, DISABLED_SUBJECT);
    assert_eq!(told.len(), 1, "{:?}", sink.mails());
    assert!(
        !told[0].data.contains(REASON),
        "the reason is for the record only"
    );

    // Enabling brings back the old password: the dead link changed nothing.
    ok(&admin(
        &app,
        &settings,
        "enable-user",
        &email,
        Some("cleared"),
    ));
    app.login_ok(&email, PASSWORD, "laptop").await;
}

both_backends!(no_reset_link_reopens_a_disabled_account, Backend => no_reset_link_reopens_a_disabled_account);

both_backends!(
    a_blank_reason_is_refused_and_changes_nothing,
    |app: TestApp| async move {
        let (email, laptop) = app.signed_in_user("laptop").await;
        for action in ["disable-user", "enable-user"] {
            let out = admin(&app, &[], action, &email, Some("   "));
            assert!(!out.status.success(), "{action}");
            assert!(String::from_utf8_lossy(&out.stderr).contains("reason"));
        }
        let me = app.get_auth("/v1/me", &s(&laptop, "access_token")).await;
        assert_eq!(me.status(), StatusCode::OK);
        app.login_ok(&email, PASSWORD, "phone").await;
        let out = admin(
            &app,
            &[],
            "disable-user",
            "nobody@example.com",
            Some(REASON),
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user with that email address"));
    }
);

const HITS: &str = "tessera_session_cache_total{result=\"hit\"}";

/// The command publishes what it revokes: a node that answered a token from its cache
/// refuses it within the revocation bound, though the disable ran in another process.
async fn a_disable_reaches_a_running_nodes_cache_at_once(backend: Backend) {
    let Some((app, redis, prefix)) = subscribed_node(backend).await else {
        return;
    };
    let (email, login) = app.signed_in_user("laptop").await;
    let at = s(&login, "access_token");
    for _ in 0..2 {
        assert_eq!(app.get_auth("/v1/me", &at).await.status(), StatusCode::OK);
    }
    assert!(
        metric(&app.metrics().await, HITS) >= 1,
        "the token was cached"
    );

    let settings = [
        ("TESSERA_REDIS_URL", redis.as_str()),
        ("TESSERA_REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    ok(&admin(
        &app,
        &settings,
        "disable-user",
        &email,
        Some(REASON),
    ));
    let start = Instant::now();
    loop {
        let res = app.get_auth("/v1/me", &at).await;
        if res.status() != StatusCode::OK {
            assert_problem(res, 401, "session_revoked").await;
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the node still answers from its cache"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

both_backends!(a_disable_reaches_a_running_nodes_cache_at_once, Backend => a_disable_reaches_a_running_nodes_cache_at_once);

//! `tessera admin` on the server's database: an MFA reset, a role grant and a
//! password-reset link take effect on the running server, on SQLite and Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::notify::{reset_link, spawn_with_sink};
use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, enrolled, s};

/// `tessera admin …` on `app`'s database with its master key (and `settings`).
pub(crate) fn cli_with(
    app: &TestApp,
    settings: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env_clear()
        .env("TESSERA_DATABASE_URL", app.db.url())
        .env("TESSERA_MASTER_KEY", &app.master_key)
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied())
        .output()
        .unwrap()
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    cli_with(app, &[], args)
}

both_backends!(
    the_cli_resets_mfa_and_grants_roles_on_the_same_database,
    |app: TestApp| async move {
        let Some((email, login, _, _)) = enrolled(&app, "d1").await else {
            return;
        };
        let cli = |args: &[&str]| cli(&app, args);
        let out = cli(&[
            "admin",
            "grant-role",
            "--email",
            &email,
            "--role",
            "vendor",
            "--operator",
            "ops-ana",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cli(&[
            "admin",
            "mfa-reset",
            "--email",
            &email,
            "--reason",
            "ticket 99: verified in person",
            "--operator",
            "ops-ana",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s) revoked"));
        assert_problem(
            app.get_auth("/v1/me", &s(&login, "access_token")).await,
            401,
            "session_revoked",
        )
        .await;
        let fresh = app.login_ok(&email, PASSWORD, "d2").await;
        assert_eq!(fresh["status"], "authenticated");
        let me: Value = app.me(&s(&fresh, "access_token")).await;
        assert_eq!(me["roles"], json!(["vendor"]));
        assert_eq!(me["mfa"]["totp_enabled"], false);
        let out = cli(&["admin", "revoke-sessions", "--email", "nobody@example.com"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user with that email address"));
    }
);

/// ASVS 6.4.6: an operator starts a user's reset without choosing or seeing a password.
/// The link goes to the user's address only, and the event names who asked and why.
async fn an_operator_mails_a_reset_link_and_never_sees_the_password(backend: Backend) {
    let Some((app, sink)) = spawn_with_sink(backend).await else {
        return;
    };
    let email = format!("locked-out-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    // The command queues its notice for the channels it is configured with, as `serve`
    // is: an operator runs it with the server's settings.
    let smtp = sink.url();
    let settings = [
        ("TESSERA_SMTP_URL", smtp.as_str()),
        ("TESSERA_SMTP_FROM", "security@auth.test"),
        ("TESSERA_ISSUER", "https://auth.test"),
    ];
    let send = |reason: &str| {
        cli_with(
            &app,
            &settings,
            &[
                "admin",
                "send-password-reset",
                "--email",
                &email,
                "--reason",
                reason,
                "--operator",
                "ops-ana",
            ],
        )
    };
    // Without the server's channel settings the notice (a session revoked) goes to the
    // log channel, which this server does not have: the command says so, and the row
    // waits for a node that has it rather than being given up on.
    app.login_ok(&email, PASSWORD, "old-laptop").await;
    let out = cli(
        &app,
        &[
            "admin",
            "revoke-sessions",
            "--email",
            &email,
            "--operator",
            "ops-ana",
        ],
    );
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no notification channel is configured"),
        "{said}"
    );

    let out = send("   ");
    assert!(!out.status.success(), "a blank reason is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("reason"));

    let out = send("ticket 7: locked out, identity checked on a video call");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("password-reset link queued"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("no notification channel"),
        "with the server's settings there is nothing to warn of"
    );
    assert!(
        !stdout.contains("pr_"),
        "the operator never sees the link: {stdout}"
    );

    // The CLI queued the mail at the wall clock's time, which the server's clock has not
    // reached yet.
    app.clock.advance(time::Duration::minutes(1));
    let (token, _) = reset_link(&sink, &email).await;
    // The worker has passed the older log row by now: it claims oldest first.
    let db = crate::helpers::Db::open(&app).await;
    assert_eq!(
        db.count("notification_outbox WHERE channel = 'log' AND dead_at IS NULL")
            .await,
        1,
        "the notice for a channel this node lacks still waits"
    );
    let new_password = "chosen by the user alone";
    assert_eq!(
        app.complete_reset(&token, new_password).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.login(&email, PASSWORD, "laptop").await,
        401,
        "invalid_credentials",
    )
    .await;
    let session = app.login_ok(&email, new_password, "laptop").await;
    let events = app.security_events(&s(&session, "access_token")).await;
    let asked: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "password_reset_requested")
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "the refused request recorded nothing: {events:?}"
    );
    assert_eq!(asked[0]["detail"]["actor"]["kind"], "operator");
    assert_eq!(asked[0]["detail"]["actor"]["name"], "ops-ana");
    assert_eq!(
        asked[0]["detail"]["reason"],
        "ticket 7: locked out, identity checked on a video call"
    );
}

both_backends!(an_operator_mails_a_reset_link_and_never_sees_the_password, Backend => an_operator_mails_a_reset_link_and_never_sees_the_password);

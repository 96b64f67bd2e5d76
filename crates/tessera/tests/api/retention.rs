//! Retention end to end: the real `tessera admin purge` on the server's database deletes a
//! session that ended over 400 days ago (with its refresh history and its events) and
//! reports the counts, while a live session still refreshes and a replay of its rotated
//! token is still reuse; and a server with a short interval purges by itself. On SQLite
//! and Postgres.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::config::{Config, MasterKeySource};
use tessera::startup::Application;
use tessera_app::ports::Clock;
use time::Duration;

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem, s};

async fn ok_json(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// What the purge should and should not touch.
struct Scene {
    /// The refresh token of the session that logged out 401 days ago.
    ended_token: String,
    /// The live session's first refresh token, rotated since.
    rotated_live_token: String,
    /// The live session's current refresh token.
    current_live_token: String,
}

/// 401 days ago a user registered, signed in on a laptop, refreshed once and logged out;
/// today they signed in on a phone and refreshed once.
async fn scene(app: &TestApp) -> Scene {
    let today = app.clock.now();
    app.clock.set(today - Duration::days(401));
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email, PASSWORD).await;
    let old = ok_json(app.login(&email, PASSWORD, "old-laptop").await).await;
    let old = ok_json(app.refresh(&s(&old, "refresh_token")).await).await;
    let res = app
        .post_auth("/v1/auth/logout", &s(&old, "access_token"), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    app.clock.set(today);
    let live = ok_json(app.login(&email, PASSWORD, "phone").await).await;
    let current = ok_json(app.refresh(&s(&live, "refresh_token")).await).await;
    Scene {
        ended_token: s(&old, "refresh_token"),
        rotated_live_token: s(&live, "refresh_token"),
        current_live_token: s(&current, "refresh_token"),
    }
}

/// After a purge: the ended session's token is unknown, the live session's current token
/// still rotates, and its rotated one is still recognised as reuse.
async fn assert_live_session_untouched(app: &TestApp, scene: &Scene) {
    assert_problem(
        app.refresh(&scene.ended_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    ok_json(app.refresh(&scene.current_live_token).await).await;
    assert_problem(
        app.refresh(&scene.rotated_live_token).await,
        401,
        "refresh_token_reused",
    )
    .await;
}

both_backends!(
    the_cli_purge_deletes_what_retention_allows_reports_the_counts_and_spares_live_sessions,
    |app: TestApp| async move {
        let scene = scene(&app).await;
        let tables = ["refresh_tokens", "sessions", "security_events"];
        let mut before = Vec::new();
        for t in tables {
            before.push(app.count_rows(t).await);
        }

        let purge = |args: &[&str], batch: &str| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
                .arg("admin")
                .arg("purge")
                .args(args)
                .env_clear()
                .env("TESSERA_DATABASE_URL", app.db.url())
                .env("TESSERA_MASTER_KEY", &app.master_key)
                .env("TESSERA_RETENTION_BATCH", batch)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        };

        // One batch of one row per table: one of the two history rows (so the session
        // stays), one event, and the report asks for another run.
        assert_eq!(
            purge(&["--once"], "1"),
            "purged 1 refresh token(s), 0 session(s), 0 MFA challenge(s), 1 security \
             event(s) in 1 run(s); more remain (run it again)"
        );
        assert_eq!(app.count_rows("sessions").await, before[1]);
        let stdout = purge(&[], "1000");

        let mut after = Vec::new();
        for t in tables {
            after.push(app.count_rows(t).await);
        }
        let events = before[2] - after[2];
        assert_eq!(
            stdout,
            format!(
                "purged 1 refresh token(s), 1 session(s), 0 MFA challenge(s), \
                 {} security event(s) in 1 run(s)",
                events - 1
            )
        );
        assert_eq!((before[0] - after[0], before[1] - after[1]), (2, 1));
        assert_eq!(app.count_events("user_registered").await, 0);
        assert_eq!(app.count_events("login_succeeded").await, 1);
        assert!(
            events >= 3,
            "registration, login and logout were 401 days ago"
        );

        assert_live_session_untouched(&app, &scene).await;
    }
);

both_backends!(
    a_server_purges_by_itself_at_its_retention_interval,
    |app: TestApp| async move {
        let scene = scene(&app).await;
        // A second server on the same database and clock, purging every second.
        let mut config = Config::embedded_defaults().unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = app.db.url().to_owned();
        config.master_key = MasterKeySource::Inline(app.master_key.clone());
        config.retention.interval_secs = 1;
        let _purging =
            Application::build_with_clock(&config, app.clock.clone() as Arc<dyn Clock>, false)
                .await
                .unwrap();

        // Waits for the outcome, not for a time: the deadline only bounds a broken build.
        // Events are purged after sessions in the same run, so both are waited for.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while app.count_rows("sessions").await > 1 || app.count_events("user_registered").await > 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the background purge never ran (or left the old events)"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_live_session_untouched(&app, &scene).await;
    }
);

//! `tessera admin` on the server's database: an MFA reset and a role grant take effect on
//! the running server, on SQLite and Postgres.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_problem, enrolled, s};

both_backends!(
    the_cli_resets_mfa_and_grants_roles_on_the_same_database,
    |app: TestApp| async move {
        let Some((email, login, _, _)) = enrolled(&app, "d1").await else {
            return;
        };
        let cli = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
                .args(args)
                .env_clear()
                .env("TESSERA_DATABASE_URL", app.db.url())
                .env("TESSERA_MASTER_KEY", &app.master_key)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        };
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
        let me: Value = app
            .get_auth("/v1/me", &s(&fresh, "access_token"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["roles"], json!(["vendor"]));
        assert_eq!(me["mfa"]["totp_enabled"], false);
        let out = cli(&["admin", "revoke-sessions", "--email", "nobody@example.com"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user with that email address"));
    }
);

//! The audit trail end to end, on SQLite and Postgres: after real activity the real
//! `tessera admin verify-audit` finds every chain intact; a row edited, a middle row or
//! the last row deleted by SQL (as someone with database access would) is named; a
//! retention purge leaves chains that still verify. And the admin API reads a user's
//! events under the `admin.*` policy.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;
use time::Duration;

use crate::both_backends;
use crate::helpers::{
    Db, PASSWORD, TestApp, assert_problem, enrolled, enrolled_admin, login_mfa, oathtool, s,
};

/// The user's stored events that have a chain place, in chain order: (event id, chain
/// index, detail as text).
async fn chain_of(db: &Db, user_id: &str) -> Vec<(String, i64, String)> {
    let sql = db.dialect(
        "SELECT lower(hex(id)), chain_index, detail FROM security_events \
         WHERE lower(hex(user_id)) = $1 AND chain_index IS NOT NULL ORDER BY chain_index",
        "SELECT id::text, chain_index, detail::text FROM security_events \
         WHERE user_id = $1::uuid AND chain_index IS NOT NULL ORDER BY chain_index",
    );
    let rows: Vec<(String, i64, String)> = db.rows(sql, &[&simple(user_id)]).await;
    rows.into_iter()
        .map(|(id, index, detail)| {
            let id = uuid::Uuid::parse_str(&id).unwrap().to_string();
            (id, index, detail)
        })
        .collect()
}

/// Sets one column of one event (by id) to `value`.
async fn set(db: &Db, event_id: &str, column: &str, value: &str) {
    let cast = if column == "detail" { "::jsonb" } else { "" };
    let sql = db
        .dialect(
            &format!("UPDATE security_events SET {column} = $2 WHERE lower(hex(id)) = $1"),
            &format!("UPDATE security_events SET {column} = $2{cast} WHERE id = $1::uuid"),
        )
        .to_owned();
    let n = db.execute(&sql, &[&simple(event_id), value]).await;
    assert_eq!(n, 1, "no event {event_id}");
}

async fn delete(db: &Db, event_id: &str) {
    let sql = db.dialect(
        "DELETE FROM security_events WHERE lower(hex(id)) = $1",
        "DELETE FROM security_events WHERE id = $1::uuid",
    );
    let n = db.execute(sql, &[&simple(event_id)]).await;
    assert_eq!(n, 1, "no event {event_id}");
}

/// A UUID as 32 lower-case hex digits (what SQLite's `hex()` gives; Postgres takes it too).
fn simple(id: &str) -> String {
    uuid::Uuid::parse_str(id).unwrap().simple().to_string()
}

/// `tessera admin verify-audit` on the server's database, given nothing but its URL (no
/// master key): (exit status, stdout, stderr).
fn verify_audit(app: &TestApp) -> (Option<i32>, String, String) {
    verify_audit_at(app.db.url())
}

fn verify_audit_at(database_url: &str) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "verify-audit"])
        .env_clear()
        .env("TESSERA_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

/// Asserts verify-audit passes; returns its report line.
async fn assert_intact(app: &TestApp, db: &Db) -> String {
    let (status, stdout, stderr) = verify_audit(app);
    assert_eq!(status, Some(0), "verify-audit failed: {stdout} {stderr}");
    let chains = db.count("audit_chains").await;
    let events = db.count("security_events").await;
    assert!(
        stdout.starts_with(&format!(
            "audit trail intact: {chains} chain(s), {events} event(s) verified"
        )),
        "{stdout}"
    );
    stdout
}

/// Asserts verify-audit reports a break (exit 1, not the 3 of an unreadable database)
/// naming `named`; returns its message.
fn assert_broken(app: &TestApp, named: &str) -> String {
    let (status, stdout, stderr) = verify_audit(app);
    assert_eq!(status, Some(1), "verify-audit: {stdout} {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("audit trail broken: {named}")),
        "expected `{named}` in: {stderr}"
    );
    stderr
}

async fn user_id(app: &TestApp, access_token: &str) -> String {
    let me: Value = app.me(access_token).await;
    s(&me, "user_id")
}

/// Real activity on two accounts: registrations, sign-ins on several devices, a wrong
/// password, TOTP enrolment and a sign-in through it, a remote revocation, a refresh.
/// Returns the first account's user id (None, after the skip notice, without oathtool).
async fn activity(app: &TestApp) -> Option<String> {
    let (email, laptop, secret, _) = enrolled(app, "laptop").await?;
    let laptop_at = s(&laptop, "access_token");
    let res = app.login(&email, "not the password", "laptop").await;
    assert_problem(res, 401, "invalid_credentials").await;
    app.clock.advance(Duration::seconds(30));
    let pending = app.login_ok(&email, PASSWORD, "phone").await;
    let code = oathtool(&secret, app.clock.now())?;
    let res = login_mfa(app, &s(&pending, "mfa_token"), &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let phone: Value = res.json().await.unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/v1/sessions/{}", s(&phone, "session_id"))))
        .bearer_auth(&laptop_at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let (_, other) = app.signed_in_user("tablet").await;
    let res = app.refresh(&s(&other, "refresh_token")).await;
    assert_eq!(res.status(), StatusCode::OK);
    Some(user_id(app, &laptop_at).await)
}

/// A database without the audit tables (never migrated) is not a broken trail: exit 3
/// with an error saying it could not be read, so a monitor pages operations, not security.
#[test]
fn verify_audit_exits_3_not_1_when_the_trail_cannot_be_read() {
    let dir = std::env::temp_dir().join(format!("tessera-audit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("empty.db").display());
    let (status, stdout, stderr) = verify_audit_at(&url);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(status, Some(3), "{stdout} {stderr}");
    assert!(stderr.contains("reading the audit chains"), "{stderr}");
    assert!(!stderr.contains("audit trail broken"), "{stderr}");
}

both_backends!(
    verify_audit_passes_untouched_chains_and_names_an_edited_event,
    |app: TestApp| async move {
        let Some(user) = activity(&app).await else {
            return;
        };
        let db = Db::open(&app).await;
        assert_intact(&app, &db).await;
        let chain = chain_of(&db, &user).await;
        assert!(chain.len() >= 6, "{chain:?}");
        let (id, index, detail) = chain[2].clone();
        assert_eq!(index, 3);

        // The detail rewritten: exactly that event is named, with what failed.
        set(&db, &id, "detail", r#"{"reason":"nothing happened"}"#).await;
        let err = assert_broken(&app, &format!("user {user}, event {id} (index 3)"));
        assert!(err.contains("altered"), "{err}");
        // Put back as it was, it verifies again: the check is about the contents.
        set(&db, &id, "detail", &detail).await;
        assert_intact(&app, &db).await;

        // Another field of another row: the client address of the last event.
        let (last_id, last_index, _) = chain.last().unwrap().clone();
        set(&db, &last_id, "ip", "203.0.113.66").await;
        let err = assert_broken(
            &app,
            &format!("user {user}, event {last_id} (index {last_index})"),
        );
        assert!(err.contains("altered"), "{err}");
        assert!(
            !err.contains("203.0.113.66"),
            "the contents are not printed: {err}"
        );
    }
);

both_backends!(
    verify_audit_names_the_event_after_a_deleted_middle_event,
    |app: TestApp| async move {
        let Some(user) = activity(&app).await else {
            return;
        };
        let db = Db::open(&app).await;
        let chain = chain_of(&db, &user).await;
        delete(&db, &chain[2].0).await;
        let (next, index, _) = &chain[3];
        assert_eq!(*index, 4);
        let err = assert_broken(&app, &format!("user {user}, event {next} (index 4)"));
        assert!(err.contains("missing"), "{err}");
    }
);

both_backends!(
    verify_audit_detects_a_deleted_last_event_through_the_head,
    |app: TestApp| async move {
        let Some(user) = activity(&app).await else {
            return;
        };
        let db = Db::open(&app).await;
        let chain = chain_of(&db, &user).await;
        let (last, index, _) = chain.last().unwrap();
        delete(&db, last).await;
        let err = assert_broken(
            &app,
            &format!("user {user}, no stored event at index {index}"),
        );
        assert!(err.contains("deleted"), "{err}");
    }
);

both_backends!(
    a_retention_purge_leaves_chains_that_still_verify,
    |app: TestApp| async move {
        // One account active 401 days ago and today; another only 401 days ago.
        let today = app.clock.now();
        app.clock.set(today - Duration::days(401));
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        app.register(&email, PASSWORD).await;
        let old = app.login(&email, PASSWORD, "old-laptop").await;
        assert_eq!(old.status(), StatusCode::OK);
        let (_, gone) = app.signed_in_user("old-phone").await;
        let res = app
            .post_auth("/v1/auth/logout", &s(&gone, "access_token"), json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        app.clock.set(today);
        let live = app.login_ok(&email, PASSWORD, "phone").await;
        let user = user_id(&app, &s(&live, "access_token")).await;

        let db = Db::open(&app).await;
        let before = db.count("security_events").await;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["admin", "purge"])
            .env_clear()
            .env("TESSERA_DATABASE_URL", app.db.url())
            .env("TESSERA_MASTER_KEY", &app.master_key)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let purged = before - db.count("security_events").await;
        assert!(purged >= 4, "the old events went ({purged})");
        assert!(
            chain_of(&db, &user).await[0].1 > 1,
            "a prefix of the chain went"
        );

        let report = assert_intact(&app, &db).await;
        assert!(
            report.ends_with(&format!("({purged} earlier event(s) removed by retention)")),
            "{report}"
        );
        // And the chain goes on from there.
        let res = app.login(&email, PASSWORD, "tablet").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_intact(&app, &db).await;
    }
);

/// The step-up challenge the admin routes answer once the admin's MFA is stale.
async fn assert_step_up(res: reqwest::Response) {
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    assert_problem(res, 401, "step_up_required").await;
}

both_backends!(
    an_admin_with_fresh_mfa_reads_a_users_events_and_nobody_else_can,
    |app: TestApp| async move {
        let Some(admin_at) = enrolled_admin(&app).await else {
            return;
        };
        let (_, target) = app.signed_in_user("target-phone").await;
        let target_at = s(&target, "access_token");
        let target_id = user_id(&app, &target_at).await;
        let path = |limit: &str| format!("/v1/admin/users/{target_id}/security-events{limit}");

        // The same list, in the same shape, as the user's own.
        let own: Value = app
            .get_auth("/v1/security-events", &target_at)
            .await
            .json()
            .await
            .unwrap();
        let res = app.get_auth(&path(""), &admin_at).await;
        assert_eq!(res.status(), StatusCode::OK);
        let seen: Value = res.json().await.unwrap();
        assert_eq!(seen, own);
        let kinds: Vec<&str> = seen["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"login_succeeded"), "{kinds:?}");
        let res = app.get_auth(&path("?limit=1"), &admin_at).await;
        let one: Value = res.json().await.unwrap();
        assert_eq!(one["events"], json!([own["events"][0]]));
        for limit in ["0", "201", "ten", "-1"] {
            let res = app
                .get_auth(&path(&format!("?limit={limit}")), &admin_at)
                .await;
            let body = assert_problem(res, 400, "invalid_request").await;
            assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
        }

        // Unknown or malformed user ids are 404 to an admin...
        for unknown in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
            let res = app
                .get_auth(
                    &format!("/v1/admin/users/{unknown}/security-events"),
                    &admin_at,
                )
                .await;
            assert_problem(res, 404, "not_found").await;
        }
        // ...while a non-admin learns nothing: not whether the user exists, nor the
        // limit's rules; and no token at all is 401.
        for p in [
            path(""),
            path("?limit=0"),
            format!("/v1/admin/users/{}/security-events", uuid::Uuid::new_v4()),
        ] {
            assert_problem(app.get_auth(&p, &target_at).await, 403, "forbidden").await;
        }
        let res = app.client.get(app.url(&path(""))).send().await.unwrap();
        assert_problem(res, 401, "unauthorized").await;

        // The admin's MFA goes stale: a step-up is asked for, as on every admin route.
        app.clock.advance(Duration::seconds(301));
        assert_step_up(app.get_auth(&path(""), &admin_at).await).await;
    }
);

both_backends!(
    a_row_slipped_in_outside_the_chains_is_named_and_never_linked_by_a_migration,
    |app: TestApp| async move {
        let Some(user) = activity(&app).await else {
            return;
        };
        let db = Db::open(&app).await;
        let chain = chain_of(&db, &user).await;
        let forged_id = uuid::Uuid::new_v4();
        let forged = forged_id.simple().to_string();
        let copy = "'login_succeeded', at, '198.51.100.7', user_agent, session_id, detail";
        let n = db
            .execute_each(
                &format!(
                    "INSERT INTO security_events (id, user_id, kind, at, ip, user_agent, \
                     session_id, detail) SELECT unhex($2), user_id, {copy} \
                     FROM security_events WHERE lower(hex(id)) = $1"
                ),
                &format!(
                    "INSERT INTO security_events (id, user_id, kind, at, ip, user_agent, \
                     session_id, detail) SELECT $2::uuid, user_id, {copy} \
                     FROM security_events WHERE id = $1::uuid"
                ),
                &[&simple(&chain[1].0), &forged],
            )
            .await;
        assert_eq!(n, 1);

        // Neither a migration nor a server start adopts it into a chain (only events
        // written before the chains existed are linked), and verify-audit names it.
        let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("migrate")
            .env_clear()
            .env("TESSERA_DATABASE_URL", app.db.url())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(migrated.status.success(), "{migrated:?}");
        assert_eq!(
            db.count("security_events WHERE chain_index IS NULL").await,
            1
        );
        assert_eq!(chain_of(&db, &user).await.len(), chain.len());
        let stderr = assert_broken(&app, &format!("user {user}, event {forged_id}"));
        assert!(stderr.contains("in no chain"), "{stderr}");
    }
);

//! `kill -9` of a node in the middle of a burst of refresh-token rotations: after a
//! restart on the same database no session has two valid refresh tokens and none is
//! half-rotated, checked in the rows and over HTTP.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Db, assert_problem};
use crate::node::{Node, PATIENCE, email, master_key, temp_dir};
use crate::postgres::PrivatePostgres;

const CLIENTS: usize = 6;
/// Rotations answered before the kill, so that it lands mid-burst.
const BEFORE_KILL: usize = 60;

/// Live sessions whose refresh tokens are not exactly one unused token, the current one.
const NOT_ONE_VALID: &str = "SELECT COUNT(*) FROM sessions s WHERE s.revoked_at IS NULL AND (\
     (SELECT COUNT(*) FROM refresh_tokens t WHERE t.session_id = s.id AND t.used_at IS NULL) <> 1 \
     OR NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id \
        AND t.used_at IS NULL AND t.token_hash = s.current_refresh_hash))";
/// Used tokens that do not point to their successor (one generation on, same session).
const HALF_ROTATED: &str = "SELECT COUNT(*) FROM refresh_tokens t WHERE t.used_at IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM refresh_tokens n WHERE n.token_hash = t.successor_hash \
        AND n.session_id = t.session_id AND n.generation = t.generation + 1)";
/// Sessions whose token history has a gap (a generation with no row).
const GAPS: &str = "SELECT COUNT(*) FROM sessions s WHERE \
     (SELECT COUNT(*) FROM refresh_tokens t WHERE t.session_id = s.id) <> \
     (SELECT MAX(t.generation) + 1 FROM refresh_tokens t WHERE t.session_id = s.id)";
const LIVE: &str = "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL";
const ROTATIONS: &str = "SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL";

struct Rows(Db);

impl Rows {
    async fn count(&self, sql: &'static str) -> i64 {
        let rows: Vec<(i64,)> = self.0.rows(sql, &[]).await;
        rows[0].0
    }

    /// Every rotation finished or never started.
    async fn assert_whole(&self, when: &str) {
        assert_eq!(
            self.count(NOT_ONE_VALID).await,
            0,
            "{when}: a session without exactly one valid token"
        );
        assert_eq!(
            self.count(HALF_ROTATED).await,
            0,
            "{when}: a half-rotated token"
        );
        assert_eq!(
            self.count(GAPS).await,
            0,
            "{when}: a gap in a rotation history"
        );
    }
}

async fn killed_mid_rotation_leaves_no_session_with_two_valid_tokens(
    database_url: &str,
    rows: impl AsyncFnOnce() -> Rows,
    dir: &Path,
) {
    let key = master_key();
    let settings = [
        ("TESSERA_DATABASE_URL", database_url),
        ("TESSERA_MASTER_KEY", key.as_str()),
    ];
    let mut node = Node::start(dir, &settings).await;
    let who = email("crash");
    node.register(&who).await;
    let mut tokens = Vec::new();
    for n in 0..CLIENTS {
        let login = node.login_ok(&who, &format!("device-{n}")).await;
        tokens.push(login["refresh_token"].as_str().unwrap().to_owned());
    }

    // Each client rotates its own session as fast as answers come, keeping the last
    // token the server gave it, until the server goes away under it.
    let answered = Arc::new(AtomicUsize::new(0));
    let url = node.url("/v1/auth/refresh");
    let clients: Vec<_> = tokens
        .into_iter()
        .map(|mut last| {
            let (answered, url, client) = (answered.clone(), url.clone(), node.client.clone());
            tokio::spawn(async move {
                loop {
                    let sent = client
                        .post(&url)
                        .json(&serde_json::json!({"refresh_token": last}))
                        .send()
                        .await;
                    let Ok(res) = sent else {
                        return last;
                    };
                    let status = res.status();
                    let Ok(body) = res.json::<Value>().await else {
                        return last;
                    };
                    assert_eq!(status, 200, "before the kill: {body}");
                    last = body["refresh_token"].as_str().unwrap().to_owned();
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while answered.load(Ordering::Relaxed) < BEFORE_KILL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill_hard().await;
    let mut last_answered = Vec::new();
    for client in clients {
        last_answered.push(client.await.unwrap());
    }

    let node = Node::start(dir, &settings).await;
    let rows = rows().await;
    rows.assert_whole("after the restart").await;
    assert_eq!(rows.count(LIVE).await, CLIENTS as i64);
    let rotations = rows.count(ROTATIONS).await;
    assert!(
        rotations >= answered.load(Ordering::Relaxed) as i64,
        "{rotations} rotations stored, more answered"
    );

    // Each client's last answered token either still works (its rotation in flight at
    // the kill never committed) or is a replay (it did, and the answer was lost): never
    // both it and a successor.
    let (mut working, mut replays) = (0, 0);
    for last in &last_answered {
        let res = node.refresh(last).await;
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            let next = body["refresh_token"].as_str().unwrap();
            assert_eq!(
                node.refresh(next).await.status(),
                200,
                "its successor works"
            );
            working += 1;
        } else {
            assert_problem(res, 401, "refresh_token_reused").await;
            replays += 1;
        }
    }
    assert_eq!(working + replays, CLIENTS);
    rows.assert_whole("after the clients came back").await;
    eprintln!(
        "kill -9 after {} answered rotations ({rotations} stored): {working} clients carried on, \
         {replays} held a token rotated in flight",
        answered.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_rotations_leaves_every_session_whole_postgres() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let dir = temp_dir("crash-pg");
    let url = pg.url();
    killed_mid_rotation_leaves_no_session_with_two_valid_tokens(
        &url,
        async || Rows(Db::connect(&url).await),
        &dir,
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_rotations_leaves_every_session_whole_sqlite() {
    let dir = temp_dir("crash-sqlite");
    let file = dir.join("tessera.db");
    let url = format!("sqlite://{}", file.display());
    killed_mid_rotation_leaves_no_session_with_two_valid_tokens(
        &url,
        async || Rows(Db::connect(&url).await),
        &dir,
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

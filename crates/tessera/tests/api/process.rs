//! The real `tessera` binary, as the README runs it: embedded defaults, first start,
//! restart, `migrate`, and what it writes to its log.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::process::{Server, serve, serve_with, temp_dir, tessera};

#[tokio::test]
async fn serve_on_embedded_defaults_creates_its_files_and_never_logs_a_secret() {
    let dir = temp_dir("serve");
    let server = serve(&dir).await;
    let client = reqwest::Client::new();
    let password = "s3cret-Passphrase-for-logs";
    let res = client
        .post(server.url("/v1/users"))
        .json(&json!({"email": "log@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let login: Value = client
        .post(server.url("/v1/auth/login"))
        .json(&json!({"email": "log@example.com", "password": password, "device_id": "d1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r1 = login["refresh_token"].as_str().unwrap().to_owned();
    let rotated: Value = client
        .post(server.url("/v1/auth/refresh"))
        .json(&json!({"refresh_token": r1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Reuse, so the warning path is logged too.
    let res = client
        .post(server.url("/v1/auth/refresh"))
        .json(&json!({"refresh_token": r1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .get(server.url("/v1/me"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The sign-in page too: its cookies hold the same kinds of secret.
    let mut page = crate::helpers::FormClient::at(server.url(""));
    let res = page.sign_in_with("log@example.com", password).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page_cookies = page.values_set();
    assert!(
        page_cookies.len() >= 4,
        "session, refresh, device and CSRF cookies"
    );

    let key_path = dir.join("tessera-master.key");
    let master_key = std::fs::read_to_string(&key_path).unwrap();
    let log = server.stop().await;

    assert!(
        dir.join("tessera.db").exists(),
        "the SQLite file is created in the working directory"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The database holds password hashes and sealed secrets: owner only, WAL files too.
        for file in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
            let mode = std::fs::metadata(dir.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }
    assert!(
        log.contains("DEVELOPMENT MASTER KEY"),
        "loud warning expected:\n{log}"
    );
    assert!(log.contains("refresh token reuse detected"), "{log}");
    for secret in [
        password,
        master_key.trim(),
        &r1,
        rotated["refresh_token"].as_str().unwrap(),
        login["access_token"].as_str().unwrap(),
        rotated["access_token"].as_str().unwrap(),
    ]
    .into_iter()
    .chain(page_cookies.iter().map(String::as_str))
    {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_restart_keeps_the_signing_key_and_a_wrong_master_key_refuses_to_start() {
    let dir = temp_dir("restart");
    let client = reqwest::Client::new();
    let jwks = |s: &Server| client.get(s.url("/.well-known/jwks.json")).send();
    let first = serve(&dir).await;
    let kid1: Value = jwks(&first).await.unwrap().json().await.unwrap();
    first.stop().await;
    let second = serve(&dir).await;
    let kid2: Value = jwks(&second).await.unwrap().json().await.unwrap();
    second.stop().await;
    assert_eq!(kid1["keys"][0]["kid"], kid2["keys"][0]["kid"]);

    let out = tessera(&dir)
        .args(["serve"])
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env(
            "TESSERA_MASTER_KEY",
            data_encoding::BASE64.encode(&[9u8; 32]),
        )
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("master key"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn migrate_creates_the_schema_and_can_run_twice() {
    let dir = temp_dir("migrate");
    for _ in 0..2 {
        let status = tessera(&dir)
            .args(["migrate"])
            .env("TESSERA_DATABASE_URL", "sqlite://migrated.db")
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("migrated.db").display()))
            .await
            .unwrap();
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n.0, 0);
    pool.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn two_servers_sharing_one_redis_share_the_login_budget() {
    let Some(redis) = crate::helpers::redis_url() else {
        return;
    };
    let Some(db) = tessera_adapters::testing::TestDatabase::postgres().await else {
        return;
    };
    let dir = temp_dir("two-nodes");
    let master_key = data_encoding::BASE64.encode(&crate::helpers::rand32());
    let prefix = crate::helpers::redis_prefix();
    let settings = [
        ("TESSERA_DATABASE_URL", db.url()),
        ("TESSERA_REDIS_URL", redis.as_str()),
        ("TESSERA_REDIS_KEY_PREFIX", prefix.as_str()),
        ("TESSERA_MASTER_KEY", master_key.as_str()),
    ];
    let nodes = [
        serve_with(&dir, &settings).await,
        serve_with(&dir, &settings).await,
    ];
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let node = &nodes[i % 2];
        let res = client
            .post(node.url("/v1/auth/login"))
            .json(&json!({"email": "victim@example.com", "password": "guess", "device_id": "d1"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429],
        "alternating between two nodes"
    );
    for node in nodes {
        node.stop().await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Master-key rotation (re-keying) end to end: secrets sealed under key A are re-sealed under key B by
//! the real `tessera admin rotate-master-key`, after which a server holding only B serves
//! the same users (TOTP codes from `oathtool`) and signing key, and one holding only A no
//! longer starts; a reset link queued while the mail relay was down still arrives, and
//! works, once the server holds only B. On SQLite and Postgres.

use std::process::Output;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_adapters::notify::testing::{SmtpSink, unused_port};
use tessera_adapters::testing::TestDatabase;
use tessera_app::ports::Clock;
use tessera_core::crypto::MasterKey;

use crate::both_backends;
use crate::helpers::notify::{
    Channels, PATIENCE, drained, metric, reset_link, spawn_notifying, start_notifying_on, until,
};
use crate::helpers::{
    Backend, Db, Options, PASSWORD, TestApp, enrolled, login_mfa, oathtool, rand32, s,
};

/// The id of a base64 master key, as `MasterKey::id_hex` names it.
fn key_id(b64: &str) -> String {
    let bytes: [u8; 32] = data_encoding::BASE64
        .decode(b64.as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    MasterKey::from_bytes(bytes).id_hex()
}

/// The master-key id each raw sealed value in `column` of `table` names (the 8 bytes after
/// the `T1` magic), straight from the database.
async fn sealed_key_ids(db: &TestDatabase, table: &str, column: &str) -> Vec<String> {
    let sql = format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL");
    let values: Vec<(Vec<u8>,)> = Db::connect(db.url()).await.rows(&sql, &[]).await;
    values
        .iter()
        .map(|(v,)| {
            assert_eq!(&v[..2], b"T1", "sealed layout");
            data_encoding::HEXLOWER.encode(&v[2..10])
        })
        .collect()
}

/// Every sealed secret stored: the signing seeds, the enabled and the pending TOTP secrets.
async fn all_sealed_key_ids(db: &TestDatabase) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        sealed_key_ids(db, "signing_keys", "sealed_seed").await,
        sealed_key_ids(db, "user_totp", "sealed_secret").await,
        sealed_key_ids(db, "user_totp", "pending_sealed").await,
    )
}

/// `tessera admin rotate-master-key` on `db` with the given keys.
fn rekey(db: &TestDatabase, current: &str, previous: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "rotate-master-key", "--operator", "ops-ana"])
        .env_clear()
        .env("TESSERA_DATABASE_URL", db.url())
        .env("TESSERA_MASTER_KEY", current)
        .env("TESSERA_MASTER_KEY_PREVIOUS", previous)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn kid(app: &TestApp) -> Value {
    app.get_json("/.well-known/jwks.json").await["keys"][0]["kid"].clone()
}

fn with_keys(current: &str, previous: &[&str]) -> Options {
    Options {
        master_key: Some(current.to_owned()),
        previous_master_keys: previous.iter().map(|k| (*k).to_owned()).collect(),
        ..Options::default()
    }
}

/// Under key A (the app given): a signing key, a user with TOTP on, a user with a setup
/// pending. Then B with A as previous, the rotation, B alone, A alone.
async fn rekey_under_new_key(a: TestApp) {
    let key_a = a.master_key.clone();
    let Some((email, login, secret, _)) = enrolled(&a, "d1").await else {
        return;
    };
    let (_, pending_login) = a.signed_in_user("d1").await;
    let pending_at = s(&pending_login, "access_token");
    let setup: Value = a
        .post_auth(
            "/v1/mfa/totp/setup",
            &pending_at,
            json!({"password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let pending_secret = s(&setup, "secret");
    let signing_kid = kid(&a).await;
    let db: Arc<TestDatabase> = a.db.clone();
    let id_a = key_id(&key_a);
    assert_eq!(
        all_sealed_key_ids(&db).await,
        (vec![id_a.clone()], vec![id_a.clone()], vec![id_a.clone()])
    );
    drop(a);

    // Deployed with B and, as previous, A: it starts and signs with the key sealed under A.
    let key_b = data_encoding::BASE64.encode(&rand32());
    let id_b = key_id(&key_b);
    let mixed = TestApp::start_on(db.clone(), None, with_keys(&key_b, &[&key_a]))
        .await
        .expect("a previous key opens the signing key");
    assert_eq!(kid(&mixed).await, signing_kid);
    let (_, fresh) = mixed.signed_in_user("d1").await;
    for token in [s(&login, "access_token"), s(&fresh, "access_token")] {
        assert_eq!(
            mixed.get_auth("/v1/me", &token).await.status(),
            StatusCode::OK
        );
    }
    drop(mixed);

    // The rotation, by the real binary.
    let out = rekey(&db, &key_b, &key_a);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "master key {id_b}: 1 signing key(s), 2 TOTP secret(s), 0 queued notification \
             secret(s)"
        )),
        "{log}"
    );
    assert!(log.contains("master key rotation finished"), "{log}");
    for key in [&key_a, &key_b] {
        assert!(
            !log.contains(key.as_str()),
            "key material in the output:\n{log}"
        );
    }
    assert_eq!(
        all_sealed_key_ids(&db).await,
        (vec![id_b.clone()], vec![id_b.clone()], vec![id_b.clone()]),
        "every sealed value now names B"
    );
    let again = rekey(&db, &key_b, &key_a);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("0 signing key(s), 0 TOTP secret(s), 0 queued notification secret(s)"),
        "a second run has nothing left to do: {}",
        text(&again)
    );

    // Only B from now on: the same signing key, TOTP login and a pending setup work.
    let b = TestApp::start_on(db.clone(), None, with_keys(&key_b, &[]))
        .await
        .expect("B alone opens everything after the rotation");
    assert_eq!(kid(&b).await, signing_kid);
    assert_eq!(
        b.get_auth("/v1/me", &s(&login, "access_token"))
            .await
            .status(),
        StatusCode::OK,
        "a token signed before the rotation still verifies"
    );
    b.clock.advance(time::Duration::seconds(60));
    let pending = b.login_ok(&email, crate::helpers::PASSWORD, "d2").await;
    assert_eq!(pending["status"], "mfa_required");
    let Some(code) = oathtool(&secret, b.clock.now()) else {
        return;
    };
    let res = login_mfa(&b, &s(&pending, "mfa_token"), &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let me = b.get_auth("/v1/me", &s(&tokens, "access_token")).await;
    assert_eq!(me.status(), StatusCode::OK);
    let Some(code) = oathtool(&pending_secret, b.clock.now()) else {
        return;
    };
    let res = b
        .post_auth("/v1/mfa/totp/confirm", &pending_at, json!({"code": code}))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the re-sealed pending secret confirms"
    );
    drop(b);

    // A alone no longer opens the signing key: the server refuses to start.
    let Err(e) = TestApp::start_on(db.clone(), None, with_keys(&key_a, &[])).await else {
        panic!("a server with only the old key must not start");
    };
    let message = format!("{e:#}");
    assert!(message.contains("master key"), "{message}");
    assert!(message.contains(&id_b), "names the key it needs: {message}");
}

both_backends!(
    rotating_the_master_key_keeps_every_secret_usable_under_the_new_key_only,
    rekey_under_new_key
);

/// Under key A, with the mail relay down: a password reset is asked for, its email tried
/// and left waiting for a retry. The rotation re-seals the link's token under B; a server
/// holding only B, its relay back, sends the email, and its link resets the password.
async fn a_reset_link_queued_before_the_rotation_arrives_under_the_new_key_only(backend: Backend) {
    let relay_down = Channels {
        smtp: Some(format!("smtp://127.0.0.1:{}", unused_port())),
        webhook: None,
    };
    let Some(a) = spawn_notifying(backend, relay_down).await else {
        return;
    };
    let email = format!("rhea-{}@example.com", uuid::Uuid::new_v4().simple());
    a.register(&email, PASSWORD).await;
    assert_eq!(a.ask_reset(&email).await.status(), StatusCode::ACCEPTED);
    let failures = "tessera_notification_failures_total{channel=\"smtp\"} 1";
    let tried = until(&a, |m| m.lines().any(|l| l == failures)).await;
    assert!(tried, "{}", a.metrics().await);
    assert_eq!(metric(&a, "tessera_outbox_pending").await, Some(1));
    let (db, key_a) = (a.db.clone(), a.master_key.clone());
    drop(a);
    let queued = ("notification_outbox", "sealed_secret");
    assert_eq!(
        sealed_key_ids(&db, queued.0, queued.1).await,
        [key_id(&key_a)]
    );

    let key_b = data_encoding::BASE64.encode(&rand32());
    let out = rekey(&db, &key_b, &key_a);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 queued notification secret(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        sealed_key_ids(&db, queued.0, queued.1).await,
        [key_id(&key_b)],
        "the queued token now names B"
    );

    // Only B, and the relay is back. The retry is seconds away on the clock the token's
    // 30 minutes run on: move it a little at a time, never near that.
    let sink = SmtpSink::start().await;
    let relay_up = Channels {
        smtp: Some(sink.url()),
        webhook: None,
    };
    let only_b = Options {
        previous_master_keys: Vec::new(),
        ..crate::helpers::notify::options(Some(key_b))
    };
    let b = start_notifying_on(db, only_b, relay_up).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while sink.mails().is_empty()
        && metric(&b, "tessera_outbox_dead")
            .await
            .is_none_or(|dead| dead == 0)
        && tokio::time::Instant::now() < deadline
    {
        b.clock.advance(time::Duration::seconds(10));
        sink.wait_for(1, std::time::Duration::from_millis(500))
            .await;
    }
    drained(&b).await;
    let (token, _) = reset_link(&sink, &email).await;
    assert_eq!(
        b.complete_reset(&token, "a passphrase set after the rotation")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        b.login(&email, "a passphrase set after the rotation", "d1")
            .await
            .status(),
        StatusCode::OK
    );
}

both_backends!(
    a_reset_link_queued_before_the_rotation_arrives_under_the_new_key_only,
    Backend => a_reset_link_queued_before_the_rotation_arrives_under_the_new_key_only
);

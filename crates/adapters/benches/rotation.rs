//! One refresh rotation as the store sees it — look the token up, then compare-and-swap
//! it for its successor — on SQLite and (with TESSERA_TEST_DATABASE_URL) Postgres:
//! `cargo bench -p tessera-adapters --bench rotation`.
// A benchmark whose set-up fails has nothing to measure: failing loudly is right.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{PgStore, SqliteStore};
use tessera_app::ports::{NewSession, NewUser, RefreshSwap, Store, SwapOutcome};
use tessera_core::Email;
use tessera_core::ids::{DeviceId, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::password::PasswordHash;
use tessera_core::secret::RefreshToken;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-29 12:00 UTC);

fn token(n: u64) -> RefreshToken {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    RefreshToken::from_random(bytes)
}

/// A user with one session whose current token is `token(0)`.
async fn seeded<S: Store>(store: &S) -> SessionId {
    let user = UserId::from_random([1; 16]);
    store
        .insert_user(&NewUser {
            id: user,
            email: Email::parse("bench@example.com").unwrap(),
            password_hash: PasswordHash::from_stored("$argon2id$bench".into()),
            created_at: NOW,
        })
        .await
        .unwrap();
    let session = SessionId::from_random([2; 16]);
    store
        .insert_session(&NewSession {
            id: session,
            user_id: user,
            device_id: DeviceId::parse("bench").unwrap(),
            device_name: None,
            user_agent: None,
            ip: None,
            created_at: NOW,
            idle_expires_at: NOW + time::Duration::days(7),
            absolute_expires_at: NOW + time::Duration::days(30),
            assurance: Assurance::Password,
            auth_time: NOW,
            mfa_verified_at: None,
            refresh_hash: token(0).hash(),
        })
        .await
        .unwrap();
    session
}

/// Times `iters` rotations along one chain of tokens, continuing from `*next`.
async fn rotate_chain<S: Store>(
    store: &S,
    session: SessionId,
    next: &mut u64,
    iters: u64,
) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        let presented = token(*next);
        let record = store.get_refresh(&presented.hash()).await.unwrap().unwrap();
        assert!(record.rotated_at.is_none());
        let outcome = store
            .swap_refresh(&RefreshSwap {
                session_id: session,
                presented: presented.hash(),
                successor: token(*next + 1).hash(),
                sealed_successor: None,
                seals_expire_before: NOW,
                now: NOW,
                idle_expires_at: NOW + time::Duration::days(7),
                ip: None,
                user_agent: None,
            })
            .await
            .unwrap();
        assert_eq!(outcome, SwapOutcome::Won);
        *next += 1;
    }
    started.elapsed()
}

fn bench_store<S: Store>(c: &mut Criterion, name: &str, rt: &tokio::runtime::Runtime, store: S) {
    let session = rt.block_on(seeded(&store));
    let mut next = 0;
    c.bench_function(name, |b| {
        b.iter_custom(|iters| rt.block_on(rotate_chain(&store, session, &mut next, iters)))
    });
}

fn rotation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sqlite_db = TestDatabase::sqlite();
    let sqlite = rt.block_on(SqliteStore::open(sqlite_db.url())).unwrap();
    bench_store(c, "refresh_rotation_sqlite", &rt, sqlite);
    if let Some(pg_db) = rt.block_on(TestDatabase::postgres()) {
        let pg = rt.block_on(PgStore::open(pg_db.url())).unwrap();
        bench_store(c, "refresh_rotation_postgres", &rt, pg);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = rotation
}
criterion_main!(benches);

//! The limits `tessera-bench` prints beside its figures, run for one second against the
//! real services: pgbench on a migrated database of the test's own, and redis-benchmark
//! beside the Redis limiter. Nothing about speed is asserted, only that each limit
//! measured what it claims (every pgbench round rotated, every limiter decision counted)
//! and cleaned up after itself. Skipped loudly without the services or tools, failed
//! instead under `TESSERA_TEST_REQUIRE=all`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The tool is a binary: its modules are compiled into this test as they are.
#[allow(dead_code)]
#[path = "../src/pgbench.rs"]
mod pgbench;
#[allow(dead_code)]
#[path = "../src/redis_limit/mod.rs"]
mod redis_limit;

use std::path::Path;

use sqlx::{Connection as _, PgConnection};
use tessera_adapters::PgStore;
use tessera_adapters::testing::{TestDatabase, skip_or_fail};

const PGBENCH: &str = "/usr/lib/postgresql/15/bin/pgbench";
const REDIS_BENCHMARK: &str = "/usr/bin/redis-benchmark";
const REDIS_URL_VAR: &str = "TESSERA_TEST_REDIS_URL";

fn installed(tool: &str, package: &str) -> bool {
    if Path::new(tool).exists() {
        return true;
    }
    skip_or_fail(
        &format!("{tool} is not installed"),
        &format!("install {package} to run this limit's test"),
    );
    false
}

#[derive(sqlx::FromRow)]
struct Link {
    token_hash: Vec<u8>,
    generation: i64,
    used_at: Option<time::OffsetDateTime>,
    successor_hash: Option<Vec<u8>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_rotates_every_seeded_chain_once_per_transaction() {
    if !installed(PGBENCH, "postgresql-15 (pgbench)") {
        return;
    }
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = PgStore::open(db.url()).await.expect("migrated database");
    store.close().await;

    let figures = pgbench::rotation_limit(db.url(), 4, 1)
        .await
        .expect("a pgbench run");
    eprintln!("{figures:?}");
    assert_eq!(figures.clients, 4);
    assert_eq!(figures.failed, 0, "{figures:?}");
    assert!(figures.transactions > 0, "{figures:?}");

    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let sessions: Vec<(sqlx::types::Uuid, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT id, refresh_generation, current_refresh_hash FROM sessions ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(sessions.len(), 4, "one session per client");
    let mut rotations = 0;
    for (id, generation, current) in &sessions {
        assert!(*generation > 0, "session {id} never rotated");
        let links: Vec<Link> = sqlx::query_as(
            "SELECT token_hash, generation, used_at, successor_hash FROM refresh_tokens \
             WHERE session_id = $1 ORDER BY generation",
        )
        .bind(id)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            links.len() as i64 - 1,
            *generation,
            "session {id}: one token per generation, the seeded one included"
        );
        for (at, pair) in links.windows(2).enumerate() {
            let (link, next) = (&pair[0], &pair[1]);
            assert_eq!(
                link.generation, at as i64,
                "session {id}: a generation is missing"
            );
            assert_eq!(
                link.successor_hash.as_deref(),
                Some(next.token_hash.as_slice()),
                "session {id}: the chain breaks after generation {at}"
            );
            assert!(
                link.used_at.is_some(),
                "session {id}: generation {at} rotated unmarked"
            );
        }
        let last = links.last().expect("the seeded token at least");
        assert_eq!(last.generation, *generation);
        assert_eq!(
            &last.token_hash, current,
            "session {id}: the chain ends at its current token"
        );
        assert!(last.successor_hash.is_none() && last.used_at.is_none());
        rotations += generation;
    }
    assert_eq!(
        rotations as u64, figures.transactions,
        "pgbench's transactions are the rotations the sessions made"
    );
    conn.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_and_redis_benchmark_both_decide_and_leave_no_key() {
    if !installed(REDIS_BENCHMARK, "redis-tools (redis-benchmark)") {
        return;
    }
    let Ok(url) = std::env::var(REDIS_URL_VAR) else {
        skip_or_fail(
            "the Redis limiter's limit",
            &format!("set {REDIS_URL_VAR}=redis://127.0.0.1:6379 to run it"),
        );
        return;
    };

    let figures = redis_limit::limiter_limit(&url, 4, 1)
        .await
        .expect("a limiter and a redis-benchmark run");
    eprintln!("{figures:?}");
    assert_eq!(figures.clients, 4);
    for (what, rates) in [("refused", &figures.refused), ("fresh", &figures.fresh)] {
        assert!(rates.limiter_decisions > 0, "{what}: {figures:?}");
        assert!(rates.limiter_per_sec > 0.0, "{what}: {figures:?}");
        assert!(rates.redis_benchmark_requests > 0, "{what}: {figures:?}");
        assert!(rates.redis_benchmark_per_sec > 0.0, "{what}: {figures:?}");
    }
    assert_eq!(
        figures.limiter_decisions_per_sec,
        figures.refused.limiter_per_sec
    );
    assert_eq!(
        figures.redis_benchmark_per_sec,
        figures.refused.redis_benchmark_per_sec
    );
    assert_eq!(
        figures.fresh_counted_in_redis, figures.fresh.limiter_decisions,
        "every fresh decision the limiter reported is a pending attempt in Redis"
    );

    assert!(
        figures.key_prefix.starts_with("tessera-bench:"),
        "{figures:?}"
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut left = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", figures.key_prefix))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        left.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(
        left.is_empty(),
        "keys left behind: {:?}",
        &left[..left.len().min(5)]
    );
}

//! `--smoke`: proof that the load generator really drives the server. A short refresh
//! load on a few independent chains; then every answer the generator counted as a
//! rotation must be one the database recorded (the chains' refresh generations advanced
//! by exactly that count), and each chain's last token must still rotate.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};

use crate::Backend;
use crate::http::{json_request, once};
use crate::load;
use crate::scenarios::{Kind, Workload, forwarded};

const CONNECTIONS: usize = 4;

async fn generations(stack: &crate::Stack) -> anyhow::Result<i64> {
    let email = "refresh@bench.test";
    match &stack.pg {
        Some(pg) => {
            let pool = pg.admin_pool("tessera").await?;
            let n: (i64,) = sqlx::query_as(
                "SELECT coalesce(sum(refresh_generation), 0)::bigint FROM sessions \
                 WHERE user_id = (SELECT id FROM users WHERE email_normalized = $1)",
            )
            .bind(email)
            .fetch_one(&pool)
            .await?;
            pool.close().await;
            Ok(n.0)
        }
        None => {
            let url = format!("sqlite://{}/bench.db?mode=ro", stack.server.dir().display());
            let pool = sqlx::SqlitePool::connect(&url).await?;
            let n: (i64,) = sqlx::query_as(
                "SELECT coalesce(sum(refresh_generation), 0) FROM sessions \
                 WHERE user_id = (SELECT id FROM users WHERE email_normalized = ?1)",
            )
            .bind(email)
            .fetch_one(&pool)
            .await?;
            pool.close().await;
            Ok(n.0)
        }
    }
}

pub async fn run(binary: &Path, backend: Backend, secs: Duration) -> anyhow::Result<()> {
    let stack = crate::start_stack(binary, backend).await?;
    let server = &stack.server;
    let mut workload = Workload::setup(Kind::Refresh, server, CONNECTIONS, 0).await?;
    let before = generations(&stack).await.context("reading generations")?;
    let drivers = workload.drivers(server, CONNECTIONS).await?;
    let outcome = load::run_level(
        server.addr,
        drivers,
        Duration::ZERO,
        secs.max(Duration::from_millis(500)),
        async || {},
        async || {},
    )
    .await;
    workload.give_back(&outcome.drivers);
    let after = generations(&stack).await.context("reading generations")?;
    ensure!(
        outcome.error_count() == 0,
        "{}: the load met errors: {:?}",
        backend.name(),
        outcome.errors
    );
    ensure!(
        outcome.ok_total > 0,
        "{}: no refresh was answered",
        backend.name()
    );
    ensure!(
        after - before == outcome.ok_total as i64,
        "{}: the generator counted {} rotations, the database recorded {}",
        backend.name(),
        outcome.ok_total,
        after - before
    );
    for (i, d) in outcome.drivers.iter().enumerate() {
        if let load::Driver::Refresh { token, .. } = d {
            let res = once(
                server.addr,
                &json_request(
                    "/v1/auth/refresh",
                    &[forwarded(i)],
                    &serde_json::json!({ "refresh_token": token }),
                ),
            )
            .await?;
            ensure!(
                res.status == 200,
                "{}: chain {i}'s last token no longer rotates: {} {}",
                backend.name(),
                res.status,
                res.text()
            );
        }
    }
    println!(
        "smoke {}: {} refreshes answered on {CONNECTIONS} connections ({} in the measured interval); \
         refresh generations advanced by {}",
        backend.name(),
        outcome.ok_total,
        outcome.ok,
        after - before
    );
    Ok(())
}

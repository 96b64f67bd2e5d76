//! The rotation limit: `pgbench` running the store's one-statement rotation
//! (`tessera_adapters::ROTATE_SQL`) on independent chains, same client count.

/// What one pgbench run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PgbenchFigures {
    pub clients: u32,
    pub tps: f64,
    pub latency_avg_ms: f64,
    pub failed: u64,
}

/// Runs the rotation statement under pgbench against `database_url` (a database the
/// tool owns: it creates its own tables' rows), `clients` connections, for `secs`.
#[allow(dead_code)]
pub async fn rotation_limit(
    database_url: &str,
    clients: u32,
    secs: u64,
) -> anyhow::Result<PgbenchFigures> {
    let _ = (database_url, clients, secs);
    anyhow::bail!("pgbench rotation limit: not built yet")
}

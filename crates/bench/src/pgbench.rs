//! The rotation limit: `pgbench` running the store's one-statement rotation
//! (`tessera_adapters::ROTATE_SQL`) on independent chains, same client count.
//!
//! Each pgbench client owns one seeded session and rotates it over and over: it presents
//! the hash it got last round and installs the next one. pgbench cannot make bytes, so a
//! chain's hashes are computed in SQL, `sha256(salt ‖ client ‖ generation)` as three
//! big-endian int8s, by both the seeding statements and the script. The script is
//! generated from `ROTATE_SQL` by replacing each `$n` with an expression of the same type,
//! so a change to the statement changes the benchmark with it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, PgConnection};
use tessera_adapters::ROTATE_SQL;
use tessera_app::ports::Clock as _;

/// pgbench as Debian's PostgreSQL 15 installs it; `pgbench` on the `PATH` otherwise.
const PGBENCH: &str = "/usr/lib/postgresql/15/bin/pgbench";

/// What one pgbench run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PgbenchFigures {
    pub clients: u32,
    pub tps: f64,
    pub latency_avg_ms: f64,
    pub failed: u64,
    /// Rotations committed ("transactions actually processed"); every one of them was
    /// checked to have rotated (the generations the seeded sessions advanced add up to it).
    pub transactions: u64,
}

/// Runs the rotation statement under pgbench against `database_url` (a database the
/// tool owns: it creates its own tables' rows), `clients` connections, for `secs`.
///
/// The rows it seeds (one user, one session and its refresh history per client, under
/// a salt of this run) are left in place: later runs use a new salt and do not see them.
pub async fn rotation_limit(
    database_url: &str,
    clients: u32,
    secs: u64,
) -> anyhow::Result<PgbenchFigures> {
    if clients == 0 || secs == 0 {
        bail!("pgbench rotation limit: clients and seconds must be at least 1");
    }
    let salt = run_salt();
    let constants = Constants::app_defaults();
    let mut db = PgConnection::connect(database_url)
        .await
        .context("pgbench rotation limit: connecting to the database")?;
    seed(&mut db, salt, clients, &constants).await?;

    let script_path = std::env::temp_dir().join(format!(
        "tessera-bench-rotate-{}-{salt}.sql",
        std::process::id()
    ));
    std::fs::write(&script_path, script()?)
        .with_context(|| format!("writing the pgbench script {}", script_path.display()))?;
    let output = run_pgbench(database_url, &script_path, salt, clients, secs, &constants).await;
    if let Err(e) = std::fs::remove_file(&script_path) {
        eprintln!("could not remove {}: {e}", script_path.display());
    }
    let report = parse_report(&output?)?;

    // A round that missed would abort its client (`\gset` wants one row), but the count
    // is the proof: every committed transaction advanced exactly one seeded chain.
    let (sessions, advanced): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), COALESCE(sum(refresh_generation), 0)::bigint FROM sessions \
         WHERE id IN (SELECT {} FROM generate_series(0::bigint, $2 - 1) AS c)",
        session_id_sql("$1::bigint")
    )))
    .bind(salt)
    .bind(i64::from(clients))
    .fetch_one(&mut db)
    .await
    .context("pgbench rotation limit: reading the seeded sessions back")?;
    db.close().await.ok();
    if sessions != i64::from(clients) || u64::try_from(advanced).ok() != Some(report.transactions) {
        bail!(
            "pgbench rotation limit: pgbench reported {} rotations but the {sessions} seeded \
             sessions advanced {advanced} generations: the figure would not measure rotations",
            report.transactions
        );
    }
    Ok(PgbenchFigures {
        clients,
        tps: report.tps,
        latency_avg_ms: report.latency_avg_ms,
        failed: report.failed,
        transactions: report.transactions,
    })
}

/// The values the server passes for what the script cannot take from the chain: the
/// defaults of `tessera_app::Settings`, so the statement does the work it does there.
struct Constants {
    idle_secs: i64,
    absolute_secs: i64,
    /// Seals of tokens rotated before now minus this are cleared.
    seal_window_secs: i64,
    seals_per_rotation: i64,
}

impl Constants {
    fn app_defaults() -> Self {
        let settings = tessera_app::Settings::default();
        Self {
            idle_secs: settings.lifetimes.idle.whole_seconds(),
            absolute_secs: settings.lifetimes.absolute.whole_seconds(),
            seal_window_secs: settings
                .refresh_retry_window
                .max(tessera_app::BROWSER_RETRY_WINDOW)
                .whole_seconds(),
            seals_per_rotation: tessera_core::session::rotation::EXPIRED_SEALS_PER_ROTATION,
        }
    }
}

/// A value no earlier run on the same database used, so chains never share a hash.
fn run_salt() -> i64 {
    let nanos = tessera_adapters::SystemClock.now().unix_timestamp_nanos();
    // Folding in the process id keeps two tools started in the same instant apart.
    i64::try_from(nanos % i128::from(i64::MAX)).unwrap_or(0) ^ i64::from(std::process::id())
}

/// The hash of one link of a chain, as SQL: `salt`, `client` and `generation` are int8
/// expressions. The seed and the script both use it, so they agree by construction.
fn chain_hash_sql(salt: &str, client: &str, generation: &str) -> String {
    format!("sha256(int8send({salt}) || int8send({client}) || int8send({generation}))")
}

fn user_id_sql(salt: &str) -> String {
    format!("md5('tessera-bench:user:' || {salt} || ':' || c)::uuid")
}

fn session_id_sql(salt: &str) -> String {
    format!("md5('tessera-bench:session:' || {salt} || ':' || c)::uuid")
}

/// One user, one live session at generation 0 and its current refresh token per client
/// `c` in `0..clients`, in one transaction.
async fn seed(
    db: &mut PgConnection,
    salt: i64,
    clients: u32,
    constants: &Constants,
) -> anyhow::Result<()> {
    let statements = [
        format!(
            "INSERT INTO users (id, email, email_normalized, created_at, updated_at) \
             SELECT {}, e, e, now(), now() FROM generate_series(0::bigint, $2 - 1) AS c, \
             LATERAL (SELECT format('bench-%s-%s@bench.invalid', $1::bigint, c) AS e) AS x",
            user_id_sql("$1::bigint")
        ),
        format!(
            "INSERT INTO sessions (id, user_id, device_id, user_agent, ip, created_at, \
             last_seen_at, idle_expires_at, absolute_expires_at, acr, auth_time, \
             current_refresh_hash, refresh_generation) \
             SELECT {}, {}, 'tessera-bench', 'tessera-bench', '127.0.0.1', now(), now(), \
             now() + make_interval(secs => $3), now() + make_interval(secs => $4), 'aal1', \
             now(), {}, 0 FROM generate_series(0::bigint, $2 - 1) AS c",
            session_id_sql("$1::bigint"),
            user_id_sql("$1::bigint"),
            chain_hash_sql("$1::bigint", "c", "0::bigint")
        ),
        format!(
            "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
             SELECT {}, {}, 0, now() FROM generate_series(0::bigint, $2 - 1) AS c",
            chain_hash_sql("$1::bigint", "c", "0::bigint"),
            session_id_sql("$1::bigint")
        ),
    ];
    let mut tx = db
        .begin()
        .await
        .context("pgbench rotation limit: seeding")?;
    for statement in &statements {
        // One set of four parameters for all three: Postgres accepts a declared parameter
        // that a statement leaves unused.
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .bind(salt)
            .bind(i64::from(clients))
            .bind(constants.idle_secs as f64)
            .bind(constants.absolute_secs as f64)
            .execute(&mut *tx)
            .await
            .context("pgbench rotation limit: seeding the chains (is the database migrated?)")?;
    }
    tx.commit()
        .await
        .context("pgbench rotation limit: seeding")?;
    Ok(())
}

/// What replaces `$n` in `ROTATE_SQL` (index `n - 1`): an expression of the parameter's
/// type, from the client's variables (`:gen`, `:next`, `:client_id`) and the constants
/// given with `-D`.
fn replacements() -> [String; 9] {
    [
        // $1 the presented hash: the client's current link.
        chain_hash_sql(":salt", ":client_id", ":gen"),
        // $2 the successor's hash: the next link.
        chain_hash_sql(":salt", ":client_id", ":next"),
        // $3 no seal: the API's default retry window is zero.
        "NULL::bytea".to_owned(),
        // $4 now.
        "now()".to_owned(),
        // $5 now + the idle lifetime.
        "(now() + make_interval(secs => :idle_secs))".to_owned(),
        // $6, $7 the client's IP and user agent.
        ":ip".to_owned(),
        ":ua".to_owned(),
        // $8 seals of tokens rotated before this are cleared; $9 at most this many.
        "(now() - make_interval(secs => :seal_window_secs))".to_owned(),
        ":seals".to_owned(),
    ]
}

/// `ROTATE_SQL` with every `$n` replaced; fails if it names a parameter with no
/// replacement or leaves one unused, so a change to the statement cannot go unnoticed.
fn rotate_statement(sql: &str, replacements: &[String]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(sql.len() * 2);
    let mut used = vec![false; replacements.len()];
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = after[..digits]
            .parse()
            .with_context(|| format!("ROTATE_SQL has a `$` that is no parameter: {sql}"))?;
        let Some(replacement) = n.checked_sub(1).and_then(|i| replacements.get(i)) else {
            bail!("ROTATE_SQL uses ${n}, which the pgbench script has no expression for");
        };
        used[n - 1] = true;
        out.push_str(replacement);
        rest = &after[digits..];
    }
    out.push_str(rest);
    if let Some(unused) = used.iter().position(|u| !u) {
        bail!(
            "ROTATE_SQL no longer uses ${}: the pgbench script must follow its parameters",
            unused + 1
        );
    }
    if out.contains('\n') || out.contains(';') {
        bail!("ROTATE_SQL must stay one line with no `;` to be one pgbench command");
    }
    Ok(out)
}

/// The pgbench script: one rotation per transaction. `\gset` wants exactly one row, so
/// a rotation that matched nothing aborts the client instead of counting as done; the
/// generation it returns is where the chain goes on.
fn script() -> anyhow::Result<String> {
    let statement = rotate_statement(ROTATE_SQL, &replacements())?;
    let mut script = String::with_capacity(statement.len() + 128);
    writeln!(script, "\\set next :gen + 1")?;
    writeln!(script, "{statement} \\gset r_")?;
    writeln!(script, "\\set gen :r_refresh_generation")?;
    Ok(script)
}

/// `default` when it exists, else `name` as the `PATH` finds it (the limits' tools).
pub(crate) fn tool(default: &str, name: &str) -> PathBuf {
    if Path::new(default).exists() {
        PathBuf::from(default)
    } else {
        PathBuf::from(name)
    }
}

async fn run_pgbench(
    database_url: &str,
    script: &Path,
    salt: i64,
    clients: u32,
    secs: u64,
    constants: &Constants,
) -> anyhow::Result<String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = u32::try_from(cores).unwrap_or(u32::MAX).min(clients);
    let program = tool(PGBENCH, "pgbench");
    let output = tokio::process::Command::new(&program)
        .arg("--no-vacuum")
        .args(["--protocol", "prepared"])
        .args(["--client", &clients.to_string()])
        .args(["--jobs", &threads.to_string()])
        .args(["--time", &secs.to_string()])
        .args(["--define", &format!("salt={salt}")])
        .args(["--define", "gen=0"])
        .args(["--define", &format!("idle_secs={}", constants.idle_secs)])
        .args([
            "--define",
            &format!("seal_window_secs={}", constants.seal_window_secs),
        ])
        .args([
            "--define",
            &format!("seals={}", constants.seals_per_rotation),
        ])
        .args(["--define", "ip=127.0.0.1"])
        .args(["--define", "ua=tessera-bench"])
        .arg("--file")
        .arg(script)
        // libpq reads a URI in the database name position.
        .arg(database_url)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        // pgbench's own messages name the client and command, never the password.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        bail!(
            "pgbench failed ({}): {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(stdout)
}

#[derive(Debug, PartialEq)]
struct Report {
    tps: f64,
    latency_avg_ms: f64,
    failed: u64,
    transactions: u64,
}

/// Reads pgbench 15's summary: `number of transactions actually processed: N`,
/// `number of failed transactions: N (x%)`, `latency average = X ms`, `tps = X (…)`.
fn parse_report(stdout: &str) -> anyhow::Result<Report> {
    fn after<'a>(stdout: &'a str, label: &str) -> anyhow::Result<&'a str> {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("pgbench printed no `{label}`: {stdout}"))
    }
    let number = |label: &str| -> anyhow::Result<f64> {
        let text = after(stdout, label)?;
        text.parse()
            .with_context(|| format!("pgbench's `{label}` is not a number: {text}"))
    };
    let count = |label: &str| -> anyhow::Result<u64> {
        let text = after(stdout, label)?;
        text.parse()
            .with_context(|| format!("pgbench's `{label}` is not a count: {text}"))
    };
    Ok(Report {
        tps: number("tps = ")?,
        latency_avg_ms: number("latency average = ")?,
        // pgbench prints the line only when it counts failures (15 and later).
        failed: if stdout.contains("number of failed transactions: ") {
            count("number of failed transactions: ")?
        } else {
            0
        },
        transactions: count("number of transactions actually processed: ")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_parameter_is_replaced_and_a_new_one_is_refused() {
        let statement = rotate_statement(ROTATE_SQL, &replacements()).unwrap();
        assert!(!statement.contains('$'), "{statement}");
        assert!(statement.contains(&chain_hash_sql(":salt", ":client_id", ":next")));
        let grown = format!("{ROTATE_SQL} AND $10 = 1");
        let e = rotate_statement(&grown, &replacements()).unwrap_err();
        assert!(e.to_string().contains("$10"), "{e}");
        let shrunk = ROTATE_SQL.replace("$9", "100");
        let e = rotate_statement(&shrunk, &replacements()).unwrap_err();
        assert!(e.to_string().contains("$9"), "{e}");
    }

    #[test]
    fn pgbench_15_summary_is_read() {
        let out = "transaction type: /tmp/x.sql\nscaling factor: 1\nquery mode: prepared\n\
                   number of clients: 4\nnumber of threads: 2\nmaximum number of tries: 1\n\
                   duration: 1 s\nnumber of transactions actually processed: 9001\n\
                   number of failed transactions: 3 (0.033%)\nlatency average = 0.443 ms\n\
                   initial connection time = 6.120 ms\n\
                   tps = 9025.112233 (without initial connection time)\n";
        assert_eq!(
            parse_report(out).unwrap(),
            Report {
                tps: 9025.112233,
                latency_avg_ms: 0.443,
                failed: 3,
                transactions: 9001
            }
        );
        assert!(parse_report("pgbench: error: oops").is_err());
    }
}

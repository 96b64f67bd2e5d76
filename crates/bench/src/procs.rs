//! The processes the tool starts (the `tessera` server, a private PostgreSQL and Redis,
//! the bare-verify handler) and what it reads of them in `/proc`. Every one is owned by
//! a guard whose `Drop` stops it, so an error or an interrupt anywhere still leaves
//! nothing running: the shared PostgreSQL and Redis of the machine are never touched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A directory of this process's own under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tessera-bench-{}-{label}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child killed (and reaped) on drop.
pub struct Guard {
    child: Child,
    name: &'static str,
}

impl Guard {
    pub fn spawn(name: &'static str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        Ok(Self { child, name })
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Fails when the child has already exited (it refused to start).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited at start: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn wait_for_port(port: u16, guard: &mut Guard, what: &str) -> anyhow::Result<()> {
    for _ in 0..400 {
        guard.check_alive()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 20 s")
}

/// A PostgreSQL 15 cluster of the tool's own: initdb'd in a temp dir as the `postgres`
/// OS user, on its own port and socket dir, with pg_stat_statements loaded. Stopped
/// (immediate mode: nothing in it is worth a checkpoint) on drop.
pub struct PrivatePostgres {
    pub port: u16,
    data: PathBuf,
    _dir: TempDir,
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")]);
    c
}

fn run(what: &str, command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl PrivatePostgres {
    pub async fn start() -> anyhow::Result<Self> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            bail!("PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15)");
        }
        let dir = TempDir::new("pg")?;
        let data = dir.path().join("data");
        let socket = dir.path().join("sock");
        std::fs::create_dir_all(&socket)?;
        run(
            "chown of the cluster dir",
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()),
        )?;
        run(
            "initdb",
            as_postgres("initdb")
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
        )?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 \
             -c shared_preload_libraries=pg_stat_statements -c max_connections=400",
            socket.display()
        );
        let pg = Self {
            port,
            data: data.clone(),
            _dir: dir,
        };
        // From here on, drop stops the cluster whatever fails next.
        run(
            "pg_ctl start",
            as_postgres("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(data.join("server.log"))
                .args(["-w", "-o", &options, "start"]),
        )?;
        let admin = pg.admin_pool("postgres").await?;
        for statement in [
            "CREATE EXTENSION pg_stat_statements",
            "CREATE ROLE tessera LOGIN",
            "CREATE DATABASE tessera OWNER tessera",
            "CREATE DATABASE limits",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&admin)
                .await
                .with_context(|| format!("private PostgreSQL: {statement}"))?;
        }
        admin.close().await;
        Ok(pg)
    }

    /// The URL the server uses: its own role, so its statements are counted apart.
    pub fn server_url(&self) -> String {
        format!("postgres://tessera@127.0.0.1:{}/tessera", self.port)
    }

    /// The migrated database the pgbench limit seeds its own rows in.
    pub fn limits_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/limits", self.port)
    }

    pub async fn admin_pool(&self, db: &str) -> anyhow::Result<sqlx::PgPool> {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("postgres://postgres@127.0.0.1:{}/{db}", self.port))
            .await
            .context("connecting to the private PostgreSQL")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Statements the server's role has run so far (pg_stat_statements, top level; BEGIN and
/// COMMIT count, since each is a round trip).
pub async fn server_statements(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    let n: (i64,) = sqlx::query_as(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = 'tessera')",
    )
    .fetch_one(pool)
    .await?;
    Ok(n.0)
}

/// A redis-server of the tool's own, nothing persisted.
pub struct PrivateRedis {
    pub port: u16,
    _guard: Guard,
}

impl PrivateRedis {
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut guard = Guard::spawn(
            "redis-server",
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        wait_for_port(port, &mut guard, "redis-server").await?;
        Ok(Self {
            port,
            _guard: guard,
        })
    }
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// The master key every bench server runs with: bench data only, never a real secret.
const BENCH_MASTER_KEY: [u8; 32] = [9; 32];
pub const ISSUER: &str = "http://bench.tessera";

/// A `tessera serve` child on a free port with its own working directory.
pub struct Server {
    pub addr: SocketAddr,
    guard: Guard,
    binary: PathBuf,
    env: Vec<(String, String)>,
    dir: TempDir,
}

impl Server {
    /// `database_url` None: the embedded default (SQLite in the working dir, in-process
    /// limiter). The tool is the trusted proxy so each connection forwards its own client
    /// address; registration is unlimited since set-up registers many accounts at once.
    pub async fn start(
        binary: &Path,
        database_url: Option<String>,
        redis_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let dir = TempDir::new("server")?;
        let port = free_port()?;
        let mut env = vec![
            ("TESSERA_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            (
                "TESSERA_MASTER_KEY".to_owned(),
                data_encoding::BASE64.encode(&BENCH_MASTER_KEY),
            ),
            (
                "TESSERA_TRUSTED_PROXIES".to_owned(),
                "127.0.0.1/32".to_owned(),
            ),
            ("TESSERA_REGISTER_LIMIT".to_owned(), "1000000".to_owned()),
            ("TESSERA_ISSUER".to_owned(), ISSUER.to_owned()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        if let Some(url) = database_url {
            env.push(("TESSERA_DATABASE_URL".to_owned(), url));
        } else {
            env.push((
                "TESSERA_DATABASE_URL".to_owned(),
                format!("sqlite://{}/bench.db", dir.path().display()),
            ));
        }
        if let Some(url) = redis_url {
            env.push(("TESSERA_REDIS_URL".to_owned(), url));
            env.push(("TESSERA_REDIS_KEY_PREFIX".to_owned(), "bench:".to_owned()));
        }
        // The server's log goes to a file in its directory, shown when it fails to start.
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut guard = Guard::spawn(
            "tessera serve",
            Command::new(binary)
                .arg("serve")
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let started = std::time::Instant::now();
        loop {
            if let Err(e) = guard.check_alive() {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                bail!("{e}\n{log}");
            }
            let ready = crate::http::once(addr, &crate::http::request("GET", "/readyz", &[], None))
                .await
                .map(|r| r.status == 200)
                .unwrap_or(false);
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("tessera serve was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            addr,
            guard,
            binary: binary.to_owned(),
            env,
            dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tessera <args>` against the same database and settings (e.g. `admin
    /// grant-role`), failing with its output when it fails.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<()> {
        run(
            &format!("tessera {}", args.join(" ")),
            Command::new(&self.binary)
                .args(args)
                .current_dir(self.dir.path())
                .env_clear()
                .env("USER", "tessera-bench")
                .envs(self.env.iter().map(|(k, v)| (k, v))),
        )
    }
}

/// `tessera migrate` on another database (the pgbench limit's).
pub fn migrate(binary: &Path, database_url: &str) -> anyhow::Result<()> {
    let dir = TempDir::new("migrate")?;
    run(
        "tessera migrate",
        Command::new(binary)
            .arg("migrate")
            .current_dir(dir.path())
            .env_clear()
            .env("TESSERA_DATABASE_URL", database_url)
            .env(
                "TESSERA_MASTER_KEY",
                data_encoding::BASE64.encode(&BENCH_MASTER_KEY),
            ),
    )
}

/// The `tessera-bench bare-verify` child: the same access-token verification as the
/// server's, and nothing else.
pub struct Bare {
    pub addr: SocketAddr,
    guard: Guard,
}

impl Bare {
    pub async fn start(server: &Server, workers: usize) -> anyhow::Result<Self> {
        let port = free_port()?;
        let exe = std::env::current_exe()?;
        let mut guard = Guard::spawn(
            "tessera-bench bare-verify",
            Command::new(exe)
                .args(["bare-verify", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--jwks-from", &server.addr.to_string()])
                .args(["--issuer", ISSUER, "--workers", &workers.to_string()])
                .stdin(Stdio::null()),
        )?;
        wait_for_port(port, &mut guard, "bare-verify").await?;
        Ok(Self {
            addr: ([127, 0, 0, 1], port).into(),
            guard,
        })
    }
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }
}

/// Clock ticks per second of /proc's utime and stime.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid` (all its threads, live and exited), in ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Resets the peak resident set (VmHWM) of `pid`.
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// (VmHWM, VmRSS) of `pid`, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

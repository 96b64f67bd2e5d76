//! What the benchmarks that drive a real server share: starting the release `tessera`
//! binary, waiting for it, and reading percentiles.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `tessera serve` child process, killed (and its working directory removed) on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Starts the server on `database_url`, or on a SQLite file in its own working
    /// directory. The bench is its trusted proxy (so each request can forward its own
    /// client address), and registration is not limited (the accounts sign up from
    /// made-up addresses in one go).
    pub fn start(name: &str, database_url: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database_url = database_url.map_or_else(
            || format!("sqlite://{}/bench.db", dir.display()),
            str::to_owned,
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .current_dir(&dir)
            .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
            .env("TESSERA_DATABASE_URL", database_url)
            .env(
                "TESSERA_MASTER_KEY",
                data_encoding::BASE64.encode(&[9u8; 32]),
            )
            .env("TESSERA_TRUSTED_PROXIES", "127.0.0.1/32")
            .env("TESSERA_REGISTER_LIMIT", "100000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the tessera binary starts");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    pub async fn wait_ready(&self, client: &reqwest::Client) {
        for _ in 0..400 {
            if let Ok(res) = client.get(format!("{}/readyz", self.base)).send().await
                && res.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }
}

/// The `q` quantile of sorted latencies, in milliseconds (NaN when there are none).
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

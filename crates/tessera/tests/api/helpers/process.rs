//! `tessera serve` as a real child process in a directory of its own, its log kept.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn tessera(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    // Nothing from the developer's environment leaks in: this is the fresh-machine case.
    cmd.env_clear()
        .current_dir(dir)
        .env("RUST_LOG", "debug")
        .kill_on_drop(true);
    cmd
}

/// Starts `tessera serve` on its embedded defaults (only the port is chosen by the OS).
pub async fn serve(dir: &Path) -> Server {
    serve_with(dir, &[]).await
}

/// Starts `tessera serve` with extra settings.
pub async fn serve_with(dir: &Path, settings: &[(&str, &str)]) -> Server {
    let mut child = tessera(dir)
        .args(["serve"])
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .envs(settings.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let log = log.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("addr=").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    let addr = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "server did not start; log:\n{}",
                log.lock().unwrap().join("\n")
            )
        })
        .unwrap();
    Server { child, addr, log }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    pub async fn stop(mut self) -> String {
        self.child.kill().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.log.lock().unwrap().join("\n")
    }
}

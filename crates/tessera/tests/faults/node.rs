//! A real `tessera serve` child process: started with settings, watched through its log,
//! and ended the ways a machine ends it (SIGTERM, `kill -9`).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::PASSWORD;

/// How long a step may take before the test gives up on it: a bound on waiting, far
/// beyond what any step needs, never a measure of speed.
pub const PATIENCE: Duration = Duration::from_secs(45);

pub struct Node {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

/// A working directory of the test's own (the SQLite file, if any, lives there).
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tessera-faults-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh master key, so a restarted node opens what the first one sealed.
pub fn master_key() -> String {
    data_encoding::BASE64.encode(&crate::helpers::rand32())
}

impl Node {
    /// `tessera serve` in `dir` on a free port with `settings` (nothing else from the
    /// environment), once it says where it listens.
    pub async fn start(dir: &Path, settings: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env_clear()
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_ISSUER", "https://auth.test")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let streams: [Box<dyn tokio::io::AsyncRead + Unpin + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let (log, tx) = (log.clone(), tx.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("tessera listening")
                        && let Some(rest) = line.split("addr=").nth(1)
                    {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!(
                    "serve did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        Self {
            child,
            addr,
            log,
            client: reqwest::Client::new(),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the node is running")
    }

    /// SIGTERM, as an orchestrator stops a process.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-s", "TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `kill -9`: no handler runs, nothing is flushed or finished.
    pub async fn kill_hard(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the process to end (within [`PATIENCE`]); its exit status.
    pub async fn exited(&mut self) -> ExitStatus {
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the node did not exit; log:\n{}", self.log()))
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str) {
        let res = self
            .post("/v1/users", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }

    pub async fn login(&self, email: &str, password: &str, device: &str) -> Response {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password, "device_id": device}),
        )
        .await
    }

    /// A password login that must succeed; its body.
    pub async fn login_ok(&self, email: &str, device: &str) -> Value {
        let res = self.login(email, PASSWORD, device).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        res.json().await.unwrap()
    }

    pub async fn refresh(&self, token: &str) -> Response {
        self.post("/v1/auth/refresh", json!({"refresh_token": token}))
            .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/v1/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn readyz(&self) -> (u16, Value) {
        let res = self.client.get(self.url("/readyz")).send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// Asks `/readyz` until `done` holds for its status and body (within [`PATIENCE`]).
    /// Only the probe is called: nothing else touches the backends meanwhile.
    pub async fn readyz_until(&self, what: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.readyz().await;
            if done(status, &body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz never showed {what}; last {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A fresh address no other test uses.
pub fn email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple())
}

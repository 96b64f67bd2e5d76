//! `TestApp`: a real server on port 0 over a fresh database, with typed request helpers.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::config::{Config, MasterKeySource, PreviousMasterKeys};
use tessera::startup::Application;
use tessera_adapters::testing::TestDatabase;
use tessera_app::ports::Clock;
use tessera_app::testkit::ManualClock;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The inline master key the server runs with (base64), for CLI runs on its database.
    pub master_key: String,
    pub client: reqwest::Client,
    /// Shared with any other server started on the same database (`TestApp::start_on`).
    pub db: Arc<TestDatabase>,
    pub clock: Arc<ManualClock>,
    /// The server is alone on a SQLite file with no Redis: its cache learns of writes by
    /// other connections (as [`TestApp::sql`] makes) by watching the file.
    watches_file: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Default)]
pub struct Options {
    pub retry_window_secs: i64,
    /// Use the Redis limiter (skipped, loudly, when TESSERA_TEST_REDIS_URL is unset).
    pub redis: bool,
    /// The HTTP edge limits instead of the defaults (short timeouts, a small cap).
    pub http: Option<tessera::edge::HttpLimits>,
    pub trusted_proxies: Vec<&'static str>,
    /// A specific Redis (e.g. a private server a test will kill); implies `redis`.
    pub redis_url: Option<String>,
    /// The Redis key prefix instead of a fresh one: nodes given the same one share their
    /// limits and revocation channel.
    pub redis_key_prefix: Option<String>,
    /// The master key (base64) instead of a fresh random one.
    pub master_key: Option<String>,
    /// TESSERA_MASTER_KEY_PREVIOUS (base64 keys).
    pub previous_master_keys: Vec<String>,
    /// A step-up policy instead of the defaults (as a `[[step_up]]` file would give).
    pub step_up: Option<tessera_core::policy::StepUpPolicy>,
    /// Any other setting, applied last (as a settings file or environment would).
    pub configure: Option<fn(&mut Config)>,
}

/// The Redis URL for tests, or None after announcing the skip (a failure under
/// TESSERA_TEST_REQUIRE=all).
pub fn redis_url() -> Option<String> {
    match std::env::var("TESSERA_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            tessera_adapters::testing::skip_or_fail(
                "Redis tests",
                "set TESSERA_TEST_REDIS_URL=redis://127.0.0.1:6379",
            );
            None
        }
    }
}

/// A key prefix no other test or run shares.
pub fn redis_prefix() -> String {
    format!("tessera-test:{}:", uuid::Uuid::new_v4().simple())
}

impl TestApp {
    /// None when the backend is not configured here (the skip is announced loudly).
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Option<Self> {
        let redis = match (&options.redis_url, options.redis) {
            (Some(url), _) => Some(url.clone()),
            (None, true) => Some(redis_url()?),
            (None, false) => None,
        };
        let db = match backend {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres().await?,
        };
        Some(
            Self::start_on(Arc::new(db), redis, options)
                .await
                .expect("app builds"),
        )
    }

    /// A server on an existing database (e.g. the one of an earlier `TestApp`, restarted
    /// with other master keys); the error when it refuses to start.
    pub async fn start_on(
        db: Arc<TestDatabase>,
        redis: Option<String>,
        options: Options,
    ) -> anyhow::Result<Self> {
        let mut config = Config::embedded_defaults().unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = db.url().to_owned();
        let master_key = options
            .master_key
            .unwrap_or_else(|| data_encoding::BASE64.encode(&rand32()));
        config.master_key = MasterKeySource::Inline(master_key.clone());
        config.master_key_previous = PreviousMasterKeys::new(options.previous_master_keys);
        config.issuer = "https://auth.test".into();
        config.refresh_retry_window_secs = options.retry_window_secs;
        let watches_file = db.url().starts_with("sqlite:") && redis.is_none();
        config.redis_url = redis;
        config.redis_key_prefix = options.redis_key_prefix.unwrap_or_else(redis_prefix);
        if let Some(limits) = options.http {
            config.http = limits;
        }
        if let Some(policy) = options.step_up.clone() {
            config.step_up = policy;
        }
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        config.trusted_proxies = options
            .trusted_proxies
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        // Real wall-clock start, so tokens verify with independent libraries; tests move it.
        #[allow(clippy::disallowed_methods)]
        let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let app =
            Application::build_with_clock(&config, clock.clone() as Arc<dyn Clock>, true).await?;
        let addr = app.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            master_key,
            client: reqwest::Client::new(),
            db,
            clock,
            watches_file,
            shutdown: Some(tx),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str) -> Value {
        let res = self
            .post("/v1/users", json!({"email": email, "password": password}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    /// A login as sent through a proxy that forwards `client` in `X-Forwarded-For`.
    pub async fn login_via(&self, forwarded_for: &str, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/v1/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": email, "password": password, "device_id": "d1"}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str, device: &str) -> Response {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password, "device_id": device, "device_name": "Test device"}),
        )
        .await
    }

    /// A password login on `device` that must succeed; returns its body.
    pub async fn login_ok(&self, email: &str, password: &str, device: &str) -> Value {
        let res = self.login(email, password, device).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// Registers a fresh user and signs in on `device`; returns the login body.
    pub async fn signed_in_user(&self, device: &str) -> (String, Value) {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        self.register(&email, PASSWORD).await;
        let res = self.login(&email, PASSWORD, device).await;
        assert_eq!(res.status(), StatusCode::OK);
        (email, res.json().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/v1/auth/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let res = self.client.get(self.url("/metrics")).send().await.unwrap();
        res.text().await.unwrap()
    }

    /// How many Argon2 verifications the server has run (from /metrics).
    pub async fn password_checks(&self) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix("tessera_password_checks_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("tessera_password_checks_total in /metrics")
    }

    /// Runs one SQL statement on the app's database (test set-up such as granting a role),
    /// and returns once the server can no longer answer from what it cached before.
    pub async fn sql(&self, statement: &str) {
        let flushes = self.cache_flushes().await;
        self.sql_unwatched(statement).await;
        if !self.watches_file {
            return;
        }
        // A serving cache is flushed by the watch's next look. One not serving yet (the
        // first moments after start) has nothing to flush and moves no counter: it starts
        // from what is in the file, so the bound only ends the wait, it checks nothing.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.cache_flushes().await <= flushes && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Whole-cache flushes so far (`/metrics`).
    pub async fn cache_flushes(&self) -> u64 {
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("tessera_session_cache_flushes_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("tessera_session_cache_flushes_total in /metrics")
    }

    /// [`sql`](Self::sql) without waiting for the server to notice.
    pub async fn sql_unwatched(&self, statement: &str) {
        if self.db.url().starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(self.db.url()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
        } else {
            let pool = sqlx::PgPool::connect(self.db.url()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
        }
    }

    /// Gives a user a role straight in the database (the admin API needs an admin first).
    pub async fn grant_role(&self, user_id: &str, role: &str) {
        let id = uuid::Uuid::parse_str(user_id).unwrap();
        let literal = if self.db.url().starts_with("sqlite:") {
            format!("X'{}'", id.simple())
        } else {
            format!("'{id}'")
        };
        self.sql(&format!(
            "INSERT INTO user_roles (user_id, role) VALUES ({literal}, '{role}')"
        ))
        .await;
    }

    /// Every text and blob column of the user's TOTP row, as lossy text.
    pub async fn raw_totp_row(&self) -> String {
        use sqlx::Row;
        let sql = "SELECT sealed_secret, pending_sealed FROM user_totp";
        let rows: Vec<Vec<u8>> = if self.db.url().starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(self.db.url()).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
            rows.iter()
                .flat_map(|r| {
                    [
                        r.get::<Option<Vec<u8>>, _>(0),
                        r.get::<Option<Vec<u8>>, _>(1),
                    ]
                })
                .flatten()
                .collect()
        } else {
            let pool = sqlx::PgPool::connect(self.db.url()).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
            rows.iter()
                .flat_map(|r| {
                    [
                        r.get::<Option<Vec<u8>>, _>(0),
                        r.get::<Option<Vec<u8>>, _>(1),
                    ]
                })
                .flatten()
                .collect()
        };
        assert!(!rows.is_empty(), "no TOTP row stored");
        rows.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The client IPs recorded on events of one kind, oldest first.
    pub async fn event_ips(&self, kind: &str) -> Vec<String> {
        use sqlx::Row;
        let sql = "SELECT ip FROM security_events WHERE kind = $1 ORDER BY at";
        if self.db.url().starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(self.db.url()).await.unwrap();
            sqlx::query(sql)
                .bind(kind)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("ip"))
                .collect()
        } else {
            let pool = sqlx::PgPool::connect(self.db.url()).await.unwrap();
            sqlx::query(sql)
                .bind(kind)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("ip"))
                .collect()
        }
    }

    /// Counts recorded security events of one kind, straight from the database.
    pub async fn count_events(&self, kind: &str) -> i64 {
        use sqlx::Row;
        let sql = "SELECT COUNT(*) AS n FROM security_events WHERE kind = $1";
        if self.db.url().starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(self.db.url()).await.unwrap();
            let row = sqlx::query(sql).bind(kind).fetch_one(&pool).await.unwrap();
            row.get::<i64, _>("n")
        } else {
            let pool = sqlx::PgPool::connect(self.db.url()).await.unwrap();
            let row = sqlx::query(sql).bind(kind).fetch_one(&pool).await.unwrap();
            row.get::<i64, _>("n")
        }
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

pub fn rand32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

/// Asserts a problem+json answer with the given status and code; returns the body.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        res.status().as_u16(),
        status,
        "status for expected `{code}`"
    );
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:tessera:problem:{code}"));
    assert_eq!(body["status"], status);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    body
}

/// Runs one async test body against SQLite and against Postgres.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) =
                    $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await
                {
                    ($body)(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await
                {
                    ($body)(app).await;
                }
            }
        }
    };
}

/// Runs one async test body against a bare, migrated store of each backend (no server):
/// for tests at the level of the use cases. `$body` is called with the store.
#[macro_export]
macro_rules! both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = tessera_adapters::testing::TestDatabase::sqlite();
                let store = tessera_adapters::SqliteStore::connect(db.url())
                    .await
                    .unwrap();
                store.migrate().await.unwrap();
                ($body)(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = tessera_adapters::testing::TestDatabase::postgres().await else {
                    return;
                };
                let store = tessera_adapters::PgStore::connect(db.url()).await.unwrap();
                store.migrate().await.unwrap();
                ($body)(store).await;
            }
        }
    };
}

/// A redis-server of the test's own on a free port, so it can be killed and restarted
/// without touching the shared one. None (after the skip notice) without the binary.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        if !redis.restart().await {
            tessera_adapters::testing::skip_or_fail(
                "redis-server binary",
                "apt-get install redis-server",
            );
            return None;
        }
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port; false when the binary is missing.
    pub async fn restart(&mut self) -> bool {
        let Ok(child) = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A string field of a JSON body.
pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

/// The device behind `login` (a login or refresh body) is cut off: its access token and
/// its refresh token are both refused with `session_revoked`.
pub async fn assert_cut_off(app: &TestApp, login: &Value) {
    assert_problem(
        app.get_auth("/v1/me", &s(login, "access_token")).await,
        401,
        "session_revoked",
    )
    .await;
    assert_problem(
        app.refresh(&s(login, "refresh_token")).await,
        401,
        "session_revoked",
    )
    .await;
}

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

use super::{redis_prefix, redis_url};

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

    /// A public GET that must succeed; returns its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.unwrap()
    }

    /// `GET /v1/me` with `access_token`, which must succeed; its JSON body.
    pub async fn me(&self, access_token: &str) -> Value {
        let res = self.get_auth("/v1/me", access_token).await;
        assert_eq!(res.status(), StatusCode::OK, "GET /v1/me");
        res.json().await.unwrap()
    }

    /// The caller's security events, newest first (as many as one page holds).
    pub async fn security_events(&self, access_token: &str) -> Vec<Value> {
        let res = self
            .get_auth("/v1/security-events?limit=100", access_token)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "GET /v1/security-events");
        let body: Value = res.json().await.unwrap();
        body["events"].as_array().unwrap().clone()
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

    /// Asks for a password-reset link for `email`.
    pub async fn ask_reset(&self, email: &str) -> Response {
        self.post("/v1/password-reset", json!({ "email": email }))
            .await
    }

    /// Completes a password reset with the emailed `token`.
    pub async fn complete_reset(&self, token: &str, new_password: &str) -> Response {
        self.post(
            "/v1/password-reset/complete",
            json!({"token": token, "new_password": new_password}),
        )
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
}

pub const PASSWORD: &str = "correct horse battery staple";

pub fn rand32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

//! `TestApp`: a real server on port 0 over a fresh database, with typed request helpers.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::config::{Config, MasterKeySource};
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
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub clock: Arc<ManualClock>,
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
}

impl TestApp {
    /// None when the backend is not configured here (the skip is announced loudly).
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Option<Self> {
        let db = match backend {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres().await?,
        };
        let mut config = Config::embedded_defaults().unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = db.url().to_owned();
        config.master_key = MasterKeySource::Inline(data_encoding::BASE64.encode(&rand32()));
        config.issuer = "https://auth.test".into();
        config.refresh_retry_window_secs = options.retry_window_secs;
        // Real wall-clock start, so tokens verify with independent libraries; tests move it.
        #[allow(clippy::disallowed_methods)]
        let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let app = Application::build_with_clock(&config, clock.clone() as Arc<dyn Clock>, true)
            .await
            .expect("app builds");
        let addr = app.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Some(Self {
            addr,
            client: reqwest::Client::new(),
            db,
            clock,
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

    pub async fn login(&self, email: &str, password: &str, device: &str) -> Response {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password, "device_id": device, "device_name": "Test device"}),
        )
        .await
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

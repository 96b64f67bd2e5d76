//! Redis for tests: the shared server's URL (or the loud skip), a key prefix per test, a
//! node subscribed to its own channel, and a private `redis-server` a test may kill and
//! restart.

use super::{Backend, Options, TestApp, until_subscribed};

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

/// A server with the session cache on and its revocation subscription up, on a key prefix
/// of its own; with the Redis URL and that prefix, which a `tessera admin` run is given
/// to publish to it. None after a skip notice.
pub async fn subscribed_node(backend: Backend) -> Option<(TestApp, String, String)> {
    let redis = redis_url()?;
    let prefix = redis_prefix();
    let options = Options {
        redis_url: Some(redis.clone()),
        redis_key_prefix: Some(prefix.clone()),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await?;
    until_subscribed(&app.client, &app.url("/metrics")).await;
    Some((app, redis, prefix))
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

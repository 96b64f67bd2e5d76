//! `rediss://`: the Redis limiter and bus against a private TLS-only `redis-server`, with a
//! throw-away CA and server certificate made by `openssl`. Skips loudly (fails under
//! `TESSERA_TEST_REQUIRE=all`) without `openssl` or a `redis-server` built with TLS.
//!
//! The certificates are verified against the system's roots, which `rustls-native-certs`
//! reads from `SSL_CERT_FILE` when it is set. Setting it inside this process would need
//! `unsafe`, so the trusted half runs as an ignored test in a child process of this test
//! binary, with `SSL_CERT_FILE` naming the throw-away CA.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tessera_adapters::testing::skip_or_fail;
use tessera_adapters::{MemoryLimiter, RedisBus, RedisLimiter};
use tessera_app::ports::{BusHealth, LimiterHealth, RateLimiter, RevocationBus, Ticket};
use tessera_core::ratelimit::{Decision, LimitKey, Policy};
use time::Duration;
use time::macros::datetime;

use super::limiters::unique_prefix;

/// Names the TLS port for the child test.
const PORT_VAR: &str = "TESSERA_TEST_TLS_REDIS_PORT";
const BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// A directory with a CA and a server certificate for 127.0.0.1 signed by it.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn make() -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("tessera-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let certs = Self { dir };
        std::fs::write(
            certs.path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
            [
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-extfile",
                "server.ext",
            ],
        ];
        for (i, args) in steps.iter().enumerate() {
            let subject = if i == 0 {
                "/CN=tessera test CA"
            } else {
                "/CN=127.0.0.1"
            };
            let mut command = Command::new("openssl");
            command.args(args).current_dir(&certs.dir);
            if i < 2 {
                command.args(["-subj", subject]);
            }
            command.args(["-days", "1"]);
            match command.stdout(Stdio::null()).stderr(Stdio::null()).status() {
                Ok(status) => assert!(status.success(), "openssl {args:?} failed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    skip_or_fail("openssl binary", "apt-get install openssl");
                    return None;
                }
                Err(e) => panic!("cannot run openssl: {e}"),
            }
        }
        Some(certs)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A TLS-only `redis-server` (no plain-text port), killed when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    async fn start(certs: &Certificates) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = |name: &str| certs.path(name).display().to_string();
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip_or_fail("redis-server binary", "apt-get install redis-server");
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { child, port });
            }
            if let Ok(Some(_)) = child.try_wait() {
                // Built without TLS: it refuses the --tls-* options and exits.
                skip_or_fail(
                    "a redis-server built with TLS",
                    "install a redis-server with TLS support (Debian's has it)",
                );
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the private TLS redis-server on port {port} did not start");
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn current_test_binary() -> PathBuf {
    std::env::current_exe().expect("the test binary's path")
}

fn runs_child(binary: &Path, test: &str, ca: &Path, port: u16) -> bool {
    Command::new(binary)
        .args([test, "--exact", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", ca)
        .env(PORT_VAR, port.to_string())
        .status()
        .expect("run the child test")
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_and_the_bus_talk_tls_to_a_rediss_url_and_refuse_an_unknown_ca() {
    let Some(certs) = Certificates::make() else {
        return;
    };
    let Some(server) = TlsRedis::start(&certs).await else {
        return;
    };

    // Without the test CA among the trusted roots, the handshake must fail: the
    // certificate is verified, not merely encrypted to.
    let limiter = RedisLimiter::new(&server.url(), &unique_prefix(), MemoryLimiter::new())
        .expect("a rediss URL is accepted");
    assert!(!tokio::time::timeout(BOUND, limiter.ping()).await.unwrap());
    assert!(
        matches!(limiter.health(), LimiterHealth::Degraded(_)),
        "{:?}",
        limiter.health()
    );

    // Trusting it (in a child process: see the module note), the whole conversation works.
    assert!(
        runs_child(
            &current_test_binary(),
            "redis_tls::trusted_rediss_conversation",
            &certs.path("ca.pem"),
            server.port,
        ),
        "the trusted TLS conversation failed (its output is above)"
    );
}

/// Run by the test above with `SSL_CERT_FILE` naming the throw-away CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the_limiter_and_the_bus_talk_tls_to_a_rediss_url_and_refuse_an_unknown_ca"]
async fn trusted_rediss_conversation() {
    let Ok(port) = std::env::var(PORT_VAR) else {
        eprintln!("only meaningful when run by the outer test (it sets {PORT_VAR})");
        return;
    };
    let port: u16 = port.parse().unwrap();
    let url = format!("rediss://127.0.0.1:{port}");
    let prefix = unique_prefix();
    let limiter = RedisLimiter::new(&url, &prefix, MemoryLimiter::new()).unwrap();
    assert!(tokio::time::timeout(BOUND, limiter.ping()).await.unwrap());
    assert_eq!(limiter.health(), LimiterHealth::Ok);
    let key = LimitKey::login_ip("192.0.2.1".parse().unwrap(), "password");
    let policy = Policy {
        limit: 1,
        window: Duration::minutes(10),
    };
    let at = datetime!(2026-03-01 09:15:30 UTC);
    let first = Ticket(*uuid::Uuid::new_v4().as_bytes());
    assert_eq!(
        limiter.reserve(&key, policy, at, first).await,
        Decision::Allow
    );
    limiter.fail(&key, first).await;
    let second = Ticket(*uuid::Uuid::new_v4().as_bytes());
    assert!(matches!(
        limiter.reserve(&key, policy, at, second).await,
        Decision::Deny { .. }
    ));
    assert_eq!(
        limiter.fallback_decisions(),
        0,
        "decided in Redis, over TLS"
    );

    let bus = RedisBus::new(&url, &prefix).unwrap();
    struct Quiet;
    impl tessera_app::ports::RevocationSink for Quiet {
        fn revoked(&self, _: &[tessera_core::ids::SessionId]) {}
        fn users_changed(&self, _: &[tessera_core::ids::UserId]) {}
        fn lost(&self) {}
        fn connected(&self) {}
    }
    // The bus holds its sink weakly: keep it alive.
    let sink = std::sync::Arc::new(Quiet);
    bus.subscribe(sink.clone());
    let mut tries = 0;
    while bus.health() != BusHealth::Connected {
        tries += 1;
        assert!(tries <= 50, "not subscribed over TLS: {:?}", bus.health());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let session = tessera_core::ids::SessionId::from_uuid(uuid::Uuid::new_v4());
    bus.publish(&[session]).await;
    assert_eq!(bus.published(), 1, "published over TLS");
    let mut tries = 0;
    while bus.delivered() == 0 {
        tries += 1;
        assert!(tries <= 50, "the message did not come back over TLS");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(sink);
}

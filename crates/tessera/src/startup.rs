//! Builds the adapters the configuration names and the application over them (one
//! builder, which `serve` and `tessera admin` share), binds the listener, and serves
//! until a shutdown signal. Tests call `Application::build` with port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tessera_adapters::{
    MemoryLimiter, PgStore, PoolDeadlines, RedisBus, RedisLimiter, SqliteStore, SystemClock, notify,
};
use tessera_app::background::Background;
use tessera_app::ports::{Clock, RateLimiter, RevocationBus, Store};
use tessera_app::{App, OutboxWorker};
use tessera_core::crypto::MasterKeyRing;
use tessera_server::AppState;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::edge::HttpLimits;
use crate::master_key;

/// The database backend a URL selects.
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Backend {
    /// Connects; PostgreSQL is waited for at most `deadlines.connect` here and
    /// `deadlines.acquire` per query afterwards.
    pub async fn connect_with(url: &str, deadlines: PoolDeadlines) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(
                SqliteStore::connect(url)
                    .await
                    .context("opening the SQLite database")?,
            ))
        } else {
            Ok(Self::Postgres(
                PgStore::connect_with(url, deadlines)
                    .await
                    .context("connecting to PostgreSQL")?,
            ))
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(s) => s.migrate().await,
            Self::Postgres(s) => s.migrate().await,
        }
        .context("applying migrations")
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    outbox: Outbox,
    background: Background,
}

/// The outbox worker, built with the application, started and stopped with the server.
struct Outbox {
    run: Pin<Box<dyn Future<Output = ()> + Send>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// How long a stopping server waits for the worker to finish the batch in hand (each
/// delivery is bounded, and a pass stops trying once its lease would run out).
const OUTBOX_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(70);

/// How long a stopping server waits for work its requests left running (a reset link
/// being stored and queued): a few store calls, each bounded by the pool's acquire
/// deadline or SQLite's busy timeout.
const BACKGROUND_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Application {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock), true).await
    }

    pub async fn build_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
        migrate: bool,
    ) -> anyhow::Result<Self> {
        let backend = Backend::connect_with(&config.database_url, config.database).await?;
        if migrate {
            backend.migrate().await?;
        }
        log_cache_choice(&backend, config);
        let (router, outbox, background) = match backend {
            Backend::Sqlite(store) => {
                // Alone on its file, a server learns of other processes' writes (the
                // admin CLI) by watching the file; several servers need Redis. With the
                // cache off there is nothing to keep true, so nothing to watch.
                let watch = (config.session_cache_ttl_secs > 0)
                    .then(|| Arc::new(store.watch()) as Arc<dyn RevocationBus>);
                router(store, config, clock, watch).await?
            }
            Backend::Postgres(store) => router(store, config, clock, None).await?,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Self {
            listener,
            router,
            limits: config.http,
            outbox,
            background,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves with every client bounded (crate::edge) and the outbox worker delivering
    /// until `shutdown` resolves, then lets in-flight requests finish within the request
    /// timeout, the work they left running finish (its notices reach the worker still
    /// running), and the worker finish the batch in hand.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            limits,
            outbox,
            background,
        } = self;
        let worker = tokio::spawn(outbox.run);
        let served = crate::edge::serve(listener, router, limits, shutdown).await;
        if !background.finish(BACKGROUND_STOP_WAIT).await {
            tracing::warn!(
                running = background.running(),
                "work left running by requests (a password-reset link being stored) did \
                 not finish in time and is dropped"
            );
        }
        let _ = outbox.stop.send(());
        if tokio::time::timeout(OUTBOX_STOP_WAIT, worker)
            .await
            .is_err()
        {
            tracing::warn!(
                "the outbox worker did not stop in time; its claimed rows are sent again \
                 once their lease runs out"
            );
        }
        served
    }
}

/// `without_redis`: the bus when no Redis is configured (none: no cache).
async fn router<S: Store>(
    store: S,
    config: &Config,
    clock: Arc<dyn Clock>,
    without_redis: Option<Arc<dyn RevocationBus>>,
) -> anyhow::Result<(Router, Outbox, Background)> {
    let master = master_key::load_ring(&config.master_key, &config.master_key_previous)?;
    let channels =
        notify::channels(&config.notify, clock.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = build_app(store, config, clock, master, without_redis).await?;
    crate::retention::spawn(app.clone(), &config.retention);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = OutboxWorker::new(app.clone(), channels, config.outbox.settings());
    let outbox = Outbox {
        // A dropped sender (the application never run) stops it as well.
        run: Box::pin(worker.run(async move {
            let _ = stopped.await;
        })),
        stop,
    };
    let background = app.background().clone();
    let router = tessera_server::router(AppState::new(app, config.trusted_proxies.clone()));
    Ok((router, outbox, background))
}

/// The application as `serve` and `tessera admin` both run it: the configured limiter,
/// settings and revocation bus (Redis when configured, else `without_redis`).
pub(crate) async fn build_app<S: Store>(
    store: S,
    config: &Config,
    clock: Arc<dyn Clock>,
    master: MasterKeyRing,
    without_redis: Option<Arc<dyn RevocationBus>>,
) -> anyhow::Result<App<S>> {
    App::build(
        store,
        clock,
        limiter(config)?,
        revocation_bus(config)?.or(without_redis),
        master,
        config.settings(),
    )
    .await
    .context(
        "starting the application (is the master key, or one of TESSERA_MASTER_KEY_PREVIOUS, \
         the one the signing keys were sealed with?)",
    )
}

/// Redis pub/sub when Redis is configured: revocations reach every node (and every node's
/// liveness cache) at once. Without Redis there is no bus, and so no cache.
fn revocation_bus(config: &Config) -> anyhow::Result<Option<Arc<dyn RevocationBus>>> {
    match &config.redis_url {
        None => Ok(None),
        Some(url) => {
            let bus = RedisBus::new(url, &config.redis_key_prefix).context("TESSERA_REDIS_URL")?;
            Ok(Some(Arc::new(bus)))
        }
    }
}

/// Says at start whether `authenticate` reads the session from the database per request.
fn log_cache_choice(backend: &Backend, config: &Config) {
    let database = match backend {
        Backend::Sqlite(_) => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    match (&config.redis_url, config.session_cache_ttl_secs) {
        (Some(_), 0) => tracing::info!(
            database,
            "session cache off (TESSERA_SESSION_CACHE_TTL=0): every request reads its \
             session; revocations are still published to other nodes"
        ),
        (Some(_), ttl) => tracing::info!(
            database,
            ttl_secs = ttl,
            "session cache on: revocations travel over Redis pub/sub; the cache is \
             bypassed whenever the subscription is down"
        ),
        (None, 0) => tracing::info!(
            database,
            "session cache off (TESSERA_SESSION_CACHE_TTL=0): every request reads its session"
        ),
        (None, ttl) if matches!(backend, Backend::Sqlite(_)) => tracing::info!(
            database,
            ttl_secs = ttl,
            watch_ms = tessera_adapters::WATCH_PERIOD.as_millis(),
            "session cache on: this server is alone on its file; a change by another \
             process (`tessera admin`) drops the cache within the watch period"
        ),
        (None, _) => tracing::info!(
            database,
            "session cache off (no TESSERA_REDIS_URL): every request reads its session \
             from the database, so a revocation by any node or by `tessera admin` holds at once"
        ),
    }
}

/// Redis when configured (shared by every node), else the in-process limiter. Redis being
/// down at start is not fatal: the limiter starts degraded and recovers by itself.
fn limiter(config: &Config) -> anyhow::Result<Arc<dyn RateLimiter>> {
    match &config.redis_url {
        None => Ok(Arc::new(MemoryLimiter::new())),
        Some(url) => {
            let limiter = RedisLimiter::new(url, &config.redis_key_prefix, MemoryLimiter::new())
                .context("TESSERA_REDIS_URL")?;
            Ok(Arc::new(limiter))
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

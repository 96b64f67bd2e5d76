//! Configuration: defaults, then `tessera.toml` (or `--config PATH`), then `TESSERA_*`
//! environment variables, each overriding the one before. docs/configuration.md lists
//! every setting; keep the two in step (a test compares its defaults with these).
//!
//! The defaults are the use cases' (`Settings::default`, which reads
//! `tessera_core::defaults`), so each is written once. This file resolves the use cases'
//! settings and maps them back (`Config::settings`); by topic, the rest lives in
//! `file` (the TOML keys), `source` (reading and checking one setting), `http`, `keys`
//! (the master key), `step_up`, `retention`, `outbox` and `database`.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::bail;
use ipnet::IpNet;
use tessera_adapters::PoolDeadlines;
use tessera_adapters::notify::ChannelSettings;
use tessera_app::{HashingSettings, Limits, Settings};
use tessera_core::policy::StepUpPolicy;
use tessera_core::ratelimit::Policy;
use tessera_core::session::Lifetimes;
use time::Duration;

use crate::edge::HttpLimits;
use file::FileConfig;
use source::{Source, whole};

mod database;
mod file;
mod http;
mod keys;
mod outbox;
mod retention;
mod source;
mod step_up;

pub use keys::{MasterKeySource, PreviousMasterKeys};
pub use outbox::OutboxConfig;
pub use retention::RetentionConfig;

/// The embedded database: a SQLite file in the working directory.
const DEFAULT_DATABASE_URL: &str = "sqlite://tessera.db";
const DEFAULT_REDIS_KEY_PREFIX: &str = "tessera:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// How long PostgreSQL is waited for, at start and per query (`TESSERA_DATABASE_*`).
    pub database: PoolDeadlines,
    pub master_key: MasterKeySource,
    /// Accepted for opening, never for sealing (`TESSERA_MASTER_KEY_PREVIOUS`).
    pub master_key_previous: PreviousMasterKeys,
    pub trusted_proxies: Vec<IpNet>,
    pub issuer: String,
    pub audience: String,
    /// How long a client may hold a connection and how many it may hold (`TESSERA_HTTP_*`).
    pub http: HttpLimits,
    pub access_token_ttl_secs: i64,
    pub session_idle_timeout_secs: i64,
    pub session_absolute_lifetime_secs: i64,
    pub refresh_retry_window_secs: i64,
    pub log_format: LogFormat,
    /// Shared rate limiting and cross-node revocation; `None` = in process.
    pub redis_url: Option<String>,
    pub redis_key_prefix: String,
    /// How long a node may answer from its session-liveness cache (only with Redis); 0 = off.
    pub session_cache_ttl_secs: i64,
    pub login_ip_limit: u32,
    pub login_account_limit: u32,
    pub login_window_secs: i64,
    pub mfa_limit: u32,
    pub mfa_window_secs: i64,
    /// Failed logins per known-device token (in the login window).
    pub login_device_limit: u32,
    /// Registration attempts per client network, whatever their outcome.
    pub register_limit: u32,
    pub register_window_secs: i64,
    /// Password-reset requests per client network and per address asked for.
    pub reset_ip_limit: u32,
    pub reset_account_limit: u32,
    pub reset_window_secs: i64,
    /// Notices of one kind sent to one user per hour; beyond it events are recorded only.
    pub notice_limit: u32,
    /// The password-hashing pool: workers (default: one per core), how many requests may
    /// wait for one, and for how long before a 503.
    pub hash_workers: u32,
    pub hash_queue: u32,
    pub hash_wait_ms: i64,
    /// Which actions need which role and how recent an MFA.
    pub step_up: StepUpPolicy,
    /// What the purge deletes when, and how often `serve` runs it.
    pub retention: RetentionConfig,
    /// The notification channels (`TESSERA_SMTP_*`, `TESSERA_WEBHOOK_*`), already checked.
    pub notify: ChannelSettings,
    /// How often the outbox worker looks for due notifications, how soon it retries.
    pub outbox: OutboxConfig,
}

pub const DEFAULT_CONFIG_FILE: &str = "tessera.toml";

impl Config {
    /// Reads the file (if `path` is given it must exist; the default file is optional) and
    /// the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = match path {
            Some(p) => FileConfig::read(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                FileConfig::read(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        Self::resolve(file, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// The settings the embedded defaults give, for tests and examples.
    pub fn embedded_defaults() -> anyhow::Result<Self> {
        Self::resolve(FileConfig::default(), |_| None)
    }

    fn resolve(file: FileConfig, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let src = Source::new(&env);
        let defaults = Settings::default();
        let limits = defaults.limits;
        let listen = http::listen(&src, file.listen)?;
        let database_url = src
            .text("TESSERA_DATABASE_URL", file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("TESSERA_DATABASE_URL / database_url must start with sqlite:// or postgres://");
        }
        let master_key = MasterKeySource::resolve(&src, file.master_key, file.master_key_file);
        let master_key_previous = PreviousMasterKeys::resolve(&src, file.master_key_previous);
        let trusted_proxies = http::trusted_proxies(&src, file.trusted_proxies)?;
        // The default issuer follows the address actually configured.
        let issuer = src
            .text("TESSERA_ISSUER", file.issuer)
            .unwrap_or_else(|| format!("http://{listen}"));
        let audience = src
            .text("TESSERA_AUDIENCE", file.audience)
            .unwrap_or(defaults.audience);
        let log_format = match src.text("TESSERA_LOG_FORMAT", file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("TESSERA_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let redis_url = src.text("TESSERA_REDIS_URL", file.redis_url);
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            bail!("TESSERA_REDIS_URL / redis_url must start with redis:// or rediss://");
        }
        // Checked here so that a bad URL stops `serve` at start, not every delivery later.
        let notify = ChannelSettings::from_raw(
            src.text("TESSERA_SMTP_URL", file.smtp_url).as_deref(),
            src.text("TESSERA_SMTP_FROM", file.smtp_from).as_deref(),
            src.text("TESSERA_WEBHOOK_URL", file.webhook_url).as_deref(),
            src.text("TESSERA_WEBHOOK_SECRET", file.webhook_secret)
                .as_deref(),
            &issuer,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let secs = |name: &str, from_file: Option<i64>, default: Duration, min: i64| {
            src.secs(name, from_file, default.whole_seconds(), min)
        };
        let budget = |name: &str, from_file: Option<i64>, default: Policy| {
            src.count(name, from_file, default.limit.into())
        };
        let hashing = defaults.hashing;
        let config = Self {
            listen,
            database_url,
            database: database::resolve(
                &src,
                [file.database_connect_timeout, file.database_acquire_timeout],
            )?,
            master_key,
            master_key_previous,
            trusted_proxies,
            issuer,
            audience,
            http: http::limits(
                &src,
                [
                    file.http_header_timeout,
                    file.http_request_timeout,
                    file.http_body_timeout,
                    file.http_keepalive_timeout,
                    file.http_max_connections,
                ],
            )?,
            access_token_ttl_secs: secs(
                "TESSERA_ACCESS_TOKEN_TTL",
                file.access_token_ttl,
                defaults.access_token_ttl,
                30,
            )?,
            session_idle_timeout_secs: secs(
                "TESSERA_SESSION_IDLE_TIMEOUT",
                file.session_idle_timeout,
                defaults.lifetimes.idle,
                60,
            )?,
            session_absolute_lifetime_secs: secs(
                "TESSERA_SESSION_ABSOLUTE_LIFETIME",
                file.session_absolute_lifetime,
                defaults.lifetimes.absolute,
                60,
            )?,
            refresh_retry_window_secs: secs(
                "TESSERA_REFRESH_RETRY_WINDOW",
                file.refresh_retry_window,
                defaults.refresh_retry_window,
                0,
            )?,
            log_format,
            redis_url,
            redis_key_prefix: src
                .text("TESSERA_REDIS_KEY_PREFIX", file.redis_key_prefix)
                .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.into()),
            session_cache_ttl_secs: secs(
                "TESSERA_SESSION_CACHE_TTL",
                file.session_cache_ttl,
                defaults.session_cache_ttl,
                0,
            )?,
            login_ip_limit: budget(
                "TESSERA_LOGIN_IP_LIMIT",
                file.login_ip_limit,
                limits.login_per_ip,
            )?,
            login_account_limit: budget(
                "TESSERA_LOGIN_ACCOUNT_LIMIT",
                file.login_account_limit,
                limits.login_per_account,
            )?,
            // One window serves every login budget (see `Config::settings`).
            login_window_secs: secs(
                "TESSERA_LOGIN_WINDOW",
                file.login_window,
                limits.login_per_ip.window,
                1,
            )?,
            mfa_limit: budget("TESSERA_MFA_LIMIT", file.mfa_limit, limits.mfa_per_user)?,
            mfa_window_secs: secs(
                "TESSERA_MFA_WINDOW",
                file.mfa_window,
                limits.mfa_per_user.window,
                1,
            )?,
            login_device_limit: budget(
                "TESSERA_LOGIN_DEVICE_LIMIT",
                file.login_device_limit,
                limits.login_per_device,
            )?,
            register_limit: budget(
                "TESSERA_REGISTER_LIMIT",
                file.register_limit,
                limits.register_per_ip,
            )?,
            register_window_secs: secs(
                "TESSERA_REGISTER_WINDOW",
                file.register_window,
                limits.register_per_ip.window,
                1,
            )?,
            reset_ip_limit: budget(
                "TESSERA_RESET_IP_LIMIT",
                file.reset_ip_limit,
                limits.reset_per_ip,
            )?,
            reset_account_limit: budget(
                "TESSERA_RESET_ACCOUNT_LIMIT",
                file.reset_account_limit,
                limits.reset_per_account,
            )?,
            // One window serves both reset budgets (see `Config::settings`).
            reset_window_secs: secs(
                "TESSERA_RESET_WINDOW",
                file.reset_window,
                limits.reset_per_ip.window,
                1,
            )?,
            notice_limit: budget(
                "TESSERA_NOTICE_LIMIT",
                file.notice_limit,
                limits.notices_per_user_kind,
            )?,
            hash_workers: src.count(
                "TESSERA_HASH_WORKERS",
                file.hash_workers,
                whole(hashing.workers),
            )?,
            hash_queue: src.count("TESSERA_HASH_QUEUE", file.hash_queue, whole(hashing.queue))?,
            hash_wait_ms: src.secs(
                "TESSERA_HASH_WAIT_MS",
                file.hash_wait_ms,
                whole(hashing.wait.as_millis()),
                1,
            )?,
            step_up: step_up::resolve(file.step_up, &defaults.step_up)?,
            notify,
            outbox: OutboxConfig::resolve(&src, [file.outbox_poll_ms, file.outbox_retry_base_ms])?,
            retention: RetentionConfig::resolve(
                &src,
                [
                    file.retention_ended_sessions,
                    file.retention_events,
                    file.retention_batch,
                    file.retention_interval,
                ],
                &defaults.retention,
            )?,
        };
        config.check_bounds()?;
        Ok(config)
    }

    /// Upper bounds whose reason is not the setting's own range.
    fn check_bounds(&self) -> anyhow::Result<()> {
        if self.session_cache_ttl_secs > 3600 {
            bail!(
                "TESSERA_SESSION_CACHE_TTL is at most 3600 seconds: it bounds how long a lost \
                 revocation message can leave a session usable on another node"
            );
        }
        let max_wait = HashingSettings::MAX_WAIT.as_millis();
        if i128::from(self.hash_wait_ms) > i128::try_from(max_wait).unwrap_or(i128::MAX) {
            bail!(
                "TESSERA_HASH_WAIT_MS is at most {max_wait}: an attempt in flight must settle \
                 well before its rate-limit slot counts as a failure"
            );
        }
        if self.refresh_retry_window_secs > 300 {
            bail!(
                "TESSERA_REFRESH_RETRY_WINDOW is at most 300 seconds: a longer window keeps stolen tokens usable"
            );
        }
        Ok(())
    }

    /// The use cases' settings from the configuration.
    pub fn settings(&self) -> Settings {
        let secs = Duration::seconds;
        let login_window = secs(self.login_window_secs);
        let reset_window = secs(self.reset_window_secs);
        Settings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            access_token_ttl: secs(self.access_token_ttl_secs),
            lifetimes: Lifetimes {
                idle: secs(self.session_idle_timeout_secs),
                absolute: secs(self.session_absolute_lifetime_secs),
            },
            refresh_retry_window: secs(self.refresh_retry_window_secs),
            limits: Limits {
                login_per_ip: Policy {
                    limit: self.login_ip_limit,
                    window: login_window,
                },
                login_per_account: Policy {
                    limit: self.login_account_limit,
                    window: login_window,
                },
                login_per_device: Policy {
                    limit: self.login_device_limit,
                    window: login_window,
                },
                password_per_session: Policy {
                    window: login_window,
                    ..Policy::PASSWORD_PER_SESSION
                },
                mfa_per_user: Policy {
                    limit: self.mfa_limit,
                    window: secs(self.mfa_window_secs),
                },
                register_per_ip: Policy {
                    limit: self.register_limit,
                    window: secs(self.register_window_secs),
                },
                reset_per_ip: Policy {
                    limit: self.reset_ip_limit,
                    window: reset_window,
                },
                reset_per_account: Policy {
                    limit: self.reset_account_limit,
                    window: reset_window,
                },
                notices_per_user_kind: Policy {
                    limit: self.notice_limit,
                    ..Policy::NOTICES_PER_USER_KIND
                },
            },
            step_up: self.step_up.clone(),
            session_cache_ttl: secs(self.session_cache_ttl_secs),
            hashing: HashingSettings {
                workers: usize::try_from(self.hash_workers).unwrap_or(1),
                queue: usize::try_from(self.hash_queue).unwrap_or(1),
                wait: std::time::Duration::from_millis(
                    u64::try_from(self.hash_wait_ms).unwrap_or(1),
                ),
            },
            retention: self.retention.settings(),
            notification_channels: self.notify.names(),
        }
    }
}

#[cfg(test)]
mod docs_match;
#[cfg(test)]
mod tests;

//! Configuration: defaults, then `tessera.toml` (or `--config PATH`), then `TESSERA_*`
//! environment variables, each overriding the one before. docs/configuration.md lists
//! every setting; keep the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ipnet::IpNet;
use serde::Deserialize;
use tessera_adapters::PoolDeadlines;
use tessera_adapters::notify::ChannelSettings;
use tessera_app::{HashingSettings, Settings};
use tessera_core::ids::Role;
use tessera_core::policy::{ActionPolicy, StepUpPolicy};

use crate::edge::HttpLimits;

/// The settings file, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    database_connect_timeout: Option<i64>,
    database_acquire_timeout: Option<i64>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    master_key_previous: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    issuer: Option<String>,
    audience: Option<String>,
    http_header_timeout: Option<i64>,
    http_request_timeout: Option<i64>,
    http_body_timeout: Option<i64>,
    http_keepalive_timeout: Option<i64>,
    http_max_connections: Option<i64>,
    access_token_ttl: Option<i64>,
    session_idle_timeout: Option<i64>,
    session_absolute_lifetime: Option<i64>,
    refresh_retry_window: Option<i64>,
    log_format: Option<String>,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
    session_cache_ttl: Option<i64>,
    login_ip_limit: Option<i64>,
    login_account_limit: Option<i64>,
    login_window: Option<i64>,
    mfa_limit: Option<i64>,
    mfa_window: Option<i64>,
    login_device_limit: Option<i64>,
    register_limit: Option<i64>,
    register_window: Option<i64>,
    reset_ip_limit: Option<i64>,
    reset_account_limit: Option<i64>,
    reset_window: Option<i64>,
    notice_limit: Option<i64>,
    hash_workers: Option<i64>,
    hash_queue: Option<i64>,
    hash_wait_ms: Option<i64>,
    /// Replaces the default step-up policy when given (file only: a list of tables).
    step_up: Option<Vec<StepUpRule>>,
    retention_ended_sessions: Option<i64>,
    retention_events: Option<i64>,
    retention_batch: Option<i64>,
    retention_interval: Option<i64>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    outbox_poll_ms: Option<i64>,
    outbox_retry_base_ms: Option<i64>,
}

/// One `[[step_up]]` rule of the settings file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpRule {
    action: String,
    role: String,
    max_age: i64,
    #[serde(default = "yes")]
    require_enrollment: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// Base64 of 32 bytes, given directly (`TESSERA_MASTER_KEY`).
    Inline(String),
    /// A file holding the base64 key; created (mode 0600) when missing.
    File(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline([redacted])"),
            Self::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// Earlier master keys (base64 of 32 bytes each), kept only to open values sealed before
/// a rotation. `Debug` shows how many there are, never the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PreviousMasterKeys(Vec<String>);

impl PreviousMasterKeys {
    pub fn new(keys: Vec<String>) -> Self {
        Self(keys)
    }

    /// The keys as configured (base64).
    pub fn encoded(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for PreviousMasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviousMasterKeys([redacted; {}])", self.0.len())
    }
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
            Some(p) => read_file(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        Self::resolve(file, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    fn resolve(file: FileConfig, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        // The use cases' own defaults are the configuration's: one set, kept in one place.
        let defaults = Settings::default();
        let limits = defaults.limits;
        let listen_raw = env("TESSERA_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw.parse().with_context(|| {
            format!("TESSERA_LISTEN / listen: {listen_raw:?} is not an address:port")
        })?;
        let database_url = env("TESSERA_DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| "sqlite://tessera.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("TESSERA_DATABASE_URL / database_url must start with sqlite:// or postgres://");
        }
        let master_key = match (
            env("TESSERA_MASTER_KEY").or(file.master_key),
            env("TESSERA_MASTER_KEY_FILE"),
        ) {
            (Some(inline), _) => MasterKeySource::Inline(inline),
            (None, Some(path)) => MasterKeySource::File(path.into()),
            (None, None) => MasterKeySource::File(
                file.master_key_file
                    .unwrap_or_else(|| PathBuf::from("tessera-master.key")),
            ),
        };
        let master_key_previous = PreviousMasterKeys::new(
            match env("TESSERA_MASTER_KEY_PREVIOUS") {
                Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
                None => file.master_key_previous.unwrap_or_default(),
            }
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect(),
        );
        let trusted_proxies = match env("TESSERA_TRUSTED_PROXIES") {
            Some(list) => list
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.trusted_proxies.unwrap_or_default(),
        }
        .iter()
        .map(|s| parse_net(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
        let issuer = env("TESSERA_ISSUER")
            .or(file.issuer)
            .unwrap_or_else(|| format!("http://{listen}"));
        let audience = env("TESSERA_AUDIENCE")
            .or(file.audience)
            .unwrap_or_else(|| "tessera".into());
        let secs =
            |name: &str, from_file: Option<i64>, default: i64, min: i64| -> anyhow::Result<i64> {
                let v = match env(name) {
                    Some(raw) => raw.parse::<i64>().with_context(|| {
                        format!("{name}: {raw:?} is not a whole number of seconds")
                    })?,
                    None => from_file.unwrap_or(default),
                };
                if v < min {
                    bail!("{name} must be at least {min} seconds");
                }
                Ok(v)
            };
        let log_format = match env("TESSERA_LOG_FORMAT").or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("TESSERA_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let step_up = match file.step_up {
            None => defaults.step_up.clone(),
            Some(rules) => {
                let rules = rules
                    .into_iter()
                    .map(|r| {
                        let role = Role::parse(&r.role)
                            .map_err(|e| anyhow::anyhow!("step_up role {:?}: {e}", r.role))?;
                        if r.max_age < 1 {
                            bail!(
                                "step_up max_age for {:?} must be at least 1 second",
                                r.action
                            );
                        }
                        let policy = ActionPolicy {
                            role,
                            max_age: time::Duration::seconds(r.max_age),
                            require_enrollment: r.require_enrollment,
                        };
                        Ok((r.action, policy))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                StepUpPolicy::new(rules).map_err(|e| anyhow::anyhow!("step_up: {e}"))?
            }
        };
        let redis_url = env("TESSERA_REDIS_URL").or(file.redis_url);
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            bail!("TESSERA_REDIS_URL / redis_url must start with redis:// or rediss://");
        }
        let hashing = defaults.hashing;
        let count = |name: &str, from_file: Option<i64>, default: i64| -> anyhow::Result<u32> {
            let v = secs(name, from_file, default, 1)?;
            u32::try_from(v).with_context(|| format!("{name} is too large"))
        };
        // Checked here so that a bad URL stops `serve` at start, not every delivery later.
        let notify = ChannelSettings::from_raw(
            env("TESSERA_SMTP_URL").or(file.smtp_url).as_deref(),
            env("TESSERA_SMTP_FROM").or(file.smtp_from).as_deref(),
            env("TESSERA_WEBHOOK_URL").or(file.webhook_url).as_deref(),
            env("TESSERA_WEBHOOK_SECRET")
                .or(file.webhook_secret)
                .as_deref(),
            &issuer,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let config = Self {
            listen,
            database_url,
            database: database::resolve(
                [file.database_connect_timeout, file.database_acquire_timeout],
                &env,
            )?,
            master_key,
            master_key_previous,
            trusted_proxies,
            issuer,
            audience,
            http: HttpLimits::checked(
                secs(
                    "TESSERA_HTTP_HEADER_TIMEOUT",
                    file.http_header_timeout,
                    10,
                    1,
                )?,
                secs(
                    "TESSERA_HTTP_REQUEST_TIMEOUT",
                    file.http_request_timeout,
                    30,
                    1,
                )?,
                secs("TESSERA_HTTP_BODY_TIMEOUT", file.http_body_timeout, 15, 1)?,
                secs(
                    "TESSERA_HTTP_KEEPALIVE_TIMEOUT",
                    file.http_keepalive_timeout,
                    5,
                    0,
                )?,
                count(
                    "TESSERA_HTTP_MAX_CONNECTIONS",
                    file.http_max_connections,
                    512,
                )?,
            )?,
            access_token_ttl_secs: secs(
                "TESSERA_ACCESS_TOKEN_TTL",
                file.access_token_ttl,
                defaults.access_token_ttl.whole_seconds(),
                30,
            )?,
            session_idle_timeout_secs: secs(
                "TESSERA_SESSION_IDLE_TIMEOUT",
                file.session_idle_timeout,
                defaults.lifetimes.idle.whole_seconds(),
                60,
            )?,
            session_absolute_lifetime_secs: secs(
                "TESSERA_SESSION_ABSOLUTE_LIFETIME",
                file.session_absolute_lifetime,
                defaults.lifetimes.absolute.whole_seconds(),
                60,
            )?,
            refresh_retry_window_secs: secs(
                "TESSERA_REFRESH_RETRY_WINDOW",
                file.refresh_retry_window,
                defaults.refresh_retry_window.whole_seconds(),
                0,
            )?,
            log_format,
            redis_url,
            redis_key_prefix: env("TESSERA_REDIS_KEY_PREFIX")
                .or(file.redis_key_prefix)
                .unwrap_or_else(|| "tessera:".into()),
            session_cache_ttl_secs: secs(
                "TESSERA_SESSION_CACHE_TTL",
                file.session_cache_ttl,
                defaults.session_cache_ttl.whole_seconds(),
                0,
            )?,
            login_ip_limit: count(
                "TESSERA_LOGIN_IP_LIMIT",
                file.login_ip_limit,
                limits.login_per_ip.limit.into(),
            )?,
            login_account_limit: count(
                "TESSERA_LOGIN_ACCOUNT_LIMIT",
                file.login_account_limit,
                limits.login_per_account.limit.into(),
            )?,
            // One window serves every login budget (see `startup::settings`).
            login_window_secs: secs(
                "TESSERA_LOGIN_WINDOW",
                file.login_window,
                limits.login_per_ip.window.whole_seconds(),
                1,
            )?,
            mfa_limit: count(
                "TESSERA_MFA_LIMIT",
                file.mfa_limit,
                limits.mfa_per_user.limit.into(),
            )?,
            mfa_window_secs: secs(
                "TESSERA_MFA_WINDOW",
                file.mfa_window,
                limits.mfa_per_user.window.whole_seconds(),
                1,
            )?,
            login_device_limit: count(
                "TESSERA_LOGIN_DEVICE_LIMIT",
                file.login_device_limit,
                limits.login_per_device.limit.into(),
            )?,
            register_limit: count(
                "TESSERA_REGISTER_LIMIT",
                file.register_limit,
                limits.register_per_ip.limit.into(),
            )?,
            register_window_secs: secs(
                "TESSERA_REGISTER_WINDOW",
                file.register_window,
                limits.register_per_ip.window.whole_seconds(),
                1,
            )?,
            reset_ip_limit: count(
                "TESSERA_RESET_IP_LIMIT",
                file.reset_ip_limit,
                limits.reset_per_ip.limit.into(),
            )?,
            reset_account_limit: count(
                "TESSERA_RESET_ACCOUNT_LIMIT",
                file.reset_account_limit,
                limits.reset_per_account.limit.into(),
            )?,
            // One window serves both reset budgets (see `startup::settings`).
            reset_window_secs: secs(
                "TESSERA_RESET_WINDOW",
                file.reset_window,
                limits.reset_per_ip.window.whole_seconds(),
                1,
            )?,
            notice_limit: count(
                "TESSERA_NOTICE_LIMIT",
                file.notice_limit,
                limits.notices_per_user_kind.limit.into(),
            )?,
            hash_workers: count(
                "TESSERA_HASH_WORKERS",
                file.hash_workers,
                i64::try_from(hashing.workers).unwrap_or(2),
            )?,
            hash_queue: count(
                "TESSERA_HASH_QUEUE",
                file.hash_queue,
                i64::try_from(hashing.queue).unwrap_or(256),
            )?,
            hash_wait_ms: secs(
                "TESSERA_HASH_WAIT_MS",
                file.hash_wait_ms,
                i64::try_from(hashing.wait.as_millis()).unwrap_or(5_000),
                1,
            )?,
            step_up,
            notify,
            outbox: OutboxConfig::resolve([file.outbox_poll_ms, file.outbox_retry_base_ms], &env)?,
            retention: RetentionConfig::resolve(
                [
                    file.retention_ended_sessions,
                    file.retention_events,
                    file.retention_batch,
                    file.retention_interval,
                ],
                &env,
            )?,
        };
        if config.session_cache_ttl_secs > 3600 {
            bail!(
                "TESSERA_SESSION_CACHE_TTL is at most 3600 seconds: it bounds how long a lost \
                 revocation message can leave a session usable on another node"
            );
        }
        let max_wait = HashingSettings::MAX_WAIT.as_millis();
        if i128::from(config.hash_wait_ms) > i128::try_from(max_wait).unwrap_or(i128::MAX) {
            bail!(
                "TESSERA_HASH_WAIT_MS is at most {max_wait}: an attempt in flight must settle \
                 well before its rate-limit slot counts as a failure"
            );
        }
        if config.refresh_retry_window_secs > 300 {
            bail!(
                "TESSERA_REFRESH_RETRY_WINDOW is at most 300 seconds: a longer window keeps stolen tokens usable"
            );
        }
        Ok(config)
    }

    /// The settings the embedded defaults give, for tests and examples.
    pub fn embedded_defaults() -> anyhow::Result<Self> {
        Self::resolve(FileConfig::default(), |_| None)
    }
}

/// Retention: how long ended sessions and security events are kept, how many rows of
/// each table one purge run may delete, and how often `serve` runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    pub ended_sessions_secs: i64,
    pub events_secs: i64,
    pub batch: u32,
    /// Seconds between background runs; 0: no background purge (`tessera admin purge`
    /// from cron instead).
    pub interval_secs: u64,
}

impl RetentionConfig {
    /// `from_file`: the file's `retention_ended_sessions`, `retention_events`,
    /// `retention_batch` and `retention_interval`, in that order.
    fn resolve(
        from_file: [Option<i64>; 4],
        env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let [file_ended_sessions, file_events, file_batch, file_interval] = from_file;
        let value = |name: &str, from_file: Option<i64>, default: i64, min: i64, max: i64| {
            let v = match env(name) {
                Some(raw) => raw
                    .parse::<i64>()
                    .with_context(|| format!("{name}: {raw:?} is not a whole number"))?,
                None => from_file.unwrap_or(default),
            };
            if !(min..=max).contains(&v) {
                bail!("{name} must be between {min} and {max}");
            }
            Ok(v)
        };
        const DAY: i64 = 86_400;
        // A day at least: reuse of a token of a just-ended session should still read as
        // "revoked" for a while, and a typo should not wipe the audit trail.
        let ended_sessions_secs = value(
            "TESSERA_RETENTION_ENDED_SESSIONS",
            file_ended_sessions,
            30 * DAY,
            DAY,
            100 * 365 * DAY,
        )?;
        let events_secs = value(
            "TESSERA_RETENTION_EVENTS",
            file_events,
            400 * DAY,
            DAY,
            100 * 365 * DAY,
        )?;
        let batch = value("TESSERA_RETENTION_BATCH", file_batch, 1000, 1, 100_000)?;
        let interval = value("TESSERA_RETENTION_INTERVAL", file_interval, 600, 0, 7 * DAY)?;
        Ok(Self {
            ended_sessions_secs,
            events_secs,
            batch: u32::try_from(batch).context("TESSERA_RETENTION_BATCH")?,
            interval_secs: u64::try_from(interval).context("TESSERA_RETENTION_INTERVAL")?,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .with_context(|| format!("TESSERA_TRUSTED_PROXIES: {s:?} is not a CIDR or an address"))
}

mod database;
mod outbox;
pub use outbox::OutboxConfig;

#[cfg(test)]
mod tests;

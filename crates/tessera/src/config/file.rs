//! The settings file (`tessera.toml` or `--config PATH`): every key optional, an unknown
//! one refused.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::step_up::StepUpRule;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) database_connect_timeout: Option<i64>,
    pub(super) database_acquire_timeout: Option<i64>,
    pub(super) master_key: Option<String>,
    pub(super) master_key_file: Option<PathBuf>,
    pub(super) master_key_previous: Option<Vec<String>>,
    pub(super) trusted_proxies: Option<Vec<String>>,
    pub(super) issuer: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) http_header_timeout: Option<i64>,
    pub(super) http_request_timeout: Option<i64>,
    pub(super) http_body_timeout: Option<i64>,
    pub(super) http_keepalive_timeout: Option<i64>,
    pub(super) http_max_connections: Option<i64>,
    pub(super) access_token_ttl: Option<i64>,
    pub(super) session_idle_timeout: Option<i64>,
    pub(super) session_absolute_lifetime: Option<i64>,
    pub(super) refresh_retry_window: Option<i64>,
    pub(super) log_format: Option<String>,
    pub(super) redis_url: Option<String>,
    pub(super) redis_key_prefix: Option<String>,
    pub(super) session_cache_ttl: Option<i64>,
    pub(super) login_ip_limit: Option<i64>,
    pub(super) login_account_limit: Option<i64>,
    pub(super) login_window: Option<i64>,
    pub(super) mfa_limit: Option<i64>,
    pub(super) mfa_window: Option<i64>,
    pub(super) login_device_limit: Option<i64>,
    pub(super) register_limit: Option<i64>,
    pub(super) register_window: Option<i64>,
    pub(super) reset_ip_limit: Option<i64>,
    pub(super) reset_account_limit: Option<i64>,
    pub(super) reset_window: Option<i64>,
    pub(super) notice_limit: Option<i64>,
    pub(super) hash_workers: Option<i64>,
    pub(super) hash_queue: Option<i64>,
    pub(super) hash_wait_ms: Option<i64>,
    /// Replaces the default step-up policy when given (file only: a list of tables).
    pub(super) step_up: Option<Vec<StepUpRule>>,
    pub(super) retention_ended_sessions: Option<i64>,
    pub(super) retention_events: Option<i64>,
    pub(super) retention_batch: Option<i64>,
    pub(super) retention_interval: Option<i64>,
    pub(super) smtp_url: Option<String>,
    pub(super) smtp_from: Option<String>,
    pub(super) webhook_url: Option<String>,
    pub(super) webhook_secret: Option<String>,
    pub(super) outbox_poll_ms: Option<i64>,
    pub(super) outbox_retry_base_ms: Option<i64>,
}

impl FileConfig {
    pub(super) fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

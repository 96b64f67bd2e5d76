//! docs/configuration.md's table of defaults against the code's: a default changed in one
//! place and not the other fails here.

use std::collections::BTreeMap;

use super::*;

const DOC: &str = include_str!("../../../../docs/configuration.md");

/// `TESSERA_*` name to the default column's first `code` span; `None` for a word
/// ("unset", "none", "one per core").
fn documented() -> BTreeMap<&'static str, Option<&'static str>> {
    DOC.lines()
        .filter(|l| l.starts_with("| `TESSERA_"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            let default = cells[3]
                .strip_prefix('`')
                .and_then(|rest| rest.split('`').next());
            (name, default)
        })
        .collect()
}

#[test]
fn the_documented_defaults_are_the_codes() {
    let c = Config::embedded_defaults().unwrap();
    let secs = |d: std::time::Duration| Some(d.as_secs().to_string());
    let n = |v: i64| Some(v.to_string());
    let u = |v: u32| Some(v.to_string());
    let key_file = match &c.master_key {
        MasterKeySource::File(p) => Some(p.display().to_string()),
        MasterKeySource::Inline(_) => None,
    };
    let expected: BTreeMap<&str, Option<String>> = [
        ("TESSERA_LISTEN", Some(c.listen.to_string())),
        ("TESSERA_DATABASE_URL", Some(c.database_url.clone())),
        ("TESSERA_DATABASE_CONNECT_TIMEOUT", secs(c.database.connect)),
        ("TESSERA_DATABASE_ACQUIRE_TIMEOUT", secs(c.database.acquire)),
        ("TESSERA_MASTER_KEY", None),
        ("TESSERA_MASTER_KEY_PREVIOUS", None),
        ("TESSERA_MASTER_KEY_FILE", key_file),
        ("TESSERA_TRUSTED_PROXIES", None),
        (
            "TESSERA_ISSUER",
            Some(c.issuer.replace(&c.listen.to_string(), "<listen>")),
        ),
        ("TESSERA_AUDIENCE", Some(c.audience.clone())),
        ("TESSERA_HTTP_HEADER_TIMEOUT", secs(c.http.header_timeout)),
        ("TESSERA_HTTP_REQUEST_TIMEOUT", secs(c.http.request_timeout)),
        ("TESSERA_HTTP_BODY_TIMEOUT", secs(c.http.body_timeout)),
        (
            "TESSERA_HTTP_KEEPALIVE_TIMEOUT",
            secs(c.http.keepalive_timeout),
        ),
        ("TESSERA_HTTP_MAX_CONNECTIONS", u(c.http.max_connections)),
        ("TESSERA_ACCESS_TOKEN_TTL", n(c.access_token_ttl_secs)),
        (
            "TESSERA_SESSION_IDLE_TIMEOUT",
            n(c.session_idle_timeout_secs),
        ),
        (
            "TESSERA_SESSION_ABSOLUTE_LIFETIME",
            n(c.session_absolute_lifetime_secs),
        ),
        (
            "TESSERA_REFRESH_RETRY_WINDOW",
            n(c.refresh_retry_window_secs),
        ),
        ("TESSERA_REDIS_URL", None),
        ("TESSERA_REDIS_KEY_PREFIX", Some(c.redis_key_prefix.clone())),
        ("TESSERA_SESSION_CACHE_TTL", n(c.session_cache_ttl_secs)),
        ("TESSERA_LOGIN_IP_LIMIT", u(c.login_ip_limit)),
        ("TESSERA_LOGIN_ACCOUNT_LIMIT", u(c.login_account_limit)),
        ("TESSERA_LOGIN_WINDOW", n(c.login_window_secs)),
        ("TESSERA_MFA_LIMIT", u(c.mfa_limit)),
        ("TESSERA_MFA_WINDOW", n(c.mfa_window_secs)),
        ("TESSERA_LOGIN_DEVICE_LIMIT", u(c.login_device_limit)),
        ("TESSERA_REGISTER_LIMIT", u(c.register_limit)),
        ("TESSERA_REGISTER_WINDOW", n(c.register_window_secs)),
        ("TESSERA_RESET_IP_LIMIT", u(c.reset_ip_limit)),
        ("TESSERA_RESET_ACCOUNT_LIMIT", u(c.reset_account_limit)),
        ("TESSERA_RESET_WINDOW", n(c.reset_window_secs)),
        ("TESSERA_NOTICE_LIMIT", u(c.notice_limit)),
        // "one per core": the machine's, not a number.
        ("TESSERA_HASH_WORKERS", None),
        // "`128` × workers".
        ("TESSERA_HASH_QUEUE", u(c.hash_queue / c.hash_workers)),
        ("TESSERA_HASH_WAIT_MS", n(c.hash_wait_ms)),
        (
            "TESSERA_RETENTION_ENDED_SESSIONS",
            n(c.retention.ended_sessions_secs),
        ),
        ("TESSERA_RETENTION_EVENTS", n(c.retention.events_secs)),
        ("TESSERA_RETENTION_BATCH", u(c.retention.batch)),
        (
            "TESSERA_RETENTION_INTERVAL",
            Some(c.retention.interval_secs.to_string()),
        ),
        ("TESSERA_SMTP_URL", None),
        ("TESSERA_SMTP_FROM", None),
        ("TESSERA_WEBHOOK_URL", None),
        ("TESSERA_WEBHOOK_SECRET", None),
        ("TESSERA_OUTBOX_POLL_MS", Some(c.outbox.poll_ms.to_string())),
        (
            "TESSERA_OUTBOX_RETRY_BASE_MS",
            Some(c.outbox.retry_base_ms.to_string()),
        ),
        ("TESSERA_LOG_FORMAT", Some("text".to_owned())),
    ]
    .into_iter()
    .collect();
    assert_eq!(c.log_format, LogFormat::Text);
    let documented = documented();
    let named = |m: Vec<&str>| m.join(", ");
    assert_eq!(
        named(documented.keys().copied().collect()),
        named(expected.keys().copied().collect()),
        "the documented settings are the ones checked here"
    );
    for (name, value) in &expected {
        assert_eq!(documented[name], value.as_deref(), "{name}");
    }
}

#[test]
fn the_documented_step_up_defaults_are_the_codes() {
    let max_age = tessera_core::defaults::STEP_UP_MAX_AGE.whole_seconds();
    assert!(
        DOC.contains(&format!("each with `max_age = {max_age}`")),
        "docs/configuration.md, \"Step-up policy\""
    );
    let c = Config::embedded_defaults().unwrap();
    for action in ["vendor.payout", "admin.x"] {
        let rule = c.step_up.lookup(action).unwrap();
        assert_eq!(rule.max_age.whole_seconds(), max_age, "{action}");
        assert!(rule.require_enrollment, "{action}");
    }
}

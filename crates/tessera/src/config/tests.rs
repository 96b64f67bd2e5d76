//! The configuration's defaults, sources and checks.
use super::*;
use std::collections::HashMap;

fn resolve(file: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Config::resolve(toml::from_str(file)?, |k| env.get(k).cloned())
}

#[test]
fn with_nothing_configured_the_embedded_defaults_apply() {
    let c = resolve("", &[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite://tessera.db");
    assert_eq!(
        c.master_key,
        MasterKeySource::File("tessera-master.key".into())
    );
    assert!(c.trusted_proxies.is_empty());
    assert_eq!(c.access_token_ttl_secs, 900);
    assert_eq!(c.session_idle_timeout_secs, 7 * 86_400);
    assert_eq!(c.session_absolute_lifetime_secs, 30 * 86_400);
    assert_eq!(c.refresh_retry_window_secs, 0);
    assert_eq!(c.issuer, "http://127.0.0.1:8080");
    assert_eq!(c.redis_url, None);
    assert_eq!(
        (c.login_ip_limit, c.login_account_limit, c.login_window_secs),
        (5, 10, 600)
    );
    assert_eq!((c.mfa_limit, c.mfa_window_secs), (5, 600));
    assert_eq!(c.redis_key_prefix, "tessera:");
}

#[test]
fn limits_and_redis_are_configurable_and_checked() {
    let c = resolve(
        "login_ip_limit = 3",
        &[
            ("TESSERA_REDIS_URL", "redis://127.0.0.1:6379"),
            ("TESSERA_LOGIN_WINDOW", "60"),
        ],
    )
    .unwrap();
    assert_eq!(c.login_ip_limit, 3);
    assert_eq!(c.login_window_secs, 60);
    assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
    assert!(resolve("", &[("TESSERA_REDIS_URL", "http://x")]).is_err());
    assert!(resolve("", &[("TESSERA_LOGIN_IP_LIMIT", "0")]).is_err());
    let c = resolve(
        "reset_account_limit = 1",
        &[
            ("TESSERA_RESET_IP_LIMIT", "4"),
            ("TESSERA_RESET_WINDOW", "120"),
        ],
    )
    .unwrap();
    assert_eq!(
        (c.reset_ip_limit, c.reset_account_limit, c.reset_window_secs),
        (4, 1, 120)
    );
    assert!(resolve("", &[("TESSERA_RESET_ACCOUNT_LIMIT", "0")]).is_err());
    assert_eq!(resolve("", &[]).unwrap().notice_limit, 10);
    assert_eq!(resolve("notice_limit = 2", &[]).unwrap().notice_limit, 2);
    let c = resolve("notice_limit = 2", &[("TESSERA_NOTICE_LIMIT", "30")]).unwrap();
    assert_eq!(c.notice_limit, 30);
    assert!(resolve("", &[("TESSERA_NOTICE_LIMIT", "0")]).is_err());
}

#[test]
fn a_rediss_url_for_tls_is_accepted() {
    let url = "rediss://:secret@redis.example.com:6380/0";
    let c = resolve("", &[("TESSERA_REDIS_URL", url)]).unwrap();
    assert_eq!(c.redis_url.as_deref(), Some(url));
}

#[test]
fn http_edge_limits_have_defaults_come_from_file_or_environment_and_are_checked() {
    let secs = std::time::Duration::from_secs;
    let c = resolve("", &[]).unwrap().http;
    assert_eq!(
        (
            c.header_timeout,
            c.request_timeout,
            c.body_timeout,
            c.keepalive_timeout
        ),
        (secs(10), secs(30), secs(15), secs(5))
    );
    assert_eq!(c.max_connections, 512);
    let c = resolve(
        "http_header_timeout = 20\nhttp_max_connections = 64",
        &[
            ("TESSERA_HTTP_KEEPALIVE_TIMEOUT", "0"),
            ("TESSERA_HTTP_BODY_TIMEOUT", "3"),
        ],
    )
    .unwrap()
    .http;
    assert_eq!((c.header_timeout, c.max_connections), (secs(20), 64));
    assert_eq!((c.keepalive_timeout, c.body_timeout), (secs(0), secs(3)));
    let e = resolve("", &[("TESSERA_HTTP_KEEPALIVE_TIMEOUT", "11")]).unwrap_err();
    assert!(
        format!("{e:#}").contains("TESSERA_HTTP_HEADER_TIMEOUT"),
        "{e:#}"
    );
    assert!(resolve("", &[("TESSERA_HTTP_HEADER_TIMEOUT", "0")]).is_err());
    assert!(resolve("", &[("TESSERA_HTTP_MAX_CONNECTIONS", "0")]).is_err());
}

#[test]
fn the_session_cache_ttl_defaults_to_a_minute_may_be_zero_and_is_bounded() {
    assert_eq!(resolve("", &[]).unwrap().session_cache_ttl_secs, 60);
    let c = resolve("session_cache_ttl = 5", &[]).unwrap();
    assert_eq!(c.session_cache_ttl_secs, 5);
    let c = resolve("", &[("TESSERA_SESSION_CACHE_TTL", "0")]).unwrap();
    assert_eq!(c.session_cache_ttl_secs, 0);
    assert!(resolve("", &[("TESSERA_SESSION_CACHE_TTL", "3601")]).is_err());
    assert!(resolve("", &[("TESSERA_SESSION_CACHE_TTL", "-1")]).is_err());
}

#[test]
fn environment_overrides_the_file() {
    let c = resolve(
        "listen = \"0.0.0.0:9000\"\nrefresh_retry_window = 5\ntrusted_proxies = [\"10.0.0.0/8\"]",
        &[
            ("TESSERA_LISTEN", "127.0.0.1:9001"),
            ("TESSERA_TRUSTED_PROXIES", "192.0.2.1, 2001:db8::/32"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
    assert_eq!(c.refresh_retry_window_secs, 5);
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(c.trusted_proxies[0].to_string(), "192.0.2.1/32");
}

#[test]
fn the_step_up_policy_comes_from_the_file_or_the_defaults() {
    let c = resolve("", &[]).unwrap();
    assert!(c.step_up.lookup("vendor.payout").is_some());
    assert!(c.step_up.lookup("admin.anything").is_some());
    let c = resolve(
        "[[step_up]]\naction = \"refund.issue\"\nrole = \"support\"\nmax_age = 60\n",
        &[],
    )
    .unwrap();
    let rule = c.step_up.lookup("refund.issue").unwrap();
    assert_eq!(rule.max_age, time::Duration::seconds(60));
    assert!(rule.require_enrollment);
    assert!(c.step_up.lookup("vendor.payout").is_none());
    assert!(
        resolve(
            "[[step_up]]\naction = \"x\"\nrole = \"BAD ROLE\"\nmax_age = 60\n",
            &[]
        )
        .is_err()
    );
}

#[test]
fn bad_values_are_refused_with_the_setting_named() {
    let e = resolve("", &[("TESSERA_REFRESH_RETRY_WINDOW", "soon")]).unwrap_err();
    assert!(format!("{e:#}").contains("TESSERA_REFRESH_RETRY_WINDOW"));
    assert!(resolve("", &[("TESSERA_TRUSTED_PROXIES", "nope")]).is_err());
    assert!(resolve("", &[("TESSERA_DATABASE_URL", "mysql://x")]).is_err());
    assert!(resolve("unknown_key = 1", &[]).is_err());
}

#[test]
fn retention_defaults_to_30_days_of_ended_sessions_400_of_events_and_is_checked() {
    let c = resolve("", &[]).unwrap().retention;
    assert_eq!(c.ended_sessions_secs, 30 * 86_400);
    assert_eq!(c.events_secs, 400 * 86_400);
    assert_eq!((c.batch, c.interval_secs), (1000, 600));
    let c = resolve(
        "retention_events = 864000\nretention_batch = 50",
        &[("TESSERA_RETENTION_INTERVAL", "0")],
    )
    .unwrap()
    .retention;
    assert_eq!((c.events_secs, c.batch, c.interval_secs), (864_000, 50, 0));
    for (name, bad) in [
        ("TESSERA_RETENTION_ENDED_SESSIONS", "3600"),
        ("TESSERA_RETENTION_EVENTS", "soon"),
        ("TESSERA_RETENTION_BATCH", "0"),
        ("TESSERA_RETENTION_INTERVAL", "-1"),
    ] {
        let e = resolve("", &[(name, bad)]).unwrap_err();
        assert!(format!("{e:#}").contains(name), "{e:#}");
    }
}

#[test]
fn the_inline_master_key_never_shows_in_debug_output() {
    let c = resolve(
        "",
        &[
            ("TESSERA_MASTER_KEY", "c2VjcmV0"),
            ("TESSERA_MASTER_KEY_PREVIOUS", "b2xkLWtleQ==,b2xkZXIta2V5"),
        ],
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(!shown.contains("b2xkLWtleQ"), "{shown}");
    assert!(!shown.contains("b2xkZXIta2V5"), "{shown}");
    assert!(shown.contains("[redacted; 2]"), "{shown}");
}

#[test]
fn previous_master_keys_come_from_a_comma_separated_variable_or_the_file() {
    assert!(resolve("", &[]).unwrap().master_key_previous.is_empty());
    let c = resolve("master_key_previous = [\"a2V5LTE=\", \"a2V5LTI=\"]", &[]).unwrap();
    assert_eq!(c.master_key_previous.encoded(), ["a2V5LTE=", "a2V5LTI="]);
    let c = resolve(
        "master_key_previous = [\"a2V5LTE=\"]",
        &[("TESSERA_MASTER_KEY_PREVIOUS", " a2V5LTM= , ,a2V5LTQ=")],
    )
    .unwrap();
    assert_eq!(c.master_key_previous.encoded(), ["a2V5LTM=", "a2V5LTQ="]);
}

#[test]
fn the_embedded_defaults_are_the_use_cases_defaults() {
    let c = resolve("", &[]).unwrap();
    let d = Settings::default();
    let secs = |d: time::Duration| d.whole_seconds();
    assert_eq!(c.access_token_ttl_secs, secs(d.access_token_ttl));
    assert_eq!(c.session_idle_timeout_secs, secs(d.lifetimes.idle));
    assert_eq!(c.session_absolute_lifetime_secs, secs(d.lifetimes.absolute));
    assert_eq!(c.refresh_retry_window_secs, secs(d.refresh_retry_window));
    assert_eq!(c.session_cache_ttl_secs, secs(d.session_cache_ttl));
    let l = d.limits;
    assert_eq!(c.login_ip_limit, l.login_per_ip.limit);
    assert_eq!(c.login_account_limit, l.login_per_account.limit);
    assert_eq!(c.login_device_limit, l.login_per_device.limit);
    for window in [l.login_per_ip, l.login_per_account, l.login_per_device] {
        assert_eq!(c.login_window_secs, secs(window.window));
    }
    assert_eq!(
        (c.mfa_limit, c.mfa_window_secs),
        (l.mfa_per_user.limit, secs(l.mfa_per_user.window))
    );
    assert_eq!(
        (c.register_limit, c.register_window_secs),
        (l.register_per_ip.limit, secs(l.register_per_ip.window))
    );
    assert_eq!(
        (c.reset_ip_limit, c.reset_account_limit),
        (l.reset_per_ip.limit, l.reset_per_account.limit)
    );
    for window in [l.reset_per_ip, l.reset_per_account] {
        assert_eq!(c.reset_window_secs, secs(window.window));
    }
    for action in ["vendor.payout", "admin.users.delete", "vendor.other"] {
        assert_eq!(
            c.step_up.lookup(action),
            d.step_up.lookup(action),
            "{action}"
        );
    }
}

#[test]
fn notification_channels_come_from_the_file_or_environment_and_a_bad_url_stops_the_start() {
    let c = resolve(
        "smtp_url = \"smtp://127.0.0.1:2525\"\nsmtp_from = \"security@example.com\"",
        &[
            ("TESSERA_WEBHOOK_URL", "http://127.0.0.1:9000/hook"),
            ("TESSERA_WEBHOOK_SECRET", "0123456789abcdef0123"),
            ("TESSERA_ISSUER", "https://id.example.com"),
        ],
    )
    .unwrap();
    assert_eq!(c.notify.smtp.as_ref().map(|s| s.port), Some(2525));
    assert!(c.notify.webhook.is_some());
    assert_eq!(c.notify.issuer, "https://id.example.com");
    assert!(resolve("", &[]).unwrap().notify.smtp.is_none());

    let e = resolve(
        "",
        &[
            (
                "TESSERA_SMTP_URL",
                "smtp://u:hunter2secret@mail.example.com:25",
            ),
            ("TESSERA_SMTP_FROM", "security@example.com"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("TESSERA_SMTP_URL") && !e.contains("hunter2secret"),
        "{e}"
    );
}

#[test]
fn database_deadlines_default_to_seconds_come_from_file_or_environment_and_are_checked() {
    let secs = std::time::Duration::from_secs;
    let c = resolve("", &[]).unwrap().database;
    assert_eq!((c.connect, c.acquire), (secs(10), secs(3)));
    let c = resolve(
        "database_connect_timeout = 60\ndatabase_acquire_timeout = 9",
        &[("TESSERA_DATABASE_ACQUIRE_TIMEOUT", "2")],
    )
    .unwrap()
    .database;
    assert_eq!((c.connect, c.acquire), (secs(60), secs(2)));
    for (name, bad) in [
        ("TESSERA_DATABASE_ACQUIRE_TIMEOUT", "0"),
        ("TESSERA_DATABASE_ACQUIRE_TIMEOUT", "61"),
        ("TESSERA_DATABASE_CONNECT_TIMEOUT", "0"),
        ("TESSERA_DATABASE_CONNECT_TIMEOUT", "soon"),
    ] {
        let e = resolve("", &[(name, bad)]).unwrap_err();
        assert!(format!("{e:#}").contains(name), "{e:#}");
    }
}

#[test]
fn the_embedded_defaults_map_back_to_the_use_cases_defaults_whole() {
    let settings = resolve("", &[]).unwrap().settings();
    assert_eq!(
        format!("{settings:?}"),
        format!("{:?}", Settings::default())
    );
}

//! Rate-limit decisions: an exact sliding-window log.
//!
//! ```text
//!   attempt ──► [room in window] ──► Allow (the attempt is counted: a reservation)
//!          └──► [window full]    ──► Deny{retry_after}   (nothing is counted)
//!   reservation ──release──► gone   (a success refunds its own slot, nothing more)
//! ```
//!
//! "At most `limit` counted attempts in any window of `window`": an attempt is counted
//! when it is allowed, before the password is checked, so concurrent attempts cannot
//! overshoot the limit. Both limiter backends (in-process and the Redis script) apply
//! exactly these rules, with `now` passed in, and one conformance suite checks that they
//! decide alike.

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: u32,
    pub window: Duration,
}

impl Policy {
    /// Password login per (client IP, provider): 5 in 10 minutes.
    pub const LOGIN_PER_IP: Policy = Policy {
        limit: 5,
        window: Duration::minutes(10),
    };
    /// Password login per (account, provider): 10 in 10 minutes.
    pub const LOGIN_PER_ACCOUNT: Policy = Policy {
        limit: 10,
        window: Duration::minutes(10),
    };
    /// MFA code failures per user: 5 in 10 minutes.
    pub const MFA_PER_USER: Policy = Policy {
        limit: 5,
        window: Duration::minutes(10),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The earliest moment an attempt can succeed is `retry_after` from now.
    Deny {
        retry_after: Duration,
    },
}

impl Decision {
    /// Whole seconds for a `Retry-After` header: rounded up, at least 1.
    pub fn retry_after_secs(retry_after: Duration) -> u64 {
        let micros = retry_after.whole_microseconds().max(0);
        let secs = ((micros + 999_999) / 1_000_000).max(1);
        u64::try_from(secs).unwrap_or(u64::MAX)
    }
}

/// Decides on an attempt at `now` given the times of the attempts already counted for
/// the key (in any order; entries that have left the window are ignored).
pub fn decide(counted: &[OffsetDateTime], now: OffsetDateTime, policy: Policy) -> Decision {
    let mut live: Vec<OffsetDateTime> = counted
        .iter()
        .copied()
        .filter(|t| *t + policy.window > now)
        .collect();
    let limit = usize::try_from(policy.limit).unwrap_or(usize::MAX);
    if live.len() < limit {
        return Decision::Allow;
    }
    live.sort_unstable();
    // Room appears when enough of the oldest entries have aged out to leave limit - 1.
    let pivot = live.len() - limit;
    let frees_at = live.get(pivot).copied().unwrap_or(now) + policy.window;
    Decision::Deny {
        retry_after: frees_at - now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
    const P: Policy = Policy {
        limit: 3,
        window: Duration::minutes(10),
    };

    fn at(secs: i64) -> OffsetDateTime {
        T0 + Duration::seconds(secs)
    }

    #[test]
    fn window_rules() {
        let cases: &[(&str, Vec<OffsetDateTime>, OffsetDateTime, Decision)] = &[
            ("empty", vec![], T0, Decision::Allow),
            (
                "below the limit",
                vec![at(0), at(1)],
                at(2),
                Decision::Allow,
            ),
            (
                "at the limit",
                vec![at(0), at(60), at(120)],
                at(180),
                Decision::Deny {
                    retry_after: Duration::seconds(420),
                },
            ),
            (
                "the oldest ages out exactly at window end",
                vec![at(0), at(60), at(120)],
                at(600),
                Decision::Allow,
            ),
            (
                "a second before",
                vec![at(0), at(60), at(120)],
                at(599),
                Decision::Deny {
                    retry_after: Duration::seconds(1),
                },
            ),
            (
                "order of entries does not matter",
                vec![at(120), at(0), at(60)],
                at(180),
                Decision::Deny {
                    retry_after: Duration::seconds(420),
                },
            ),
            (
                "expired entries are ignored",
                vec![at(-700), at(-650), at(0), at(60)],
                at(120),
                Decision::Allow,
            ),
            (
                "over the limit (limit lowered): wait for enough to age out",
                vec![at(0), at(10), at(20), at(30), at(40)],
                at(50),
                Decision::Deny {
                    retry_after: Duration::seconds(570),
                },
            ),
        ];
        for (name, counted, now, want) in cases {
            assert_eq!(&decide(counted, *now, P), want, "{name}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(Decision::retry_after_secs(Duration::milliseconds(1)), 1);
        assert_eq!(Decision::retry_after_secs(Duration::seconds(420)), 420);
        assert_eq!(
            Decision::retry_after_secs(Duration::milliseconds(420_001)),
            421
        );
        assert_eq!(Decision::retry_after_secs(Duration::ZERO), 1);
    }
}

/// What one budget is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// Password attempts from one client network for one provider: an IPv4 address, or
    /// the /64 of an IPv6 address (one subscriber usually holds a whole /64).
    LoginIp { network: String, provider: String },
    /// Password attempts against one account for one provider. The account is a hash of
    /// the normalised email, so no address is stored in the limiter or written to logs.
    LoginAccount { account: String, provider: String },
    /// MFA code failures of one user (login second step, confirm, step-up, disable).
    MfaUser { user: String },
}

impl LimitKey {
    pub fn login_ip(ip: std::net::IpAddr, provider: &str) -> Self {
        Self::LoginIp {
            network: network_of(ip),
            provider: provider.to_owned(),
        }
    }

    pub fn login_account(normalized_email: &str, provider: &str) -> Self {
        Self::LoginAccount {
            account: account_hash(normalized_email),
            provider: provider.to_owned(),
        }
    }

    pub fn mfa_user(user: crate::ids::UserId) -> Self {
        Self::MfaUser {
            user: user.to_string(),
        }
    }

    /// `ip`, `account` or `mfa`: for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LoginIp { .. } => "ip",
            Self::LoginAccount { .. } => "account",
            Self::MfaUser { .. } => "mfa",
        }
    }

    /// A stable name for storage (Redis keys, map keys), without the deployment prefix.
    pub fn storage_name(&self) -> String {
        match self {
            Self::LoginIp { network, provider } => format!("login:ip:{provider}:{network}"),
            Self::LoginAccount { account, provider } => format!("login:acct:{provider}:{account}"),
            Self::MfaUser { user } => format!("mfa:user:{user}"),
        }
    }
}

/// The network an address is limited as: IPv4 as is, IPv6 by its /64.
pub fn network_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// A short, stable, non-reversible-at-a-glance name for an account in limiter keys and
/// logs.
pub fn account_hash(normalized_email: &str) -> String {
    let mut data = b"tessera:account:".to_vec();
    data.extend_from_slice(normalized_email.as_bytes());
    data_encoding::HEXLOWER.encode(&crate::secret::sha256(&data)[..12])
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn ipv6_addresses_in_one_64_share_a_key_and_ipv4_stays_exact() {
        let a = LimitKey::login_ip("2001:db8:1:2::1".parse().unwrap(), "password");
        let b = LimitKey::login_ip(
            "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap(),
            "password",
        );
        let c = LimitKey::login_ip("2001:db8:1:3::1".parse().unwrap(), "password");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.storage_name(), "login:ip:password:2001:db8:1:2::/64");
        let v4 = LimitKey::login_ip("192.0.2.7".parse().unwrap(), "password");
        assert_eq!(v4.storage_name(), "login:ip:password:192.0.2.7");
        let mapped = LimitKey::login_ip("::ffff:192.0.2.7".parse().unwrap(), "password");
        assert_eq!(mapped, v4);
    }

    #[test]
    fn account_keys_never_contain_the_address() {
        let k = LimitKey::login_account("ana@example.com", "password");
        assert!(!k.storage_name().contains("ana"));
        assert_eq!(k, LimitKey::login_account("ana@example.com", "password"));
        assert_ne!(k, LimitKey::login_account("ana@example.com", "other"));
    }
}

//! Rate-limit decisions: an exact sliding-window log of attempts, each either still being
//! checked (pending) or a counted failure.
//!
//! ```text
//!   attempt ──► [room in window]                ──► Allow  (counted as pending: a reservation)
//!          ├──► [full, fewer than limit failed] ──► Busy   (nothing counted: wait for the
//!          │                                               pending ones, then ask again)
//!          └──► [limit failures in window]      ──► Deny{retry_after} (nothing counted)
//!   pending ──release──► gone       (a success refunds its own slot, nothing more)
//!   pending ──fail─────► failed     (keeps its slot for the rest of the window)
//!   pending ──[PENDING_LEASE passes unsettled]──► counts as failed (a crashed node, a lost
//!                                                  request: never a free attempt)
//! ```
//!
//! "At most `limit` attempts reach the check in any window of `window`": an attempt holds
//! a slot from the moment it is allowed, before the password is checked, so concurrent
//! attempts cannot overshoot the limit. "Only failures lock out": an attempt that finds the
//! window full of attempts still in flight is told to wait for their outcome (`Busy`),
//! not refused, so concurrent correct logins from one address all get through. Both
//! limiter backends (in-process and the Redis script) apply exactly these rules, with
//! `now` passed in, and one conformance suite checks that they decide alike.

use time::{Duration, OffsetDateTime};

use crate::defaults::{LOGIN_WINDOW, RESET_WINDOW};

/// How long an attempt may stay pending before it counts as a failure. Longer than any
/// password check can take (the hashing queue's wait is capped well below it).
pub const PENDING_LEASE: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: u32,
    pub window: Duration,
}

impl Policy {
    /// Password login per (client IP, provider): 5 per login window.
    pub const LOGIN_PER_IP: Policy = Policy {
        limit: 5,
        window: LOGIN_WINDOW,
    };
    /// Password login per (account, provider): 10 per login window.
    pub const LOGIN_PER_ACCOUNT: Policy = Policy {
        limit: 10,
        window: LOGIN_WINDOW,
    };
    /// Password login presenting a known-device token: 5 per login window per token.
    pub const LOGIN_PER_DEVICE: Policy = Policy {
        limit: 5,
        window: LOGIN_WINDOW,
    };
    /// Password checks from one live session (password change, factor binding): 5 per
    /// login window per session.
    pub const PASSWORD_PER_SESSION: Policy = Policy {
        limit: 5,
        window: LOGIN_WINDOW,
    };
    /// MFA code failures per user: 5 in 10 minutes.
    pub const MFA_PER_USER: Policy = Policy {
        limit: 5,
        window: Duration::minutes(10),
    };
    /// Registration attempts per client network, whatever their outcome: 10 an hour.
    pub const REGISTER_PER_IP: Policy = Policy {
        limit: 10,
        window: Duration::hours(1),
    };
    /// Password-reset requests per client network, whatever their outcome: 10 per reset
    /// window.
    pub const RESET_PER_IP: Policy = Policy {
        limit: 10,
        window: RESET_WINDOW,
    };
    /// Password-reset requests per address (known or not), whatever their outcome: 3 per
    /// reset window, so a mailbox cannot be flooded with reset emails.
    pub const RESET_PER_ACCOUNT: Policy = Policy {
        limit: 3,
        window: RESET_WINDOW,
    };
    /// Notices of one kind to one user: 10 an hour. Beyond it the event is still recorded
    /// (dashboard, audit trail) but nothing more is sent. Per kind, so a flood of one
    /// kind (sign-ins from new devices) never silences another (MFA disabled).
    pub const NOTICES_PER_USER_KIND: Policy = Policy {
        limit: 10,
        window: Duration::hours(1),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The window is full, but not of failures: attempts still being checked hold the
    /// slots. Ask again once they have settled.
    Busy,
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

/// One counted attempt: when it was allowed, and whether its check has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub at: OffsetDateTime,
    pub failed: bool,
}

impl Attempt {
    pub fn pending(at: OffsetDateTime) -> Self {
        Self { at, failed: false }
    }

    pub fn failed(at: OffsetDateTime) -> Self {
        Self { at, failed: true }
    }

    /// Whether it counts as a failure at `now`: failed, or pending past its lease.
    pub fn counts_as_failure(&self, now: OffsetDateTime) -> bool {
        self.failed || self.at + PENDING_LEASE <= now
    }
}

/// Decides on an attempt at `now` given the attempts already counted for the key (in any
/// order; entries that have left the window are ignored).
pub fn decide(counted: &[Attempt], now: OffsetDateTime, policy: Policy) -> Decision {
    let live: Vec<&Attempt> = counted
        .iter()
        .filter(|a| a.at + policy.window > now)
        .collect();
    let limit = usize::try_from(policy.limit).unwrap_or(usize::MAX);
    if live.len() < limit {
        return Decision::Allow;
    }
    let mut failures: Vec<OffsetDateTime> = live
        .iter()
        .filter(|a| a.counts_as_failure(now))
        .map(|a| a.at)
        .collect();
    if failures.len() < limit {
        return Decision::Busy;
    }
    failures.sort_unstable();
    // Room appears when enough of the oldest failures have aged out to leave limit - 1.
    let pivot = failures.len() - limit;
    let frees_at = failures.get(pivot).copied().unwrap_or(now) + policy.window;
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
            let failed: Vec<Attempt> = counted.iter().map(|at| Attempt::failed(*at)).collect();
            assert_eq!(&decide(&failed, *now, P), want, "{name}");
        }
    }

    #[test]
    fn a_window_full_of_pending_attempts_is_busy_not_denied() {
        let pending = [
            Attempt::pending(at(0)),
            Attempt::pending(at(1)),
            Attempt::pending(at(2)),
        ];
        assert_eq!(decide(&pending, at(3), P), Decision::Busy);
        let mixed = [
            Attempt::failed(at(0)),
            Attempt::failed(at(1)),
            Attempt::pending(at(2)),
        ];
        assert_eq!(decide(&mixed, at(3), P), Decision::Busy);
        let two_pending = [Attempt::pending(at(0)), Attempt::pending(at(1))];
        assert_eq!(decide(&two_pending, at(3), P), Decision::Allow);
    }

    #[test]
    fn a_pending_attempt_counts_as_a_failure_once_its_lease_has_passed() {
        let lease = PENDING_LEASE.whole_seconds();
        let attempts = [
            Attempt::failed(at(0)),
            Attempt::failed(at(1)),
            Attempt::pending(at(2)),
        ];
        assert_eq!(decide(&attempts, at(2 + lease - 1), P), Decision::Busy);
        assert_eq!(
            decide(&attempts, at(2 + lease), P),
            Decision::Deny {
                retry_after: Duration::seconds(600 - 2 - lease)
            }
        );
    }

    #[test]
    fn retry_after_counts_failures_only() {
        // Four live entries, limit 3: the failures at 0, 60 and 120 set the retry, not the
        // attempt still pending since 150 (when it succeeds it frees nothing more).
        let attempts = [
            Attempt::failed(at(0)),
            Attempt::failed(at(60)),
            Attempt::failed(at(120)),
            Attempt::pending(at(150)),
        ];
        assert_eq!(
            decide(&attempts, at(180), P),
            Decision::Deny {
                retry_after: Duration::seconds(420)
            }
        );
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
    /// Password attempts presenting one known-device token (its id, not the token).
    LoginDevice { token: String },
    /// Password checks made from one live session (password change, factor binding).
    Session { session: String },
    /// Registration attempts from one client network, whatever their outcome.
    RegisterIp { network: String },
    /// Password-reset requests from one client network, whatever their outcome.
    ResetIp { network: String },
    /// Password-reset requests naming one address (hashed, as `LoginAccount`), whether or
    /// not an account has it, so unknown addresses are limited exactly like known ones.
    ResetAccount { account: String },
    /// Notices of one kind queued for one user, whatever triggered them: whoever holds an
    /// account (or registered someone else's address) must not turn it into a mail bomb.
    Notices { user: String, kind: &'static str },
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

    pub fn login_device(token_id: &str) -> Self {
        Self::LoginDevice {
            token: token_id.to_owned(),
        }
    }

    pub fn session(session: crate::ids::SessionId) -> Self {
        Self::Session {
            session: session.to_string(),
        }
    }

    pub fn register_ip(ip: std::net::IpAddr) -> Self {
        Self::RegisterIp {
            network: network_of(ip),
        }
    }

    pub fn reset_ip(ip: std::net::IpAddr) -> Self {
        Self::ResetIp {
            network: network_of(ip),
        }
    }

    pub fn reset_account(normalized_email: &str) -> Self {
        Self::ResetAccount {
            account: account_hash(normalized_email),
        }
    }

    pub fn notices(user: crate::ids::UserId, kind: crate::event::EventKind) -> Self {
        Self::Notices {
            user: user.to_string(),
            kind: kind.as_str(),
        }
    }

    /// `ip`, `account`, `mfa`, `device`, `session`, `register`, `reset_ip`,
    /// `reset_account` or `notices`: for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LoginIp { .. } => "ip",
            Self::LoginAccount { .. } => "account",
            Self::MfaUser { .. } => "mfa",
            Self::LoginDevice { .. } => "device",
            Self::Session { .. } => "session",
            Self::RegisterIp { .. } => "register",
            Self::ResetIp { .. } => "reset_ip",
            Self::ResetAccount { .. } => "reset_account",
            Self::Notices { .. } => "notices",
        }
    }

    /// A stable name for storage (Redis keys, map keys), without the deployment prefix.
    pub fn storage_name(&self) -> String {
        match self {
            Self::LoginIp { network, provider } => format!("login:ip:{provider}:{network}"),
            Self::LoginAccount { account, provider } => format!("login:acct:{provider}:{account}"),
            Self::MfaUser { user } => format!("mfa:user:{user}"),
            Self::LoginDevice { token } => format!("login:device:{token}"),
            Self::Session { session } => format!("pwd:session:{session}"),
            Self::RegisterIp { network } => format!("register:ip:{network}"),
            Self::ResetIp { network } => format!("reset:ip:{network}"),
            Self::ResetAccount { account } => format!("reset:acct:{account}"),
            Self::Notices { user, kind } => format!("notice:{user}:{kind}"),
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

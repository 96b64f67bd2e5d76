//! The step-up policy: which role and how recent an MFA a sensitive action needs
//! (RFC 9470 semantics: a stale MFA asks for a step-up with the action's `max_age`).
//!
//! ```text
//!   action ──► [no rule matches]                      ──► UnknownAction
//!          ──► [role not held]                        ──► Forbidden
//!          ──► [enrollment required, user has no MFA] ──► EnrollmentRequired
//!          ──► [MFA absent or older than max_age]     ──► StepUpRequired{max_age}
//!          ──► allowed (the matching rule)
//! ```
//!
//! The checks run in that order so an answer never hints at a later condition: a user
//! without the role learns nothing about the action's MFA requirements.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use crate::defaults::STEP_UP_MAX_AGE;
use crate::ids::{InvalidField, Role};

/// How recent an MFA must be to regenerate recovery codes (not an action of the policy:
/// the contract fixes it).
pub const RECOVERY_CODES_MAX_AGE: Duration = Duration::seconds(300);
/// How far in the future a recorded MFA time may lie (another node's clock) and still
/// count; anything later is not trusted as fresh.
pub const CLOCK_SKEW: Duration = Duration::seconds(30);

/// The one freshness rule for step-up: an MFA at `t` is fresh at `now` when
/// `now - t <= max_age` and `t <= now + CLOCK_SKEW`. A time further in the future is a
/// wrong clock or a forged row, and would otherwise stay "fresh" for as long as it lies
/// ahead: it is never trusted.
pub fn mfa_is_fresh(
    mfa_verified_at: Option<OffsetDateTime>,
    max_age: Duration,
    now: OffsetDateTime,
) -> bool {
    mfa_verified_at.is_some_and(|t| now - t <= max_age && t <= now + CLOCK_SKEW)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPolicy {
    pub role: Role,
    pub max_age: Duration,
    pub require_enrollment: bool,
}

/// The rule the admin API always applies, and one of the defaults.
const ADMIN_FLOOR: (&str, &str) = ("admin.*", "admin");

/// Rules by action name: exact names (`vendor.payout`) or a trailing wildcard (`admin.*`,
/// matching `admin.` followed by at least one character). An exact rule wins over a wildcard; the
/// longest wildcard prefix wins among wildcards.
#[derive(Debug, Clone)]
pub struct StepUpPolicy {
    exact: BTreeMap<String, ActionPolicy>,
    /// `(prefix, rule)` with the `*` dropped, longest prefix first.
    wildcards: Vec<(String, ActionPolicy)>,
}

impl StepUpPolicy {
    /// `vendor.payout` (role vendor) and the admin floor's `admin.*` (role admin), each
    /// asking for an enrolled factor and an MFA within `STEP_UP_MAX_AGE`.
    pub fn defaults() -> Self {
        Self::from_defaults(&[("vendor.payout", "vendor"), ADMIN_FLOOR])
    }

    /// The admin API's floor, whatever the configured policy says: `admin.*` needs role
    /// `admin`, TOTP enrolled and an MFA within `STEP_UP_MAX_AGE`.
    pub fn admin_floor() -> Self {
        Self::from_defaults(&[ADMIN_FLOOR])
    }

    /// Rules of `(action, role)` with the default freshness, enrollment required.
    fn from_defaults(rules: &[(&str, &str)]) -> Self {
        let rules = rules
            .iter()
            .filter_map(|(action, role)| {
                Role::parse(role).ok().map(|role| {
                    let policy = ActionPolicy {
                        role,
                        max_age: STEP_UP_MAX_AGE,
                        require_enrollment: true,
                    };
                    ((*action).to_owned(), policy)
                })
            })
            .collect();
        // The literals are valid (a test proves it). Were one not, its rule would be
        // missing and the action refused as unknown (an empty floor refuses every admin
        // action): failing closed, never open.
        Self::new(rules).unwrap_or_else(|_| Self::empty())
    }

    /// Names are 1+ characters of `[a-z0-9_.-]`, optionally ending in one `*`. Duplicate
    /// names and negative `max_age`s are refused too.
    pub fn new(rules: Vec<(String, ActionPolicy)>) -> Result<Self, InvalidField> {
        let mut policy = Self::empty();
        for (name, rule) in rules {
            if rule.max_age.is_negative() {
                return Err(InvalidField("an action's max_age must not be negative"));
            }
            let (body, wildcard) = match name.strip_suffix('*') {
                Some(prefix) => (prefix, true),
                None => (name.as_str(), false),
            };
            // A lone `*` is a catch-all: it matches every well-formed action name.
            let well_formed = is_action_name(body) || (wildcard && body.is_empty());
            if !well_formed {
                return Err(InvalidField(
                    "an action name must be characters of a-z, 0-9, '_', '.' or '-', optionally ending in '*'",
                ));
            }
            let duplicate = if wildcard {
                policy.wildcards.iter().any(|(p, _)| p == body)
            } else {
                policy.exact.contains_key(body)
            };
            if duplicate {
                return Err(InvalidField("an action name appears twice in the policy"));
            }
            if wildcard {
                policy.wildcards.push((body.to_owned(), rule));
            } else {
                policy.exact.insert(name, rule);
            }
        }
        // Stable sort: equal lengths cannot collide (duplicates were refused), so the
        // order among them is irrelevant; longest first makes the first match the best.
        policy
            .wildcards
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(policy)
    }

    /// The rule for `action`: its exact rule, else the longest matching wildcard. A string
    /// that is not a well-formed action name matches nothing.
    pub fn lookup(&self, action: &str) -> Option<&ActionPolicy> {
        if !is_action_name(action) {
            return None;
        }
        self.exact.get(action).or_else(|| {
            self.wildcards
                .iter()
                .find(|(prefix, _)| action.len() > prefix.len() && action.starts_with(prefix))
                .map(|(_, rule)| rule)
        })
    }

    fn empty() -> Self {
        Self {
            exact: BTreeMap::new(),
            wildcards: Vec::new(),
        }
    }
}

fn is_action_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    UnknownAction,
    Forbidden,
    EnrollmentRequired,
    StepUpRequired { max_age: Duration },
}

/// Checked in this order: action known, role, enrollment, MFA age. MFA is fresh when
/// `mfa_verified_at` is Some(t) with now - t <= max_age (and t <= now + 30 s of skew).
///
/// A user without MFA passes the age check only when the rule does not require
/// enrollment: asking them to step up with a factor they do not have would be a dead end.
pub fn authorize<'p>(
    policy: &'p StepUpPolicy,
    action: &str,
    roles: &[Role],
    mfa_enrolled: bool,
    mfa_verified_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<&'p ActionPolicy, Denial> {
    let rule = policy.lookup(action).ok_or(Denial::UnknownAction)?;
    if !roles.contains(&rule.role) {
        return Err(Denial::Forbidden);
    }
    if !mfa_enrolled {
        return if rule.require_enrollment {
            Err(Denial::EnrollmentRequired)
        } else {
            Ok(rule)
        };
    }
    if !mfa_is_fresh(mfa_verified_at, rule.max_age, now) {
        return Err(Denial::StepUpRequired {
            max_age: rule.max_age,
        });
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Role {
        Role::parse(name).unwrap()
    }

    fn rule(r: &str, secs: i64, require_enrollment: bool) -> ActionPolicy {
        ActionPolicy {
            role: role(r),
            max_age: Duration::seconds(secs),
            require_enrollment,
        }
    }

    fn policy(rules: &[(&str, ActionPolicy)]) -> StepUpPolicy {
        StepUpPolicy::new(
            rules
                .iter()
                .map(|(n, r)| (n.to_string(), r.clone()))
                .collect(),
        )
        .unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn ago(secs: i64) -> Option<OffsetDateTime> {
        Some(now() - Duration::seconds(secs))
    }

    /// action, roles, enrolled, mfa_verified_at, expected outcome.
    type Case<'a> = (
        &'a str,
        &'a [Role],
        bool,
        Option<OffsetDateTime>,
        Result<(), Denial>,
    );

    const STEP_UP_300: Denial = Denial::StepUpRequired {
        max_age: Duration::seconds(300),
    };

    #[test]
    fn the_default_policy_protects_payouts_and_admin_actions() {
        let p = StepUpPolicy::defaults();
        assert_eq!(p.lookup("vendor.payout"), Some(&rule("vendor", 300, true)));
        assert_eq!(
            p.lookup("admin.users.delete"),
            Some(&rule("admin", 300, true))
        );
        assert_eq!(p.lookup("vendor.other"), None);
    }

    #[test]
    fn each_denial_and_the_order_of_checks() {
        let p = StepUpPolicy::defaults();
        let admin = [role("admin")];
        let vendor = [role("vendor"), role("buyer")];
        let nobody: [Role; 0] = [];
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // action             roles    enrolled  mfa_at     outcome
            ("vendor.payout",     &vendor, true,     ago(10),   Ok(())),
            ("admin.ban",         &admin,  true,     ago(0),    Ok(())),
            ("payout",            &vendor, true,     ago(10),   Err(Denial::UnknownAction)),
            ("",                  &vendor, true,     ago(10),   Err(Denial::UnknownAction)),
            ("vendor.payout",     &admin,  true,     ago(10),   Err(Denial::Forbidden)),
            ("vendor.payout",     &vendor, false,    None,      Err(Denial::EnrollmentRequired)),
            ("vendor.payout",     &vendor, true,     None,      Err(STEP_UP_300)),
            ("vendor.payout",     &vendor, true,     ago(301),  Err(STEP_UP_300)),
            // Earlier checks win over later ones.
            ("unknown.thing",     &nobody, false,    None,      Err(Denial::UnknownAction)),
            ("admin.ban",         &vendor, false,    None,      Err(Denial::Forbidden)),
            ("admin.ban",         &nobody, true,     None,      Err(Denial::Forbidden)),
            ("admin.ban",         &admin,  false,    None,      Err(Denial::EnrollmentRequired)),
            ("admin.ban",         &admin,  false,    ago(10),   Err(Denial::EnrollmentRequired)),
        ];
        for (i, (action, roles, enrolled, mfa_at, expected)) in cases.iter().enumerate() {
            let got = authorize(&p, action, roles, *enrolled, *mfa_at, now()).map(|_| ());
            assert_eq!(got, *expected, "case {i}: {action}");
        }
    }

    #[test]
    fn mfa_exactly_max_age_old_is_fresh_and_one_second_more_is_not() {
        let p = StepUpPolicy::defaults();
        let vendor = [role("vendor")];
        assert!(authorize(&p, "vendor.payout", &vendor, true, ago(300), now()).is_ok());
        assert_eq!(
            authorize(&p, "vendor.payout", &vendor, true, ago(301), now()),
            Err(STEP_UP_300)
        );
    }

    #[test]
    fn mfa_recorded_slightly_in_the_future_counts_but_not_far_in_the_future() {
        let p = StepUpPolicy::defaults();
        let vendor = [role("vendor")];
        assert!(authorize(&p, "vendor.payout", &vendor, true, ago(-30), now()).is_ok());
        assert_eq!(
            authorize(&p, "vendor.payout", &vendor, true, ago(-31), now()),
            Err(STEP_UP_300)
        );
    }

    #[test]
    fn the_admin_floor_needs_an_enrolled_admin_with_recent_mfa() {
        let floor = StepUpPolicy::admin_floor();
        assert_eq!(
            floor.lookup("admin.users.delete"),
            Some(&rule("admin", 300, true))
        );
        assert_eq!(floor.lookup("vendor.payout"), None);
    }

    #[test]
    fn freshness_allows_max_age_and_thirty_seconds_of_skew_and_nothing_beyond() {
        let max = Duration::seconds(300);
        assert!(mfa_is_fresh(ago(300), max, now()));
        assert!(!mfa_is_fresh(ago(301), max, now()));
        assert!(mfa_is_fresh(ago(-30), max, now()));
        assert!(!mfa_is_fresh(ago(-31), max, now()));
        assert!(!mfa_is_fresh(ago(-3600), max, now()));
        assert!(!mfa_is_fresh(None, max, now()));
    }

    #[test]
    fn the_step_up_denial_carries_the_actions_own_max_age() {
        let p = policy(&[("report.export", rule("analyst", 60, true))]);
        assert_eq!(
            authorize(
                &p,
                "report.export",
                &[role("analyst")],
                true,
                ago(61),
                now()
            ),
            Err(Denial::StepUpRequired {
                max_age: Duration::seconds(60)
            })
        );
    }

    #[test]
    fn without_required_enrollment_only_enrolled_users_must_have_recent_mfa() {
        let p = policy(&[("profile.export", rule("user", 300, false))]);
        let user = [role("user")];
        assert!(authorize(&p, "profile.export", &user, false, None, now()).is_ok());
        assert_eq!(
            authorize(&p, "profile.export", &user, true, None, now()),
            Err(STEP_UP_300)
        );
        assert!(authorize(&p, "profile.export", &user, true, ago(5), now()).is_ok());
    }

    #[test]
    fn an_exact_rule_beats_a_wildcard_and_the_longest_wildcard_wins() {
        let p = policy(&[
            ("admin.*", rule("admin", 300, true)),
            ("admin.users.*", rule("user-admin", 120, true)),
            ("admin.users.read", rule("support", 600, false)),
            ("adm*", rule("ops", 30, true)),
        ]);
        assert_eq!(
            p.lookup("admin.users.read"),
            Some(&rule("support", 600, false))
        );
        assert_eq!(
            p.lookup("admin.users.delete"),
            Some(&rule("user-admin", 120, true))
        );
        assert_eq!(
            p.lookup("admin.keys.rotate"),
            Some(&rule("admin", 300, true))
        );
        assert_eq!(p.lookup("administer"), Some(&rule("ops", 30, true)));
        // Rule order in the input does not matter.
        let reversed = policy(&[
            ("adm*", rule("ops", 30, true)),
            ("admin.users.read", rule("support", 600, false)),
            ("admin.users.*", rule("user-admin", 120, true)),
            ("admin.*", rule("admin", 300, true)),
        ]);
        for action in [
            "admin.users.read",
            "admin.users.delete",
            "admin.keys.rotate",
            "administer",
        ] {
            assert_eq!(p.lookup(action), reversed.lookup(action), "{action}");
        }
    }

    #[test]
    fn a_wildcard_needs_at_least_one_character_after_its_prefix() {
        let p = StepUpPolicy::defaults();
        assert_eq!(p.lookup("admin"), None);
        assert_eq!(p.lookup("admin."), None);
        assert!(p.lookup("admin.x").is_some());
        assert_eq!(p.lookup("administrator"), None);
    }

    #[test]
    fn malformed_action_names_match_nothing() {
        let p = StepUpPolicy::defaults();
        for action in [
            "admin.X",
            "admin.a b",
            "admin.*",
            "Vendor.payout",
            "vendor.payout ",
        ] {
            assert_eq!(p.lookup(action), None, "{action:?}");
        }
    }

    #[test]
    fn malformed_rules_are_refused() {
        let ok = rule("admin", 300, true);
        for bad in [
            "", "*admin", "ad*min", "admin.**", "Admin.x", "admin x", "admin/*", "é",
        ] {
            let result = StepUpPolicy::new(vec![(bad.to_owned(), ok.clone())]);
            assert!(result.is_err(), "{bad:?}");
        }
        let twice = vec![
            ("a.*".to_owned(), ok.clone()),
            ("a.*".to_owned(), ok.clone()),
        ];
        assert!(StepUpPolicy::new(twice).is_err());
        let twice = vec![
            ("a.b".to_owned(), ok.clone()),
            ("a.b".to_owned(), ok.clone()),
        ];
        assert!(StepUpPolicy::new(twice).is_err());
        let negative = vec![("a.b".to_owned(), rule("admin", -1, true))];
        assert!(StepUpPolicy::new(negative).is_err());
        // An exact name and a wildcard over it are distinct rules.
        let both = vec![("a.b".to_owned(), ok.clone()), ("a.b*".to_owned(), ok)];
        assert!(StepUpPolicy::new(both).is_ok());
    }

    #[test]
    fn a_lone_star_matches_every_action_name() {
        let p = policy(&[("*", rule("admin", 300, true))]);
        assert!(p.lookup("x").is_some());
        assert!(p.lookup("vendor.payout").is_some());
        assert_eq!(p.lookup(""), None);
    }
}

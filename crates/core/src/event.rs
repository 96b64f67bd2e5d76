//! The kinds of security event recorded for a user (the names are part of the API).

macro_rules! kinds {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $($variant),+ }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name),+ }
            }
            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($name => Some(EventKind::$variant),)+ _ => None }
            }
        }
    };
}

kinds! {
    UserRegistered => "user_registered",
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    LoginRateLimited => "login_rate_limited",
    MfaFailed => "mfa_failed",
    NewDevice => "new_device",
    SessionRevoked => "session_revoked",
    RefreshTokenReused => "refresh_token_reused",
    PasswordChanged => "password_changed",
    MfaEnabled => "mfa_enabled",
    MfaDisabled => "mfa_disabled",
    MfaResetByAdmin => "mfa_reset_by_admin",
    RecoveryCodeUsed => "recovery_code_used",
    RecoveryCodesRegenerated => "recovery_codes_regenerated",
    StepUpSucceeded => "step_up_succeeded",
    RolesChanged => "roles_changed",
    PasswordResetRequested => "password_reset_requested",
    PasswordReset => "password_reset",
    AccountDisabled => "account_disabled",
    AccountEnabled => "account_enabled",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}

//! `AppError`: the one error every use case returns and the edge maps (in
//! `tessera-server/src/problem.rs`, nowhere else) to RFC 9457 problem details.

use crate::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A field is missing, ill-typed or out of bounds. `field` is the JSON name.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("email address already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("unsupported login provider")]
    UnsupportedProvider,
    #[error("unknown or malformed refresh token")]
    InvalidRefreshToken,
    #[error("refresh token reused; session revoked")]
    RefreshTokenReused,
    #[error("session revoked")]
    SessionRevoked,
    #[error("session expired")]
    SessionExpired,
    /// No bearer token was presented.
    #[error("authentication required")]
    MissingToken,
    /// The bearer token is malformed, badly signed, expired or not ours.
    #[error("invalid access token")]
    InvalidToken,
    #[error("not found")]
    NotFound,
    #[error("wrong MFA code")]
    InvalidMfaCode,
    #[error("unknown, expired or used mfa_token")]
    InvalidMfaToken,
    /// A password-reset token that is malformed, unknown, already used or expired.
    #[error("unknown, used or expired reset token")]
    InvalidResetToken,
    #[error("TOTP is already enabled")]
    MfaAlreadyEnabled,
    #[error("no TOTP setup is pending")]
    NoPendingSetup,
    #[error("TOTP is not enabled")]
    MfaNotEnabled,
    /// The action (or operation) needs an MFA at most `max_age_secs` old.
    #[error("step-up authentication required (max_age {max_age_secs} s)")]
    StepUpRequired { max_age_secs: i64 },
    #[error("the action requires MFA enrolment")]
    MfaEnrollmentRequired,
    #[error("forbidden")]
    Forbidden,
    #[error("unknown action")]
    UnknownAction,
    /// A budget is spent; nothing was checked. `kind` is the limit's key kind.
    #[error("rate limited ({kind}); retry in {retry_after_secs} s")]
    RateLimited {
        kind: &'static str,
        retry_after_secs: u64,
        limit: u32,
        window_secs: i64,
    },
    /// No password-hashing worker (or no settled budget) within the bounded wait: the
    /// server is busy, not broken; try again in `retry_after_secs`.
    #[error("overloaded; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// The database did not answer in time (see `StoreError::Unavailable`): a 503 with
    /// `Retry-After`, logged with its source chain.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Anything we did not expect: logged with its source chain, never shown to clients.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl AppError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    pub fn overloaded() -> Self {
        Self::Overloaded {
            retry_after_secs: 1,
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The server's fault (a failure or an outage), not the client's: callers that judge
    /// a client by the error (signing a browser out) must pass these on instead.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Internal(_) | Self::Unavailable(_))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(Box::new(e)),
            other => Self::internal(other),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(e)
    }
}

/// Fresh random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], AppError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| AppError::Internal(e.to_string().into()))?;
    Ok(out)
}

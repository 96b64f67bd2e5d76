//! RFC 9457 problem details: the only place where an error becomes a status code.
//!
//! Every failure a client can see is a `Problem` with a stable `code`. `AppError` maps
//! here; so do the edge's own refusals (413, 415, 404, 405, panics).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_app::AppError;
use utoipa::ToSchema;

/// Every machine-readable `code` Tessera answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    InvalidRequest,
    EmailTaken,
    InvalidCredentials,
    UnsupportedProvider,
    InvalidRefreshToken,
    RefreshTokenReused,
    SessionRevoked,
    SessionExpired,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidMfaCode,
    InvalidMfaToken,
    InvalidResetToken,
    MfaAlreadyEnabled,
    NoPendingSetup,
    MfaNotEnabled,
    StepUpRequired,
    MfaEnrollmentRequired,
    Forbidden,
    UnknownAction,
    RateLimited,
    ServiceUnavailable,
    InternalError,
}

impl ProblemCode {
    pub const ALL: &'static [ProblemCode] = &[
        Self::InvalidRequest,
        Self::EmailTaken,
        Self::InvalidCredentials,
        Self::UnsupportedProvider,
        Self::InvalidRefreshToken,
        Self::RefreshTokenReused,
        Self::SessionRevoked,
        Self::SessionExpired,
        Self::Unauthorized,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::InvalidMfaCode,
        Self::InvalidMfaToken,
        Self::InvalidResetToken,
        Self::MfaAlreadyEnabled,
        Self::NoPendingSetup,
        Self::MfaNotEnabled,
        Self::StepUpRequired,
        Self::MfaEnrollmentRequired,
        Self::Forbidden,
        Self::UnknownAction,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::InternalError,
    ];

    /// The status and the human title that go with each code.
    pub fn status_and_title(self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::InvalidRequest => (S::BAD_REQUEST, "Invalid request"),
            Self::EmailTaken => (S::CONFLICT, "Email address already registered"),
            Self::InvalidCredentials => (S::UNAUTHORIZED, "Invalid email or password"),
            Self::UnsupportedProvider => (S::BAD_REQUEST, "Unsupported login provider"),
            Self::InvalidRefreshToken => (S::UNAUTHORIZED, "Invalid refresh token"),
            Self::RefreshTokenReused => (S::UNAUTHORIZED, "Refresh token reused"),
            Self::SessionRevoked => (S::UNAUTHORIZED, "Session revoked"),
            Self::SessionExpired => (S::UNAUTHORIZED, "Session expired"),
            Self::Unauthorized => (S::UNAUTHORIZED, "Authentication required"),
            Self::NotFound => (S::NOT_FOUND, "Not found"),
            Self::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "Method not allowed"),
            Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "Request body too large"),
            Self::UnsupportedMediaType => (S::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
            Self::InvalidMfaCode => (S::UNAUTHORIZED, "Invalid MFA code"),
            Self::InvalidMfaToken => (S::UNAUTHORIZED, "Invalid MFA token"),
            Self::InvalidResetToken => (S::BAD_REQUEST, "Invalid password-reset link"),
            Self::MfaAlreadyEnabled => (S::CONFLICT, "MFA already enabled"),
            Self::NoPendingSetup => (S::CONFLICT, "No pending MFA setup"),
            Self::MfaNotEnabled => (S::CONFLICT, "MFA not enabled"),
            Self::StepUpRequired => (S::UNAUTHORIZED, "Step-up authentication required"),
            Self::MfaEnrollmentRequired => (S::FORBIDDEN, "MFA enrolment required"),
            Self::Forbidden => (S::FORBIDDEN, "Forbidden"),
            Self::UnknownAction => (S::BAD_REQUEST, "Unknown action"),
            Self::RateLimited => (S::TOO_MANY_REQUESTS, "Too many attempts"),
            Self::ServiceUnavailable => (S::SERVICE_UNAVAILABLE, "Service unavailable"),
            Self::InternalError => (S::INTERNAL_SERVER_ERROR, "Internal server error"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::EmailTaken => "email_taken",
            Self::InvalidCredentials => "invalid_credentials",
            Self::UnsupportedProvider => "unsupported_provider",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidMfaCode => "invalid_mfa_code",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::InvalidResetToken => "invalid_reset_token",
            Self::MfaAlreadyEnabled => "mfa_already_enabled",
            Self::NoPendingSetup => "no_pending_setup",
            Self::MfaNotEnabled => "mfa_not_enabled",
            Self::StepUpRequired => "step_up_required",
            Self::MfaEnrollmentRequired => "mfa_enrollment_required",
            Self::Forbidden => "forbidden",
            Self::UnknownAction => "unknown_action",
            Self::RateLimited => "rate_limited",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InternalError => "internal_error",
        }
    }
}

/// The RFC 9457 body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// `urn:tessera:problem:<code>`
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ProblemCode,
}

/// A problem on its way to the client, with any challenge header it needs.
#[derive(Debug)]
pub struct Problem {
    code: ProblemCode,
    detail: String,
    www_authenticate: Option<&'static str>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            www_authenticate: None,
            headers: Vec::new(),
        }
    }

    pub fn code(&self) -> ProblemCode {
        self.code
    }

    fn challenge(mut self, value: &'static str) -> Self {
        self.www_authenticate = Some(value);
        self
    }

    fn header(mut self, name: HeaderName, value: String) -> Self {
        if let Ok(v) = HeaderValue::try_from(value) {
            self.headers.push((name, v));
        }
        self
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        use ProblemCode as C;
        match e {
            AppError::InvalidField { field, reason } => {
                Problem::new(C::InvalidRequest, format!("field `{field}` {reason}"))
            }
            AppError::EmailTaken => Problem::new(
                C::EmailTaken,
                "an account with this email address already exists",
            ),
            AppError::InvalidCredentials => Problem::new(
                C::InvalidCredentials,
                "the email address or password is wrong",
            ),
            AppError::UnsupportedProvider => Problem::new(
                C::UnsupportedProvider,
                "field `provider` must be \"password\", the only provider of this version",
            ),
            AppError::InvalidRefreshToken => Problem::new(
                C::InvalidRefreshToken,
                "the refresh token is unknown or malformed",
            ),
            AppError::RefreshTokenReused => Problem::new(
                C::RefreshTokenReused,
                "this refresh token was already used; the session has been revoked",
            ),
            AppError::SessionRevoked => Problem::new(
                C::SessionRevoked,
                "the session has been revoked or has ended",
            )
            .challenge(r#"Bearer error="invalid_token", error_description="session revoked""#),
            AppError::SessionExpired => {
                Problem::new(C::SessionExpired, "the session has expired; sign in again")
            }
            AppError::MissingToken => {
                Problem::new(C::Unauthorized, "an access token is required").challenge("Bearer")
            }
            AppError::InvalidToken => Problem::new(
                C::Unauthorized,
                "the access token is malformed, badly signed or expired",
            )
            .challenge(r#"Bearer error="invalid_token""#),
            AppError::NotFound => Problem::new(C::NotFound, "no such resource"),
            AppError::InvalidMfaCode => Problem::new(
                C::InvalidMfaCode,
                "the code is wrong, expired or already used",
            ),
            AppError::InvalidMfaToken => Problem::new(
                C::InvalidMfaToken,
                "the mfa_token is unknown, expired or already used; sign in again",
            ),
            AppError::InvalidResetToken => Problem::new(
                C::InvalidResetToken,
                "the reset link is unknown, already used or expired; ask for a new one",
            ),
            AppError::MfaAlreadyEnabled => Problem::new(
                C::MfaAlreadyEnabled,
                "TOTP is already enabled on this account",
            ),
            AppError::NoPendingSetup => {
                Problem::new(C::NoPendingSetup, "start with POST /v1/mfa/totp/setup")
            }
            AppError::MfaNotEnabled => {
                Problem::new(C::MfaNotEnabled, "TOTP is not enabled on this account")
            }
            AppError::StepUpRequired { max_age_secs } => {
                let description =
                    format!("a second factor within the last {max_age_secs} seconds is required");
                // RFC 9470 §3: the challenge a client uses to know it must step up.
                let challenge = format!(
                    "Bearer error=\"insufficient_user_authentication\", error_description=\"{description}\", max_age={max_age_secs}"
                );
                Problem::new(
                    C::StepUpRequired,
                    format!("{description}: POST /v1/mfa/step-up first"),
                )
                .header(header::WWW_AUTHENTICATE, challenge)
            }
            AppError::MfaEnrollmentRequired => Problem::new(
                C::MfaEnrollmentRequired,
                "this action requires TOTP; enable it from the account page first",
            ),
            AppError::Forbidden => Problem::new(
                C::Forbidden,
                "your account lacks the role this action needs",
            ),
            AppError::UnknownAction => {
                Problem::new(C::UnknownAction, "no policy names this action")
            }
            AppError::RateLimited {
                kind,
                retry_after_secs,
                limit,
                window_secs,
            } => {
                let policy = format!("\"{kind}\";q={limit};w={window_secs}");
                Problem::new(
                    C::RateLimited,
                    format!("too many failed attempts; try again in {retry_after_secs} seconds"),
                )
                .header(header::RETRY_AFTER, retry_after_secs.to_string())
                // draft-ietf-httpapi-ratelimit-headers: the policy, and no quota left until reset.
                .header(HeaderName::from_static("ratelimit-policy"), policy)
                .header(
                    HeaderName::from_static("ratelimit"),
                    format!("\"{kind}\";r=0;t={retry_after_secs}"),
                )
            }
            AppError::Overloaded { retry_after_secs } => Problem::new(
                C::ServiceUnavailable,
                format!("the server is busy; try again in {retry_after_secs} seconds"),
            )
            .header(header::RETRY_AFTER, retry_after_secs.to_string()),
            AppError::Unavailable(source) => {
                // The driver's words name hosts and ports: the log has them, the body not.
                let chain = error_chain(source.as_ref());
                tracing::warn!(error = %chain, "database unreachable: answered 503");
                Problem::new(
                    C::ServiceUnavailable,
                    format!(
                        "the service is temporarily unavailable; try again in \
                         {UNAVAILABLE_RETRY_AFTER_SECS} seconds"
                    ),
                )
                .header(
                    header::RETRY_AFTER,
                    UNAVAILABLE_RETRY_AFTER_SECS.to_string(),
                )
            }
            AppError::Internal(source) => {
                let chain = error_chain(source.as_ref());
                tracing::error!(error = %chain, "internal error");
                Problem::new(
                    C::InternalError,
                    "an unexpected error occurred; it has been logged",
                )
            }
        }
    }
}

/// The wait a client is told after a database outage: about one pool deadline, so a
/// retry lands after the pool has tried to reconnect at least once.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, title) = self.code.status_and_title();
        let body = ProblemBody {
            type_: format!("urn:tessera:problem:{}", self.code.as_str()),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (status, bytes).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        res.extensions_mut().insert(self.code);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serialises_to_its_documented_name() {
        for code in ProblemCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}

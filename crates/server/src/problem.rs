//! RFC 9457 problem details: the only place where an error becomes a status code.
//!
//! Every failure a client can see is a `Problem` with a stable `code`. `AppError` maps
//! here; so do the edge's own refusals (413, 415, 404, 405, panics).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_app::AppError;
use utoipa::ToSchema;

/// Writes out the one table of codes: the enum (its serde name is the wire name), `ALL`,
/// and each code's wire name, status and title.
macro_rules! problem_codes {
    ($($variant:ident => ($name:literal, $status:ident, $title:literal)),+ $(,)?) => {
        /// Every machine-readable `code` Tessera answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemCode { $($variant),+ }

        impl ProblemCode {
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant),+];

            pub fn status(self) -> StatusCode {
                match self { $(ProblemCode::$variant => StatusCode::$status),+ }
            }

            /// The human title of the body.
            pub fn title(self) -> &'static str {
                match self { $(ProblemCode::$variant => $title),+ }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(ProblemCode::$variant => $name),+ }
            }
        }
    };
}

// The codes and their statuses are the public contract (the API document): clients
// branch on them.
problem_codes! {
    InvalidRequest => ("invalid_request", BAD_REQUEST, "Invalid request"),
    EmailTaken => ("email_taken", CONFLICT, "Email address already registered"),
    InvalidCredentials => ("invalid_credentials", UNAUTHORIZED, "Invalid email or password"),
    UnsupportedProvider => ("unsupported_provider", BAD_REQUEST, "Unsupported login provider"),
    InvalidRefreshToken => ("invalid_refresh_token", UNAUTHORIZED, "Invalid refresh token"),
    RefreshTokenReused => ("refresh_token_reused", UNAUTHORIZED, "Refresh token reused"),
    SessionRevoked => ("session_revoked", UNAUTHORIZED, "Session revoked"),
    SessionExpired => ("session_expired", UNAUTHORIZED, "Session expired"),
    Unauthorized => ("unauthorized", UNAUTHORIZED, "Authentication required"),
    NotFound => ("not_found", NOT_FOUND, "Not found"),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED, "Method not allowed"),
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, "Request body too large"),
    UnsupportedMediaType => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
    InvalidMfaCode => ("invalid_mfa_code", UNAUTHORIZED, "Invalid MFA code"),
    InvalidMfaToken => ("invalid_mfa_token", UNAUTHORIZED, "Invalid MFA token"),
    InvalidResetToken => ("invalid_reset_token", BAD_REQUEST, "Invalid password-reset link"),
    MfaAlreadyEnabled => ("mfa_already_enabled", CONFLICT, "MFA already enabled"),
    NoPendingSetup => ("no_pending_setup", CONFLICT, "No pending MFA setup"),
    MfaNotEnabled => ("mfa_not_enabled", CONFLICT, "MFA not enabled"),
    StepUpRequired => ("step_up_required", UNAUTHORIZED, "Step-up authentication required"),
    MfaEnrollmentRequired => ("mfa_enrollment_required", FORBIDDEN, "MFA enrolment required"),
    Forbidden => ("forbidden", FORBIDDEN, "Forbidden"),
    UnknownAction => ("unknown_action", BAD_REQUEST, "Unknown action"),
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, "Too many attempts"),
    ServiceUnavailable => ("service_unavailable", SERVICE_UNAVAILABLE, "Service unavailable"),
    InternalError => ("internal_error", INTERNAL_SERVER_ERROR, "Internal server error"),
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
    fault: Option<Fault>,
}

/// A failure on our side, with its source chain: it rides on the response as an extension
/// (never in the body) to `middleware::log_faults`, which logs it once with the request's
/// id, whichever handler or page answered.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Anything we did not expect (`AppError::Internal`).
    Internal(String),
    /// The database did not answer (`AppError::Unavailable`); the driver's words name
    /// hosts and ports, so they belong in the log, not in the body.
    Unavailable(String),
}

impl Fault {
    /// Adds this fault to those `res` answers for. A page that fails while showing an
    /// earlier failure answers for both, so each is logged.
    pub fn attach(self, res: &mut Response) {
        res.extensions_mut()
            .get_or_insert_default::<Faults>()
            .0
            .push(self);
    }
}

/// Every fault a response answers for (the one that answered first, then any it carries
/// from an earlier failure); taken off and logged
/// by `middleware::log_faults`.
#[derive(Debug, Clone, Default)]
pub struct Faults(pub Vec<Fault>);

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            www_authenticate: None,
            headers: Vec::new(),
            fault: None,
        }
    }

    pub fn code(&self) -> ProblemCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn retry_after(&self) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find_map(|(name, value)| (name == header::RETRY_AFTER).then_some(value))
    }

    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
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

    fn logged(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
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
            AppError::Unavailable(source) => Problem::new(
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
            .logged(Fault::Unavailable(error_chain(source.as_ref()))),
            AppError::Internal(source) => Problem::new(
                C::InternalError,
                "an unexpected error occurred; it has been logged",
            )
            .logged(Fault::Internal(error_chain(source.as_ref()))),
        }
    }
}

/// The wait a client is told after a database outage: longer than the default pool
/// deadline (3 s), so a retry lands after the pool has tried to reconnect at least once.
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
        let status = self.code.status();
        let body = ProblemBody {
            type_: format!("urn:tessera:problem:{}", self.code.as_str()),
            title: self.code.title().to_owned(),
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
        // The rest of an oversized body is never read, so the connection cannot carry
        // another request. Saying so keeps a keep-alive client from sending its next
        // request down a socket the server is about to close.
        if self.code == ProblemCode::PayloadTooLarge {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res.extensions_mut().insert(self.code);
        if let Some(fault) = self.fault {
            fault.attach(&mut res);
        }
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

//! What the pages show: one template struct per page (templates named after their page,
//! in `crates/server/templates`), the rows they list, and how an error reads on a page.
//! Askama escapes every value; the QR code is the one markup inserted as is, and it is
//! generated here from the otpauth URI, never taken from input.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tessera_app::ports::SecurityEvent;
use tessera_app::{AppError, DeviceSession};
use tessera_core::event::EventKind;
use time::OffsetDateTime;

use crate::problem::{Fault, Problem};

/// A rendered page with its status; a template that fails to render is a logged 500.
pub fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, Html(FALLBACK_ERROR)).into_response()
        }
    }
}

const FALLBACK_ERROR: &str = "<!doctype html><title>Error</title><p>Something went wrong on our side. It has been logged.</p>";

/// How a refused action reads on a page: the status and headers of the API's problem
/// (one status table, in `problem.rs`), a sentence for people instead of its body, and
/// the fault the problem carries to the log, if any.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub retry_after: Option<HeaderValue>,
    pub message: String,
    fault: Option<Fault>,
}

impl Failure {
    pub fn from_error(e: AppError) -> Self {
        let message = message_for(&e);
        let problem = Problem::from(e);
        Self {
            status: problem.status(),
            retry_after: problem.retry_after().cloned(),
            message,
            fault: problem.fault().cloned(),
        }
    }

    /// As `from_error`, with a spent budget named for what it counts (`what`: "Too many
    /// sign-ups from your network"), since not every budget counts failed attempts.
    pub fn from_error_counting(e: AppError, what: &str) -> Self {
        let limited = match &e {
            AppError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let mut failure = Self::from_error(e);
        if let Some(secs) = limited {
            failure.message = format!("{what}. Try again in {}.", wait(secs));
        }
        failure
    }

    /// The two copies of a new password differ (`field`: the second copy's form name).
    /// A 400 like any field out of bounds; checked before anything else, since a typo in
    /// either copy would lock the person out.
    pub fn passwords_differ(field: &'static str) -> Self {
        let mut failure = Self::from_error(AppError::invalid(field, "does not match"));
        failure.message = "The two passwords differ. Type the same password twice.".into();
        failure
    }

    /// `page` with this failure's status and `Retry-After` (and its fault, for the log).
    pub fn respond<T: Template>(&self, template: &T) -> Response {
        let mut res = page(self.status, template);
        if let Some(v) = &self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, v.clone());
        }
        self.carry_fault(&mut res);
        res
    }

    /// Makes `res`, which answers instead of this failure (showing it failed in turn),
    /// answer for this failure's fault too, so neither goes unlogged.
    pub fn carry_fault(&self, res: &mut Response) {
        if let Some(fault) = &self.fault {
            fault.clone().attach(res);
        }
    }
}

fn message_for(e: &AppError) -> String {
    match e {
        AppError::InvalidCredentials => "The email address or password is wrong.".into(),
        AppError::RateLimited {
            retry_after_secs, ..
        } => format!(
            "Too many failed attempts. Try again in {}.",
            wait(*retry_after_secs)
        ),
        // `new_password` reads "new password": the JSON name, for people.
        AppError::InvalidField { field, reason } => {
            format!("The {} {reason}.", field.replace('_', " "))
        }
        AppError::InvalidMfaCode => "That code is wrong, expired or already used.".into(),
        AppError::InvalidMfaToken => "Your sign-in took too long. Please start again.".into(),
        // Pages keep their tokens in cookies: any dead one means signing in again.
        AppError::SessionRevoked
        | AppError::SessionExpired
        | AppError::MissingToken
        | AppError::InvalidToken
        | AppError::InvalidRefreshToken
        | AppError::RefreshTokenReused => "Your session has ended. Please sign in again.".into(),
        AppError::MfaAlreadyEnabled => "Two-step verification is already on.".into(),
        AppError::MfaNotEnabled => "Two-step verification is off.".into(),
        AppError::NoPendingSetup => "Start the set-up again: it was replaced or finished.".into(),
        AppError::NotFound => "That device is no longer signed in.".into(),
        AppError::EmailTaken => "An account with this email address already exists.".into(),
        AppError::Overloaded { retry_after_secs } => format!(
            "The service is busy right now. Try again in {}.",
            wait(*retry_after_secs)
        ),
        AppError::Unavailable(_) => {
            "The service is briefly unavailable. Please try again in a few seconds.".into()
        }
        AppError::Forbidden => "Your account is not allowed to do this.".into(),
        AppError::MfaEnrollmentRequired => "This needs two-step verification. Turn it on \
            under Two-step verification on your account security page first."
            .into(),
        AppError::StepUpRequired { .. } => "Confirm it is you first: enter the current code \
            from your authenticator app under Two-step verification on your account security \
            page, then try again."
            .into(),
        AppError::UnknownAction => "That action is not known.".into(),
        AppError::UnsupportedProvider => "That way of signing in is not supported.".into(),
        AppError::InvalidResetToken => {
            "This reset link is unknown, already used or expired. Ask for a new one.".into()
        }
        AppError::Internal(_) => {
            "Something went wrong on our side. It has been logged; please try again.".into()
        }
    }
}

/// The `?notice=` of a page reached by a redirect after a form.
#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    pub notice: Option<String>,
}

/// The confirmation a page shows after a redirect. Only these fixed sentences can appear:
/// the query string picks one, it is never echoed.
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "device-revoked" => "That device has been signed out.",
        "device-gone" => "That device was already signed out.",
        "others-revoked" => "All your other devices have been signed out.",
        "mfa-disabled" => "Two-step verification is off.",
        "password-changed" => {
            "Your password has been changed. Every other device has been signed out."
        }
        "account-created" => "Your account has been created. Sign in to continue.",
        _ => return None,
    })
}

/// "45 seconds", "1 minute", "10 minutes" (rounded up: never tell someone to retry early).
pub fn wait(secs: u64) -> String {
    match secs {
        0..=1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        _ => {
            let minutes = secs.div_ceil(60);
            if minutes == 1 {
                "1 minute".into()
            } else {
                format!("{minutes} minutes")
            }
        }
    }
}

/// The form page again after `failure`, or the page as asked for (200).
pub fn page_after<T: Template>(failure: Option<&Failure>, template: &T) -> Response {
    match failure {
        Some(f) => f.respond(template),
        None => page(StatusCode::OK, template),
    }
}

/// An error page for a failure that has no form to go back to.
pub fn failure_page(e: AppError) -> Response {
    let failure = Failure::from_error(e);
    failure.respond(&ErrorPage {
        title: heading_for(failure.status),
        message: failure.message.clone(),
    })
}

/// The heading says whose move it is; "went wrong" is kept for our own faults, as in
/// `message_for`.
fn heading_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "Please confirm it is you",
        403 => "Not allowed",
        429 => "Too many attempts",
        500.. => "Something went wrong",
        _ => "That did not work",
    }
}

/// The answer to a form whose CSRF token does not match.
pub fn expired_form() -> Response {
    page(
        StatusCode::FORBIDDEN,
        &ErrorPage {
            title: "This form has expired",
            message: "For your security the form could not be sent. Go back, reload the page and try again.".into(),
        },
    )
}

/// On the way to `target` (this origin's path): see `session::continue_page`.
#[derive(Template)]
#[template(path = "session_continue.html")]
pub struct ContinuePage {
    pub target: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    /// The address is taken: offer sign-in and a reset instead.
    pub taken: bool,
}

#[derive(Template)]
#[template(path = "account_password.html")]
pub struct AccountPasswordPage {
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordPage {
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
}

/// What anyone who asked for a link sees, whether or not the address has an account.
#[derive(Template)]
#[template(path = "forgot_password_sent.html")]
pub struct ForgotPasswordSentPage {
    pub email: String,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordPage {
    pub csrf: String,
    /// The emailed link's token, carried in a hidden field (never in a URL the form posts).
    pub token: String,
    pub error: Option<String>,
}

/// After a reset (`done`), or for a link that is unknown, used or expired.
#[derive(Template)]
#[template(path = "reset_password_result.html")]
pub struct ResetPasswordResultPage {
    pub done: bool,
}

#[derive(Template)]
#[template(path = "login_mfa.html")]
pub struct LoginMfaPage {
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "account_security.html")]
pub struct AccountSecurityPage {
    pub csrf: String,
    pub email: String,
    pub mfa_on: bool,
    pub recovery_codes_left: u32,
    pub devices: Vec<DeviceRow>,
    pub events: Vec<EventRow>,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa_setup.html")]
pub struct MfaSetupPage {
    pub csrf: String,
    pub secret: String,
    /// The secret in groups of four, easier to type.
    pub secret_grouped: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
    pub error: Option<String>,
}

impl MfaSetupPage {
    pub fn new(csrf: String, setup: tessera_app::TotpSetup, error: Option<String>) -> Self {
        Self {
            csrf,
            secret_grouped: group(&setup.secret, 4),
            secret: setup.secret,
            otpauth_uri: setup.otpauth_uri,
            qr_svg: inline_svg(&setup.qr_svg),
            error,
        }
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    /// "enabled" after set-up, "regenerated" after asking for new ones.
    pub regenerated: bool,
    pub codes: Vec<String>,
}

impl RecoveryCodesPage {
    /// The codes as a `data:` URL for the download link (one code per line).
    pub fn download_href(&self) -> String {
        let mut text = String::from(
            "Tessera recovery codes. Each works once, in place of a code from your app.\n",
        );
        for code in &self.codes {
            text.push_str(code);
            text.push('\n');
        }
        let mut href = String::from("data:text/plain;charset=utf-8,");
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                href.push(char::from(b));
            } else {
                href.push_str(&format!("%{b:02X}"));
            }
        }
        href
    }
}

/// One session on the account page.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub session_id: String,
    /// The user's name for the device if it gave one, else the readable label.
    pub title: String,
    /// The readable label, when the title is the user's own name.
    pub subtitle: Option<String>,
    pub ip: String,
    pub signed_in: Stamp,
    pub last_active: Stamp,
    pub current: bool,
}

impl From<DeviceSession> for DeviceRow {
    fn from(d: DeviceSession) -> Self {
        let s = d.session;
        let name = s
            .device_name
            .map(|n| n.as_str().to_owned())
            .filter(|n| !n.trim().is_empty());
        let (title, subtitle) = match name {
            Some(name) => (name, Some(d.label)),
            None => (d.label, None),
        };
        Self {
            session_id: s.state.id.to_string(),
            title,
            subtitle,
            ip: s
                .ip
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            signed_in: Stamp::new(s.created_at),
            last_active: Stamp::new(s.last_seen_at),
            current: d.current,
        }
    }
}

/// One recent security event.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub what: &'static str,
    pub warning: bool,
    pub ip: Option<String>,
    pub device: Option<String>,
    pub at: Stamp,
}

impl From<SecurityEvent> for EventRow {
    fn from(e: SecurityEvent) -> Self {
        let (what, warning) = describe(e.kind);
        Self {
            what,
            warning,
            ip: e.ip.map(|ip| ip.to_string()),
            device: e
                .user_agent
                .as_deref()
                .map(|ua| tessera_core::device::label(Some(ua))),
            at: Stamp::new(e.at),
        }
    }
}

/// What an event means to the account's owner, and whether it deserves attention.
fn describe(kind: EventKind) -> (&'static str, bool) {
    match kind {
        EventKind::UserRegistered => ("Account created", false),
        EventKind::LoginSucceeded => ("Signed in", false),
        EventKind::LoginFailed => ("Failed sign-in attempt", true),
        EventKind::LoginRateLimited => ("Sign-in attempts blocked after too many failures", true),
        EventKind::MfaFailed => ("Wrong verification code entered", true),
        EventKind::NewDevice => ("Signed in on a new device", true),
        EventKind::SessionRevoked => ("A device was signed out", false),
        EventKind::RefreshTokenReused => (
            "A stolen sign-in was detected and that device was signed out",
            true,
        ),
        EventKind::PasswordChanged => ("Password changed", true),
        EventKind::MfaEnabled => ("Two-step verification turned on", false),
        EventKind::MfaDisabled => ("Two-step verification turned off", true),
        EventKind::MfaResetByAdmin => ("Two-step verification reset by support", true),
        EventKind::RecoveryCodeUsed => ("A recovery code was used", true),
        EventKind::RecoveryCodesRegenerated => ("New recovery codes created", false),
        EventKind::StepUpSucceeded => ("Identity confirmed with a code", false),
        EventKind::RolesChanged => ("Account roles changed", true),
        EventKind::PasswordResetRequested => ("Password reset link emailed", true),
        EventKind::PasswordReset => ("Password reset by email link", true),
        EventKind::AccountDisabled => ("Account disabled by support", true),
        EventKind::AccountEnabled => ("Account enabled again by support", true),
    }
}

/// A moment, for people (`2026-11-29 22:15 UTC`) and machines (RFC 3339).
#[derive(Debug, Clone)]
pub struct Stamp {
    pub text: String,
    pub iso: String,
}

impl Stamp {
    pub fn new(t: OffsetDateTime) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        let text = format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        );
        Self {
            text,
            iso: crate::api::sessions::rfc3339(t),
        }
    }
}

/// The QR code as markup to place inside HTML: without its XML declaration, labelled
/// for screen readers.
fn inline_svg(svg: &str) -> String {
    let body = match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => svg,
    };
    body.replacen(
        "<svg",
        r#"<svg role="img" aria-label="QR code to scan with your authenticator app" focusable="false""#,
        1,
    )
}

fn group(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(n)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

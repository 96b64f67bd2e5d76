//! The email bodies: what happened, when, from which device and IP, and what to do if it
//! was not the user, rendered into a plain-text and an HTML template (askama, HTML
//! auto-escaped: the device description comes from the client).

use askama::Template;
use tessera_app::ports::OutgoingMessage;
use tessera_core::event::EventKind;
use time::format_description::well_known::Rfc3339;

/// How long a reset link lives (API.md, "Password reset"); said in the email.
const RESET_LINK_MINUTES: u32 = 30;

/// The facts both bodies show, already turned into words.
struct Facts {
    headline: String,
    when: String,
    device: String,
    ip: String,
    security_url: String,
    /// The reset email's link (a credential: it goes into the body and nowhere else).
    reset_link: Option<String>,
    reset_minutes: u32,
}

#[derive(Template)]
#[template(path = "notify/notice.txt", escape = "none")]
struct TextBody<'a> {
    f: &'a Facts,
}

#[derive(Template)]
#[template(path = "notify/notice.html")]
struct HtmlBody<'a> {
    f: &'a Facts,
    subject: &'a str,
}

/// Subject, plain text and HTML for one message.
pub(super) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub(super) fn render(message: &OutgoingMessage, issuer: &str) -> Result<Rendered, askama::Error> {
    let facts = Facts {
        headline: headline(message),
        when: message
            .at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_else(|_| message.at.unix_timestamp().to_string()),
        device: device(message),
        ip: message
            .ip
            .map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
        security_url: format!("{}/account/security", issuer.trim_end_matches('/')),
        reset_link: message.reset_link.clone(),
        reset_minutes: RESET_LINK_MINUTES,
    };
    let subject = subject(message.kind).to_owned();
    Ok(Rendered {
        text: TextBody { f: &facts }.render()?,
        html: HtmlBody {
            f: &facts,
            subject: &subject,
        }
        .render()?,
        subject,
    })
}

/// The name the user gave the device, then what its client says it is; both shown as
/// given (and escaped in HTML), since a thief can set either.
fn device(message: &OutgoingMessage) -> String {
    let shown = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = shown(
        message
            .detail
            .get("device_name")
            .and_then(serde_json::Value::as_str),
    );
    let agent = shown(message.user_agent.as_deref());
    match (name, agent) {
        (Some(name), Some(agent)) => format!("{name} ({agent})"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "an unidentified device".to_owned(),
    }
}

fn subject(kind: EventKind) -> &'static str {
    match kind {
        EventKind::NewDevice => "New sign-in to your account",
        EventKind::SessionRevoked => "A session on your account was signed out",
        EventKind::RefreshTokenReused => "A copied sign-in was stopped on your account",
        EventKind::MfaEnabled => "Two-factor authentication turned on",
        EventKind::MfaDisabled => "Two-factor authentication turned off",
        EventKind::MfaResetByAdmin => "Two-factor authentication reset by an administrator",
        EventKind::RecoveryCodeUsed => "A recovery code was used",
        EventKind::PasswordChanged => "Your password was changed",
        EventKind::PasswordResetRequested => "Reset your password",
        EventKind::PasswordReset => "Your password was reset",
        EventKind::AccountDisabled => "Your account was disabled",
        EventKind::AccountEnabled => "Your account was enabled again",
        _ => "Security activity on your account",
    }
}

fn headline(message: &OutgoingMessage) -> String {
    match message.kind {
        EventKind::NewDevice => {
            "Your account was signed in to from a device it had not seen before.".into()
        }
        EventKind::SessionRevoked => {
            match message
                .detail
                .get("sessions_revoked")
                .and_then(|n| n.as_u64())
            {
                Some(n) if n > 1 => format!(
                    "{n} of your sessions were signed out by someone other than those devices."
                ),
                _ => {
                    "One of your sessions was signed out by someone other than that device.".into()
                }
            }
        }
        EventKind::RefreshTokenReused => {
            "A sign-in token of yours was used twice, which means it was copied; \
             we signed out every device that shared it."
                .into()
        }
        EventKind::MfaEnabled => "Two-factor authentication was turned on for your account.".into(),
        EventKind::MfaDisabled => {
            "Two-factor authentication was turned off for your account.".into()
        }
        EventKind::MfaResetByAdmin => {
            "An administrator removed two-factor authentication from your account; \
             you will be asked to set it up again."
                .into()
        }
        EventKind::RecoveryCodeUsed => {
            match message.detail.get("remaining").and_then(|r| r.as_u64()) {
                Some(n) => format!(
                    "A recovery code was used to sign in to your account; {n} unused codes remain."
                ),
                None => "A recovery code was used to sign in to your account.".into(),
            }
        }
        EventKind::PasswordChanged => "The password of your account was changed.".into(),
        EventKind::PasswordResetRequested => {
            "Someone asked to reset the password of your account.".into()
        }
        EventKind::PasswordReset => {
            "The password of your account was reset, and every device signed in to it was \
             signed out."
                .into()
        }
        EventKind::AccountDisabled => {
            "An administrator disabled your account and signed out every device signed in \
             to it; it cannot be signed in to until it is enabled again."
                .into()
        }
        EventKind::AccountEnabled => {
            "An administrator enabled your account again; it can be signed in to with its \
             password."
                .into()
        }
        other => format!(
            "There was security activity on your account ({}).",
            other.as_str()
        ),
    }
}

//! The email bodies: one sentence per kind, rendered into a plain-text and an HTML
//! template (askama, HTML auto-escaped: the device description comes from the client).

use askama::Template;
use tessera_core::event::EventKind;
use time::format_description::well_known::Rfc3339;

use super::Message;

/// The facts both bodies show, already turned into words.
struct Facts {
    headline: String,
    when: String,
    device: String,
    ip: String,
    security_url: String,
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

pub(super) fn render(message: &Message, issuer: &str) -> Result<Rendered, askama::Error> {
    let facts = Facts {
        headline: headline(message),
        when: message
            .at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_else(|_| message.at.unix_timestamp().to_string()),
        device: message
            .user_agent
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or("an unidentified device")
            .to_owned(),
        ip: message
            .ip
            .map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
        security_url: format!("{}/account/security", issuer.trim_end_matches('/')),
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
        _ => "Security activity on your account",
    }
}

fn headline(message: &Message) -> String {
    match message.kind {
        EventKind::NewDevice => {
            "Your account was signed in to from a device it had not seen before.".into()
        }
        EventKind::SessionRevoked => {
            "One of your sessions was signed out by someone other than that device.".into()
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
        other => format!(
            "There was security activity on your account ({}).",
            other.as_str()
        ),
    }
}

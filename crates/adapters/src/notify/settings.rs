//! The channel settings, parsed and checked once at start so that a typo stops `serve`
//! with a clear message instead of losing every notification later.

use std::fmt;

use url::Url;

/// A setting the operator must fix. The message never repeats a password or secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn err(message: impl Into<String>) -> SettingsError {
    SettingsError(message.into())
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://host:port`: no TLS at all (a local relay or a test sink).
    Plain,
    /// `smtp://…?tls=starttls`: upgraded with STARTTLS, refused if the server cannot.
    StartTls,
    /// `smtps://…`: TLS from the first byte.
    Implicit,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, as given in `TESSERA_SMTP_FROM` (checked to be a mailbox).
    pub from: String,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpSettings {
    /// Accepts `smtp://host:port` (plain), `smtp://user:pass@host:587?tls=starttls`
    /// and `smtps://user:pass@host:465`; anything else is an error that shows the URL
    /// without its password.
    pub fn parse(raw: &str, from: &str) -> Result<Self, SettingsError> {
        let url = Url::parse(raw).map_err(|e| {
            err(format!(
                "TESSERA_SMTP_URL is not a URL ({e}); expected smtp://host:port, \
                 smtp://user:pass@host:587?tls=starttls or smtps://user:pass@host:465"
            ))
        })?;
        let shown = redacted(&url);
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "starttls") if tls.is_none() => tls = Some(SmtpSecurity::StartTls),
                _ => {
                    return Err(err(format!(
                        "TESSERA_SMTP_URL {shown}: the only query option is tls=starttls"
                    )));
                }
            }
        }
        let (security, default_port) = match (url.scheme(), tls) {
            ("smtp", None) => (SmtpSecurity::Plain, 25),
            ("smtp", Some(t)) => (t, 587),
            ("smtps", None) => (SmtpSecurity::Implicit, 465),
            ("smtps", Some(_)) => {
                return Err(err(format!(
                    "TESSERA_SMTP_URL {shown}: smtps:// is already TLS; drop ?tls=starttls"
                )));
            }
            (other, _) => {
                return Err(err(format!(
                    "TESSERA_SMTP_URL {shown}: the scheme must be smtp or smtps, not {other:?}"
                )));
            }
        };
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ => return Err(err(format!("TESSERA_SMTP_URL {shown}: no host"))),
        };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(err(format!(
                "TESSERA_SMTP_URL {shown}: a path or fragment means nothing here"
            )));
        }
        let decode = |s: &str, what: &str| {
            percent_decode(s).ok_or_else(|| {
                err(format!(
                    "TESSERA_SMTP_URL {shown}: the {what} is not valid UTF-8"
                ))
            })
        };
        let username = (!url.username().is_empty())
            .then(|| decode(url.username(), "user name"))
            .transpose()?;
        let password = url.password().map(|p| decode(p, "password")).transpose()?;
        if username.is_some() != password.is_some() {
            return Err(err(format!(
                "TESSERA_SMTP_URL {shown}: give both a user name and a password, or neither"
            )));
        }
        if password.is_some() && security == SmtpSecurity::Plain {
            return Err(err(format!(
                "TESSERA_SMTP_URL {shown}: a password over plain smtp:// would cross the \
                 network in the clear; use ?tls=starttls or smtps://"
            )));
        }
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(format!(
                "TESSERA_SMTP_FROM {from:?} is not an address (name <user@example.com> or \
                 user@example.com)"
            )));
        }
        Ok(Self {
            host: host.to_owned(),
            port: url.port().unwrap_or(default_port),
            security,
            username,
            password,
            from: from.to_owned(),
        })
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: Url,
    pub secret: String,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &redacted(&self.url))
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl WebhookSettings {
    /// `http://` or `https://` (verified against the webpki roots).
    pub fn parse(raw: &str, secret: &str) -> Result<Self, SettingsError> {
        let url =
            Url::parse(raw).map_err(|e| err(format!("TESSERA_WEBHOOK_URL is not a URL ({e})")))?;
        let shown = redacted(&url);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(format!(
                "TESSERA_WEBHOOK_URL {shown}: the scheme must be http or https, not {:?}",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err(format!("TESSERA_WEBHOOK_URL {shown}: no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(format!(
                "TESSERA_WEBHOOK_URL {shown}: credentials in the URL are not sent; the \
                 signature authenticates the request"
            )));
        }
        if secret.len() < 16 {
            return Err(err(
                "TESSERA_WEBHOOK_SECRET must be at least 16 characters (a random string)",
            ));
        }
        Ok(Self {
            url,
            secret: secret.to_owned(),
        })
    }
}

/// What `serve` needs to build its channels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelSettings {
    pub smtp: Option<SmtpSettings>,
    pub webhook: Option<WebhookSettings>,
    /// The public base URL (`TESSERA_ISSUER`); emails link to `<issuer>/account/security`.
    pub issuer: String,
}

impl ChannelSettings {
    /// The names of the channels these settings turn on (the log when neither is set),
    /// as the outbox rows name them.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.smtp.is_some() {
            names.push("smtp".to_owned());
        }
        if self.webhook.is_some() {
            names.push("webhook".to_owned());
        }
        if names.is_empty() {
            names.push("log".to_owned());
        }
        names
    }

    /// From the four raw settings; each pair is all or nothing.
    pub fn from_raw(
        smtp_url: Option<&str>,
        smtp_from: Option<&str>,
        webhook_url: Option<&str>,
        webhook_secret: Option<&str>,
        issuer: &str,
    ) -> Result<Self, SettingsError> {
        let smtp = match (smtp_url, smtp_from) {
            (Some(url), Some(from)) => Some(SmtpSettings::parse(url, from)?),
            (None, None) => None,
            (Some(_), None) => return Err(err("TESSERA_SMTP_URL needs TESSERA_SMTP_FROM")),
            (None, Some(_)) => return Err(err("TESSERA_SMTP_FROM needs TESSERA_SMTP_URL")),
        };
        let webhook = match (webhook_url, webhook_secret) {
            (Some(url), Some(secret)) => Some(WebhookSettings::parse(url, secret)?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(err("TESSERA_WEBHOOK_URL needs TESSERA_WEBHOOK_SECRET"));
            }
            (None, Some(_)) => {
                return Err(err("TESSERA_WEBHOOK_SECRET needs TESSERA_WEBHOOK_URL"));
            }
        };
        Ok(Self {
            smtp,
            webhook,
            issuer: issuer.trim_end_matches('/').to_owned(),
        })
    }
}

/// The URL as it may be shown: scheme, host, port and path, no user or password.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(unescape_hex(s, b'%')).ok()
}

/// `s` with every `<escape>XX` (two hex digits) replaced by that byte; an escape not
/// followed by two hex digits stays as it is. Percent-encoding and quoted-printable
/// differ only in the escape.
pub(super) fn unescape_hex(s: &str, escape: u8) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == escape
            && let Some(hex) = s.get(i + 1..i + 3)
            // from_str_radix alone would also take "+1".
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "Tessera <security@example.com>";

    #[test]
    fn hex_escapes_decode_under_either_escape_and_a_broken_one_stays() {
        assert_eq!(unescape_hex("me%40x%3a%zz%4", b'%'), b"me@x:%zz%4");
        assert_eq!(unescape_hex("caf=C3=A9 =3D=", b'='), "café ==".as_bytes());
        // A sign is not a hex digit, although from_str_radix would take it.
        assert_eq!(unescape_hex("a%+1b", b'%'), b"a%+1b");
    }

    #[test]
    fn the_three_smtp_url_forms_parse_to_their_security_and_port() {
        let plain = SmtpSettings::parse("smtp://127.0.0.1:2525", FROM).unwrap();
        assert_eq!((plain.security, plain.port), (SmtpSecurity::Plain, 2525));
        assert_eq!(plain.username, None);
        let starttls = SmtpSettings::parse(
            "smtp://me%40x.org:p%3Ass@mail.example.com:587?tls=starttls",
            FROM,
        )
        .unwrap();
        assert_eq!(starttls.security, SmtpSecurity::StartTls);
        assert_eq!(starttls.username.as_deref(), Some("me@x.org"));
        assert_eq!(starttls.password.as_deref(), Some("p:ss"));
        assert_eq!(starttls.host, "mail.example.com");
        let implicit = SmtpSettings::parse("smtps://u:p@mail.example.com", FROM).unwrap();
        assert_eq!(
            (implicit.security, implicit.port),
            (SmtpSecurity::Implicit, 465)
        );
    }

    #[test]
    fn a_bad_smtp_url_is_refused_without_echoing_its_password() {
        for bad in [
            "http://u:hunter2hunter2@mail.example.com",
            "smtp://u:hunter2hunter2@mail.example.com:587?tls=maybe",
            "smtps://u:hunter2hunter2@mail.example.com?tls=starttls",
            "smtp://u:hunter2hunter2@mail.example.com:25",
            "smtp://u:hunter2hunter2@mail.example.com:587/path?tls=starttls",
        ] {
            let e = SmtpSettings::parse(bad, FROM).unwrap_err().to_string();
            assert!(e.starts_with("TESSERA_SMTP_URL"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let debug = format!(
            "{:?}",
            SmtpSettings::parse("smtps://u:hunter2hunter2@h", FROM).unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn a_sender_that_is_not_an_address_is_refused() {
        let e = SmtpSettings::parse("smtp://h:25", "not an address").unwrap_err();
        assert!(e.to_string().contains("TESSERA_SMTP_FROM"), "{e}");
    }

    #[test]
    fn a_webhook_url_is_http_or_https_and_its_secret_is_long_enough() {
        assert!(WebhookSettings::parse("https://hooks.example.com/x", "0123456789abcdef").is_ok());
        assert!(WebhookSettings::parse("http://127.0.0.1:9/x", "0123456789abcdef").is_ok());
        let e = WebhookSettings::parse("ftp://h/x", "0123456789abcdef").unwrap_err();
        assert!(e.to_string().contains("http or https"), "{e}");
        assert!(WebhookSettings::parse("http://127.0.0.1:9/x", "short").is_err());
    }

    #[test]
    fn each_pair_of_settings_is_all_or_nothing() {
        let i = "https://id.example.com/";
        assert!(ChannelSettings::from_raw(Some("smtp://h:25"), None, None, None, i).is_err());
        assert!(ChannelSettings::from_raw(None, Some(FROM), None, None, i).is_err());
        assert!(ChannelSettings::from_raw(None, None, Some("http://h/x"), None, i).is_err());
        assert!(ChannelSettings::from_raw(None, None, None, Some("0123456789abcdef"), i).is_err());
        let none = ChannelSettings::from_raw(None, None, None, None, i).unwrap();
        assert_eq!(none.issuer, "https://id.example.com");
        assert!(none.smtp.is_none() && none.webhook.is_none());
    }
}

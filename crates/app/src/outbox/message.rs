//! Turning a claimed row into the message a channel sends: its sealed secret opened and
//! made into what the user needs (for the reset email, the link).

use tessera_core::crypto::MasterKeyRing;
use tessera_core::event::EventKind;

use crate::app::NOTICE_SECRET_PURPOSE;
use crate::ports::{Delivery, OutgoingMessage};

/// Why a row can never be sent (it is marked dead with this reason; never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsendable(pub(crate) String);

pub(crate) fn outgoing(
    delivery: &Delivery,
    master: &MasterKeyRing,
    issuer: &str,
) -> Result<OutgoingMessage, Unsendable> {
    let secret = match &delivery.sealed_secret {
        None => None,
        Some(sealed) => {
            let opened = master
                .open(sealed, NOTICE_SECRET_PURPOSE, &delivery.id.to_string())
                .map_err(|e| Unsendable(format!("its sealed secret does not open: {e}")))?;
            Some(
                String::from_utf8(opened.to_vec())
                    .map_err(|_| Unsendable("its sealed secret is not text".into()))?,
            )
        }
    };
    let reset_link = match (delivery.kind, secret) {
        (EventKind::PasswordResetRequested, Some(token)) => Some(reset_link(issuer, &token)),
        // A reset email without its link would only confuse the user.
        (EventKind::PasswordResetRequested, None) => {
            return Err(Unsendable("a reset email without its token".into()));
        }
        // No other kind carries a secret; one that did is dropped here, unsent.
        (_, _) => None,
    };
    Ok(OutgoingMessage {
        id: delivery.id,
        kind: delivery.kind,
        at: delivery.at,
        user_id: delivery.user_id,
        email: delivery.email.clone(),
        session_id: delivery.session_id,
        ip: delivery.ip,
        user_agent: delivery.user_agent.clone(),
        detail: delivery.detail.clone(),
        reset_link,
    })
}

/// `<issuer>/reset-password?token=<token>`, the token percent-encoded (it is URL-safe
/// base64 today; encoding keeps the link whole whatever it becomes).
pub(crate) fn reset_link(issuer: &str, token: &str) -> String {
    let mut link = format!("{}/reset-password?token=", issuer.trim_end_matches('/'));
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            link.push(char::from(b));
        } else {
            link.push_str(&format!("%{b:02X}"));
        }
    }
    link
}

#[cfg(test)]
mod tests {
    use tessera_core::Email;
    use tessera_core::crypto::MasterKey;
    use tessera_core::ids::{EventId, NotificationId, UserId};

    use super::*;

    fn ring(byte: u8) -> MasterKeyRing {
        MasterKey::from_bytes([byte; 32]).into()
    }

    fn delivery(kind: EventKind, sealed_secret: Option<Vec<u8>>) -> Delivery {
        Delivery {
            id: NotificationId::from_random([3; 16]),
            channel: "smtp".into(),
            event_id: EventId::from_random([4; 16]),
            user_id: UserId::from_random([5; 16]),
            email: Email::parse("a@example.com").unwrap(),
            kind,
            at: time::macros::datetime!(2026-12-06 07:00 UTC),
            session_id: None,
            ip: None,
            user_agent: None,
            detail: serde_json::json!({}),
            sealed_secret,
            attempts: 1,
        }
    }

    fn sealed(ring: &MasterKeyRing, owner: NotificationId, secret: &str) -> Vec<u8> {
        ring.seal(
            [8; 24],
            NOTICE_SECRET_PURPOSE,
            &owner.to_string(),
            secret.as_bytes(),
        )
    }

    #[test]
    fn a_reset_email_carries_the_link_built_from_its_opened_token() {
        let keys = ring(1);
        let id = NotificationId::from_random([3; 16]);
        let d = delivery(
            EventKind::PasswordResetRequested,
            Some(sealed(&keys, id, "tok_EN-1")),
        );
        let m = outgoing(&d, &keys, "https://id.example.com/").unwrap();
        assert_eq!(
            m.reset_link.as_deref(),
            Some("https://id.example.com/reset-password?token=tok_EN-1")
        );
        assert!(
            !format!("{m:?}").contains("tok_EN-1"),
            "Debug must hide the link"
        );
    }

    #[test]
    fn a_secret_sealed_for_another_notification_or_key_does_not_open() {
        let keys = ring(1);
        let other = NotificationId::from_random([9; 16]);
        let moved = delivery(
            EventKind::PasswordResetRequested,
            Some(sealed(&keys, other, "t")),
        );
        assert!(outgoing(&moved, &keys, "https://x").is_err());
        let id = NotificationId::from_random([3; 16]);
        let foreign = delivery(
            EventKind::PasswordResetRequested,
            Some(sealed(&ring(2), id, "t")),
        );
        assert!(outgoing(&foreign, &keys, "https://x").is_err());
        let missing = delivery(EventKind::PasswordResetRequested, None);
        assert!(outgoing(&missing, &keys, "https://x").is_err());
    }

    #[test]
    fn other_kinds_carry_no_link() {
        let keys = ring(1);
        let m = outgoing(&delivery(EventKind::NewDevice, None), &keys, "https://x").unwrap();
        assert_eq!(m.reset_link, None);
    }

    #[test]
    fn characters_outside_the_url_safe_set_are_encoded_in_the_link() {
        assert_eq!(
            reset_link("https://x", "a+b/c=&d"),
            "https://x/reset-password?token=a%2Bb%2Fc%3D%26d"
        );
    }
}

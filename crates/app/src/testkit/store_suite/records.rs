//! Security events and signing keys.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::json;
use tessera_core::event::EventKind;
use tessera_core::ids::{EventId, KeyId, SessionId, UserId};
use time::Duration;

use super::{T0, given_user, random};
use crate::ports::{SecurityEvent, Store, StoredSigningKey};

fn event(user: UserId, kind: EventKind, minutes: i64) -> SecurityEvent {
    SecurityEvent {
        id: EventId::from_random(random()),
        user_id: user,
        kind,
        at: T0 + Duration::minutes(minutes),
        ip: None,
        user_agent: None,
        session_id: None,
        detail: json!({}),
    }
}

/// Every field of an event survives the store (IPv4 and IPv6 addresses, nested JSON
/// detail), and a user's events list newest first, at most `limit`, theirs only.
pub async fn events_round_trip_every_field_and_list_newest_first<S: Store>(store: S) {
    let user = given_user(&store).await;
    let stranger = given_user(&store).await;

    let mut login = event(user, EventKind::LoginSucceeded, 0);
    login.ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
    login.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) «quoted»".into());
    login.session_id = Some(SessionId::from_random(random()));
    login.detail = json!({"device_id": "phone", "new_device": true, "n": 3, "tags": ["a", "b"]});
    let mut failed = event(user, EventKind::LoginFailed, 1);
    failed.ip = Some(IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x42,
    )));
    failed.detail = json!({"reason": "invalid_credentials", "actor": {"kind": "user"}});
    let revoked = event(user, EventKind::SessionRevoked, 2);
    let theirs = event(stranger, EventKind::PasswordChanged, 3);
    for e in [&failed, &login, &theirs, &revoked] {
        store.insert_event(e, None).await.unwrap();
    }

    let all = store.list_events(user, 50).await.unwrap();
    assert_eq!(all, vec![revoked.clone(), failed.clone(), login]);
    let newest_two = store.list_events(user, 2).await.unwrap();
    assert_eq!(newest_two, vec![revoked, failed]);
    assert_eq!(store.list_events(stranger, 50).await.unwrap(), vec![theirs]);
    assert!(store.list_events(user, 0).await.unwrap().is_empty());
}

/// Events recorded in the same instant (one request often records several) list in the
/// reverse of the order they were written, whatever their random ids.
pub async fn events_at_the_same_instant_list_in_reverse_write_order<S: Store>(store: S) {
    let user = given_user(&store).await;
    let written: Vec<SecurityEvent> = [
        EventKind::UserRegistered,
        EventKind::LoginSucceeded,
        EventKind::NewDevice,
        EventKind::LoginFailed,
        EventKind::SessionRevoked,
        EventKind::MfaEnabled,
    ]
    .into_iter()
    .map(|kind| event(user, kind, 0))
    .collect();
    for e in &written {
        store.insert_event(e, None).await.unwrap();
    }
    let mut expected = written;
    expected.reverse();
    assert_eq!(store.list_events(user, 50).await.unwrap(), expected);
}

fn key(seed_byte: u8, created_days: i64) -> StoredSigningKey {
    let public_key = [seed_byte; 32];
    StoredSigningKey {
        kid: KeyId::for_public_key(&public_key),
        public_key,
        sealed_seed: vec![seed_byte, 0, 1, 2, 3, 255],
        created_at: T0 + Duration::days(created_days),
    }
}

/// Signing keys read back exactly, newest first; inserting a key id again is harmless
/// and keeps the first copy.
pub async fn signing_keys_round_trip_newest_first_and_insert_is_idempotent<S: Store>(store: S) {
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    let old = key(1, 0);
    let new = key(2, 30);
    store.insert_signing_key(&old).await.unwrap();
    store.insert_signing_key(&new).await.unwrap();
    store.insert_signing_key(&old).await.unwrap();
    let mut imposter = old.clone();
    imposter.sealed_seed = vec![9, 9, 9];
    store.insert_signing_key(&imposter).await.unwrap();

    assert_eq!(store.list_signing_keys().await.unwrap(), vec![new, old]);
}

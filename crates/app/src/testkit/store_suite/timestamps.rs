//! Exact round trips of stored instants and of every session field.

use std::net::{IpAddr, Ipv6Addr};

use serde_json::json;
use tessera_core::event::EventKind;
use tessera_core::ids::{DeviceName, EventId, KeyId};
use tessera_core::jwt::Assurance;
use tessera_core::session::RevokeReason;
use time::Duration;
use time::macros::{datetime, offset};

use super::{T0, device, given_user, random, rotation, session_on};
use crate::ports::{SecurityEvent, Store, StoredSigningKey, SwapOutcome};

/// Every instant the store keeps reads back equal to the microsecond, including ones
/// given in a non-UTC offset and ones before the Unix epoch.
pub async fn timestamps_round_trip_to_the_microsecond<S: Store>(store: S) {
    let user = given_user(&store).await;
    let created = datetime!(2026-03-01 09:15:30.000001 UTC);
    let mut login = session_on(user, "phone", created);
    login.idle_expires_at = datetime!(2026-03-01 10:15:30.999999 UTC);
    login.absolute_expires_at = datetime!(2026-03-31 23:59:59.500001 +02:00);
    login.auth_time = datetime!(2026-03-01 09:15:29.654321 UTC);
    login.mfa_verified_at = Some(datetime!(1969-12-31 23:59:59.999999 UTC));
    store.insert_session(&login).await.unwrap();

    let rotated_at = datetime!(2026-03-01 09:45:00.424242 -05:00);
    let mut swap = rotation(login.id, login.refresh_hash, rotated_at);
    swap.idle_expires_at = datetime!(2026-03-01 15:45:00.000007 UTC);
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
    let revoked_at = datetime!(2026-03-02 00:00:00.000003 UTC);
    store
        .revoke_session(login.id, RevokeReason::Logout, revoked_at)
        .await
        .unwrap();

    let record = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(record.created_at, created);
    assert_eq!(record.last_seen_at, rotated_at);
    assert_eq!(record.state.idle_expires_at, swap.idle_expires_at);
    assert_eq!(record.state.absolute_expires_at, login.absolute_expires_at);
    assert_eq!(record.auth_time, login.auth_time);
    assert_eq!(record.mfa_verified_at, login.mfa_verified_at);
    assert_eq!(
        record.state.revoked,
        Some((revoked_at, RevokeReason::Logout))
    );
    let old = store
        .get_refresh(&login.refresh_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.rotated_at, Some(rotated_at));

    let at = datetime!(2031-07-04 12:00:00.000123 +05:30);
    let event = SecurityEvent {
        id: EventId::from_random(random()),
        user_id: user,
        kind: EventKind::NewDevice,
        at,
        ip: None,
        user_agent: None,
        session_id: None,
        detail: json!(null),
    };
    store.insert_event(&event, None).await.unwrap();
    assert_eq!(store.list_events(user, 1).await.unwrap()[0].at, at);

    let key = StoredSigningKey {
        kid: KeyId::for_public_key(&[5; 32]),
        public_key: [5; 32],
        sealed_seed: vec![1],
        created_at: datetime!(2001-09-09 01:46:40.000001 UTC).to_offset(offset!(-09:30)),
    };
    store.insert_signing_key(&key).await.unwrap();
    assert_eq!(
        store.list_signing_keys().await.unwrap()[0].created_at,
        key.created_at
    );

    let registered = store.get_user(user).await.unwrap().unwrap();
    assert_eq!(registered.created_at, T0);
}

/// A session reads back with every field it was given, and a rotation changes exactly
/// what it should (last seen, idle deadline, IP; the user agent only when one is sent).
pub async fn a_session_reads_back_every_field_it_was_given<S: Store>(store: S) {
    let user = given_user(&store).await;
    let mut login = session_on(user, "ios-1.2:ABC_z", T0);
    login.device_name = Some(DeviceName::parse("Zoë's “iPhone”").unwrap());
    login.ip = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
    login.assurance = Assurance::PasswordAndOtp;
    login.mfa_verified_at = Some(T0 - Duration::seconds(3));
    store.insert_session(&login).await.unwrap();

    let record = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(record.state.id, login.id);
    assert_eq!(record.state.user_id, user);
    assert_eq!(record.state.revoked, None);
    assert_eq!(record.device_id, device("ios-1.2:ABC_z"));
    assert_eq!(record.device_name, login.device_name);
    assert_eq!(record.user_agent, login.user_agent);
    assert_eq!(record.ip, login.ip);
    assert_eq!(record.created_at, T0);
    assert_eq!(record.last_seen_at, T0);
    assert_eq!(record.assurance, Assurance::PasswordAndOtp);
    assert_eq!(record.auth_time, T0);
    assert_eq!(record.mfa_verified_at, login.mfa_verified_at);
    assert_eq!(record.refresh_generation, 0);

    let now = T0 + Duration::minutes(7);
    let mut swap = rotation(login.id, login.refresh_hash, now);
    swap.ip = Some("198.51.100.4".parse().unwrap());
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
    let after = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(after.ip, swap.ip);
    assert_eq!(
        after.user_agent, login.user_agent,
        "no user agent sent: the old one stays"
    );
    assert_eq!(after.last_seen_at, now);
    assert_eq!(after.created_at, T0);
    assert_eq!(after.assurance, Assurance::PasswordAndOtp);

    let mut next = rotation(login.id, swap.successor, now + Duration::minutes(1));
    next.user_agent = Some("TesseraTest/2.0".into());
    assert_eq!(store.swap_refresh(&next).await.unwrap(), SwapOutcome::Won);
    let latest = store.get_session(login.id).await.unwrap().unwrap();
    assert_eq!(latest.user_agent.as_deref(), Some("TesseraTest/2.0"));
    assert_eq!(
        latest.ip, None,
        "the IP is the latest request's, even when unknown"
    );

    let minimal = {
        let mut s = session_on(user, "bare", T0);
        s.device_name = None;
        s.user_agent = None;
        s.ip = None;
        s
    };
    store.insert_session(&minimal).await.unwrap();
    let bare = store.get_session(minimal.id).await.unwrap().unwrap();
    assert_eq!(
        (bare.device_name, bare.user_agent, bare.ip),
        (None, None, None)
    );
}

/// A readiness ping answers on a fresh store.
pub async fn a_fresh_store_answers_a_ping<S: Store>(store: S) {
    store.ping().await.unwrap();
}

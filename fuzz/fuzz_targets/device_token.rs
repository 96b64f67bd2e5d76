//! Known-device tokens. Two modes, picked by the first byte:
//! - arbitrary text presented for a fixed account and device never verifies (nothing
//!   panics, whatever the length or encoding);
//! - a token is issued, one byte is optionally changed, and it is presented for an account,
//!   device and time that may differ: it verifies exactly when it is unchanged, for the
//!   same account and device, before its expiry, and then names the id it was issued with.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use tessera_core::known_device::{DeviceTokenKeys, LIFETIME};
use time::OffsetDateTime;

fn keys() -> &'static DeviceTokenKeys {
    static KEYS: OnceLock<DeviceTokenKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        // A rotated ring: tokens from either key verify.
        let ring = MasterKeyRing::new(
            MasterKey::from_bytes([7; 32]),
            vec![MasterKey::from_bytes([8; 32])],
        );
        DeviceTokenKeys::derive(&ring)
    })
}

const T0: i64 = 1_700_000_000;

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("in range")
}

fn issued_then_presented(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let email: String = u.arbitrary()?;
    let device: String = u.arbitrary()?;
    let id: [u8; 16] = u.arbitrary()?;
    let token = keys().issue(&email, &device, at(T0), id);
    let mut bytes = token.clone().into_bytes();
    if u.arbitrary()? {
        let i = u.choose_index(bytes.len())?;
        bytes[i] = u.arbitrary()?;
    }
    let Ok(presented) = String::from_utf8(bytes) else {
        return Ok(());
    };
    let other_email: bool = u.arbitrary()?;
    let other_device: bool = u.arbitrary()?;
    let email2 = if other_email {
        u.arbitrary()?
    } else {
        email.clone()
    };
    let device2 = if other_device {
        u.arbitrary()?
    } else {
        device.clone()
    };
    let now = T0 + i64::from(u.int_in_range(-1000i32..=i32::MAX)?);
    let verdict = keys().verify(&presented, &email2, &device2, at(now));
    let expiry = (at(T0) + LIFETIME).unix_timestamp();
    let should = presented == token
        && email2 == email
        && device2 == device
        && now < expiry
        && token.len() <= 512;
    assert_eq!(verdict.is_some(), should, "{presented:?} at {now}");
    if let Some(known) = verdict {
        assert_eq!(known.id_hex(), data_encoding::HEXLOWER.encode(&id));
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        assert!(
            keys()
                .verify(&text, "ana@example.com", "phone", at(T0))
                .is_none()
        );
    } else {
        let _ = issued_then_presented(rest);
    }
});

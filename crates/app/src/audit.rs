//! The audit trail's hash chain: each user's events, each stored with the hash of the one
//! before, so an edited, inserted or deleted row breaks every link after it.
//!
//! The hash covers every field a reader sees, in a fixed length-prefixed encoding (so no
//! two different rows encode alike), with the time in whole microseconds (what both
//! stores keep) and the detail as compact JSON with sorted keys (what PostgreSQL's JSONB
//! gives back whatever order it was written in).

use sha2::{Digest, Sha256};

use crate::ports::SecurityEvent;

/// SHA-256 of a link. The chain starts from [`ChainHash::GENESIS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// What the first event of a chain points back to.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

/// The hash of `event`, stored at `index` in its user's chain after `prev`.
pub fn link(prev: &ChainHash, index: i64, event: &SecurityEvent) -> ChainHash {
    let mut h = Sha256::new();
    h.update(b"tessera-audit-v1");
    h.update(prev.0);
    h.update(index.to_be_bytes());
    h.update(event.id.as_uuid().as_bytes());
    h.update(event.user_id.as_uuid().as_bytes());
    field(&mut h, Some(event.kind.as_str().as_bytes()));
    let micros = event.at.unix_timestamp_nanos().div_euclid(1_000);
    h.update(micros.to_be_bytes());
    let ip = event.ip.map(|ip| ip.to_string());
    field(&mut h, ip.as_deref().map(str::as_bytes));
    field(&mut h, event.user_agent.as_deref().map(str::as_bytes));
    field(
        &mut h,
        event
            .session_id
            .as_ref()
            .map(|s| &s.as_uuid().as_bytes()[..]),
    );
    // `Value`'s maps are sorted by key (serde_json without `preserve_order`).
    let detail = event.detail.to_string();
    field(&mut h, Some(detail.as_bytes()));
    ChainHash(h.finalize().into())
}

fn field(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => h.update([0]),
        Some(bytes) => {
            h.update([1]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::event::EventKind;
    use tessera_core::ids::{EventId, UserId};
    use time::macros::datetime;

    fn event() -> SecurityEvent {
        SecurityEvent {
            id: EventId::from_random([1; 16]),
            user_id: UserId::from_random([2; 16]),
            kind: EventKind::LoginSucceeded,
            at: datetime!(2026-12-06 08:00:00.123456 UTC),
            ip: Some("192.0.2.1".parse().unwrap()),
            user_agent: Some("curl".into()),
            session_id: None,
            detail: serde_json::json!({"b": 1, "a": "x"}),
        }
    }

    #[test]
    fn every_field_the_reader_sees_changes_the_hash() {
        let base = link(&ChainHash::GENESIS, 1, &event());
        let mut edits: Vec<SecurityEvent> = Vec::new();
        let mut e = event();
        e.kind = EventKind::LoginFailed;
        edits.push(e);
        let mut e = event();
        e.at += time::Duration::microseconds(1);
        edits.push(e);
        let mut e = event();
        e.ip = None;
        edits.push(e);
        let mut e = event();
        e.user_agent = Some("curl ".into());
        edits.push(e);
        let mut e = event();
        e.session_id = Some(tessera_core::ids::SessionId::from_random([3; 16]));
        edits.push(e);
        let mut e = event();
        e.detail = serde_json::json!({"b": 2, "a": "x"});
        edits.push(e);
        for edited in &edits {
            assert_ne!(link(&ChainHash::GENESIS, 1, edited), base, "{edited:?}");
        }
        assert_ne!(link(&ChainHash([9; 32]), 1, &event()), base);
        assert_ne!(link(&ChainHash::GENESIS, 2, &event()), base);
    }

    #[test]
    fn the_hash_ignores_key_order_and_sub_microsecond_time() {
        let base = link(&ChainHash::GENESIS, 1, &event());
        let mut e = event();
        e.detail = serde_json::from_str(r#"{"a":"x","b":1}"#).unwrap();
        e.at += time::Duration::nanoseconds(400);
        assert_eq!(link(&ChainHash::GENESIS, 1, &e), base);
    }
}

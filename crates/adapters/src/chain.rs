//! The audit chain's bookkeeping, shared by both stores: appending events to a user's
//! chain, and finding the prefix retention may delete. The dialects only read and write
//! rows; every decision about links is made here, once.

use tessera_app::audit::{ChainHash, link};
use tessera_app::ports::{ChainedEvent, SecurityEvent};
use time::OffsetDateTime;

/// A position in a chain: its last event (the head), or the last deleted one (the
/// checkpoint). Index 0 with the genesis hash is "before the first event".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainPoint {
    pub index: i64,
    pub hash: ChainHash,
}

/// Where one event goes in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainLink {
    pub index: i64,
    pub prev: ChainHash,
    pub hash: ChainHash,
}

impl ChainPoint {
    pub(crate) const START: ChainPoint = ChainPoint {
        index: 0,
        hash: ChainHash::GENESIS,
    };

    /// Decodes stored columns; `None` when a hash is not 32 bytes.
    pub(crate) fn from_stored(index: i64, hash: &[u8]) -> Option<Self> {
        ChainHash::from_stored(hash).map(|hash| Self { index, hash })
    }

    /// Links `event` after this point and moves the point onto it.
    pub(crate) fn append(&mut self, event: &SecurityEvent) -> ChainLink {
        let index = self.index + 1;
        let hash = link(&self.hash, index, event);
        let appended = ChainLink {
            index,
            prev: self.hash,
            hash,
        };
        *self = ChainPoint { index, hash };
        appended
    }
}

/// The new checkpoint after deleting the leading `events` (read in chain order from just
/// after `checkpoint`) that retention may take: those recorded before `before`, up to the
/// first that is not. It also stops at the first event that does not continue the chain
/// (a missing index, a stored link that does not verify), so retention never deletes the
/// evidence of tampering nor moves the checkpoint over a gap. `None` when nothing goes.
pub(crate) fn purgeable_prefix(
    checkpoint: ChainPoint,
    events: &[ChainedEvent],
    before: OffsetDateTime,
) -> Option<ChainPoint> {
    let mut point = checkpoint;
    for e in events {
        let continues = e.index == point.index + 1
            && e.prev_hash == point.hash
            && link(&point.hash, e.index, &e.event) == e.hash;
        if !continues || e.event.at >= before {
            break;
        }
        point = ChainPoint {
            index: e.index,
            hash: e.hash,
        };
    }
    (point != checkpoint).then_some(point)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tessera_core::event::EventKind;
    use tessera_core::ids::{EventId, UserId};
    use time::Duration;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn chain(n: u8) -> Vec<ChainedEvent> {
        let mut head = ChainPoint::START;
        (0..n)
            .map(|i| {
                let event = SecurityEvent {
                    id: EventId::from_random([i; 16]),
                    user_id: UserId::from_random([9; 16]),
                    kind: EventKind::LoginSucceeded,
                    at: T + Duration::days(i64::from(i)),
                    ip: None,
                    user_agent: None,
                    session_id: None,
                    detail: serde_json::json!({}),
                };
                let l = head.append(&event);
                ChainedEvent {
                    event,
                    index: l.index,
                    prev_hash: l.prev,
                    hash: l.hash,
                }
            })
            .collect()
    }

    #[test]
    fn the_prefix_ends_before_the_first_event_at_or_after_the_cutoff() {
        let events = chain(5);
        let cut = purgeable_prefix(ChainPoint::START, &events, T + Duration::days(3));
        assert_eq!(
            cut,
            Some(ChainPoint {
                index: 3,
                hash: events[2].hash
            })
        );
        assert_eq!(purgeable_prefix(ChainPoint::START, &events, T), None);
    }

    #[test]
    fn an_old_event_after_a_recent_one_stays() {
        let mut events = chain(3);
        events[1].event.at = T + Duration::days(100);
        // Relink so only the time order differs, not the chain's validity.
        let mut head = ChainPoint::START;
        for e in &mut events {
            let l = head.append(&e.event);
            (e.prev_hash, e.hash) = (l.prev, l.hash);
        }
        let cut = purgeable_prefix(ChainPoint::START, &events, T + Duration::days(50));
        assert_eq!(cut.map(|p| p.index), Some(1));
    }

    #[test]
    fn an_edited_or_missing_event_stops_the_prefix_before_it() {
        let late = T + Duration::days(100);
        let mut edited = chain(4);
        edited[2].event.detail = serde_json::json!({"forged": true});
        assert_eq!(
            purgeable_prefix(ChainPoint::START, &edited, late).map(|p| p.index),
            Some(2)
        );
        let mut gap = chain(4);
        gap.remove(1);
        assert_eq!(
            purgeable_prefix(ChainPoint::START, &gap, late).map(|p| p.index),
            Some(1)
        );
        let mut relinked = chain(4);
        relinked[1].prev_hash = ChainHash([7; 32]);
        assert_eq!(
            purgeable_prefix(ChainPoint::START, &relinked, late).map(|p| p.index),
            Some(1)
        );
    }
}

//! The walk over in-memory chains; the same over both real stores is in the binary's
//! HTTP tests (tests/api/audit.rs), where rows are tampered with by SQL.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tessera_core::event::EventKind;
use tessera_core::ids::{EventId, UserId};
use time::macros::datetime;

use super::*;
use crate::ports::SecurityEvent;

fn user(n: u8) -> UserId {
    UserId::from_random([n; 16])
}

fn event(user: UserId, n: i64) -> SecurityEvent {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&user.as_uuid().as_bytes()[..8]);
    SecurityEvent {
        id: EventId::from_random(id),
        user_id: user,
        kind: EventKind::LoginSucceeded,
        at: datetime!(2026-12-06 08:00 UTC) + time::Duration::seconds(n),
        ip: Some("192.0.2.1".parse().unwrap()),
        user_agent: Some("curl".into()),
        session_id: None,
        detail: serde_json::json!({"n": n}),
    }
}

/// One user's chain of `len` events, as the store would keep it.
#[derive(Clone)]
struct Chain {
    bounds: ChainBounds,
    events: Vec<ChainedEvent>,
}

fn chain(user: UserId, len: i64) -> Chain {
    let mut prev = ChainHash::GENESIS;
    let mut events = Vec::new();
    for index in 1..=len {
        let e = event(user, index);
        let hash = link(&prev, index, &e);
        events.push(ChainedEvent {
            event: e,
            index,
            prev_hash: prev,
            hash,
        });
        prev = hash;
    }
    Chain {
        bounds: ChainBounds {
            user_id: user,
            checkpoint_index: 0,
            checkpoint_hash: ChainHash::GENESIS,
            purged: 0,
            head_index: len,
            head_hash: prev,
        },
        events,
    }
}

impl Chain {
    /// What retention does: deletes the first `n` events and moves the checkpoint.
    fn purge(mut self, n: usize) -> Self {
        let last = self.events.drain(..n).next_back().unwrap();
        self.bounds.checkpoint_index = last.index;
        self.bounds.checkpoint_hash = last.hash;
        self.bounds.purged += n as u64;
        self
    }

    fn id_at(&self, index: i64) -> EventId {
        self.events
            .iter()
            .find(|e| e.index == index)
            .unwrap()
            .event
            .id
    }
}

/// An `AuditStore` over chains in memory. `stale` bounds, when set, are what the first
/// listing answers (as if read just before a concurrent purge or append).
#[derive(Default)]
struct Mem {
    chains: BTreeMap<UserId, Chain>,
    stale: Mutex<Option<Vec<ChainBounds>>>,
}

impl Mem {
    fn of(chains: impl IntoIterator<Item = Chain>) -> Self {
        Self {
            chains: chains.into_iter().map(|c| (c.bounds.user_id, c)).collect(),
            stale: Mutex::default(),
        }
    }
}

impl AuditStore for Mem {
    async fn audit_chains(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<ChainBounds>> {
        let all: Vec<ChainBounds> = match self.stale.lock().unwrap().take() {
            Some(stale) => stale,
            None => self.chains.values().map(|c| c.bounds).collect(),
        };
        Ok(all
            .into_iter()
            .filter(|b| after.is_none_or(|a| b.user_id > a))
            .take(limit as usize)
            .collect())
    }

    async fn audit_events(
        &self,
        user: UserId,
        after_index: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>> {
        let mut events: Vec<ChainedEvent> = self
            .chains
            .get(&user)
            .map(|c| c.events.clone())
            .unwrap_or_default();
        events.retain(|e| e.index > after_index);
        events.sort_by_key(|e| e.index);
        events.truncate(limit as usize);
        Ok(events)
    }
}

async fn verify(chains: impl IntoIterator<Item = Chain>) -> AuditReport {
    verify_audit(&Mem::of(chains)).await.unwrap()
}

fn broken(report: AuditReport) -> AuditBreak {
    match report {
        AuditReport::Broken(b) => b,
        AuditReport::Intact { .. } => panic!("expected a break, got {report:?}"),
    }
}

#[tokio::test]
async fn untouched_chains_verify_across_pages_of_chains_and_of_events() {
    // More chains than one listing gives and a chain longer than one page of events.
    let mut chains: Vec<Chain> = (0..=250u8).map(|n| chain(user(n), 2)).collect();
    chains.push(chain(UserId::from_random([0xfe; 16]), 1203));
    let report = verify(chains).await;
    assert_eq!(
        report,
        AuditReport::Intact {
            chains: 252,
            events: 251 * 2 + 1203,
            purged: 0
        }
    );
}

#[tokio::test]
async fn an_edited_row_is_named() {
    let mut c = chain(user(1), 5);
    c.events[2].event.detail = serde_json::json!({"n": 99});
    let id = c.id_at(3);
    let b = broken(verify([chain(user(0), 3), c, chain(user(2), 3)]).await);
    assert_eq!(
        (b.user_id, b.event_id, b.index, b.what),
        (user(1), Some(id), 3, BreakKind::HashMismatch)
    );
}

#[tokio::test]
async fn an_edit_that_recomputes_its_own_hash_is_named_by_the_event_after_it() {
    let mut c = chain(user(1), 5);
    c.events[1].event.ip = None;
    c.events[1].hash = link(&c.events[1].prev_hash, 2, &c.events[1].event);
    let next = c.id_at(3);
    let b = broken(verify([c]).await);
    assert_eq!(
        (b.event_id, b.index, b.what),
        (Some(next), 3, BreakKind::PrevHashMismatch)
    );
}

#[tokio::test]
async fn a_deleted_middle_event_is_named_by_the_event_after_the_gap() {
    let mut c = chain(user(1), 5);
    c.events.remove(2);
    let after_gap = c.id_at(4);
    let b = broken(verify([c]).await);
    assert_eq!(
        (b.event_id, b.index, b.what),
        (Some(after_gap), 4, BreakKind::IndexGap { expected: 3 })
    );
}

#[tokio::test]
async fn deleted_last_events_show_against_the_head() {
    let mut c = chain(user(1), 5);
    c.events.truncate(3);
    let b = broken(verify([c]).await);
    assert_eq!(
        (b.event_id, b.index, b.what),
        (None, 5, BreakKind::MissingTail { last_index: 3 })
    );
    // Every event gone, the head still counting them.
    let mut c = chain(user(1), 2);
    c.events.clear();
    let b = broken(verify([c]).await);
    assert_eq!(b.what, BreakKind::MissingTail { last_index: 0 });
}

#[tokio::test]
async fn a_rewritten_last_event_shows_against_the_head() {
    let mut c = chain(user(1), 3);
    let last = &mut c.events[2];
    last.event.detail = serde_json::json!({"n": "forged"});
    last.hash = link(&last.prev_hash, 3, &last.event);
    let id = last.event.id;
    let b = broken(verify([c]).await);
    assert_eq!(
        (b.event_id, b.index, b.what),
        (Some(id), 3, BreakKind::HeadMismatch)
    );
}

#[tokio::test]
async fn a_repeated_or_renumbered_row_is_out_of_sequence() {
    let mut c = chain(user(1), 4);
    let copy = c.events[1].clone();
    c.events.insert(2, copy);
    // The store gives rows by index; a copy of index 2 comes right after the original.
    let b = broken(verify([c]).await);
    assert_eq!((b.index, b.what), (2, BreakKind::IndexGap { expected: 3 }));

    // Closing a gap by renumbering the rows after it breaks their links instead.
    let mut c = chain(user(1), 4);
    c.events.remove(1);
    for e in &mut c.events[1..] {
        e.index -= 1;
    }
    c.bounds.head_index -= 1;
    let b = broken(verify([c]).await);
    assert_eq!((b.index, b.what), (2, BreakKind::PrevHashMismatch));
}

#[tokio::test]
async fn a_purged_prefix_verifies_from_the_checkpoint_and_is_counted() {
    let report = verify([chain(user(1), 6).purge(4), chain(user(2), 3).purge(3)]).await;
    assert_eq!(
        report,
        AuditReport::Intact {
            chains: 2,
            events: 2,
            purged: 7
        }
    );
}

#[tokio::test]
async fn deleting_a_prefix_without_moving_the_checkpoint_is_a_gap() {
    let mut c = chain(user(1), 5);
    c.events.drain(..2);
    let first = c.id_at(3);
    let b = broken(verify([c]).await);
    assert_eq!(
        (b.event_id, b.what),
        (Some(first), BreakKind::IndexGap { expected: 1 })
    );
}

#[tokio::test]
async fn a_checkpoint_that_disagrees_with_what_follows_is_named() {
    let mut c = chain(user(1), 5).purge(2);
    c.bounds.checkpoint_hash = ChainHash([7; 32]);
    let b = broken(verify([c]).await);
    assert_eq!((b.index, b.what), (3, BreakKind::PrevHashMismatch));

    // A fully purged chain whose head no longer matches its checkpoint.
    let mut c = chain(user(1), 2).purge(2);
    c.bounds.head_hash = ChainHash([7; 32]);
    let b = broken(verify([c]).await);
    assert_eq!(
        (b.event_id, b.index, b.what),
        (None, 2, BreakKind::HeadMismatch)
    );

    let mut c = chain(user(1), 3).purge(3);
    c.bounds.head_index = 1;
    let b = broken(verify([c]).await);
    assert_eq!(
        b.what,
        BreakKind::HeadBeforeCheckpoint {
            checkpoint_index: 3
        }
    );
}

#[tokio::test]
async fn events_appended_after_the_bounds_were_read_still_verify() {
    let now = chain(user(1), 6);
    let mut read_earlier = now.bounds;
    read_earlier.head_index = 4;
    read_earlier.head_hash = now.events[3].hash;
    let mem = Mem::of([now]);
    *mem.stale.lock().unwrap() = Some(vec![read_earlier]);
    let report = verify_audit(&mem).await.unwrap();
    assert_eq!(
        report,
        AuditReport::Intact {
            chains: 1,
            events: 6,
            purged: 0
        }
    );
}

#[tokio::test]
async fn a_purge_between_reading_the_bounds_and_the_events_is_no_false_alarm() {
    let before = chain(user(1), 6);
    let stale = before.bounds;
    let mem = Mem::of([chain(user(0), 2), before.purge(3), chain(user(2), 2)]);
    let mut listing: Vec<ChainBounds> = mem.chains.values().map(|c| c.bounds).collect();
    listing[1] = stale;
    *mem.stale.lock().unwrap() = Some(listing);
    let report = verify_audit(&mem).await.unwrap();
    assert_eq!(
        report,
        AuditReport::Intact {
            chains: 3,
            events: 7,
            purged: 3
        }
    );
}

#[tokio::test]
async fn a_chain_deleted_with_its_user_during_the_walk_is_skipped() {
    let gone = chain(user(1), 3);
    let mut stale = vec![chain(user(0), 1).bounds, gone.bounds];
    stale.sort_by_key(|b| b.user_id);
    let mem = Mem::of([chain(user(0), 1)]);
    *mem.stale.lock().unwrap() = Some(stale);
    assert_eq!(
        verify_audit(&mem).await.unwrap(),
        AuditReport::Intact {
            chains: 1,
            events: 1,
            purged: 0
        }
    );
}

#[test]
fn a_break_reads_as_user_event_index_and_what_failed() {
    let b = AuditBreak {
        user_id: user(1),
        event_id: Some(event(user(1), 3).id),
        index: 3,
        what: BreakKind::HashMismatch,
    };
    let text = b.to_string();
    assert!(text.contains(&user(1).to_string()), "{text}");
    assert!(text.contains(&event(user(1), 3).id.to_string()), "{text}");
    assert!(text.contains("index 3"), "{text}");
    assert!(text.contains("altered"), "{text}");
}

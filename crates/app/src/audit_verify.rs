//! Verifying the audit trail: every user's chain walked from its checkpoint, a page at a
//! time (memory stays bounded however many events there are), each stored row checked
//! against its place, its predecessor and its own contents, and the last one against the
//! chain's head row, so an edited, inserted, reordered or deleted row shows.
//!
//! What it cannot show: anyone able to write the database can rewrite a whole chain (or
//! its suffix) and its head consistently, because the chain is unkeyed SHA-256. It proves
//! the rows still agree with each other, not who wrote them.

use std::fmt;

use tessera_core::ids::{EventId, UserId};

use crate::audit::{ChainHash, link};
use crate::ports::{AuditStore, ChainBounds, ChainedEvent, StoreResult};

/// Chains read per store call.
const CHAINS_PER_PAGE: u32 = 200;
/// Events read per store call.
const EVENTS_PER_PAGE: u32 = 500;

/// The outcome of one walk over every chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditReport {
    Intact {
        chains: u64,
        /// Events checked (those retention removed are not among them).
        events: u64,
        /// Events retention has removed from the chains' starts, as the chains record.
        purged: u64,
    },
    /// The first break found; the walk stops there.
    Broken(AuditBreak),
}

/// Where a chain stops agreeing with itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    pub user_id: UserId,
    /// The stored event whose row fails; None when what fails is the chain's head or
    /// checkpoint (e.g. the last events were deleted, so no row is left to name).
    pub event_id: Option<EventId>,
    /// The chain index of that event, or the one the head names.
    pub index: i64,
    pub what: BreakKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The event's index is not one more than its predecessor's: rows before it were
    /// deleted (`expected` is where the chain should have gone on), or it repeats or
    /// precedes one already seen.
    IndexGap { expected: i64 },
    /// The stored hash of the event before is not what this event says came before it.
    PrevHashMismatch,
    /// The row's fields no longer give its stored hash: the row was edited.
    HashMismatch,
    /// The head row says the chain's event at this index has another hash.
    HeadMismatch,
    /// The head row names an event at `index` but the chain stops at `last_index`: the
    /// chain's last events were deleted.
    MissingTail { last_index: i64 },
    /// The head row lies before the checkpoint, which no append or purge can produce.
    HeadBeforeCheckpoint { checkpoint_index: i64 },
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IndexGap { expected } => write!(
                f,
                "index out of sequence (expected {expected}): events before it are missing or reordered"
            ),
            Self::PrevHashMismatch => f.write_str(
                "its previous-hash does not match the stored hash of the event before it",
            ),
            Self::HashMismatch => {
                f.write_str("its stored hash does not match its contents: the row was altered")
            }
            Self::HeadMismatch => {
                f.write_str("its hash differs from the one the chain's head records")
            }
            Self::MissingTail { last_index } => write!(
                f,
                "the chain's head records this event but the chain ends at index {last_index}: \
                 its last events were deleted"
            ),
            Self::HeadBeforeCheckpoint { checkpoint_index } => write!(
                f,
                "the chain's head lies before its checkpoint (index {checkpoint_index})"
            ),
        }
    }
}

impl fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {}, ", self.user_id)?;
        match self.event_id {
            Some(id) => write!(f, "event {id} (index {})", self.index)?,
            None => write!(f, "no stored event at index {}", self.index)?,
        }
        write!(f, ": {}", self.what)
    }
}

/// One chain being walked: what the next event must follow.
#[derive(Debug)]
pub struct ChainWalk {
    bounds: ChainBounds,
    last_index: i64,
    last_hash: ChainHash,
    events: u64,
}

impl ChainWalk {
    pub fn start(bounds: ChainBounds) -> Result<Self, AuditBreak> {
        if bounds.head_index < bounds.checkpoint_index {
            return Err(AuditBreak {
                user_id: bounds.user_id,
                event_id: None,
                index: bounds.head_index,
                what: BreakKind::HeadBeforeCheckpoint {
                    checkpoint_index: bounds.checkpoint_index,
                },
            });
        }
        Ok(Self {
            last_index: bounds.checkpoint_index,
            last_hash: bounds.checkpoint_hash,
            bounds,
            events: 0,
        })
    }

    /// The index after which the next page starts.
    pub fn last_index(&self) -> i64 {
        self.last_index
    }

    /// Checks the next stored event of the chain, in chain order.
    pub fn check(&mut self, stored: &ChainedEvent) -> Result<(), AuditBreak> {
        let broken = |what| AuditBreak {
            user_id: self.bounds.user_id,
            event_id: Some(stored.event.id),
            index: stored.index,
            what,
        };
        let expected = self.last_index + 1;
        if stored.index != expected {
            return Err(broken(BreakKind::IndexGap { expected }));
        }
        if stored.prev_hash != self.last_hash {
            return Err(broken(BreakKind::PrevHashMismatch));
        }
        if link(&stored.prev_hash, stored.index, &stored.event) != stored.hash {
            return Err(broken(BreakKind::HashMismatch));
        }
        // Events past the head read at the start were appended since: they are checked
        // like any other, but only the head's own event is held to the head's hash.
        if stored.index == self.bounds.head_index && stored.hash != self.bounds.head_hash {
            return Err(broken(BreakKind::HeadMismatch));
        }
        self.last_index = stored.index;
        self.last_hash = stored.hash;
        self.events += 1;
        Ok(())
    }

    /// After the last stored event: the chain must have reached its head. Returns the
    /// number of events checked.
    pub fn finish(self) -> Result<u64, AuditBreak> {
        let head = self.bounds.head_index;
        if self.last_index < head {
            return Err(AuditBreak {
                user_id: self.bounds.user_id,
                event_id: None,
                index: head,
                what: BreakKind::MissingTail {
                    last_index: self.last_index,
                },
            });
        }
        // Nothing stored past the checkpoint, yet the head disagrees with it.
        if self.last_index == head && self.last_hash != self.bounds.head_hash {
            return Err(AuditBreak {
                user_id: self.bounds.user_id,
                event_id: None,
                index: head,
                what: BreakKind::HeadMismatch,
            });
        }
        Ok(self.events)
    }
}

/// Walks every chain the store holds; stops at the first break.
///
/// A purge or an append running at the same time can move a chain's checkpoint or head
/// between reading its bounds and reading its events, so a break is confirmed against the
/// chain's bounds read again; only if they changed is the chain walked once more.
pub async fn verify_audit<S: AuditStore>(store: &S) -> StoreResult<AuditReport> {
    let (mut chains, mut events, mut purged) = (0u64, 0u64, 0u64);
    let mut after: Option<UserId> = None;
    loop {
        let page = store.audit_chains(after, CHAINS_PER_PAGE).await?;
        for bounds in &page {
            let walked = match walk_chain(store, *bounds).await? {
                Ok(n) => Some((n, bounds.purged)),
                Err(first) => match reread(store, bounds.user_id).await? {
                    Some(fresh) if fresh != *bounds => match walk_chain(store, fresh).await? {
                        Ok(n) => Some((n, fresh.purged)),
                        Err(b) => return Ok(AuditReport::Broken(b)),
                    },
                    Some(_) => return Ok(AuditReport::Broken(first)),
                    // Deleted with its user since: nothing left to verify.
                    None => None,
                },
            };
            if let Some((n, p)) = walked {
                chains += 1;
                events += n;
                purged += p;
            }
        }
        match page.last() {
            Some(last) if page.len() == CHAINS_PER_PAGE as usize => after = Some(last.user_id),
            _ => break,
        }
    }
    Ok(AuditReport::Intact {
        chains,
        events,
        purged,
    })
}

/// The chain's bounds as stored now; None when the chain is gone.
async fn reread<S: AuditStore>(store: &S, user: UserId) -> StoreResult<Option<ChainBounds>> {
    // Chains come in id order (a UUID's bytes, as both stores compare them), so the one
    // just after the id below `user`'s is `user`'s own, if it still exists.
    let below = user
        .as_uuid()
        .as_u128()
        .checked_sub(1)
        .map(|n| UserId::from_uuid(uuid::Uuid::from_u128(n)));
    let page = store.audit_chains(below, 1).await?;
    Ok(page.into_iter().find(|b| b.user_id == user))
}

async fn walk_chain<S: AuditStore>(
    store: &S,
    bounds: ChainBounds,
) -> StoreResult<Result<u64, AuditBreak>> {
    let mut walk = match ChainWalk::start(bounds) {
        Ok(walk) => walk,
        Err(b) => return Ok(Err(b)),
    };
    loop {
        let page = store
            .audit_events(bounds.user_id, walk.last_index(), EVENTS_PER_PAGE)
            .await?;
        for stored in &page {
            if let Err(b) = walk.check(stored) {
                return Ok(Err(b));
            }
        }
        if page.len() < EVENTS_PER_PAGE as usize {
            return Ok(walk.finish());
        }
    }
}

#[cfg(test)]
#[path = "audit_verify_tests.rs"]
mod tests;

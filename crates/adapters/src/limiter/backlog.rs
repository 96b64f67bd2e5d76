//! Settlements (release, fail) that could not be told to Redis when they were made: Redis
//! did not answer in time, or another call was probing it during an outage. The ticket
//! may be counted there all the same (reserved before the outage, or by a reserve whose
//! answer was lost to the deadline), and an unsettled pending ticket counts as a failure
//! once its lease passes: a refunded success would cost its owner a slot for the whole
//! window. So each is kept here and sent once Redis answers again.
//!
//! The queue is bounded; past the bound the oldest is dropped (it then counts as a failure
//! when its lease passes, the same as a crashed node's ticket), and the drops are counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// At most this many settlements wait for Redis (about 100 bytes each).
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settlement {
    Release,
    Fail,
}

impl Settlement {
    pub(super) fn operation(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Fail => "fail",
        }
    }
}

/// One settlement for Redis: the key's full name and the ticket in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) settlement: Settlement,
    pub(super) key: String,
    pub(super) ticket: String,
}

#[derive(Debug, Default)]
pub(super) struct Backlog {
    queue: Mutex<VecDeque<Pending>>,
    draining: AtomicBool,
    dropped: AtomicU64,
}

/// Marks the one drain in flight (released on drop, also when the drain is cancelled).
pub(super) struct Draining<'a>(&'a AtomicBool);

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn push(&self, pending: Pending) {
        let mut queue = self.lock();
        if queue.len() >= CAPACITY {
            queue.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queue.push_back(pending);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Settlements dropped because the queue was full, since start.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The oldest `n` settlements, taken out of the queue.
    pub(super) fn take(&self, n: usize) -> Vec<Pending> {
        let mut queue = self.lock();
        let n = n.min(queue.len());
        queue.drain(..n).collect()
    }

    /// Puts back a batch that did not reach Redis, ahead of anything queued since.
    pub(super) fn put_back(&self, batch: Vec<Pending>) {
        let mut queue = self.lock();
        for pending in batch.into_iter().rev() {
            if queue.len() >= CAPACITY {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            queue.push_front(pending);
        }
    }

    /// Admission to drain; `None` while another drain runs.
    pub(super) fn begin_drain(&self) -> Option<Draining<'_>> {
        self.draining
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Draining(&self.draining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: usize) -> Pending {
        Pending {
            settlement: Settlement::Release,
            key: "k".to_owned(),
            ticket: n.to_string(),
        }
    }

    #[test]
    fn a_batch_put_back_comes_out_first_and_in_its_order() {
        let backlog = Backlog::default();
        for n in 0..4 {
            backlog.push(pending(n));
        }
        let batch = backlog.take(2);
        assert_eq!(batch, [pending(0), pending(1)]);
        backlog.push(pending(4));
        backlog.put_back(batch);
        let all = backlog.take(10);
        let order: Vec<&str> = all.iter().map(|p| p.ticket.as_str()).collect();
        assert_eq!(order, ["0", "1", "2", "3", "4"]);
        assert!(backlog.is_empty());
    }

    #[test]
    fn a_full_backlog_drops_its_oldest_and_counts_it() {
        let backlog = Backlog::default();
        for n in 0..=CAPACITY {
            backlog.push(pending(n));
        }
        assert_eq!(backlog.len(), CAPACITY);
        assert_eq!(backlog.dropped(), 1);
        assert_eq!(backlog.take(1), [pending(1)]);
    }

    #[test]
    fn one_drain_at_a_time() {
        let backlog = Backlog::default();
        let first = backlog.begin_drain();
        assert!(first.is_some());
        assert!(backlog.begin_drain().is_none());
        drop(first);
        assert!(backlog.begin_drain().is_some());
    }
}

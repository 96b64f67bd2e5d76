//! What the worker counts, read by `/metrics` on the same node: deliveries and failures
//! per channel. Plain atomics, because the server reads them while the worker writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The label under which rows naming a channel this node does not have are counted (a
/// closed set of labels: a stray row cannot add series).
pub const UNCONFIGURED: &str = "unconfigured";

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
}

/// One channel's counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub delivered: u64,
    /// Attempts that did not deliver (retried later, or given up on).
    pub failed: u64,
    /// Rows this node gave up on (marked dead).
    pub dead: u64,
}

#[derive(Debug)]
pub struct OutboxStats {
    channels: BTreeMap<String, Counters>,
}

impl OutboxStats {
    /// Counters for each configured channel name, and for [`UNCONFIGURED`].
    pub fn new(channels: &[String]) -> Self {
        let channels = channels
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(UNCONFIGURED))
            .map(|name| (name.to_owned(), Counters::default()))
            .collect();
        Self { channels }
    }

    fn counters(&self, channel: &str) -> Option<&Counters> {
        self.channels
            .get(channel)
            .or_else(|| self.channels.get(UNCONFIGURED))
    }

    pub(crate) fn delivered(&self, channel: &str) {
        if let Some(c) = self.counters(channel) {
            c.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn failed(&self, channel: &str, dead: bool) {
        if let Some(c) = self.counters(channel) {
            c.failed.fetch_add(1, Ordering::Relaxed);
            if dead {
                c.dead.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every channel's counts, by name.
    pub fn snapshot(&self) -> Vec<(&str, ChannelCounts)> {
        self.channels
            .iter()
            .map(|(name, c)| {
                (
                    name.as_str(),
                    ChannelCounts {
                        delivered: c.delivered.load(Ordering::Relaxed),
                        failed: c.failed.load(Ordering::Relaxed),
                        dead: c.dead.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_on_their_channel_and_strays_on_unconfigured() {
        let stats = OutboxStats::new(&["smtp".to_owned(), "webhook".to_owned()]);
        stats.delivered("smtp");
        stats.delivered("smtp");
        stats.failed("webhook", false);
        stats.failed("pigeon", true);
        let snap: BTreeMap<_, _> = stats.snapshot().into_iter().collect();
        assert_eq!(snap["smtp"].delivered, 2);
        assert_eq!(
            snap["webhook"],
            ChannelCounts {
                delivered: 0,
                failed: 1,
                dead: 0
            }
        );
        assert_eq!(
            snap[UNCONFIGURED],
            ChannelCounts {
                delivered: 0,
                failed: 1,
                dead: 1
            }
        );
        assert_eq!(snap.len(), 3, "no series for a stray name");
    }
}

//! The outbox worker: delivers the notifications the use cases queued, at least once.
//!
//! ```text
//!            claim (lease, batch)          channel took it
//!  pending ─────────────────────▶ leased ─────────────────▶ delivered (row gone)
//!     ▲                             │  │
//!     │ retry at now + backoff      │  │ rejected, secret unopenable
//!     └─────────────────────────────┘  └────────────────────▶ dead (kept, counted)
//! ```
//!
//! A worker claims only rows addressed to its own channels: during a rolling change of
//! channels, or for a notice an admin command queued under other settings, a row waits
//! for a node that has its channel (it shows in the backlog) rather than dying here.
//!
//! A worker that stops mid-send leaves its rows leased; when the lease runs out any
//! worker (this node's or another's) claims them again, which is why a message can, in
//! that abnormal case, arrive twice with the same id.

mod message;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::App;
use crate::error::{AppError, random};
use crate::ports::{ChannelError, Delivery, DeliveryOutcome, NotificationChannel, Store};

pub use stats::{ChannelCounts, OutboxStats, UNCONFIGURED};

/// How the worker paces itself (`TESSERA_OUTBOX_*`, docs/configuration.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// The pause after a pass that found nothing due. Rows queued on this node wake the
    /// worker at once; this bounds the wait for rows from other nodes, the admin CLI and
    /// retries coming due.
    pub poll: std::time::Duration,
    /// The first retry waits about this long; each further one twice as long.
    pub retry_base: Duration,
    /// No retry waits longer than this.
    pub retry_cap: Duration,
    /// How long a claim keeps other workers off a row.
    pub lease: Duration,
    /// Rows claimed per pass.
    pub batch: u32,
    /// One delivery's bound; past it, the attempt counts as failed and is retried.
    pub send_timeout: std::time::Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            poll: std::time::Duration::from_secs(1),
            retry_base: Duration::seconds(5),
            retry_cap: Duration::minutes(15),
            lease: Duration::seconds(60),
            batch: 32,
            send_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// How long a count of the queue answers `/readyz` and `/metrics`: both are unauthenticated
/// and polled, and each count scans the pending rows.
const BACKLOG_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// What the use cases share with the worker: its counters, the bell rung when a
/// notification is queued on this node, and the last count of the queue.
#[derive(Debug)]
pub(crate) struct OutboxShared {
    pub(crate) stats: OutboxStats,
    bell: Notify,
    /// Moves whenever this node queues or settles a row, so its own changes are never
    /// answered from an older count (another node's show within [`BACKLOG_FRESH_FOR`]).
    changes: AtomicU64,
    /// One count at a time; the others wait for it and share it.
    backlog: tokio::sync::Mutex<Option<CountedBacklog>>,
}

#[derive(Debug, Clone, Copy)]
struct CountedBacklog {
    at: tokio::time::Instant,
    changes: u64,
    backlog: crate::ports::OutboxBacklog,
}

impl OutboxShared {
    pub(crate) fn new(channels: &[String]) -> Self {
        Self {
            stats: OutboxStats::new(channels),
            bell: Notify::new(),
            changes: AtomicU64::new(0),
            backlog: tokio::sync::Mutex::new(None),
        }
    }

    /// A notification was queued on this node: the worker sends it now rather than at its
    /// next poll, and the next count is taken afresh.
    pub(crate) fn queued(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.bell.notify_one();
    }

    fn settled(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct OutboxWorker<S> {
    app: App<S>,
    channels: BTreeMap<&'static str, Arc<dyn NotificationChannel>>,
    /// The channels' names, as claims ask for them.
    names: Vec<String>,
    settings: OutboxSettings,
}

impl<S: Store> OutboxWorker<S> {
    pub fn new(
        app: App<S>,
        channels: Vec<Arc<dyn NotificationChannel>>,
        settings: OutboxSettings,
    ) -> Self {
        let channels: BTreeMap<_, _> = channels.into_iter().map(|c| (c.name(), c)).collect();
        let names = channels.keys().map(|name| (*name).to_owned()).collect();
        Self {
            app,
            channels,
            names,
            settings,
        }
    }

    /// Delivers until `shutdown` resolves. A pass in progress is finished first, so no row
    /// is left leased by a clean stop.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut failing = false;
        loop {
            let claimed = match self.run_once().await {
                Ok(n) => {
                    if failing {
                        tracing::info!("outbox reachable again; delivering");
                        failing = false;
                    }
                    n
                }
                Err(e) => {
                    // Once per outage: the poll would otherwise log every interval.
                    if !failing {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "outbox claim failed; retrying every poll interval"
                        );
                        failing = true;
                    }
                    0
                }
            };
            // A full batch means more is probably due: go again at once (after looking
            // whether it is time to stop).
            let pause = if claimed >= self.settings.batch as usize {
                std::time::Duration::ZERO
            } else {
                self.settings.poll
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = self.app.outbox.bell.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// One pass: claims what is due and settles every claimed row; how many were claimed.
    pub async fn run_once(&self) -> Result<usize, AppError> {
        let claimed = self
            .app
            .store
            .claim_deliveries(
                self.app.now(),
                self.settings.lease,
                self.settings.batch,
                &self.names,
            )
            .await?;
        let started = tokio::time::Instant::now();
        // The lease must outlive the send: a row whose turn comes too late is handed back
        // untried rather than risk a second worker sending it too.
        let lease = std::time::Duration::try_from(self.settings.lease).unwrap_or_default();
        let budget = lease.saturating_sub(self.settings.send_timeout);
        // A channel that failed with a retry in this pass is down for the rest of it: its
        // other rows wait for their backoff instead of each waiting for a timeout.
        let mut down = BTreeSet::new();
        for delivery in &claimed {
            let outcome = if started.elapsed() > budget {
                self.retry(delivery, "not tried: the pass outlasted its lease".into())?
            } else if down.contains(delivery.channel.as_str()) {
                self.retry(
                    delivery,
                    format!(
                        "not tried: {} failed earlier in this pass",
                        delivery.channel
                    ),
                )?
            } else {
                let outcome = self.attempt(delivery).await?;
                if matches!(outcome, DeliveryOutcome::Retry { .. }) {
                    down.insert(delivery.channel.clone());
                }
                outcome
            };
            self.count(delivery, &outcome);
            if let Err(e) = self
                .app
                .store
                .settle_delivery(delivery.id, &delivery.channel, &outcome)
                .await
                .inspect(|()| self.app.outbox.settled())
            {
                // The lease runs out and the row is claimed again: at least once holds.
                tracing::warn!(
                    notification_id = %delivery.id,
                    channel = delivery.channel.as_str(),
                    error = &e as &dyn std::error::Error,
                    "could not record a delivery's outcome; it will be claimed again"
                );
            }
        }
        Ok(claimed.len())
    }

    async fn attempt(&self, delivery: &Delivery) -> Result<DeliveryOutcome, AppError> {
        let Some(channel) = self.channels.get(delivery.channel.as_str()) else {
            // Claims ask only for our channels; a store that ignored that must not lose
            // the row silently either.
            return Ok(dead("channel not configured".into()));
        };
        let message =
            match message::outgoing(delivery, self.app.keys.master(), &self.app.settings.issuer) {
                Ok(m) => m,
                Err(message::Unsendable(reason)) => return Ok(dead(reason)),
            };
        let sent = tokio::time::timeout(self.settings.send_timeout, channel.deliver(&message));
        Ok(match sent.await {
            Ok(Ok(())) => DeliveryOutcome::Delivered,
            Ok(Err(ChannelError::Reject(reason))) => dead(reason),
            Ok(Err(ChannelError::Retry(reason))) => self.retry(delivery, reason)?,
            Err(_) => self.retry(
                delivery,
                format!(
                    "no answer within {} s",
                    self.settings.send_timeout.as_secs()
                ),
            )?,
        })
    }

    fn retry(&self, delivery: &Delivery, error: String) -> Result<DeliveryOutcome, AppError> {
        let [a, b] = random::<2>()?;
        let wait = backoff(
            self.settings.retry_base,
            self.settings.retry_cap,
            delivery.attempts,
            u16::from_le_bytes([a, b]),
        );
        Ok(DeliveryOutcome::Retry {
            at: self.app.now() + wait,
            error,
        })
    }

    fn count(&self, delivery: &Delivery, outcome: &DeliveryOutcome) {
        let stats = &self.app.outbox.stats;
        let log = |level_warn: bool, error: &str, what: &str| {
            // Ids, kind and channel only: the address and any link stay out of the log.
            if level_warn {
                tracing::warn!(
                    notification_id = %delivery.id,
                    kind = delivery.kind.as_str(),
                    channel = delivery.channel.as_str(),
                    attempts = delivery.attempts,
                    error,
                    "{what}"
                );
            } else {
                tracing::info!(
                    notification_id = %delivery.id,
                    kind = delivery.kind.as_str(),
                    channel = delivery.channel.as_str(),
                    attempts = delivery.attempts,
                    error,
                    "{what}"
                );
            }
        };
        match outcome {
            DeliveryOutcome::Delivered => stats.delivered(&delivery.channel),
            DeliveryOutcome::Retry { error, .. } => {
                stats.failed(&delivery.channel, false);
                log(false, error, "notification not delivered yet; will retry");
            }
            DeliveryOutcome::Dead { error } => {
                stats.failed(&delivery.channel, true);
                log(true, error, "notification given up on (dead)");
            }
        }
    }
}

fn dead(error: String) -> DeliveryOutcome {
    DeliveryOutcome::Dead { error }
}

/// The wait before attempt `attempts + 1`: `base · 2^(attempts-1)`, capped at `cap`, of
/// which the upper half is random (`jitter` of `u16::MAX`), so that rows that failed
/// together (a relay outage) do not all come due at the same instant again.
pub fn backoff(base: Duration, cap: Duration, attempts: u32, jitter: u16) -> Duration {
    let doublings = attempts.saturating_sub(1).min(40);
    let full = base
        .whole_milliseconds()
        .saturating_mul(1i128 << doublings)
        .min(cap.whole_milliseconds())
        .max(0);
    let half = full / 2;
    let ms = half + (full - half) * i128::from(jitter) / i128::from(u16::MAX);
    Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
}

impl<S> App<S> {
    /// This node's delivery counters (for `/metrics`).
    pub fn outbox_stats(&self) -> &OutboxStats {
        &self.outbox.stats
    }
}

impl<S: Store> App<S> {
    /// The queue as the store sees it, every node's rows together.
    /// Counted at most once a second per node (see [`BACKLOG_FRESH_FOR`]), and afresh
    /// after this node queued or settled anything.
    pub async fn outbox_backlog(&self) -> Result<crate::ports::OutboxBacklog, AppError> {
        let shared = &self.outbox;
        let mut last = shared.backlog.lock().await;
        let changes = shared.changes.load(Ordering::Relaxed);
        if let Some(counted) = *last
            && counted.changes == changes
            && counted.at.elapsed() < BACKLOG_FRESH_FOR
        {
            return Ok(counted.backlog);
        }
        let backlog = self.store.outbox_backlog().await?;
        *last = Some(CountedBacklog {
            at: tokio::time::Instant::now(),
            changes,
            backlog,
        });
        Ok(backlog)
    }

    /// How long the oldest pending row has waited, at `now` (zero when none waits).
    pub fn outbox_oldest_age(
        &self,
        backlog: &crate::ports::OutboxBacklog,
        now: OffsetDateTime,
    ) -> Duration {
        backlog
            .oldest
            .map_or(Duration::ZERO, |oldest| (now - oldest).max(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::seconds(5);
    const CAP: Duration = Duration::minutes(15);

    #[test]
    fn the_wait_doubles_from_the_base_and_stops_at_the_cap() {
        // Jitter at its top gives the full wait, at zero half of it.
        let top = |n| backoff(BASE, CAP, n, u16::MAX);
        assert_eq!(top(1), Duration::seconds(5));
        assert_eq!(top(2), Duration::seconds(10));
        assert_eq!(top(4), Duration::seconds(40));
        assert_eq!(top(9), CAP);
        assert_eq!(top(u32::MAX), CAP);
        assert_eq!(backoff(BASE, CAP, 1, 0), Duration::milliseconds(2500));
        assert_eq!(backoff(BASE, CAP, 100, 0), CAP / 2);
    }

    #[test]
    fn jitter_spreads_waits_within_the_upper_half() {
        let mid = backoff(BASE, CAP, 3, u16::MAX / 2);
        assert!(
            mid > Duration::seconds(10) && mid < Duration::seconds(20),
            "{mid}"
        );
    }
}

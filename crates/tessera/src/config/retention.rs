//! Retention: how long ended sessions and security events are kept, how many rows one
//! purge run may delete (`TESSERA_RETENTION_*`), and how often `serve` runs it.

use anyhow::Context;
use tessera_app::Retention;

use super::source::{Source, whole};

/// Seconds between background purges when none is configured.
const DEFAULT_INTERVAL_SECS: i64 = 600;
const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    pub ended_sessions_secs: i64,
    pub events_secs: i64,
    pub batch: u32,
    /// Seconds between background runs; 0: no background purge (`tessera admin purge`
    /// from cron instead).
    pub interval_secs: u64,
}

impl RetentionConfig {
    /// `from_file`: the file's `retention_ended_sessions`, `retention_events`,
    /// `retention_batch` and `retention_interval`, in that order. `default`: the use
    /// cases' own.
    pub(super) fn resolve(
        src: &Source,
        from_file: [Option<i64>; 4],
        default: &Retention,
    ) -> anyhow::Result<Self> {
        let [file_ended_sessions, file_events, file_batch, file_interval] = from_file;
        // A day at least: reuse of a token of a just-ended session should still read as
        // "revoked" for a while, and a typo should not wipe the audit trail.
        let kept = DAY..=100 * 365 * DAY;
        let ended_sessions_secs = src.within(
            "TESSERA_RETENTION_ENDED_SESSIONS",
            file_ended_sessions,
            default.ended_sessions.whole_seconds(),
            kept.clone(),
            "",
        )?;
        let events_secs = src.within(
            "TESSERA_RETENTION_EVENTS",
            file_events,
            default.events.whole_seconds(),
            kept,
            "",
        )?;
        let batch = src.within(
            "TESSERA_RETENTION_BATCH",
            file_batch,
            whole(default.batch),
            1..=100_000,
            "",
        )?;
        let interval = src.within(
            "TESSERA_RETENTION_INTERVAL",
            file_interval,
            DEFAULT_INTERVAL_SECS,
            0..=7 * DAY,
            "",
        )?;
        Ok(Self {
            ended_sessions_secs,
            events_secs,
            batch: u32::try_from(batch).context("TESSERA_RETENTION_BATCH")?,
            interval_secs: u64::try_from(interval).context("TESSERA_RETENTION_INTERVAL")?,
        })
    }

    /// The use cases' retention settings.
    pub fn settings(&self) -> Retention {
        Retention {
            ended_sessions: time::Duration::seconds(self.ended_sessions_secs),
            events: time::Duration::seconds(self.events_secs),
            batch: self.batch,
        }
    }
}

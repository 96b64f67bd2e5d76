//! The outbox worker's pace: `TESSERA_OUTBOX_POLL_MS` and `TESSERA_OUTBOX_RETRY_BASE_MS`.

use anyhow::Context;
use tessera_app::OutboxSettings;

use super::source::{Source, whole};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// The pause after a pass that found nothing due, in milliseconds.
    pub poll_ms: u64,
    /// The first retry's wait, in milliseconds (doubling per attempt, at most 15 minutes).
    pub retry_base_ms: u64,
}

impl OutboxConfig {
    /// `from_file`: the file's `outbox_poll_ms` and `outbox_retry_base_ms`.
    pub(super) fn resolve(
        src: &Source,
        [file_poll, file_base]: [Option<i64>; 2],
    ) -> anyhow::Result<Self> {
        let defaults = OutboxSettings::default();
        let millis = |name: &str, from_file: Option<i64>, default: i64, max: i64| {
            let v = src.within(name, from_file, default, 10..=max, "")?;
            u64::try_from(v).with_context(|| name.to_owned())
        };
        // A poll under 10 ms would keep a database busy for nothing; one over an hour
        // would leave other nodes' and the CLI's notices waiting that long.
        let poll_ms = millis(
            "TESSERA_OUTBOX_POLL_MS",
            file_poll,
            whole(defaults.poll.as_millis()),
            3_600_000,
        )?;
        let retry_base_ms = millis(
            "TESSERA_OUTBOX_RETRY_BASE_MS",
            file_base,
            whole(defaults.retry_base.whole_milliseconds()),
            900_000,
        )?;
        Ok(Self {
            poll_ms,
            retry_base_ms,
        })
    }

    /// The worker's settings: these two, the rest at their defaults.
    pub fn settings(&self) -> OutboxSettings {
        OutboxSettings {
            poll: std::time::Duration::from_millis(self.poll_ms),
            retry_base: time::Duration::milliseconds(
                i64::try_from(self.retry_base_ms).unwrap_or(i64::MAX),
            ),
            ..OutboxSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_pace_defaults_reads_the_environment_and_refuses_nonsense() {
        let none = |_: &str| None;
        let d = OutboxConfig::resolve(&Source::new(&none), [None, None]).unwrap();
        assert_eq!((d.poll_ms, d.retry_base_ms), (1_000, 5_000));
        let from_file = OutboxConfig::resolve(&Source::new(&none), [Some(50), Some(20)]).unwrap();
        assert_eq!((from_file.poll_ms, from_file.retry_base_ms), (50, 20));
        let env = |name: &str| (name == "TESSERA_OUTBOX_POLL_MS").then(|| "250".to_owned());
        assert_eq!(
            OutboxConfig::resolve(&Source::new(&env), [Some(50), None])
                .unwrap()
                .poll_ms,
            250
        );
        for bad in ["0", "-5", "soon", "99999999999"] {
            let env = |name: &str| (name == "TESSERA_OUTBOX_RETRY_BASE_MS").then(|| bad.to_owned());
            let e = OutboxConfig::resolve(&Source::new(&env), [None, None]).unwrap_err();
            assert!(
                e.to_string().contains("TESSERA_OUTBOX_RETRY_BASE_MS"),
                "{e}"
            );
        }
        let s = from_file.settings();
        assert_eq!(s.poll, std::time::Duration::from_millis(50));
        assert_eq!(s.retry_base, time::Duration::milliseconds(20));
    }
}

//! Retention in the binary: the background purge `serve` runs, and the loop
//! `tessera admin purge` shares with it.
//!
//! Each store call deletes at most one batch per table; a run that fills a batch is
//! followed by another, after a short pause so other writers (SQLite has one) get the
//! database between batches, until nothing eligible is left.

use std::time::Duration;

use tessera_app::ports::{PurgeReport, Store};
use tessera_app::{App, AppError};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::RetentionConfig;

/// The pause between two batches of one background purge.
const BETWEEN_BATCHES: Duration = Duration::from_millis(200);

/// Runs bounded purges, `pause` apart, until one says nothing more is eligible (or only
/// one, with `once`); the summed counts and how many runs it took.
pub async fn purge_until_done<S: Store>(
    app: &App<S>,
    once: bool,
    pause: Duration,
) -> Result<(PurgeReport, u32), AppError> {
    let mut total = app.purge(app.now()).await?;
    let mut runs = 1;
    while total.more && !once {
        tokio::time::sleep(pause).await;
        total = total.then(app.purge(app.now()).await?);
        runs += 1;
    }
    Ok((total, runs))
}

/// Starts the background purge: a pass every `interval_secs`, the first one interval
/// after start (so a restart loop cannot turn into a purge loop); none when that is 0.
/// The task lives as long as the runtime (it ends when `serve` returns and the process
/// exits); a failed pass is logged and retried at the next tick.
pub fn spawn<S: Store>(app: App<S>, config: &RetentionConfig) -> Option<JoinHandle<()>> {
    if config.interval_secs == 0 {
        tracing::info!("background purge off (TESSERA_RETENTION_INTERVAL=0)");
        return None;
    }
    let every = Duration::from_secs(config.interval_secs);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A pass that outlasts the interval (a large backlog) delays the next one rather
        // than being followed by a burst of catch-up passes.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match purge_until_done(&app, false, BETWEEN_BATCHES).await {
                Ok((report, runs)) if report.total() > 0 => tracing::info!(
                    refresh_tokens = report.refresh_tokens,
                    sessions = report.sessions,
                    mfa_challenges = report.mfa_challenges,
                    security_events = report.security_events,
                    runs,
                    "purged what retention allows"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "background purge failed; retrying at the next interval"
                ),
            }
        }
    }))
}

/// The line `tessera admin purge` prints.
pub fn summary(report: &PurgeReport, runs: u32) -> String {
    let tail = if report.more {
        "; more remain (run it again)"
    } else {
        ""
    };
    format!(
        "purged {} refresh token(s), {} session(s), {} MFA challenge(s), {} security event(s) \
         in {runs} run(s){tail}",
        report.refresh_tokens, report.sessions, report.mfa_challenges, report.security_events
    )
}

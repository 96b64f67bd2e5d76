//! Work a request starts and answers before it ends (the half of a reset request that
//! looks the address up, stores the link and queues its email). It is tracked so that a
//! stopping server waits for it: dropped with the runtime, it would leave a 202 that
//! promised an email with no link stored and nothing queued.

use std::future::Future;
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// The tasks requests left running; clones share them.
#[derive(Clone, Default)]
pub struct Background(TaskTracker);

impl Background {
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(work);
    }

    /// Waits at most `deadline` for every task started so far (and any they start);
    /// false when some were still running then. Work may still be spawned afterwards,
    /// by a request that was in flight, and is waited for by the next call.
    pub async fn finish(&self, deadline: Duration) -> bool {
        self.0.close();
        let finished = tokio::time::timeout(deadline, self.0.wait()).await.is_ok();
        self.0.reopen();
        finished
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn finish_waits_for_running_work_and_says_when_it_gave_up() {
        let background = Background::default();
        let (release, released) = oneshot::channel::<()>();
        let (done_tx, mut done) = oneshot::channel::<()>();
        background.spawn(async move {
            let _ = released.await;
            let _ = done_tx.send(());
        });
        assert_eq!(background.running(), 1);
        assert!(
            !background.finish(Duration::from_millis(20)).await,
            "work still held reports as unfinished"
        );
        assert!(done.try_recv().is_err());

        release.send(()).unwrap();
        assert!(background.finish(Duration::from_secs(30)).await);
        assert!(done.try_recv().is_ok(), "the work ran to its end");
        assert_eq!(background.running(), 0);
        assert!(
            background.finish(Duration::ZERO).await,
            "nothing left to wait for"
        );
    }
}

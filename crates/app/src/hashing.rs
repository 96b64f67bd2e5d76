//! The password-hashing pool: a fixed set of worker threads behind a bounded wait.
//!
//! ```text
//!   request ──► [waiting < queue]  ──► wait for a worker (at most `wait`) ──► hash ──► answer
//!          └──► [queue full]       ──► Overloaded (503, Retry-After)
//!                                     └─[no worker in time]──► Overloaded
//! ```
//!
//! Argon2id takes 19 MiB and ~15 ms of one core per call. One blocking thread per request
//! lets a burst of logins allocate 19 MiB each and thrash the cores; a fixed pool keeps
//! peak memory at workers × 19 MiB whatever the load, runs each hash at full speed, and
//! turns overload into a prompt, retryable 503 instead of an unbounded queue. The threads
//! are long-lived on purpose: each keeps reusing its own allocator arena, so memory freed
//! after a hash is reused by the next one instead of piling up across many threads.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, oneshot};

use crate::error::AppError;

/// How the pool is sized (see docs/configuration.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingSettings {
    /// Hashes run at once: one per core by default.
    pub workers: usize,
    /// Requests that may wait for a worker; one more answers 503 at once.
    pub queue: usize,
    /// How long a request may wait for a worker (and, for a login, for the attempts in
    /// flight on its budget to settle) before it answers 503.
    pub wait: std::time::Duration,
}

impl HashingSettings {
    /// The longest wait the pool accepts: a pending attempt must settle well within
    /// `tessera_core::ratelimit::PENDING_LEASE`.
    pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

    pub fn defaults() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            workers,
            // Enough for a few seconds of work at ~70 hashes per core per second.
            queue: workers * 128,
            wait: std::time::Duration::from_secs(5),
        }
    }
}

impl Default for HashingSettings {
    fn default() -> Self {
        Self::defaults()
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool. Its threads stop when the last handle to it is dropped.
pub struct HashPool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    settings: HashingSettings,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("settings", &self.settings)
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts one waiting request for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    pub fn start(settings: HashingSettings) -> Result<Self, AppError> {
        let settings = HashingSettings {
            workers: settings.workers.max(1),
            wait: settings.wait.min(HashingSettings::MAX_WAIT),
            ..settings
        };
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..settings.workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("tessera-hash-{n}"))
                .spawn(move || work(&receiver))
                .map_err(AppError::internal)?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(settings.workers)),
            waiting: AtomicUsize::new(0),
            settings,
            jobs,
        })
    }

    pub fn settings(&self) -> HashingSettings {
        self.settings
    }

    /// Requests waiting for a worker now (for metrics).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` on a worker once one is free, or answers `Overloaded` when the queue is
    /// full or no worker frees up within the wait. A job that has started runs to its end
    /// even if the caller goes away, and holds its worker until then, so the number of
    /// hashes in progress never exceeds the workers.
    pub async fn run<T, F>(&self, job: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.settings.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::overloaded());
        }
        let waiting = Waiting(&self.waiting);
        let permit = tokio::time::timeout(
            self.settings.wait,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await;
        drop(waiting);
        let Ok(Ok(permit)) = permit else {
            return Err(AppError::overloaded());
        };
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let out = job();
                drop(permit);
                let _ = done.send(out);
            }))
            .map_err(|_| AppError::Internal("the hashing workers have stopped".into()))?;
        answer
            .await
            .map_err(|_| AppError::Internal("a hashing job ended without an answer".into()))
    }
}

fn work(receiver: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while taking the next job, never while running it.
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(job) = next else {
            return;
        };
        // A panicking job must not take its worker with it; its caller sees the
        // dropped answer as an internal error.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::time::Duration;

    fn pool(workers: usize, queue: usize, wait_ms: u64) -> Arc<HashPool> {
        Arc::new(
            HashPool::start(HashingSettings {
                workers,
                queue,
                wait: Duration::from_millis(wait_ms),
            })
            .unwrap(),
        )
    }

    /// Starts a job that holds the pool's one worker until the returned gate is passed.
    async fn occupy_the_worker(
        pool: &Arc<HashPool>,
    ) -> (
        tokio::task::JoinHandle<Result<std::sync::BarrierWaitResult, AppError>>,
        Arc<Barrier>,
    ) {
        let gate = Arc::new(Barrier::new(2));
        let held = {
            let (pool, gate) = (pool.clone(), gate.clone());
            tokio::spawn(async move { pool.run(move || gate.wait()).await })
        };
        while pool.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        (held, gate)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_jobs_run_at_once_than_there_are_workers() {
        let pool = pool(2, 64, 10_000);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            jobs.spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Real work of a few milliseconds, so jobs overlap if allowed to.
                    let mut x = 0u64;
                    for i in 0..2_000_000u64 {
                        x = x.wrapping_mul(31).wrapping_add(i);
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    x
                })
                .await
            });
        }
        let results = jobs.join_all().await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_full_queue_answers_overloaded_at_once_and_the_pool_recovers() {
        // The wait only has to outlast the test's own steps: once, in CI, with the whole
        // suite on two cores, the queued request's 10 s ran out before the gate opened.
        let pool = pool(1, 1, 60_000);
        // The one worker is busy; one request may wait, the next is refused.
        let (held, gate) = occupy_the_worker(&pool).await;
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 1).await })
        };
        while pool.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(|| 2).await;
        assert!(
            matches!(refused, Err(AppError::Overloaded { .. })),
            "{refused:?}"
        );
        gate.wait();
        held.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 1);
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_request_that_gets_no_worker_within_the_wait_answers_overloaded() {
        let pool = pool(1, 8, 50);
        let (held, gate) = occupy_the_worker(&pool).await;
        let late = pool.run(|| 1).await;
        assert!(matches!(late, Err(AppError::Overloaded { .. })), "{late:?}");
        gate.wait();
        held.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_panicking_job_is_an_error_and_its_worker_lives_on() {
        let pool = pool(1, 8, 10_000);
        #[allow(clippy::panic)]
        let failed = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(AppError::Internal(_))));
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}

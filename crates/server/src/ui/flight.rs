//! Work that requests asking the same thing share: one task per key, its result handed
//! to every request that waited for it.
//!
//! The work runs in a task that owns the flight, not in any request's future: it finishes
//! and publishes its result whether or not anyone is still waiting. The obvious shape,
//! `OnceCell::get_or_try_init` awaited by the requests, is wrong here: the init is driven
//! by the waiter's future, so when the only waiter is dropped (the client went away) the
//! init is abandoned and the entry stays behind uninitialised; the next request starts the
//! work again, and a second rotation of one refresh token is reuse. The task removes its
//! entry when the work is done, before publishing, so the map holds only running work and
//! a request arriving after that starts afresh (for a rotation: the store replays the
//! finished one within the browser's retry window).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

type Flight<T> = watch::Receiver<Option<T>>;

pub struct Flights<K, T> {
    running: Mutex<HashMap<K, Flight<T>>>,
}

impl<K, T> Default for Flights<K, T> {
    fn default() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, T> Flights<K, T>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// The result of the work running for `key`, started with `work` when none is.
    /// `None` only if the work panicked.
    pub async fn join<F>(self: &Arc<Self>, key: K, work: impl FnOnce() -> F) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut flight = self.join_or_start(key, work);
        let landed = flight.wait_for(Option::is_some).await;
        landed.ok().and_then(|result| result.clone())
    }

    /// How many keys have work running.
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    fn join_or_start<F>(self: &Arc<Self>, key: K, work: impl FnOnce() -> F) -> Flight<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut running = self.lock();
        if let Some(flight) = running.get(&key) {
            return flight.clone();
        }
        let (tx, rx) = watch::channel(None);
        running.insert(key.clone(), rx.clone());
        drop(running);
        // Removes the entry however the task ends, a panic included.
        let landing = Landing {
            flights: Arc::clone(self),
            key,
        };
        let work = work();
        tokio::spawn(async move {
            let result = work.await;
            drop(landing);
            tx.send_replace(Some(result));
        });
        rx
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Flight<T>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Landing<K: Eq + Hash, T> {
    flights: Arc<Flights<K, T>>,
    key: K,
}

impl<K: Eq + Hash, T> Drop for Landing<K, T> {
    fn drop(&mut self) {
        self.flights
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    /// Work that counts its starts and finishes when `release` fires.
    fn gated(
        starts: &Arc<AtomicUsize>,
        release: oneshot::Receiver<()>,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = u32> + Send>> + use<> {
        let starts = Arc::clone(starts);
        move || {
            starts.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                release.await.ok();
                7
            })
        }
    }

    #[tokio::test]
    async fn work_whose_only_waiter_is_dropped_still_finishes_and_is_not_started_again() {
        let flights = Arc::new(Flights::<u8, u32>::default());
        let starts = Arc::new(AtomicUsize::new(0));
        let (release, gate) = oneshot::channel();

        // The only waiter is polled once (the work has started) and dropped, as axum drops
        // a handler whose client went away.
        let first = flights.join(1, gated(&starts, gate));
        let mut first = Box::pin(first);
        assert!(futures_poll_once(first.as_mut()).await.is_none());
        drop(first);
        assert_eq!(flights.running(), 1, "the work outlives its waiter");

        // The next request for the same key joins the running work instead of starting it
        // again, and gets its result.
        let (_unused, never) = oneshot::channel();
        let second = tokio::spawn({
            let flights = Arc::clone(&flights);
            let work = gated(&starts, never);
            async move { flights.join(1, work).await }
        });
        tokio::task::yield_now().await;
        release.send(()).ok();
        assert_eq!(second.await.ok().flatten(), Some(7));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(flights.running(), 0, "finished work leaves nothing behind");
    }

    #[tokio::test]
    async fn finished_work_is_forgotten_so_the_next_request_starts_afresh() {
        let flights = Arc::new(Flights::<u8, u32>::default());
        let starts = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (release, gate) = oneshot::channel();
            release.send(()).ok();
            assert_eq!(flights.join(1, gated(&starts, gate)).await, Some(7));
        }
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_eq!(flights.running(), 0);
    }

    #[tokio::test]
    async fn work_that_panics_answers_none_and_leaves_nothing_behind() {
        let flights = Arc::new(Flights::<u8, u32>::default());
        let landed = flights
            .join(1, || async {
                #[allow(clippy::panic)]
                {
                    panic!("the work failed")
                }
            })
            .await;
        assert_eq!(landed, None);
        assert_eq!(flights.running(), 0);
    }

    /// Polls `fut` once: `Some` if it finished.
    async fn futures_poll_once<F: Future + Unpin>(mut fut: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}

//! The operator's Job creates in flight, counted so that requests that can wait (status
//! writes, Events) let them go first.
//!
//! Why: a dependent task's Job create is what a run waits for; a status write or an Event is
//! not. On a busy API server every request in flight shares its CPU, and a status apply of a
//! 20-task Pipeline costs it as much as ten Job creates. When many runs' layers turn over in
//! the same second, the creates they trigger finish sooner if the writes decided meanwhile
//! wait until the creates drain — for a bounded time, so that they are never starved.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct CreatesInFlight {
    count: AtomicUsize,
    drained: Notify,
}

impl CreatesInFlight {
    /// One more create is in flight.
    pub fn begin(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// One create was answered; returns how many were in flight before it.
    pub fn end(&self) -> usize {
        let before = self.count.fetch_sub(1, Ordering::AcqRel);
        if before == 1 {
            self.drained.notify_waiters();
        }
        before
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Returns once no create is in flight, or after `at_most`, whichever comes first.
    pub async fn drained(&self, at_most: Duration) {
        let deadline = tokio::time::Instant::now() + at_most;
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so that a drain in between is not missed.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_wait_with_no_create_in_flight_returns_at_once() {
        let creates = CreatesInFlight::default();
        let started = Instant::now();
        creates.drained(Duration::from_secs(1)).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_when_the_last_create_in_flight_is_answered() {
        let creates = Arc::new(CreatesInFlight::default());
        creates.begin();
        creates.begin();
        let answering = {
            let creates = creates.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                assert_eq!(creates.end(), 2);
                tokio::time::sleep(Duration::from_millis(40)).await;
                assert_eq!(creates.end(), 1);
            })
        };
        let started = Instant::now();
        creates.drained(Duration::from_secs(1)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(70));
        assert_eq!(creates.count(), 0);
        answering.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_gives_up_after_its_bound_while_creates_keep_coming() {
        let creates = CreatesInFlight::default();
        creates.begin();
        let started = Instant::now();
        creates.drained(Duration::from_millis(200)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(creates.count(), 1, "the create is still in flight");
    }
}

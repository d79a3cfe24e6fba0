//! Admission of new runs: at most `--run-start-concurrency` reconciles create the first Jobs
//! of a new run at once, and none while the operator's Job creates back up at the API server
//! (`BUSY_CREATES` in flight); the others wait their turn (woken in order as a start finishes
//! or the creates drain) while runs already under way go on creating their next tasks' Jobs.
//!
//! Why: a burst of runs starting together (a hundred Pipelines applied at once, a cron firing
//! for all of them) queues hundreds of Job creates at the API server. Without a gate, a run
//! whose first layer finished waits behind all of them for its next Job — and its reconcile
//! waits for a slot held by reconciles that are themselves waiting for their creates. And
//! while the server is the bottleneck, starting more runs adds no throughput: it only makes
//! every run in flight slower, and a longer run costs more status writes.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::ObjectRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tributary_core::api::Pipeline;

/// Job creates in flight (awaiting the API server, or the client's rate limiter) at which new
/// runs start to wait: twice what one reconcile sends at once, so a start is refused only when
/// several reconciles' creates are queued — the server (or the rate limit) is the bottleneck.
pub const BUSY_CREATES: usize = 16;

pub struct StartGate {
    permits: Arc<Semaphore>,
    /// Job creates in flight, of every reconcile.
    creates: AtomicUsize,
    busy_creates: usize,
    waiting: Mutex<Waiting>,
    /// Reconcile requests into the Pipeline controller.
    triggers: futures::channel::mpsc::Sender<ObjectRef<Pipeline>>,
}

/// Pipelines waiting for a start, in the order they asked (each once).
#[derive(Default)]
struct Waiting {
    order: VecDeque<ObjectRef<Pipeline>>,
    queued: HashSet<ObjectRef<Pipeline>>,
}

/// The right to start a run, held until its first Jobs are created; wakes the next waiting
/// Pipeline when dropped.
pub struct Admission {
    permit: Option<OwnedSemaphorePermit>,
    gate: Arc<StartGate>,
}

impl StartGate {
    pub fn new(
        concurrent_starts: usize,
        busy_creates: usize,
        triggers: futures::channel::mpsc::Sender<ObjectRef<Pipeline>>,
    ) -> Arc<Self> {
        Arc::new(StartGate {
            permits: Arc::new(Semaphore::new(concurrent_starts.max(1))),
            creates: AtomicUsize::new(0),
            busy_creates: busy_creates.max(1),
            waiting: Mutex::new(Waiting::default()),
            triggers,
        })
    }

    /// A start for `pipeline` now, or `None`: it is then queued and reconciled again when
    /// its turn comes.
    pub fn try_admit(self: &Arc<Self>, pipeline: &ObjectRef<Pipeline>) -> Option<Admission> {
        let mut waiting = self.waiting.lock().expect("start gate lock");
        let busy = self.creates.load(Ordering::Relaxed) >= self.busy_creates;
        if !busy && let Ok(permit) = self.permits.clone().try_acquire_owned() {
            if waiting.queued.remove(pipeline) {
                waiting.order.retain(|p| p != pipeline);
            }
            return Some(Admission {
                permit: Some(permit),
                gate: self.clone(),
            });
        }
        if waiting.queued.insert(pipeline.clone()) {
            waiting.order.push_back(pipeline.clone());
        }
        None
    }

    /// Counts one Job create in flight until the returned guard is dropped.
    pub fn creating(self: &Arc<Self>) -> Creating {
        self.creates.fetch_add(1, Ordering::Relaxed);
        Creating { gate: self.clone() }
    }

    /// Pipelines waiting for a start.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.lock().expect("start gate lock").order.len()
    }

    /// Wakes the Pipeline that waited longest. It leaves the queue: if it still wants a
    /// start and finds none free, it queues again at the back; if it no longer wants one
    /// (its spec changed, it was deleted), nothing of it lingers.
    fn wake_next(&self) {
        let next = {
            let mut waiting = self.waiting.lock().expect("start gate lock");
            let next = waiting.order.pop_front();
            if let Some(next) = &next {
                waiting.queued.remove(next);
            }
            next
        };
        if let Some(next) = next {
            // A full trigger queue means reconciles are queued anyway; the waiting Pipeline's
            // own requeue then brings it back.
            let _ = self.triggers.clone().try_send(next);
        }
    }
}

/// One Job create in flight (`StartGate::creating`).
pub struct Creating {
    gate: Arc<StartGate>,
}

impl Drop for Creating {
    fn drop(&mut self) {
        let before = self.gate.creates.fetch_sub(1, Ordering::Relaxed);
        // The creates just drained below the mark: a waiting start may go.
        if before == self.gate.busy_creates {
            self.gate.wake_next();
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        // Release first, so that the one woken finds the start free.
        drop(self.permit.take());
        self.gate.wake_next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(name: &str) -> ObjectRef<Pipeline> {
        ObjectRef::new(name).within("shop")
    }

    #[tokio::test]
    async fn starts_beyond_the_limit_wait_and_are_woken_in_the_order_they_asked() {
        let (tx, mut rx) = futures::channel::mpsc::channel(16);
        let gate = StartGate::new(1, 16, tx);
        let first = gate.try_admit(&pipeline("a")).expect("a free start");
        assert!(gate.try_admit(&pipeline("b")).is_none());
        assert!(gate.try_admit(&pipeline("c")).is_none());
        assert!(gate.try_admit(&pipeline("b")).is_none(), "asking again");
        assert_eq!(gate.waiting(), 2, "each Pipeline waits once");

        drop(first);
        let woken = futures::StreamExt::next(&mut rx).await.unwrap();
        assert_eq!(woken, pipeline("b"));
        assert_eq!(gate.waiting(), 1, "the woken one left the queue");
        let second = gate.try_admit(&pipeline("b")).expect("b's turn");
        assert!(gate.try_admit(&pipeline("d")).is_none());
        drop(second);
        let woken = futures::StreamExt::next(&mut rx).await.unwrap();
        assert_eq!(woken, pipeline("c"));
        // c no longer wants a start (say, its spec changed): d is next, nothing is stuck.
        let third = gate.try_admit(&pipeline("d")).expect("a free start");
        assert_eq!(gate.waiting(), 0);
        drop(third);
        assert!(rx.try_recv().is_err(), "nobody left to wake");
    }
    #[tokio::test]
    async fn while_job_creates_back_up_new_runs_wait_and_go_in_order_once_they_drain() {
        let (tx, mut rx) = futures::channel::mpsc::channel(16);
        let gate = StartGate::new(4, 2, tx);
        let creates = [gate.creating(), gate.creating()];
        assert!(
            gate.try_admit(&pipeline("a")).is_none(),
            "two creates in flight"
        );
        assert!(gate.try_admit(&pipeline("b")).is_none());

        let [first, second] = creates;
        drop(first);
        let woken = futures::StreamExt::next(&mut rx).await.unwrap();
        assert_eq!(woken, pipeline("a"), "the first to wait goes first");
        let a = gate
            .try_admit(&pipeline("a"))
            .expect("one create in flight");
        drop(second);
        assert!(rx.try_recv().is_err(), "not busy before: nobody woken");
        drop(a);
        let woken = futures::StreamExt::next(&mut rx).await.unwrap();
        assert_eq!(woken, pipeline("b"));
        assert!(gate.try_admit(&pipeline("b")).is_some());
    }
}

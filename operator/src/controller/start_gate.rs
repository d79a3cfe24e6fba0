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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tributary_core::api::Pipeline;

use crate::creates::CreatesInFlight;

/// Job creates in flight (awaiting the API server, or the client's rate limiter) at which new
/// runs start to wait: twice what one reconcile sends at once, so a start is refused only when
/// several reconciles' creates are queued — the server (or the rate limit) is the bottleneck.
pub const BUSY_CREATES: usize = 16;

/// The soonest a deferred start tries again by itself, whatever its place in the queue.
const RETRY_SOONEST: Duration = Duration::from_secs(2);
/// The latest: if a wake is lost (the woken Pipeline no longer wanted a start, or the trigger
/// queue was full), a waiting Pipeline is late by at most this much.
const RETRY_LATEST: Duration = Duration::from_secs(30);
/// A gap between starts longer than this is an idle spell, not the pace of a busy queue.
const PACE_GAP_LIMIT: Duration = Duration::from_secs(10);

pub struct StartGate {
    permits: Arc<Semaphore>,
    /// Job creates in flight, of every reconcile.
    creates: Arc<CreatesInFlight>,
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
    /// When the last start was admitted, and the mean gap between starts while busy.
    last_admitted: Option<Instant>,
    mean_gap: Option<Duration>,
}

/// A start refused for now: the Pipeline waits in the queue and is woken when its turn comes.
#[derive(Debug, PartialEq, Eq)]
pub struct Deferred {
    /// When it should try again by itself in case its wake is lost.
    pub retry_after: Duration,
}

/// When a start deferred at `position` in the queue (0: next) retries by itself: about when
/// its turn is due at the recent pace of starts. A retry every few seconds from each of
/// hundreds of waiting Pipelines would be hundreds of reconciles a second that admit nothing
/// (they are woken in order anyway).
fn retry_after(position: usize, mean_gap: Option<Duration>) -> Duration {
    let due = mean_gap.map_or(RETRY_SOONEST, |gap| {
        gap.saturating_mul(u32::try_from(position.saturating_add(1)).unwrap_or(u32::MAX))
    });
    due.clamp(RETRY_SOONEST, RETRY_LATEST)
}

impl Waiting {
    fn note_admitted(&mut self, now: Instant) {
        if let Some(last) = self.last_admitted.replace(now) {
            let gap = now - last;
            if gap <= PACE_GAP_LIMIT {
                // A moving average over the last dozen or so starts.
                self.mean_gap = Some(self.mean_gap.map_or(gap, |mean| (mean * 7 + gap) / 8));
            }
        }
    }
}

/// The right to start a run, held until its first Jobs are created; wakes the next waiting
/// Pipeline when dropped.
pub struct Admission {
    permit: Option<OwnedSemaphorePermit>,
    gate: Arc<StartGate>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admission")
    }
}

impl StartGate {
    pub fn new(
        concurrent_starts: usize,
        busy_creates: usize,
        creates: Arc<CreatesInFlight>,
        triggers: futures::channel::mpsc::Sender<ObjectRef<Pipeline>>,
    ) -> Arc<Self> {
        Arc::new(StartGate {
            permits: Arc::new(Semaphore::new(concurrent_starts.max(1))),
            creates,
            busy_creates: busy_creates.max(1),
            waiting: Mutex::new(Waiting::default()),
            triggers,
        })
    }

    /// A start for `pipeline` now, or `Deferred`: it is then queued and reconciled again
    /// when its turn comes.
    pub fn try_admit(
        self: &Arc<Self>,
        pipeline: &ObjectRef<Pipeline>,
    ) -> Result<Admission, Deferred> {
        let mut waiting = self.waiting.lock().expect("start gate lock");
        let busy = self.creates.count() >= self.busy_creates;
        if !busy && let Ok(permit) = self.permits.clone().try_acquire_owned() {
            if waiting.queued.remove(pipeline) {
                waiting.order.retain(|p| p != pipeline);
            }
            waiting.note_admitted(Instant::now());
            return Ok(Admission {
                permit: Some(permit),
                gate: self.clone(),
            });
        }
        let position = if waiting.queued.insert(pipeline.clone()) {
            waiting.order.push_back(pipeline.clone());
            waiting.order.len() - 1
        } else {
            waiting
                .order
                .iter()
                .position(|p| p == pipeline)
                .unwrap_or(waiting.order.len())
        };
        Err(Deferred {
            retry_after: retry_after(position, waiting.mean_gap),
        })
    }

    /// Counts one Job create in flight until the returned guard is dropped.
    pub fn creating(self: &Arc<Self>) -> Creating {
        self.creates.begin();
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
        let before = self.gate.creates.end();
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
        let gate = StartGate::new(1, 16, Default::default(), tx);
        let first = gate.try_admit(&pipeline("a")).expect("a free start");
        assert!(gate.try_admit(&pipeline("b")).is_err());
        assert!(gate.try_admit(&pipeline("c")).is_err());
        assert!(gate.try_admit(&pipeline("b")).is_err(), "asking again");
        assert_eq!(gate.waiting(), 2, "each Pipeline waits once");

        drop(first);
        let woken = futures::StreamExt::next(&mut rx).await.unwrap();
        assert_eq!(woken, pipeline("b"));
        assert_eq!(gate.waiting(), 1, "the woken one left the queue");
        let second = gate.try_admit(&pipeline("b")).expect("b's turn");
        assert!(gate.try_admit(&pipeline("d")).is_err());
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
        let gate = StartGate::new(4, 2, Default::default(), tx);
        let creates = [gate.creating(), gate.creating()];
        assert!(
            gate.try_admit(&pipeline("a")).is_err(),
            "two creates in flight"
        );
        assert!(gate.try_admit(&pipeline("b")).is_err());

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
        assert!(gate.try_admit(&pipeline("b")).is_ok());
    }

    #[test]
    fn a_deferred_start_retries_about_when_its_turn_is_due_within_bounds() {
        let gap = Some(Duration::from_millis(100));
        assert_eq!(retry_after(0, None), RETRY_SOONEST, "no pace measured yet");
        assert_eq!(retry_after(3, gap), RETRY_SOONEST, "near the front");
        assert_eq!(retry_after(99, gap), Duration::from_secs(10));
        assert_eq!(retry_after(10_000, gap), RETRY_LATEST, "far back");
        assert_eq!(retry_after(usize::MAX, gap), RETRY_LATEST);
    }

    #[tokio::test]
    async fn the_pace_of_starts_sets_when_the_ones_further_back_retry() {
        let (tx, _rx) = futures::channel::mpsc::channel(16);
        let gate = StartGate::new(1, 16, Default::default(), tx);
        for _ in 0..3 {
            drop(gate.try_admit(&pipeline("a")).expect("a free start"));
        }
        let _held = gate.try_admit(&pipeline("a")).expect("a free start");
        let measured = gate.waiting.lock().unwrap().mean_gap;
        assert!(
            measured.is_some_and(|gap| gap < PACE_GAP_LIMIT),
            "{measured:?}"
        );

        // One start a second, say: the fourth in line is due in about four seconds.
        gate.waiting.lock().unwrap().mean_gap = Some(Duration::from_secs(1));
        for name in ["b", "c", "d"] {
            assert!(gate.try_admit(&pipeline(name)).is_err());
        }
        let fourth = gate.try_admit(&pipeline("e")).unwrap_err();
        assert_eq!(fourth.retry_after, Duration::from_secs(4));
        assert_eq!(
            gate.try_admit(&pipeline("e")).unwrap_err(),
            fourth,
            "asking again keeps its place"
        );
    }
}

//! Status writes waiting behind the reconciles, one slot per object: the latest decided
//! status (newer decisions replace older ones before they are written), when it is due, and
//! the Jobs to delete once it is written. Pure: the tasks that write live in `controller`.
//!
//! Why behind: a reconcile that waited for its status write (~0.2 s under load) held up the
//! next reconcile of the same Pipeline, and with it the Jobs of tasks that became ready
//! meanwhile. Writes of one object never overlap, so an older status can never land after a
//! newer one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::TaskStart;
use crate::recent::Recent;
use crate::settle::SettleEstimate;

/// The object a status belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// How soon a decided status must reach the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// At once: a run finished, the phase changed, Jobs are to be deleted.
    Now,
    /// `SETTLE_INTERVALS` from now, longer while recent runs took longer (`crate::settle`,
    /// up to `MAX_SPACING_INTERVALS`), or one spacing when that is longer still: a run
    /// started. Its first tasks' progress joins the write, and a run over by then is written
    /// once, when it finishes.
    Settle,
    /// Mere progress: gathered until one interval passes without more (at most
    /// `GATHER_INTERVALS` from the first), and spaced from the object's previous write
    /// (`StatusQueue::spacing`).
    Progress,
}

/// One decided status to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub target: Target,
    /// The status as compact JSON.
    pub status: Arc<str>,
    /// Jobs to delete once this status (or a newer one) is written: status must no longer
    /// point at a Job when it goes.
    pub deletes: Vec<String>,
    /// How soon to write it.
    pub urgency: Urgency,
    /// Tasks it shows started: announced once it (or a newer status) is written.
    pub started: Vec<TaskStart>,
    /// How long the run it shows finished took, when it finishes one: how long later runs
    /// settle.
    pub finished_run_took: Option<Duration>,
}

/// What the writer of one object does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Write(Write),
    /// Nothing due before this instant (or before a newer submission wakes the writer).
    WaitUntil(Instant),
    /// Everything is written: the writer ends (a later submission starts a new one).
    Idle,
}

/// A write to carry out now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub target: Target,
    pub status: Arc<str>,
    pub deletes: Vec<String>,
    /// Tasks to announce once it is written, started since the previous write.
    pub started: Vec<TaskStart>,
    /// Identifies the submission written, for `written` / `failed`.
    pub version: u64,
}

#[derive(Debug)]
struct Slot {
    target: Target,
    status: Arc<str>,
    version: u64,
    /// The version last written successfully (or 0).
    written_version: u64,
    deletes: BTreeSet<String>,
    started: Vec<TaskStart>,
    due: Instant,
    /// When this object's status was last written by this queue.
    last_write: Option<Instant>,
    /// Whether a submission not yet being written was due at once (`Urgency::Now`).
    urgent: bool,
    /// When the oldest progress not yet written was submitted: a write it waits for, put
    /// off while more progress follows, goes no later than `GATHER_INTERVALS` after it.
    gathering_since: Option<Instant>,
}

impl Slot {
    fn new(
        target: Target,
        status: Arc<str>,
        version: u64,
        deletes: Vec<String>,
        started: Vec<TaskStart>,
        now: Instant,
    ) -> Self {
        Slot {
            target,
            status,
            version,
            written_version: 0,
            deletes: deletes.into_iter().collect(),
            started,
            due: now,
            last_write: None,
            urgent: false,
            gathering_since: None,
        }
    }
}

/// The slots of every object with a status not yet written.
#[derive(Debug)]
pub struct StatusQueue {
    interval: Duration,
    slots: HashMap<String, Slot>,
    /// When objects without a slot were last written, while that still spaces a write.
    recent_writes: Recent,
    settle: SettleEstimate,
    versions: u64,
}

/// Past this many remembered write times, those too old to matter are dropped.
const RECENT_WRITES_LIMIT: usize = 10_000;

/// Progress writes per second that all objects share once many have status waiting: each is
/// a server-side apply of a whole status (20–30 ms of API server CPU for 20 tasks, as much as
/// ten Job creates: `make bench-operator`), and at one per second each, a thousand running
/// Pipelines would take the API server's capacity from the Jobs they are waiting for.
const PROGRESS_WRITES_PER_SECOND: u32 = 20;

/// A starting run's status waits this many intervals at least: runs over in a few seconds
/// (under load most are: the start gate keeps the runs in flight few and quick) are then
/// written once instead of twice — each write of a 20-task Pipeline costs the API server
/// about as much CPU as ten Job creates.
const SETTLE_INTERVALS: u32 = 3;

/// Progress is gathered until one interval passes without more, but for at most this many
/// intervals from the first: under load a layer's tasks finish over a second or two and
/// their dependents' Jobs are created a second later, and a write in the middle of that
/// turnover would be followed by a second one a spacing later (two writes of the whole
/// status where one shows the same end state).
const GATHER_INTERVALS: u32 = 3;

/// The spacing of progress grows with load up to this many intervals, and so may a starting
/// run's settling.
const MAX_SPACING_INTERVALS: u32 = 10;

impl StatusQueue {
    /// `interval`: least time between two non-urgent writes of one object.
    pub fn new(interval: Duration) -> Self {
        StatusQueue {
            interval,
            slots: HashMap::new(),
            recent_writes: Recent::new(interval, RECENT_WRITES_LIMIT),
            settle: SettleEstimate::new(),
            versions: 0,
        }
    }

    /// Queues `submission` for `key`, replacing a status not written yet. Returns true when
    /// no writer is running for `key` and the caller must start one.
    pub fn submit(&mut self, key: &str, submission: Submission, now: Instant) -> bool {
        self.versions += 1;
        let version = self.versions;
        let Submission {
            target,
            status,
            deletes,
            urgency,
            started,
            finished_run_took,
        } = submission;
        if let Some(took) = finished_run_took {
            self.settle.record(took, now);
        }
        let spacing = self.spacing();
        let settling = match urgency {
            Urgency::Settle => self.settle.wait(
                now,
                self.interval * SETTLE_INTERVALS,
                self.interval * MAX_SPACING_INTERVALS,
            ),
            Urgency::Now | Urgency::Progress => Duration::ZERO,
        };
        let urgent = urgency == Urgency::Now;
        let due_after = |last_write: Option<Instant>| match (urgency, last_write) {
            (Urgency::Now, _) => now,
            // Gathered for one interval at least (longer while more follows: `submit` on a
            // slot): the first task of a layer to finish would otherwise be written alone,
            // and its siblings (and the Jobs started after them) a second write later.
            (Urgency::Progress, None) => now + self.interval,
            (Urgency::Settle, _) => now + spacing.max(settling),
            (Urgency::Progress, Some(at)) => (at + spacing).max(now + self.interval),
        };
        match self.slots.get_mut(key) {
            Some(slot) if slot.target.uid == target.uid => {
                slot.status = status;
                slot.version = version;
                slot.deletes.extend(deletes);
                slot.started.extend(started);
                // A slot is already due when its spacing, settling or retry allows; only an
                // urgent status goes sooner, and more progress may put a gathering write off.
                if urgent {
                    slot.due = slot.due.min(now);
                    slot.urgent = true;
                } else if urgency == Urgency::Progress && !slot.urgent {
                    let since = *slot.gathering_since.get_or_insert(now);
                    let gathered =
                        (now + self.interval).min(since + self.interval * GATHER_INTERVALS);
                    slot.due = slot.due.max(gathered);
                }
                false
            }
            Some(slot) => {
                // The object was re-created under the same name: the old one's status and
                // deletions are moot. The running writer picks the new slot up.
                *slot = Slot::new(target, status, version, deletes, started, now);
                false
            }
            None => {
                let mut slot = Slot::new(target, status, version, deletes, started, now);
                slot.last_write = self.recent_writes.take(key);
                slot.due = due_after(slot.last_write);
                slot.urgent = urgent;
                slot.gathering_since = (urgency == Urgency::Progress).then_some(now);
                self.slots.insert(key.to_string(), slot);
                true
            }
        }
    }

    /// A status whose write is not confirmed yet; the next decision for the object builds on
    /// it (the cache does not show it).
    pub fn latest(&self, key: &str, uid: &str) -> Option<Arc<str>> {
        let slot = self.slots.get(key)?;
        (slot.target.uid == uid && slot.written_version < slot.version).then(|| slot.status.clone())
    }

    /// What the writer of `key` does next.
    pub fn next(&mut self, key: &str, now: Instant) -> Next {
        let Some(slot) = self.slots.get_mut(key) else {
            return Next::Idle;
        };
        if slot.written_version == slot.version && slot.deletes.is_empty() {
            if let Some(at) = slot.last_write {
                self.recent_writes.insert(key, at, now);
            }
            self.slots.remove(key);
            return Next::Idle;
        }
        if slot.due > now {
            return Next::WaitUntil(slot.due);
        }
        slot.urgent = false;
        Next::Write(Write {
            target: slot.target.clone(),
            status: slot.status.clone(),
            deletes: std::mem::take(&mut slot.deletes).into_iter().collect(),
            started: std::mem::take(&mut slot.started),
            version: slot.version,
        })
    }

    /// The write of `write` succeeded at `now`.
    pub fn written(&mut self, key: &str, write: &Write, now: Instant) {
        let spacing = self.spacing();
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if slot.target.uid != write.target.uid {
            return;
        }
        slot.written_version = slot.written_version.max(write.version);
        slot.last_write = Some(now);
        // Progress decided while the write was in flight gathers from now on.
        slot.gathering_since = (slot.written_version < slot.version).then_some(now);
        if !slot.urgent {
            // Progress decided from now on (or while the write was in flight) is spaced from
            // this write; an urgent decision made meanwhile is already due.
            slot.due = now + spacing;
        }
    }

    /// Least time between two progress writes of one object: `interval`, or longer while
    /// more objects have status waiting than `PROGRESS_WRITES_PER_SECOND` spaced by it.
    pub fn spacing(&self) -> Duration {
        let waiting = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        (Duration::from_secs(1) * waiting / PROGRESS_WRITES_PER_SECOND)
            .clamp(self.interval, self.interval * MAX_SPACING_INTERVALS)
    }

    /// The write failed; try again at `retry_at` (its deletions and announcements too, after
    /// the status).
    pub fn failed(&mut self, key: &str, write: Write, retry_at: Instant) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if slot.target.uid != write.target.uid {
            return;
        }
        slot.deletes.extend(write.deletes);
        // Started before those submitted since.
        let since = std::mem::replace(&mut slot.started, write.started);
        slot.started.extend(since);
        slot.due = slot.due.max(retry_at);
    }

    /// Makes every queued write due now (the operator is stopping).
    pub fn expedite_all(&mut self, now: Instant) {
        for slot in self.slots.values_mut() {
            slot.due = slot.due.min(now);
        }
    }

    /// The object is gone (deleted, or its status cannot be written any more).
    pub fn forget(&mut self, key: &str) {
        self.slots.remove(key);
        self.recent_writes.take(key);
    }

    /// Whether no object has a status left to write.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(1);

    fn submission(uid: &str, status: &str, deletes: &[&str], urgency: Urgency) -> Submission {
        Submission {
            target: Target {
                namespace: "shop".into(),
                name: "retail".into(),
                uid: uid.into(),
            },
            status: status.into(),
            deletes: deletes.iter().map(|d| d.to_string()).collect(),
            urgency,
            started: Vec::new(),
            finished_run_took: None,
        }
    }

    fn started(task: &str) -> TaskStart {
        TaskStart {
            task: task.into(),
            attempt: 1,
            job: format!("retail-g1-{task}-1"),
            at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn tasks(write: &Write) -> Vec<&str> {
        write.started.iter().map(|s| s.task.as_str()).collect()
    }

    #[test]
    fn tasks_started_since_the_last_write_are_announced_with_the_next_one_and_kept_when_it_fails() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        let with_started = |status: &str, task: &str| Submission {
            started: vec![started(task)],
            ..submission("u1", status, &[], Urgency::Settle)
        };
        queue.submit("shop/retail", with_started("a started", "a"), t0);
        queue.submit("shop/retail", with_started("b started", "b"), t0);
        let t1 = t0 + 3 * INTERVAL;
        let write = expect_write(&mut queue, t1);
        assert_eq!(tasks(&write), ["a", "b"]);

        // The write fails while c starts: a and b go out with the retry, before c.
        queue.submit("shop/retail", with_started("c started", "c"), t1);
        let t2 = t1 + INTERVAL;
        queue.failed("shop/retail", write, t2);
        let retry = expect_write(&mut queue, t2);
        assert_eq!(&*retry.status, "c started");
        assert_eq!(tasks(&retry), ["a", "b", "c"]);
        queue.written("shop/retail", &retry, t2);
        assert_eq!(queue.next("shop/retail", t2), Next::Idle);
    }

    fn expect_write(queue: &mut StatusQueue, now: Instant) -> Write {
        match queue.next("shop/retail", now) {
            Next::Write(write) => write,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    /// A queue whose one object had status "a" written at `t0`, its writer ended.
    fn written_once_at(t0: Instant) -> StatusQueue {
        let mut queue = StatusQueue::new(INTERVAL);
        queue.submit("shop/retail", submission("u1", "a", &[], Urgency::Now), t0);
        let write = expect_write(&mut queue, t0);
        queue.written("shop/retail", &write, t0);
        assert_eq!(queue.next("shop/retail", t0), Next::Idle);
        queue
    }
    #[test]
    fn a_newer_decision_replaces_one_not_yet_written_and_keeps_its_deletions() {
        let mut queue = StatusQueue::new(INTERVAL);
        let now = Instant::now();
        assert!(queue.submit(
            "shop/retail",
            submission("u1", "a", &["j1"], Urgency::Now),
            now
        ));
        assert!(!queue.submit(
            "shop/retail",
            submission("u1", "b", &["j2"], Urgency::Progress),
            now
        ));
        assert_eq!(queue.latest("shop/retail", "u1").as_deref(), Some("b"));
        let write = expect_write(&mut queue, now);
        assert_eq!(&*write.status, "b");
        assert_eq!(write.deletes, ["j1", "j2"]);
        queue.written("shop/retail", &write, now);
        assert_eq!(queue.latest("shop/retail", "u1"), None);
        assert_eq!(queue.next("shop/retail", now), Next::Idle);
        assert!(queue.is_empty());
    }

    #[test]
    fn progress_is_gathered_until_an_interval_passes_without_more_into_one_write() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        // A layer's first task finishes; its siblings follow, then their dependents start.
        assert!(queue.submit(
            "shop/retail",
            submission("u1", "a done", &[], Urgency::Progress),
            t0
        ));
        assert_eq!(
            queue.next("shop/retail", t0),
            Next::WaitUntil(t0 + INTERVAL)
        );
        let t1 = t0 + Duration::from_millis(800);
        queue.submit(
            "shop/retail",
            submission("u1", "a, b done", &[], Urgency::Progress),
            t1,
        );
        assert_eq!(
            queue.next("shop/retail", t1),
            Next::WaitUntil(t1 + INTERVAL),
            "more progress puts the write off by an interval"
        );
        let t2 = t1 + Duration::from_millis(900);
        queue.submit(
            "shop/retail",
            submission("u1", "a, b done; c started", &[], Urgency::Progress),
            t2,
        );
        let write = expect_write(&mut queue, t2 + INTERVAL);
        assert_eq!(&*write.status, "a, b done; c started");
        queue.written("shop/retail", &write, t2 + INTERVAL);
        assert_eq!(queue.next("shop/retail", t2 + INTERVAL), Next::Idle);
    }

    #[test]
    fn progress_that_never_pauses_is_still_written_within_the_gathering_limit() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        queue.submit(
            "shop/retail",
            submission("u1", "0", &[], Urgency::Progress),
            t0,
        );
        let limit = t0 + INTERVAL * GATHER_INTERVALS;
        let mut now = t0;
        for step in 1..=10 {
            now += Duration::from_millis(500);
            let status = step.to_string();
            queue.submit(
                "shop/retail",
                submission("u1", &status, &[], Urgency::Progress),
                now,
            );
            match queue.next("shop/retail", now) {
                Next::WaitUntil(due) => assert!(due <= limit, "due {due:?} past the limit"),
                Next::Write(write) => {
                    assert!(now >= limit, "written before the limit without a pause");
                    assert_eq!(&*write.status, status.as_str());
                    return;
                }
                Next::Idle => panic!("progress is waiting to be written"),
            }
        }
        panic!("progress was never written");
    }

    #[test]
    fn progress_after_a_spaced_write_is_still_gathered_for_an_interval() {
        let t0 = Instant::now();
        let mut queue = written_once_at(t0);
        // Long after the spacing: the first finish of the next layer still gathers.
        let t1 = t0 + INTERVAL * 5;
        assert!(queue.submit(
            "shop/retail",
            submission("u1", "b", &[], Urgency::Progress),
            t1
        ));
        assert_eq!(
            queue.next("shop/retail", t1),
            Next::WaitUntil(t1 + INTERVAL)
        );
    }

    #[test]
    fn progress_waits_out_the_interval_after_the_last_write_but_urgent_changes_do_not() {
        let t0 = Instant::now();
        let mut queue = written_once_at(t0);

        // Progress 100 ms later waits out a second after the write, and is gathered for a
        // second of its own, whichever ends later...
        let t1 = t0 + Duration::from_millis(100);
        assert!(queue.submit(
            "shop/retail",
            submission("u1", "b", &[], Urgency::Progress),
            t1
        ));
        assert_eq!(
            queue.next("shop/retail", t1),
            Next::WaitUntil((t0 + INTERVAL).max(t1 + INTERVAL))
        );
        // ...unless something urgent comes up meanwhile.
        let t2 = t0 + Duration::from_millis(200);
        queue.submit("shop/retail", submission("u1", "c", &[], Urgency::Now), t2);
        assert_eq!(&*expect_write(&mut queue, t2).status, "c");
    }

    #[test]
    fn a_starting_run_waits_three_intervals_so_that_its_first_progress_joins_the_write() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        let settled = t0 + 3 * INTERVAL;
        queue.submit(
            "shop/retail",
            submission("u1", "started", &[], Urgency::Settle),
            t0,
        );
        assert_eq!(queue.next("shop/retail", t0), Next::WaitUntil(settled));
        let t1 = t0 + Duration::from_millis(1400);
        queue.submit(
            "shop/retail",
            submission("u1", "a done", &[], Urgency::Progress),
            t1,
        );
        assert_eq!(queue.next("shop/retail", t1), Next::WaitUntil(settled));
        assert_eq!(&*expect_write(&mut queue, settled).status, "a done");

        // A run over by then is written once, when it finishes.
        let t2 = t0 + 10 * INTERVAL;
        let mut queue = StatusQueue::new(INTERVAL);
        queue.submit(
            "shop/retail",
            submission("u1", "started", &[], Urgency::Settle),
            t2,
        );
        queue.submit(
            "shop/retail",
            submission("u1", "finished", &[], Urgency::Now),
            t2,
        );
        let write = expect_write(&mut queue, t2);
        assert_eq!(&*write.status, "finished");
        queue.written("shop/retail", &write, t2);
        assert_eq!(queue.next("shop/retail", t2), Next::Idle);
    }

    #[test]
    fn a_starting_run_settles_as_long_as_most_runs_finished_lately_took() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        // Ten other Pipelines' runs finished, each after 6 s.
        for i in 0..10 {
            let finished = Submission {
                finished_run_took: Some(6 * INTERVAL),
                ..submission(&format!("u{i}"), "finished", &[], Urgency::Now)
            };
            let key = format!("shop/p{i}");
            queue.submit(&key, finished, t0);
            let Next::Write(write) = queue.next(&key, t0) else {
                panic!("a finished run is written at once");
            };
            queue.written(&key, &write, t0);
            assert_eq!(queue.next(&key, t0), Next::Idle);
        }
        queue.submit(
            "shop/retail",
            submission("r", "started", &[], Urgency::Settle),
            t0,
        );
        assert_eq!(
            queue.next("shop/retail", t0),
            Next::WaitUntil(t0 + Duration::from_millis(7_500)),
            "6 s and a quarter: a run as slow as those is over and written once"
        );
    }

    #[test]
    fn progress_is_spaced_further_while_many_objects_wait_but_never_past_ten_intervals() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        let key = |i: usize| format!("shop/p{i}");
        for i in 0..100 {
            queue.submit(&key(i), submission("u1", "a", &[], Urgency::Progress), t0);
        }
        // 100 objects waiting share 20 progress writes a second: five seconds apart.
        assert_eq!(queue.spacing(), Duration::from_secs(5));
        let t1 = t0 + INTERVAL;
        let Next::Write(write) = queue.next(&key(0), t1) else {
            panic!("the first write is due once its progress is gathered");
        };
        queue.written(&key(0), &write, t1);
        queue.submit(&key(0), submission("u1", "b", &[], Urgency::Progress), t1);
        assert_eq!(
            queue.next(&key(0), t1),
            Next::WaitUntil(t1 + Duration::from_secs(5))
        );

        for i in 100..1000 {
            queue.submit(&key(i), submission("u1", "a", &[], Urgency::Progress), t0);
        }
        assert_eq!(queue.spacing(), 10 * INTERVAL);
        for i in 0..1000 {
            queue.forget(&key(i));
        }
        assert_eq!(queue.spacing(), INTERVAL);
    }

    #[test]
    fn a_decision_made_while_a_write_is_in_flight_is_written_after_it() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        queue.submit("shop/retail", submission("u1", "a", &[], Urgency::Now), t0);
        let first = expect_write(&mut queue, t0);
        queue.submit(
            "shop/retail",
            submission("u1", "b", &[], Urgency::Progress),
            t0,
        );
        // The next reconcile builds on the newest decision, not on the one in flight.
        assert_eq!(queue.latest("shop/retail", "u1").as_deref(), Some("b"));
        let t1 = t0 + Duration::from_millis(200);
        queue.written("shop/retail", &first, t1);
        assert_eq!(queue.latest("shop/retail", "u1").as_deref(), Some("b"));
        assert_eq!(
            queue.next("shop/retail", t1),
            Next::WaitUntil(t1 + INTERVAL)
        );
        assert_eq!(&*expect_write(&mut queue, t1 + INTERVAL).status, "b");

        // An urgent decision during a write goes right after it.
        let t2 = t1 + INTERVAL;
        queue.submit("shop/retail", submission("u1", "c", &[], Urgency::Now), t2);
        let urgent_during = expect_write(&mut queue, t2);
        queue.submit(
            "shop/retail",
            submission("u1", "d", &["j1"], Urgency::Now),
            t2,
        );
        queue.written("shop/retail", &urgent_during, t2);
        let next = expect_write(&mut queue, t2);
        assert_eq!(
            (&*next.status, next.deletes.as_slice()),
            ("d", &["j1".to_string()][..])
        );
    }

    #[test]
    fn a_failed_write_is_retried_later_with_its_deletions() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        queue.submit(
            "shop/retail",
            submission("u1", "a", &["j1"], Urgency::Now),
            t0,
        );
        let write = expect_write(&mut queue, t0);
        let retry_at = t0 + Duration::from_secs(2);
        queue.failed("shop/retail", write, retry_at);
        assert_eq!(queue.latest("shop/retail", "u1").as_deref(), Some("a"));
        assert_eq!(queue.next("shop/retail", t0), Next::WaitUntil(retry_at));
        let again = expect_write(&mut queue, retry_at);
        assert_eq!(
            (&*again.status, again.deletes.as_slice()),
            ("a", &["j1".to_string()][..])
        );
    }

    #[test]
    fn a_status_written_whose_deletions_failed_keeps_the_writer_until_they_are_done() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        queue.submit(
            "shop/retail",
            submission("u1", "a", &["j1"], Urgency::Now),
            t0,
        );
        let write = expect_write(&mut queue, t0);
        queue.written("shop/retail", &write, t0);
        let retry_at = t0 + Duration::from_secs(2);
        queue.failed("shop/retail", write, retry_at);
        assert_eq!(queue.next("shop/retail", t0), Next::WaitUntil(retry_at));
        assert_eq!(expect_write(&mut queue, retry_at).deletes, ["j1"]);
    }

    #[test]
    fn an_object_recreated_under_the_same_name_drops_the_old_ones_status() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        queue.submit(
            "shop/retail",
            submission("old", "a", &["j1"], Urgency::Progress),
            t0,
        );
        assert!(!queue.submit(
            "shop/retail",
            submission("new", "b", &[], Urgency::Progress),
            t0
        ));
        assert_eq!(queue.latest("shop/retail", "old"), None);
        let write = expect_write(&mut queue, t0 + INTERVAL);
        assert_eq!((&*write.target.uid, &*write.status), ("new", "b"));
        assert!(write.deletes.is_empty());
    }

    #[test]
    fn a_stopping_operator_writes_spaced_progress_at_once() {
        let t0 = Instant::now();
        let mut queue = written_once_at(t0);
        queue.submit(
            "shop/retail",
            submission("u1", "b", &[], Urgency::Progress),
            t0,
        );
        assert!(matches!(queue.next("shop/retail", t0), Next::WaitUntil(_)));
        queue.expedite_all(t0);
        assert_eq!(&*expect_write(&mut queue, t0).status, "b");
    }

    #[test]
    fn a_forgotten_object_ends_its_writer() {
        let mut queue = StatusQueue::new(INTERVAL);
        let t0 = Instant::now();
        queue.submit("shop/retail", submission("u1", "a", &[], Urgency::Now), t0);
        queue.forget("shop/retail");
        assert_eq!(queue.next("shop/retail", t0), Next::Idle);
        assert!(queue.submit(
            "shop/retail",
            submission("u1", "b", &[], Urgency::Progress),
            t0
        ));
        // Forgotten means no spacing either: the new object's progress is only gathered.
        assert_eq!(
            queue.next("shop/retail", t0),
            Next::WaitUntil(t0 + INTERVAL)
        );
    }
}

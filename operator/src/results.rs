//! Runner results of terminated pods by Job, as the operator's pod watch reports them:
//! bounded in size, and able to tell when "no result" is the truth rather than a watch
//! that has not caught up yet. Pure: the watch that feeds it lives in `controller`.

use std::collections::{HashMap, VecDeque};

use crate::observe::{PodResult, latest};

/// What the index knows about one finished Job's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A runner container of the Job terminated with this result.
    Found(PodResult),
    /// The watch has seen every change up to the Job's finish and no pod terminated.
    Absent,
    /// The watch is behind the Job (or relisting) or the entry was evicted: ask the server.
    Unknown,
}

/// A pod as the watch delivered it.
#[derive(Clone, Debug)]
pub struct PodChange {
    /// `namespace/job-name`, if the pod belongs to a Job.
    pub job_key: Option<String>,
    /// The uid of the Job in its owner references.
    pub owner: Option<String>,
    pub pod_uid: String,
    pub rv: u64,
    /// The runner's result, if its container terminated.
    pub result: Option<PodResult>,
}

/// One terminated pod: the uid of the Job that owns it (if it has an owner reference) and
/// its result.
#[derive(Clone, Debug)]
struct PodEntry {
    owner: Option<String>,
    result: PodResult,
}

/// Results by `namespace/job-name`, oldest evicted first beyond `capacity`.
#[derive(Debug)]
pub struct ResultIndex {
    capacity: usize,
    /// Per Job name: its pods' results by pod uid (a Job may have replaced a pod).
    by_job: HashMap<String, HashMap<String, PodEntry>>,
    /// Jobs in the order their first result arrived, for eviction.
    order: VecDeque<String>,
    /// Highest resourceVersion the watch delivered; 0 while (re)listing.
    seen_rv: u64,
    /// Highest resourceVersion of the list being replayed (becomes `seen_rv` when done).
    listing_rv: u64,
    /// Whether some result was evicted since the last relist: absence is then no proof.
    evicted_any: bool,
}

impl ResultIndex {
    pub fn new(capacity: usize) -> Self {
        ResultIndex {
            capacity: capacity.max(1),
            by_job: HashMap::new(),
            order: VecDeque::new(),
            seen_rv: 0,
            listing_rv: 0,
            evicted_any: false,
        }
    }

    /// A pod was added or changed (`listing`: during the watch's initial list). `owner` is
    /// the uid of the Job owning it: a Job re-created under the same name must not see the
    /// result of its predecessor's pod.
    pub fn apply(&mut self, pod: PodChange, listing: bool) {
        let PodChange {
            job_key,
            owner,
            pod_uid,
            rv,
            result,
        } = pod;
        if listing {
            self.listing_rv = self.listing_rv.max(rv);
        } else {
            self.seen_rv = self.seen_rv.max(rv);
        }
        let (Some(job_key), Some(result)) = (job_key, result) else {
            return;
        };
        let pods = self.by_job.entry(job_key.clone()).or_default();
        if pods.is_empty() {
            self.order.push_back(job_key);
        }
        pods.insert(pod_uid, PodEntry { owner, result });
        while self.by_job.len() > self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.by_job.remove(&oldest).is_some() {
                self.evicted_any = true;
            }
        }
    }

    /// A pod was deleted: its result goes (the Job, garbage collected with it, is gone too).
    pub fn delete(&mut self, job_key: Option<&str>, pod_uid: &str, rv: u64) {
        self.seen_rv = self.seen_rv.max(rv);
        let Some(job_key) = job_key else { return };
        if let Some(pods) = self.by_job.get_mut(job_key) {
            pods.remove(pod_uid);
            if pods.is_empty() {
                self.by_job.remove(job_key);
                self.order.retain(|k| k != job_key);
            }
        }
    }

    /// The watch starts (again) from a full list: nothing is proven until it is replayed.
    pub fn relist_started(&mut self) {
        self.by_job.clear();
        self.order.clear();
        self.seen_rv = 0;
        self.listing_rv = 0;
        self.evicted_any = false;
    }

    /// The initial list is replayed: the watch now knows every pod up to the list.
    pub fn relist_done(&mut self) {
        self.seen_rv = self.seen_rv.max(self.listing_rv);
    }

    /// Highest resourceVersion known to be reflected (0: none yet).
    pub fn seen_rv(&self) -> u64 {
        self.seen_rv
    }

    /// The result of Job `job_key` (uid `job_uid`), observed finished at `job_rv`.
    pub fn lookup(&self, job_key: &str, job_uid: &str, job_rv: u64) -> Lookup {
        if let Some(pods) = self.by_job.get(job_key)
            && let Some(result) = latest(
                pods.values()
                    .filter(|p| p.owner.as_deref().is_none_or(|o| o == job_uid))
                    .map(|p| p.result.clone()),
            )
        {
            return Lookup::Found(result);
        }
        // The runner's termination is written before the Job controller marks the Job
        // finished, so a watch past the Job's version has seen it, if there was one.
        if self.seen_rv > 0 && self.seen_rv >= job_rv && !self.evicted_any {
            Lookup::Absent
        } else {
            Lookup::Unknown
        }
    }

    pub fn len(&self) -> usize {
        self.by_job.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_job.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn result(message: &str, second: u32) -> PodResult {
        PodResult {
            message: Some(message.into()),
            exit_code: Some(0),
            finished_at: Some(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, second).unwrap()),
        }
    }

    fn pod(job: Option<&str>, pod_uid: &str, rv: u64, result: Option<PodResult>) -> PodChange {
        PodChange {
            job_key: job.map(String::from),
            owner: None,
            pod_uid: pod_uid.into(),
            rv,
            result,
        }
    }

    fn listed(index: &mut ResultIndex) {
        index.relist_started();
        index.apply(pod(None, "other", 10, None), true);
        index.relist_done();
    }

    #[test]
    fn a_terminated_pod_is_found_by_its_job() {
        let mut index = ResultIndex::new(8);
        listed(&mut index);
        index.apply(pod(Some("ns/a"), "pod-a", 11, Some(result("ok", 1))), false);
        assert_eq!(
            index.lookup("ns/a", "uid-a", 20),
            Lookup::Found(result("ok", 1))
        );
    }

    #[test]
    fn no_result_is_absent_only_once_the_watch_passed_the_jobs_version() {
        let mut index = ResultIndex::new(8);
        listed(&mut index);
        index.apply(pod(Some("ns/b"), "pod-b", 15, None), false);
        assert_eq!(index.lookup("ns/a", "uid-a", 16), Lookup::Unknown);
        assert_eq!(index.lookup("ns/a", "uid-a", 15), Lookup::Absent);
    }

    #[test]
    fn nothing_is_absent_before_the_initial_list_is_replayed() {
        let mut index = ResultIndex::new(8);
        index.relist_started();
        index.apply(pod(None, "other", 99, None), true);
        assert_eq!(index.lookup("ns/a", "uid-a", 5), Lookup::Unknown);
        index.relist_done();
        assert_eq!(index.lookup("ns/a", "uid-a", 5), Lookup::Absent);
    }

    #[test]
    fn of_several_pods_of_a_job_the_last_to_finish_counts() {
        let mut index = ResultIndex::new(8);
        listed(&mut index);
        index.apply(
            pod(Some("ns/a"), "second", 12, Some(result("new", 9))),
            false,
        );
        index.apply(
            pod(Some("ns/a"), "first", 13, Some(result("old", 2))),
            false,
        );
        assert_eq!(
            index.lookup("ns/a", "uid-a", 13),
            Lookup::Found(result("new", 9))
        );
    }

    #[test]
    fn the_oldest_results_are_evicted_and_absence_is_then_no_longer_trusted() {
        let mut index = ResultIndex::new(2);
        listed(&mut index);
        for (i, job) in ["ns/a", "ns/b", "ns/c"].iter().enumerate() {
            index.apply(
                pod(Some(job), job, 11 + i as u64, Some(result(job, 1))),
                false,
            );
        }
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup("ns/a", "uid-a", 11), Lookup::Unknown);
        assert!(matches!(
            index.lookup("ns/c", "uid-c", 13),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn a_job_recreated_under_the_same_name_does_not_see_its_predecessors_result() {
        let mut index = ResultIndex::new(8);
        listed(&mut index);
        let mut old = pod(Some("ns/a"), "old-pod", 11, Some(result("old", 1)));
        old.owner = Some("old-uid".into());
        index.apply(old, false);
        assert_eq!(
            index.lookup("ns/a", "old-uid", 12),
            Lookup::Found(result("old", 1))
        );
        assert_eq!(index.lookup("ns/a", "uid-a", 11), Lookup::Absent);
    }

    #[test]
    fn a_deleted_pod_takes_its_result_with_it() {
        let mut index = ResultIndex::new(8);
        listed(&mut index);
        index.apply(pod(Some("ns/a"), "pod-a", 11, Some(result("ok", 1))), false);
        index.delete(Some("ns/a"), "pod-a", 12);
        assert!(index.is_empty());
        assert_eq!(index.lookup("ns/a", "uid-a", 12), Lookup::Absent);
    }
}

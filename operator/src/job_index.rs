//! Task Jobs as bare facts, grouped by the Pipeline that controls them: what the Pipeline
//! reconciler reads instead of a cache of Job objects. Pure: the watch that feeds it lives
//! in `controller`.
//!
//! Why not a kube-runtime store: a store keeps every Job as an object with its metadata and
//! a key of four strings, and finding one Pipeline's Jobs means scanning all of them (20,000
//! at a thousand Pipelines, on every reconcile). Here a Job is a few short strings, and a
//! Pipeline's Jobs are one map lookup away.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cached::{CachedJob, resource_version};
use crate::observe::{TaskJobFacts, task_job_facts};

/// One task Job: what decisions need, plus what reading its runner result needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedJob {
    pub facts: TaskJobFacts,
    /// Shared with the index's own map of Jobs by uid.
    pub uid: Arc<str>,
    /// The Job's resourceVersion as a number (0 if it is not one).
    pub rv: u64,
}

/// The task Jobs of every Pipeline, by the Pipeline's uid.
#[derive(Debug, Default)]
pub struct JobIndex {
    /// Per controlling Pipeline uid: its Jobs, in no particular order.
    by_owner: HashMap<Arc<str>, Vec<IndexedJob>>,
    /// Per Job uid: the Pipeline it was filed under, so that a Job whose owner reference
    /// changed or went away leaves its old place.
    owner_of: HashMap<Arc<str>, Arc<str>>,
    /// The list being replayed after a (re)start of the watch; replaces the index when done.
    listing: Option<Box<JobIndex>>,
    /// Whether a first list completed.
    ready: bool,
}

impl JobIndex {
    /// A Job was added or changed (`listing`: during the watch's initial list). Returns the
    /// Pipeline owning it when a decision may change: the Job is new to the index, moved to
    /// another owner, or its facts (state, labels) changed — not for the Job controller's
    /// updates in between (active and ready counts, start time), which decide nothing but
    /// arrive two or three times per Job. Every Job of a list names its Pipeline.
    pub fn apply(&mut self, job: &CachedJob, listing: bool) -> Option<PipelineRef> {
        let index = match (listing, self.listing.as_mut()) {
            (true, Some(next)) => next,
            _ => self,
        };
        let Some(owner) = job.owner_of_kind("Pipeline") else {
            // Orphaned (its owner reference removed): no longer any Pipeline's task Job.
            if let Some(uid) = job.metadata.uid.as_deref() {
                index.remove(uid);
            }
            return None;
        };
        if !index.insert(job, &owner.uid) && !listing {
            return None;
        }
        Some(PipelineRef {
            namespace: job.metadata.namespace.clone()?,
            name: owner.name.to_string(),
        })
    }

    /// A Job was deleted. Returns the Pipeline that owned it, if any.
    pub fn delete(&mut self, job: &CachedJob) -> Option<PipelineRef> {
        if let Some(uid) = job.metadata.uid.as_deref() {
            self.remove(uid);
        }
        let owner = job.owner_of_kind("Pipeline")?;
        Some(PipelineRef {
            namespace: job.metadata.namespace.clone()?,
            name: owner.name.to_string(),
        })
    }

    /// The watch (re)starts its list: what it replays replaces the index at `relist_done`.
    pub fn relist_started(&mut self) {
        self.listing = Some(Box::default());
    }

    /// The list is complete: Jobs it did not show are gone.
    pub fn relist_done(&mut self) {
        if let Some(next) = self.listing.take() {
            self.by_owner = next.by_owner;
            self.owner_of = next.owner_of;
        }
        self.ready = true;
    }

    /// Whether a first list completed (before that, "no Jobs" proves nothing).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The Jobs controlled by the Pipeline with `uid`.
    pub fn jobs_of(&self, pipeline_uid: &str) -> Vec<IndexedJob> {
        self.by_owner.get(pipeline_uid).cloned().unwrap_or_default()
    }

    /// How many Jobs the index holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.owner_of.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.owner_of.is_empty()
    }

    /// Files `job` under `owner_uid`; whether its facts or its owner changed (or it is new).
    fn insert(&mut self, job: &CachedJob, owner_uid: &str) -> bool {
        let (Some(uid), Some(facts)) = (job.metadata.uid.as_deref(), task_job_facts(job)) else {
            return false;
        };
        let uid: Arc<str> = match self.owner_of.get_key_value(uid) {
            Some((shared, _)) => shared.clone(),
            None => uid.into(),
        };
        let entry = IndexedJob {
            facts,
            uid: uid.clone(),
            rv: resource_version(&job.metadata),
        };
        match self.owner_of.get(&uid) {
            Some(filed) if &**filed == owner_uid => {
                let jobs = self.by_owner.get_mut(owner_uid).expect("filed owner");
                return match jobs.iter_mut().find(|j| j.uid == uid) {
                    Some(existing) => {
                        let changed = existing.facts != entry.facts;
                        *existing = entry;
                        changed
                    }
                    None => {
                        push_exact(jobs, entry);
                        true
                    }
                };
            }
            Some(_) => self.remove(&uid),
            None => {}
        }
        let owner: Arc<str> = match self.by_owner.get_key_value(owner_uid) {
            Some((key, _)) => key.clone(),
            None => owner_uid.into(),
        };
        push_exact(self.by_owner.entry(owner.clone()).or_default(), entry);
        self.owner_of.insert(uid, owner);
        true
    }

    fn remove(&mut self, uid: &str) {
        let Some(owner) = self.owner_of.remove(uid) else {
            return;
        };
        if let Some(jobs) = self.by_owner.get_mut(&owner) {
            jobs.retain(|j| *j.uid != *uid);
            jobs.shrink_to_fit();
            if jobs.is_empty() {
                self.by_owner.remove(&owner);
            }
        }
    }
}

/// Appends without the spare room a growing `Vec` keeps (20 Jobs would take the room of 32,
/// and a thousand Pipelines' worth of room adds up); the copy is cheap at a Pipeline's size.
fn push_exact(jobs: &mut Vec<IndexedJob>, job: IndexedJob) {
    jobs.reserve_exact(1);
    jobs.push(job);
}

/// A Pipeline to reconcile because one of its Jobs changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineRef {
    pub namespace: String,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::JobState;
    use serde_json::json;

    fn job(name: &str, uid: &str, rv: u64, owner: Option<&str>, complete: bool) -> CachedJob {
        let owners: Vec<_> = owner
            .into_iter()
            .map(|o| {
                json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "Pipeline",
                "name": format!("pipeline-{o}"), "uid": o, "controller": true})
            })
            .collect();
        let conditions: Vec<_> = complete
            .then(|| {
                json!({"type": "Complete", "status": "True",
                "lastTransitionTime": "2026-12-01T10:00:00Z"})
            })
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "uid": uid,
                "resourceVersion": rv.to_string(),
                "labels": {"tributary.dev/pipeline": "p", "tributary.dev/run": "g1",
                    "tributary.dev/task": "load", "tributary.dev/attempt": "1"},
                "ownerReferences": owners},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    fn names(index: &JobIndex, owner: &str) -> Vec<String> {
        let mut names: Vec<_> = index
            .jobs_of(owner)
            .into_iter()
            .map(|j| j.facts.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_pipelines_jobs_are_found_by_its_uid_and_name_it_as_the_one_to_reconcile() {
        let mut index = JobIndex::default();
        let target = index.apply(&job("a", "ja", 5, Some("p1"), false), false);
        index.apply(&job("b", "jb", 6, Some("p1"), false), false);
        index.apply(&job("c", "jc", 7, Some("p2"), false), false);
        assert_eq!(
            target,
            Some(PipelineRef {
                namespace: "shop".into(),
                name: "pipeline-p1".into()
            })
        );
        assert_eq!(names(&index, "p1"), ["a", "b"]);
        assert_eq!(names(&index, "p2"), ["c"]);
        assert!(index.jobs_of("p3").is_empty());
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn a_changed_job_replaces_its_entry_with_the_new_state_and_version() {
        let mut index = JobIndex::default();
        index.apply(&job("a", "ja", 5, Some("p1"), false), false);
        index.apply(&job("a", "ja", 9, Some("p1"), true), false);
        let jobs = index.jobs_of("p1");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].rv, 9);
        assert!(matches!(jobs[0].facts.state, JobState::Complete { .. }));
        assert_eq!(&*jobs[0].uid, "ja");
    }

    #[test]
    fn only_a_new_job_or_a_change_of_its_facts_names_its_pipeline_outside_a_list() {
        let mut index = JobIndex::default();
        let reconcile = |target: Option<PipelineRef>| target.map(|p| p.name);
        let p1 = Some("pipeline-p1".to_string());
        assert_eq!(
            reconcile(index.apply(&job("a", "ja", 5, Some("p1"), false), false)),
            p1
        );
        // The Job controller's own status updates while it runs: same facts, newer version.
        assert_eq!(
            reconcile(index.apply(&job("a", "ja", 6, Some("p1"), false), false)),
            None
        );
        assert_eq!(index.jobs_of("p1")[0].rv, 6);
        assert_eq!(
            reconcile(index.apply(&job("a", "ja", 7, Some("p1"), true), false)),
            p1
        );
        assert_eq!(
            reconcile(index.apply(&job("a", "ja", 8, Some("p1"), true), false)),
            None
        );
        assert_eq!(
            reconcile(index.apply(&job("a", "ja", 9, Some("p2"), true), false)).as_deref(),
            Some("pipeline-p2")
        );
        // A relist names every Job's Pipeline: what changed while the watch was down is unknown.
        index.relist_started();
        assert_eq!(
            reconcile(index.apply(&job("a", "ja", 9, Some("p2"), true), true)).as_deref(),
            Some("pipeline-p2")
        );
    }

    #[test]
    fn a_job_that_lost_or_changed_its_owner_leaves_its_old_pipeline() {
        let mut index = JobIndex::default();
        index.apply(&job("a", "ja", 5, Some("p1"), false), false);
        index.apply(&job("a", "ja", 6, Some("p2"), false), false);
        assert!(index.jobs_of("p1").is_empty());
        assert_eq!(names(&index, "p2"), ["a"]);
        // An orphan is not a task Job of any Pipeline any more; the old entry must not linger.
        assert_eq!(index.apply(&job("a", "ja", 7, None, false), false), None);
        assert!(index.jobs_of("p2").is_empty() && index.is_empty());
    }

    #[test]
    fn a_job_recreated_under_the_same_name_is_a_new_entry_once_the_old_one_is_deleted() {
        let mut index = JobIndex::default();
        index.apply(&job("a", "old", 5, Some("p1"), true), false);
        let deleted = index.delete(&job("a", "old", 6, Some("p1"), true));
        index.apply(&job("a", "new", 7, Some("p1"), false), false);
        assert_eq!(deleted.map(|p| p.name).as_deref(), Some("pipeline-p1"));
        let jobs = index.jobs_of("p1");
        assert_eq!(jobs.len(), 1);
        assert_eq!(&*jobs[0].uid, "new");
        assert!(!jobs[0].facts.state.is_finished());
    }

    #[test]
    fn a_job_without_task_labels_is_not_indexed() {
        let mut index = JobIndex::default();
        let unlabelled: CachedJob = serde_json::from_value(json!({
            "metadata": {"name": "a", "namespace": "shop", "uid": "ja",
                "ownerReferences": [{"apiVersion": "tributary.dev/v1alpha1", "kind": "Pipeline",
                    "name": "pipeline-p1", "uid": "p1", "controller": true}]}
        }))
        .unwrap();
        index.apply(&unlabelled, false);
        assert!(index.is_empty());
    }

    #[test]
    fn a_relist_replaces_the_index_so_jobs_deleted_meanwhile_disappear() {
        let mut index = JobIndex::default();
        assert!(!index.is_ready());
        index.relist_started();
        index.apply(&job("a", "ja", 5, Some("p1"), false), true);
        index.apply(&job("b", "jb", 6, Some("p1"), false), true);
        index.relist_done();
        assert!(index.is_ready());
        assert_eq!(names(&index, "p1"), ["a", "b"]);

        // The watch restarts; "b" was deleted while it was down.
        index.relist_started();
        index.apply(&job("a", "ja", 9, Some("p1"), true), true);
        // Until the list is done the old view stands.
        assert_eq!(names(&index, "p1"), ["a", "b"]);
        index.relist_done();
        assert_eq!(names(&index, "p1"), ["a"]);
        assert_eq!(index.jobs_of("p1")[0].rv, 9);
        assert_eq!(index.len(), 1);
    }
}

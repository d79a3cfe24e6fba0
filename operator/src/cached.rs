//! The shapes in which the operator caches Jobs and reads pods: only the fields decisions
//! use, decoded straight from the API server's JSON (a `k8s_openapi` `Job` is 2.6 KB before
//! its first heap allocation, and its pod template carries the whole runner input).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::JobStatus;
use k8s_openapi::api::core::v1::PodStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::observe::{JobState, PodResult, job_state_of, pod_result_of};
use crate::results::PodChange;

/// A Job as the caches hold it: identity, owner, the operator's own labels and its state.
/// Labels and owner live in small fields of their own, outside `metadata` (a label map's
/// first node alone takes ~0.5 KiB, and 20,000 cached Jobs add up).
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "JobWire")]
pub struct CachedJob {
    /// Name, namespace, uid and resourceVersion only.
    pub metadata: ObjectMeta,
    /// The `tributary.dev/` labels.
    labels: Box<[(Box<str>, Box<str>)]>,
    /// Kind, name and uid of the controlling owner (a Pipeline or DataSource).
    owner: Option<Owner>,
    pub state: JobState,
}

/// The controlling owner of a Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
}

/// The metadata the caches read, decoded without the rest: managed fields above all, which
/// for a Job or pod are a tree of every field its creator set (the whole pod template) and
/// would otherwise be built as JSON values on every watch event, only to be dropped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaWire {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerWire>>,
}

#[derive(Deserialize)]
struct OwnerWire {
    kind: String,
    name: String,
    uid: String,
    controller: Option<bool>,
}

/// An object the server sent back after a write, read for its resource version alone:
/// decoding a whole Pipeline (spec, status, managed fields) would be done only to drop it.
#[derive(Deserialize)]
pub struct Written {
    metadata: MetaWire,
}

impl Written {
    pub fn resource_version(self) -> Option<String> {
        self.metadata.resource_version
    }
}

impl MetaWire {
    /// Identity only: what `kube::Resource::meta` of a cached object answers.
    fn take_identity(&mut self) -> ObjectMeta {
        ObjectMeta {
            name: self.name.take(),
            namespace: self.namespace.take(),
            uid: self.uid.take(),
            resource_version: self.resource_version.take(),
            ..Default::default()
        }
    }
}

#[derive(Deserialize)]
struct JobWire {
    metadata: MetaWire,
    #[serde(default)]
    status: Option<JobStatus>,
}

impl From<JobWire> for CachedJob {
    fn from(wire: JobWire) -> Self {
        let state = job_state_of(wire.status.as_ref());
        let mut meta = wire.metadata;
        let metadata = meta.take_identity();
        let labels = meta
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with("tributary.dev/"))
            .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
            .collect();
        let owner = meta
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|o| o.controller == Some(true))
            .map(|o| Owner {
                kind: o.kind.into_boxed_str(),
                name: o.name.into_boxed_str(),
                uid: o.uid.into_boxed_str(),
            });
        CachedJob {
            metadata,
            labels,
            owner,
            state,
        }
    }
}

impl CachedJob {
    /// The value of one of the Job's `tributary.dev/` labels.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// Whether the object with `uid` controls this Job.
    pub fn owned_by(&self, uid: &str) -> bool {
        self.owner.as_ref().is_some_and(|o| &*o.uid == uid)
    }

    /// The Job's controlling owner, if it has the given kind.
    pub fn owner_of_kind(&self, kind: &str) -> Option<&Owner> {
        self.owner.as_ref().filter(|o| &*o.kind == kind)
    }
}

/// A runner pod as the pod watch reads it: which Job it belongs to and what its runner
/// container left behind, if it terminated.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "PodWire")]
pub struct RunnerPod {
    pub metadata: ObjectMeta,
    /// The Job (`batch.kubernetes.io/job-name`), if the pod has one.
    pub job: Option<String>,
    /// The uid of the Job in the pod's owner references.
    pub owner: Option<String>,
    pub result: Option<PodResult>,
}

impl RunnerPod {
    /// The change the result index takes in.
    pub fn change(&self) -> PodChange {
        let namespace = self.metadata.namespace.as_deref().unwrap_or_default();
        PodChange {
            job_key: self.job.as_ref().map(|job| format!("{namespace}/{job}")),
            owner: self.owner.clone(),
            pod_uid: self.metadata.uid.clone().unwrap_or_default(),
            rv: resource_version(&self.metadata),
            result: self.result.clone(),
        }
    }
}

/// The resourceVersion of an object as a number (0 if it is not one).
pub fn resource_version(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct PodWire {
    metadata: MetaWire,
    #[serde(default)]
    status: Option<PodStatus>,
}

impl From<PodWire> for RunnerPod {
    fn from(mut wire: PodWire) -> Self {
        let job = wire
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("batch.kubernetes.io/job-name"))
            .cloned();
        let owner = wire
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "Job")
            .map(|o| o.uid.clone());
        RunnerPod {
            result: wire.status.as_ref().and_then(pod_result_of),
            job,
            owner,
            metadata: wire.metadata.take_identity(),
        }
    }
}

macro_rules! namespaced_resource {
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        impl kube::Resource for $type {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

namespaced_resource!(CachedJob, "batch", "v1", "Job", "jobs");
namespaced_resource!(RunnerPod, "", "v1", "Pod", "pods");

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn a_cached_job_keeps_identity_owner_labels_and_state_but_not_the_pod_template() {
        let job: CachedJob = serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "retail-g1-load-1", "namespace": "shop", "uid": "u1",
                "resourceVersion": "42",
                "labels": {"tributary.dev/pipeline": "retail", "batch.kubernetes.io/job-name": "x"},
                "annotations": {"a": "b"},
                "ownerReferences": [{"apiVersion": "tributary.dev/v1alpha1", "kind": "Pipeline",
                    "name": "retail", "uid": "p1", "controller": true}],
                "managedFields": [{"manager": "tributary-operator", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}}]},
            "spec": {"template": {"spec": {"containers": [{"name": "runner",
                "env": [{"name": "TRIBUTARY_INPUT", "value": "{}"}]}]}}},
            "status": {"conditions": [{"type": "Complete", "status": "True",
                "lastTransitionTime": "2026-12-01T10:00:00Z"}]}
        }))
        .unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("retail-g1-load-1"));
        assert_eq!(job.metadata.resource_version.as_deref(), Some("42"));
        assert!(job.owned_by("p1") && !job.owned_by("p2"));
        assert_eq!(&*job.owner_of_kind("Pipeline").unwrap().name, "retail");
        assert!(job.owner_of_kind("DataSource").is_none());
        assert_eq!(job.label("tributary.dev/pipeline"), Some("retail"));
        assert_eq!(job.label("batch.kubernetes.io/job-name"), None);
        assert!(job.metadata.annotations.is_none() && job.metadata.managed_fields.is_none());
        assert!(job.metadata.labels.is_none() && job.metadata.owner_references.is_none());
        assert!(job.state.is_finished());
        assert_eq!(CachedJob::plural(&()), "jobs");
        assert_eq!(CachedJob::api_version(&()), "batch/v1");
    }

    #[test]
    fn a_runner_pod_names_its_job_and_carries_the_termination_message() {
        let pod: RunnerPod = serde_json::from_value(json!({
            "metadata": {"name": "retail-g1-load-1-abcde", "namespace": "shop", "uid": "u2",
                "resourceVersion": "50", "labels": {"batch.kubernetes.io/job-name": "retail-g1-load-1"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "retail-g1-load-1",
                    "uid": "job-uid"}]},
            "spec": {"containers": [{"name": "runner"}]},
            "status": {"containerStatuses": [{"name": "runner", "image": "i", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "message": "{\"outcome\":\"succeeded\"}",
                    "finishedAt": "2026-12-01T10:00:00Z"}}}]}
        }))
        .unwrap();
        assert_eq!(pod.job.as_deref(), Some("retail-g1-load-1"));
        let change = pod.change();
        assert_eq!(change.job_key.as_deref(), Some("shop/retail-g1-load-1"));
        assert_eq!(change.owner.as_deref(), Some("job-uid"));
        assert_eq!(change.rv, 50);
        let result = pod.result.unwrap();
        assert_eq!(result.exit_code, Some(0));
        assert!(result.message.unwrap().contains("succeeded"));
        assert_eq!(RunnerPod::api_version(&()), "v1");
    }

    #[test]
    fn a_pod_still_running_has_no_result() {
        let pod: RunnerPod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"batch.kubernetes.io/job-name": "j"}},
            "status": {"phase": "Pending"}
        }))
        .unwrap();
        assert!(pod.result.is_none());
    }
}

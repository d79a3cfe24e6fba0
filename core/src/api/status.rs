//! Status of both resources: written only by the operator, bounded in size by construction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SourceKind;

/// A standard Kubernetes condition (`Ready`, `Succeeded`, `Valid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word saying why.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Overall phase of a Pipeline, taken from its last run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PipelinePhase {
    /// Valid, no run yet (e.g. waiting for its schedule).
    Pending,
    /// A run is in progress.
    Running,
    /// The last run succeeded.
    Succeeded,
    /// The last run failed.
    Failed,
    /// The spec has problems (see the `Valid` condition); nothing runs.
    Invalid,
}

/// Observed state of a Pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    /// Pending, Running, Succeeded, Failed or Invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PipelinePhase>,
    /// The `metadata.generation` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`, `Ready` (no failure and not running) and `Succeeded` (last run succeeded), for tools such as Argo CD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The most recent run, with one entry per task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunStatus>,
    /// Summaries of earlier runs, newest first, at most `spec.historyLimit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunSummary>,
    /// When the schedule fires next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<DateTime<Utc>>,
    /// Scheduled time of the last run started by the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// Value of the `tributary.dev/run` annotation already acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_run_request: Option<String>,
    /// Value of the `tributary.dev/retry` annotation already acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_retry_request: Option<String>,
    /// High-water marks of incremental exports by task name, carried from run to run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watermarks: BTreeMap<String, String>,
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunTrigger {
    /// A new spec generation of an unscheduled Pipeline.
    Generation,
    /// The cron schedule.
    Schedule,
    /// The `tributary.dev/run` annotation.
    Manual,
    /// The `tributary.dev/retry` annotation: failed and skipped tasks of the previous run again.
    Retry,
}

/// Phase of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunPhase {
    /// Tasks are running or waiting.
    Running,
    /// Every task succeeded.
    Succeeded,
    /// At least one task failed (its downstream tasks were skipped).
    Failed,
    /// Stopped before finishing (replaced by a newer run, or the spec changed).
    Cancelled,
}

impl RunPhase {
    /// Whether the run is over.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunPhase::Running)
    }
}

/// The most recent run in detail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// Run id, unique within the Pipeline; part of Job names and lineage.
    pub id: String,
    /// What started the run.
    pub trigger: RunTrigger,
    /// Spec generation the run executes.
    pub generation: i64,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Running, Succeeded, Failed or Cancelled.
    pub phase: RunPhase,
    /// Finished tasks out of all, e.g. `3/6`.
    pub progress: String,
    /// One entry per task, in the spec's order.
    #[serde(default)]
    pub tasks: Vec<TaskStatus>,
    /// For a retry: the run it retries (the first of a chain of retries). Templates such as
    /// `{{ run.id }}` and `{{ run.date }}` resolve to that run, so re-run tasks read and
    /// write the same objects as the tasks kept from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RetriedRun>,
}

/// The identity a retry borrows from the run it retries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetriedRun {
    /// Id of the retried run.
    pub id: String,
    /// Its logical time (the scheduled time of a scheduled run, else when it started).
    pub logical_time: DateTime<Utc>,
}

/// A finished run, summarised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// What started it.
    pub trigger: RunTrigger,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Final phase.
    pub phase: RunPhase,
    /// Finished tasks out of all.
    pub progress: String,
    /// Names of failed tasks (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_tasks: Vec<String>,
}

/// Phase of one task within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TaskPhase {
    /// Waiting for dependencies or a free slot.
    Pending,
    /// Its Job is running.
    Running,
    /// The last attempt failed; the next one starts at `nextAttemptAt`.
    Retrying,
    /// Done.
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// Not run because a task it depends on failed.
    Skipped,
}

impl TaskPhase {
    /// Whether the task will not change any more within this run.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskPhase::Succeeded | TaskPhase::Failed | TaskPhase::Skipped
        )
    }
}

/// One task of the last run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// Task name.
    pub name: String,
    /// Pending, Running, Retrying, Succeeded, Failed or Skipped.
    pub phase: TaskPhase,
    /// Attempts started so far.
    #[serde(default)]
    pub attempts: u32,
    /// Job of the current or last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the task finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When the next attempt may start (while Retrying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why it failed or was skipped, or what it did (at most 1 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the task read and wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Box<TaskLineage>>,
}

/// A dataset by its OpenLineage namespace and name.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct DatasetId {
    /// e.g. `s3://raw`, `postgres://warehouse:5432`.
    pub namespace: String,
    /// e.g. `transactions/2026-11-25/r1.jsonl.gz`, `warehouse.public.fact_transactions`.
    pub name: String,
}

/// What one task read and wrote, compact (full detail lives in the run manifest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskLineage {
    /// Datasets read (at most 10; see `manifest` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<DatasetId>,
    /// Datasets written (at most 10; see `manifest` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<DatasetId>,
    /// Rows (or documents) moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Bytes written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Files or objects written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Checks passed and failed, e.g. `5/6 passed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<String>,
    /// Key of the manifest object in the lake with every dataset, sha256 and check detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// Observed state of a DataSource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceStatus {
    /// Connector kind, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SourceKind>,
    /// Endpoint without credentials (OpenLineage namespace), for `kubectl get -o wide`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The `metadata.generation` last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the last connection check succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the connection was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Recent reads and writes by pipeline runs, newest first (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<LineageEntry>,
}

/// Whether a task read or wrote a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Direction {
    Read,
    Write,
}

/// One read or write of a DataSource by a pipeline run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineageEntry {
    /// Pipeline name (same namespace).
    pub pipeline: String,
    /// Run id.
    pub run: String,
    /// Task name.
    pub task: String,
    /// Read or Write.
    pub direction: Direction,
    /// Dataset name within this source (path, key, `db.collection`, `db.schema.table`).
    pub dataset: String,
    /// When the task finished.
    pub at: DateTime<Utc>,
    /// Rows moved, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Bytes moved, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

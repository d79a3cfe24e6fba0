//! `Pipeline`: a DAG of typed data tasks, run once per spec generation, on a schedule, or on request.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, Toleration};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PipelineStatus, SourceKind};

/// A DAG of data tasks. Each task becomes a Kubernetes Job running the Tributary runner
/// (or the user's container), started when every task it depends on has succeeded.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "Pipeline",
    doc = "A DAG of typed data tasks run as Kubernetes Jobs, with status and lineage written back.",
    plural = "pipelines",
    namespaced,
    status = "PipelineStatus",
    shortname = "tpl",
    category = "tributary",
    printcolumn = r#"{"name": "Phase", "type": "string", "description": "Phase of the last run, or Invalid", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Progress", "type": "string", "description": "Finished tasks of the last run out of all", "jsonPath": ".status.lastRun.progress"}"#,
    printcolumn = r#"{"name": "Last Run", "type": "date", "description": "When the last run started", "jsonPath": ".status.lastRun.startedAt"}"#,
    printcolumn = r#"{"name": "Next Run", "type": "date", "description": "When the schedule fires next", "jsonPath": ".status.nextRunAt"}"#,
    printcolumn = r#"{"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// Cron schedule (5 fields: minute hour day-of-month month day-of-week, or a macro such as
    /// `@daily`). Without it the Pipeline runs once per spec generation and on manual requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in, e.g. `Europe/London`. Defaults to UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// Stop starting new scheduled or generation runs; a running run finishes. Manual runs are refused.
    #[serde(default)]
    pub suspend: bool,
    /// What to do when a scheduled run is due while the previous one still runs:
    /// `Allow` runs both, `Forbid` skips the new one, `Replace` stops the old one and starts the new one.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// A scheduled run missed by more than this many seconds (e.g. while the operator was down)
    /// is skipped rather than started late. Unset: missed runs start as soon as possible (only the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub starting_deadline_seconds: Option<u32>,
    /// Maximum number of this Pipeline's tasks running at once.
    #[serde(default = "default_parallelism")]
    #[schemars(range(min = 1, max = 100))]
    pub parallelism: u32,
    /// Retry, backoff and timeout for every task that does not set its own.
    #[serde(default)]
    pub defaults: TaskDefaults,
    /// Pod settings for the runner Jobs of this Pipeline (image, resources, placement, identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerPodOverrides>,
    /// How many finished runs are kept as summaries in `status.history`.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 0, max = 50))]
    pub history_limit: u32,
    /// The tasks. Names are unique; `dependsOn` edges must form a DAG.
    #[schemars(length(min = 1, max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tasks: Vec<Task>,
}

fn default_parallelism() -> u32 {
    4
}

fn default_history_limit() -> u32 {
    10
}

/// How overlapping scheduled runs are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Start the new run alongside the running one.
    Allow,
    /// Skip the new run while one is running.
    #[default]
    Forbid,
    /// Stop the running run (its Jobs are deleted) and start the new one.
    Replace,
}

/// Retry, backoff and timeout applied to every task unless the task overrides them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefaults {
    /// Attempts after the first one before a task is Failed.
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0, max = 20))]
    pub retries: u32,
    /// Delay before the first retry; doubles with every further attempt up to `maxBackoffSeconds`.
    #[serde(default = "default_backoff")]
    #[schemars(range(min = 0, max = 86400))]
    pub backoff_seconds: u32,
    /// Upper bound on the delay between attempts.
    #[serde(default = "default_max_backoff")]
    #[schemars(range(min = 0, max = 86400))]
    pub max_backoff_seconds: u32,
    /// Wall-clock limit of one attempt (the Job's `activeDeadlineSeconds`).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 604800))]
    pub timeout_seconds: u32,
}

impl Default for TaskDefaults {
    fn default() -> Self {
        TaskDefaults {
            retries: default_retries(),
            backoff_seconds: default_backoff(),
            max_backoff_seconds: default_max_backoff(),
            timeout_seconds: default_timeout(),
        }
    }
}

fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u32 {
    10
}
fn default_max_backoff() -> u32 {
    600
}
fn default_timeout() -> u32 {
    3600
}

/// Pod settings for runner Jobs. Unset fields fall back to the operator's configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnerPodOverrides {
    /// Runner image, e.g. `ghcr.io/tributary-dev/runner:0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// CPU and memory requests and limits of the runner container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the runner pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the runner pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// ServiceAccount the runner pods run as (e.g. one bound to a cloud identity for S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// PriorityClass of the runner pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// One node of the DAG: a name, its dependencies, and exactly one task kind.
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "[has(self.copy), has(self.export), has(self.load), has(self.sql), has(self.check), has(self.container)].filter(x, x).size() == 1"
).message("exactly one of copy, export, load, sql, check, container must be set"))]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Task name: a DNS label, unique within the Pipeline; part of Job names and lineage.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 50)
    )]
    pub name: String,
    /// Names of tasks that must succeed before this one starts. If one fails, this task is Skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub depends_on: Vec<String>,
    /// Attempts after the first one; overrides `spec.defaults.retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub retries: Option<u32>,
    /// First retry delay in seconds; overrides `spec.defaults.backoffSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub backoff_seconds: Option<u32>,
    /// Wall-clock limit of one attempt in seconds; overrides `spec.defaults.timeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub timeout_seconds: Option<u32>,
    /// Copy files from FTP/FTPS, SFTP, HTTP or S3 into an S3 bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<Box<CopyTask>>,
    /// Export a MongoDB collection into S3 as JSON Lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Box<ExportTask>>,
    /// Load JSON Lines or CSV objects from S3 into a PostgreSQL table with COPY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Box<LoadTask>>,
    /// Run SQL statements on PostgreSQL in one transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<Box<SqlTask>>,
    /// Assert data quality of a PostgreSQL table or an S3 object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Box<CheckTask>>,
    /// Run the user's own container image, with declared lineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<ContainerTask>>,
}

/// The kind of a task, named as in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Copy,
    Export,
    Load,
    Sql,
    Check,
    Container,
}

impl TaskKind {
    /// The field name that selects this kind in a task.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Copy => "copy",
            TaskKind::Export => "export",
            TaskKind::Load => "load",
            TaskKind::Sql => "sql",
            TaskKind::Check => "check",
            TaskKind::Container => "container",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Task {
    /// The task kinds set on this task; a valid task has exactly one.
    pub fn kinds(&self) -> Vec<TaskKind> {
        [
            (self.copy.is_some(), TaskKind::Copy),
            (self.export.is_some(), TaskKind::Export),
            (self.load.is_some(), TaskKind::Load),
            (self.sql.is_some(), TaskKind::Sql),
            (self.check.is_some(), TaskKind::Check),
            (self.container.is_some(), TaskKind::Container),
        ]
        .into_iter()
        .filter_map(|(set, kind)| set.then_some(kind))
        .collect()
    }

    /// The single task kind, or `None` when zero or several are set.
    pub fn kind(&self) -> Option<TaskKind> {
        match self.kinds().as_slice() {
            [kind] => Some(*kind),
            _ => None,
        }
    }

    /// Every DataSource this task names, with the field path it is named at (relative to the
    /// task) and the connector kinds that field accepts.
    pub fn data_source_refs(&self) -> Vec<DataSourceUse<'_>> {
        use SourceKind::*;
        let mut uses = Vec::new();
        if let Some(copy) = &self.copy {
            uses.push(DataSourceUse::new(
                "copy.from.dataSource",
                &copy.from.data_source,
                &[Ftp, Sftp, Http, S3],
            ));
            uses.push(DataSourceUse::new(
                "copy.to.dataSource",
                &copy.to.data_source,
                &[S3],
            ));
        }
        if let Some(export) = &self.export {
            uses.push(DataSourceUse::new(
                "export.from.dataSource",
                &export.from.data_source,
                &[Mongodb],
            ));
            uses.push(DataSourceUse::new(
                "export.to.dataSource",
                &export.to.data_source,
                &[S3],
            ));
        }
        if let Some(load) = &self.load {
            uses.push(DataSourceUse::new(
                "load.from.dataSource",
                &load.from.data_source,
                &[S3],
            ));
            uses.push(DataSourceUse::new(
                "load.to.dataSource",
                &load.to.data_source,
                &[Postgres],
            ));
        }
        if let Some(sql) = &self.sql {
            uses.push(DataSourceUse::new(
                "sql.dataSource",
                &sql.data_source,
                &[Postgres],
            ));
        }
        if let Some(check) = &self.check {
            uses.push(DataSourceUse::new(
                "check.dataSource",
                &check.data_source,
                &[Postgres, S3],
            ));
        }
        if let Some(container) = &self.container {
            for (i, input) in container.inputs.iter().enumerate() {
                uses.push(DataSourceUse::new(
                    format!("container.inputs[{i}].dataSource"),
                    &input.data_source,
                    ALL_KINDS,
                ));
            }
            for (i, output) in container.outputs.iter().enumerate() {
                uses.push(DataSourceUse::new(
                    format!("container.outputs[{i}].dataSource"),
                    &output.data_source,
                    ALL_KINDS,
                ));
            }
        }
        uses
    }
}

const ALL_KINDS: &[SourceKind] = &[
    SourceKind::Ftp,
    SourceKind::Sftp,
    SourceKind::Http,
    SourceKind::Mongodb,
    SourceKind::S3,
    SourceKind::Postgres,
];

/// A place where a task names a DataSource, and which connector kinds may appear there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSourceUse<'a> {
    /// Field path relative to the task, e.g. `copy.from.dataSource`.
    pub field: String,
    /// The DataSource name given there.
    pub name: &'a str,
    /// Connector kinds that this field accepts.
    pub accepts: &'static [SourceKind],
}

impl<'a> DataSourceUse<'a> {
    fn new(field: impl Into<String>, name: &'a str, accepts: &'static [SourceKind]) -> Self {
        DataSourceUse {
            field: field.into(),
            name,
            accepts,
        }
    }
}

/// What to do when a `copy` selects no file at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OnNoMatch {
    /// Fail the task: an empty source usually means a broken upstream.
    #[default]
    Fail,
    /// Succeed with zero files copied.
    Succeed,
}

/// How `copy` decides that a file is already in the lake and can be skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SkipUnchanged {
    /// Always copy.
    Never,
    /// Skip when the target object has the same size and a modification time recorded at copy
    /// time equal to the source's.
    #[default]
    SizeAndMtime,
    /// Skip when the sha256 recorded on the target object equals the source's (reads the source).
    Sha256,
}

/// Copy files into an S3 bucket, streaming (never through local disk or whole into memory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CopyTask {
    /// Where the files come from.
    pub from: CopyFrom,
    /// Where they go.
    pub to: ObjectTarget,
    /// When an already-copied file is skipped.
    #[serde(default)]
    pub skip_unchanged: SkipUnchanged,
    /// Outcome when nothing matches: `Fail` or `Succeed`.
    #[serde(default)]
    pub on_no_match: OnNoMatch,
    /// Part size of multipart uploads, in MiB (S3 allows 5 to 5120).
    #[serde(default = "default_part_size")]
    #[schemars(range(min = 5, max = 5120))]
    pub part_size_mib: u32,
    /// Parts uploaded at once per file; memory use is about `partSizeMiB × uploadConcurrency`.
    #[serde(default = "default_upload_concurrency")]
    #[schemars(range(min = 1, max = 16))]
    pub upload_concurrency: u32,
}

fn default_part_size() -> u32 {
    16
}
fn default_upload_concurrency() -> u32 {
    4
}

/// The files a `copy` reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CopyFrom {
    /// Name of an `ftp`, `sftp`, `http` or `s3` DataSource.
    pub data_source: String,
    /// Directory (or key prefix for S3) to read from.
    #[serde(default = "default_root")]
    pub path: String,
    /// Shell-style pattern the file names must match, e.g. `*.pdf`. Paths relative to `path`.
    #[serde(default = "default_glob")]
    pub glob: String,
    /// Descend into subdirectories.
    #[serde(default)]
    pub recursive: bool,
}

fn default_root() -> String {
    "/".to_string()
}
fn default_glob() -> String {
    "*".to_string()
}

/// Where objects are written in an S3 bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectTarget {
    /// Name of an `s3` DataSource.
    pub data_source: String,
    /// Key prefix; each file keeps its path relative to the source directory under it.
    /// May use `{{ run.date }}`, `{{ run.id }}`, `{{ task.name }}`, `{{ pipeline.name }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Exact object key (templated like `prefix`). For `export`, the key of the first part;
    /// further parts get `-00001`, `-00002`… before the extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Export a MongoDB collection to S3 as JSON Lines in MongoDB Extended JSON (canonical),
/// so every BSON type survives a round trip. Gzip when the key ends with `.gz`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportTask {
    /// The collection to read.
    pub from: CollectionSource,
    /// Target object; `to.key` is required.
    pub to: ObjectTarget,
    /// Start a new part file when the current one exceeds this many MiB (after compression).
    #[serde(default = "default_export_part_size")]
    #[schemars(range(min = 1, max = 5120))]
    pub part_size_mib: u32,
    /// Read only documents past the high-water mark of the previous successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
}

fn default_export_part_size() -> u32 {
    256
}

/// A MongoDB collection with an optional filter and projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSource {
    /// Name of a `mongodb` DataSource.
    pub data_source: String,
    /// Collection name.
    #[schemars(length(min = 1, max = 120))]
    pub collection: String,
    /// Query filter in MongoDB Extended JSON, e.g. `{"Country": "France"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub filter: Option<serde_json::Map<String, serde_json::Value>>,
    /// Projection, e.g. `{"_id": 1, "InvoiceNo": 1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub projection: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Incremental export by a monotonically increasing field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incremental {
    /// Field ordered by and compared with the high-water mark, e.g. `_id` or `updatedAt`.
    #[serde(default = "default_cursor_field")]
    pub field: String,
    /// Extended JSON value to start from on the very first run; without it the first run reads everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
}

/// Schema of a free-form JSON object: kept as written by the API server.
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn default_cursor_field() -> String {
    "_id".to_string()
}

/// How `load` writes into the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadMode {
    /// Load into a new table and swap it in, in one transaction: readers never see a half table.
    #[default]
    Replace,
    /// Add rows to the existing table (created when missing).
    Append,
    /// Insert or update rows by `key`.
    Upsert,
}

/// File format of objects to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// From the key's extension: `.jsonl`/`.ndjson`/`.json` or `.csv`, optionally followed by `.gz`.
    #[default]
    Auto,
    /// JSON Lines (one object per line; Extended JSON from `export` is understood).
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// Load S3 objects into a PostgreSQL table with COPY.
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("self.mode != 'Upsert' || (has(self.key) && size(self.key) > 0)")
    .message("mode Upsert needs a non-empty key"))]
#[serde(rename_all = "camelCase")]
pub struct LoadTask {
    /// The objects to read: one key, or every object under a prefix.
    pub from: ObjectSource,
    /// The table to write.
    pub to: TableTarget,
    /// `Replace`, `Append` or `Upsert`.
    #[serde(default)]
    pub mode: LoadMode,
    /// Key columns for `Upsert` (and a primary key for tables the load creates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Declared columns. Without them columns are inferred from the first `inferRows` rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1600))]
    pub columns: Vec<ColumnSpec>,
    /// Rows sampled to infer columns when none are declared.
    #[serde(default = "default_infer_rows")]
    #[schemars(range(min = 1, max = 100000))]
    pub infer_rows: u32,
    /// Input format.
    #[serde(default)]
    pub format: FileFormat,
    /// Rows that cannot be loaded go to this S3 prefix (same bucket) instead of failing the task,
    /// up to `maxRejects`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<Rejects>,
}

fn default_infer_rows() -> u32 {
    1000
}

/// Where rejected rows go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rejects {
    /// Key prefix of the rejects object (templated).
    pub prefix: String,
    /// Fail the task anyway once more rows than this are rejected.
    #[serde(default = "default_max_rejects")]
    pub max_rejects: u64,
}

fn default_max_rejects() -> u64 {
    1000
}

/// Objects read from an S3 bucket.
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.key) != has(self.prefix)").message("set exactly one of key or prefix"))]
#[serde(rename_all = "camelCase")]
pub struct ObjectSource {
    /// Name of an `s3` DataSource.
    pub data_source: String,
    /// Exact key (templated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Every object under this prefix (templated), in key order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A PostgreSQL table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableTarget {
    /// Name of a `postgres` DataSource.
    pub data_source: String,
    /// `table` or `schema.table`; plain SQL identifiers (letters, digits, `_`, `$`), always quoted by the runner.
    #[schemars(regex(
        pattern = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$"
    ))]
    pub table: String,
}

/// A declared column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnSpec {
    /// Column name (quoted as given).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// PostgreSQL type, e.g. `text`, `bigint`, `numeric(10,2)`, `timestamptz`, `jsonb`.
    #[serde(rename = "type")]
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?(\[\])?$"))]
    pub type_: String,
    /// Field in the input rows, when it differs from `name` (a dotted path into JSON, e.g. `customer.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Run SQL statements on PostgreSQL in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlTask {
    /// Name of a `postgres` DataSource.
    pub data_source: String,
    /// Statements run in order in one transaction (templated); all or nothing.
    #[schemars(length(min = 1, max = 200))]
    pub statements: Vec<String>,
}

/// Data-quality assertions on a PostgreSQL table or an S3 object.
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.table) != has(self.key)").message("set exactly one of table (postgres) or key (s3)"))]
#[serde(rename_all = "camelCase")]
pub struct CheckTask {
    /// Name of a `postgres` or `s3` DataSource.
    pub data_source: String,
    /// Table to check (`table` or `schema.table`), for a `postgres` DataSource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$"
    ))]
    pub table: Option<String>,
    /// Object key to check (templated), for an `s3` DataSource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The assertions, each reported on its own.
    #[schemars(length(min = 1, max = 50))]
    pub expect: Vec<Expectation>,
}

/// Whether a failed expectation fails the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Severity {
    /// Fail the task.
    #[default]
    Error,
    /// Report only.
    Warn,
}

/// One assertion. Exactly one of its kinds is set.
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "[has(self.rowCount), has(self.notNull), has(self.unique), has(self.acceptedValues), has(self.freshness), has(self.columns), has(self.exists), has(self.minBytes)].filter(x, x).size() == 1"
).message("exactly one of rowCount, notNull, unique, acceptedValues, freshness, columns, exists, minBytes must be set"))]
#[serde(rename_all = "camelCase")]
pub struct Expectation {
    /// Number of rows (table) or JSON lines (object) within bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<CountRange>,
    /// These columns never hold NULL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_null: Option<Vec<String>>,
    /// These columns together identify at most one row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<Vec<String>>,
    /// A column holds only these values (NULL aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_values: Option<AcceptedValues>,
    /// The newest value of a timestamp column is at most this old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Freshness>,
    /// The table has these columns with these types (extra columns are allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<ColumnSpec>>,
    /// The object exists (`true`) or must not exist (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The object is at least this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bytes: Option<u64>,
    /// `Error` fails the task; `Warn` only reports.
    #[serde(default)]
    pub severity: Severity,
}

impl Expectation {
    /// Names of the assertion kinds set; a valid expectation has exactly one.
    pub fn kinds(&self) -> Vec<&'static str> {
        [
            (self.row_count.is_some(), "rowCount"),
            (self.not_null.is_some(), "notNull"),
            (self.unique.is_some(), "unique"),
            (self.accepted_values.is_some(), "acceptedValues"),
            (self.freshness.is_some(), "freshness"),
            (self.columns.is_some(), "columns"),
            (self.exists.is_some(), "exists"),
            (self.min_bytes.is_some(), "minBytes"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// Inclusive bounds on a count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountRange {
    /// Lowest accepted count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Highest accepted count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

/// Accepted values of a column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedValues {
    /// The column.
    pub column: String,
    /// Values compared as text.
    #[schemars(length(min = 1, max = 1000))]
    pub values: Vec<String>,
}

/// Freshness of a timestamp column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Freshness {
    /// A `timestamp` or `timestamptz` column.
    pub column: String,
    /// Largest accepted age of the newest value, in seconds.
    #[schemars(range(min = 1))]
    pub max_age_seconds: u64,
}

/// Run the user's container image as a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTask {
    /// Image to run.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Entrypoint override.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments (templated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables; secrets only through `valueFrom.secretKeyRef`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// CPU and memory requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Datasets the container reads, recorded as lineage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<DeclaredDataset>,
    /// Datasets the container writes, recorded as lineage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<DeclaredDataset>,
}

/// A dataset a container task declares it reads or writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredDataset {
    /// The DataSource the dataset lives in.
    pub data_source: String,
    /// Path, key, prefix, collection or `schema.table` inside that source (templated).
    pub name: String,
}

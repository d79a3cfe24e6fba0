//! Fixture builders for the unit tests of the decisions: Pipelines, DataSources, runner
//! results and observed Jobs, each readable as a sentence.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use tributary_core::api::{
    DataSource, DataSourceSpec, DataSourceStatus, Pipeline, PipelineSpec, PipelineStatus,
    RunTrigger, Task, TaskLineage, TaskPhase,
};
use tributary_core::contract::{RunnerInput, TaskInput};
use tributary_core::lineage::{Outcome, TaskResult};

use crate::observe::{JobState, PodResult, TaskJobFacts};
use crate::pipeline::{DataSourceMap, ObservedAttempt};
use crate::time::to_k8s;

/// A UTC time from RFC 3339.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Builds a Pipeline.
pub struct PipelineBuilder {
    name: String,
    generation: i64,
    created: DateTime<Utc>,
    spec: serde_json::Value,
    annotations: BTreeMap<String, String>,
    status: PipelineStatus,
}

pub fn a_pipeline() -> PipelineBuilder {
    PipelineBuilder {
        name: "retail".into(),
        generation: 1,
        created: at("2026-01-01T00:00:00Z"),
        spec: json!({"tasks": [], "defaults": {"retries": 2, "backoffSeconds": 10, "timeoutSeconds": 600}}),
        annotations: BTreeMap::new(),
        status: PipelineStatus::default(),
    }
}

fn sql_task(name: &str, deps: &[&str]) -> serde_json::Value {
    json!({"name": name, "dependsOn": deps, "sql": {"dataSource": "warehouse", "statements": ["select 1"]}})
}

impl PipelineBuilder {
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// a → (b, c) → d, every task a `sql` task on the `warehouse` DataSource.
    pub fn diamond(mut self) -> Self {
        self.spec["tasks"] = json!([
            sql_task("a", &[]),
            sql_task("b", &["a"]),
            sql_task("c", &["a"]),
            sql_task("d", &["b", "c"]),
        ]);
        self
    }

    /// A chain t0 → t1 → … of `sql` tasks.
    pub fn chain(mut self, n: usize) -> Self {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let name = format!("t{i}");
                let dep = format!("t{}", i.wrapping_sub(1));
                if i == 0 {
                    sql_task(&name, &[])
                } else {
                    sql_task(&name, &[dep.as_str()])
                }
            })
            .collect();
        self.spec["tasks"] = json!(tasks);
        self
    }

    /// `n` independent `copy` tasks from and to the S3 DataSource `lake`.
    pub fn copy_tasks(mut self, n: usize, lake: &str) -> Self {
        let tasks: Vec<_> = (0..n)
            .map(|i| json!({"name": format!("copy-{i}"), "copy": {"from": {"dataSource": lake, "path": "/"}, "to": {"dataSource": lake, "prefix": "x/"}}}))
            .collect();
        self.spec["tasks"] = json!(tasks);
        self
    }

    pub fn task(mut self, task: serde_json::Value) -> Self {
        self.spec["tasks"].as_array_mut().unwrap().push(task);
        self
    }

    pub fn set(mut self, field: &str, value: serde_json::Value) -> Self {
        self.spec[field] = value;
        self
    }

    pub fn retries(self, retries: u32) -> Self {
        let mut s = self;
        s.spec["defaults"]["retries"] = json!(retries);
        s
    }

    pub fn schedule(self, cron: &str) -> Self {
        self.set("schedule", json!(cron))
    }

    pub fn generation(mut self, generation: i64) -> Self {
        self.generation = generation;
        self
    }

    pub fn annotated(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn with_status(mut self, status: PipelineStatus) -> Self {
        self.status = status;
        self
    }

    pub fn spec(&self) -> PipelineSpec {
        serde_json::from_value(self.spec.clone()).unwrap()
    }

    pub fn build(self) -> Pipeline {
        let spec = self.spec();
        Pipeline {
            metadata: ObjectMeta {
                name: Some(self.name),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                generation: Some(self.generation),
                creation_timestamp: Some(to_k8s(self.created)),
                annotations: Some(self.annotations),
                ..Default::default()
            },
            spec,
            status: Some(self.status),
        }
    }
}

/// Builds a DataSource.
pub struct DataSourceBuilder {
    name: String,
    generation: i64,
    spec: serde_json::Value,
}

pub fn a_data_source() -> DataSourceBuilder {
    DataSourceBuilder {
        name: "lake".into(),
        generation: 1,
        spec: json!({}),
    }
}

impl DataSourceBuilder {
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    pub fn s3(mut self, bucket: &str) -> Self {
        self.spec = json!({"s3": {"bucket": bucket, "endpoint": "http://127.0.0.1:19000", "pathStyle": true}});
        self
    }

    pub fn postgres(mut self) -> Self {
        self.spec = json!({"postgres": {"host": "127.0.0.1", "port": 15432, "database": "warehouse", "credentialsSecretRef": {"name": "pg"}}});
        self
    }

    pub fn http(mut self, url: &str) -> Self {
        self.spec = json!({"http": {"baseUrl": url}});
        self
    }

    /// Credentials from the Secret `name` (S3 only).
    pub fn secret(mut self, name: &str) -> Self {
        self.spec["s3"]["credentialsSecretRef"] = json!({"name": name});
        self
    }

    pub fn generation(mut self, generation: i64) -> Self {
        self.generation = generation;
        self
    }

    pub fn spec(&self) -> DataSourceSpec {
        serde_json::from_value(self.spec.clone()).unwrap()
    }

    pub fn build(self) -> DataSource {
        DataSource {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some("ns".into()),
                uid: Some("ds-uid".into()),
                generation: Some(self.generation),
                ..Default::default()
            },
            spec: self.spec(),
            status: Some(DataSourceStatus::default()),
        }
    }
}

/// The DataSources the diamond and chain fixtures name.
pub fn the_warehouse_and_the_lake() -> DataSourceMap {
    BTreeMap::from([
        ("warehouse".to_string(), a_data_source().postgres().spec()),
        (
            "lake".to_string(),
            a_data_source().s3("raw").secret("minio").spec(),
        ),
    ])
}

/// The runner input of the first attempt of `task` in run `g1`.
pub fn a_task_input<const N: usize>(
    pipeline: &Pipeline,
    task: &Task,
    sources: [(&str, DataSourceSpec); N],
) -> RunnerInput {
    RunnerInput::Task(TaskInput {
        pipeline: pipeline.metadata.name.clone().unwrap(),
        namespace: "ns".into(),
        run_id: "g1".into(),
        attempt: 1,
        logical_time: at("2026-01-01T00:00:00Z"),
        time_zone: None,
        task: task.clone(),
        data_sources: sources
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect(),
        watermark: None,
    })
}

/// Builds a runner result.
pub struct ResultBuilder(TaskResult);

pub fn a_result(outcome: Outcome) -> ResultBuilder {
    ResultBuilder(TaskResult::new(outcome, "done"))
}

impl ResultBuilder {
    pub fn rows(mut self, rows: u64) -> Self {
        self.0.rows = Some(rows);
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.0.message = message.into();
        self
    }

    /// … that read `namespace`/`name`.
    pub fn input(mut self, namespace: &str, name: &str) -> Self {
        self.0.inputs.push(tributary_core::lineage::DatasetReport {
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        });
        self
    }

    /// … that wrote `rows` rows and `bytes` bytes to `namespace`/`name`.
    pub fn output(mut self, namespace: &str, name: &str, rows: u64, bytes: u64) -> Self {
        self.0.outputs.push(tributary_core::lineage::DatasetReport {
            namespace: namespace.into(),
            name: name.into(),
            rows: Some(rows),
            bytes: Some(bytes),
            sha256: None,
        });
        self
    }

    pub fn watermark(mut self, watermark: &str) -> Self {
        self.0.watermark = Some(watermark.into());
        self
    }

    pub fn json(self) -> String {
        self.0.to_termination_message()
    }
}

/// Observed Jobs of a Pipeline, built attempt by attempt.
#[derive(Default)]
pub struct JobsBuilder(BTreeMap<String, ObservedAttempt>);

pub fn observed_jobs() -> JobsBuilder {
    JobsBuilder::default()
}

impl JobsBuilder {
    fn add(
        mut self,
        pipeline: &str,
        run: &str,
        task: &str,
        attempt: u32,
        state: JobState,
        result: Option<PodResult>,
    ) -> Self {
        let name = tributary_core::naming::job_name(pipeline, run, task, attempt);
        self.0.insert(
            name.clone(),
            ObservedAttempt {
                facts: TaskJobFacts {
                    name,
                    run: run.into(),
                    task: task.into(),
                    attempt,
                    state,
                },
                result,
            },
        );
        self
    }

    /// The Job of `task` attempt `attempt` of run `run` of Pipeline `retail` is running.
    pub fn running(self, run: &str, task: &str, attempt: u32) -> Self {
        self.add("retail", run, task, attempt, JobState::Active, None)
    }

    /// … completed at `time` with no result.
    pub fn succeeded(self, run: &str, task: &str, attempt: u32, time: &str) -> Self {
        self.add(
            "retail",
            run,
            task,
            attempt,
            JobState::Complete { at: at(time) },
            None,
        )
    }

    /// … completed at `time` with this runner result.
    pub fn succeeded_with(
        self,
        run: &str,
        task: &str,
        attempt: u32,
        time: &str,
        result: String,
    ) -> Self {
        self.add(
            "retail",
            run,
            task,
            attempt,
            JobState::Complete { at: at(time) },
            Some(PodResult {
                message: Some(result),
                exit_code: Some(0),
                finished_at: None,
            }),
        )
    }

    /// … failed at `time` with exit code 75 (retryable).
    pub fn failed(self, run: &str, task: &str, attempt: u32, time: &str) -> Self {
        self.add(
            "retail",
            run,
            task,
            attempt,
            JobState::Failed {
                at: at(time),
                reason: "BackoffLimitExceeded".into(),
                message: String::new(),
            },
            Some(PodResult {
                message: Some("connection refused".into()),
                exit_code: Some(75),
                finished_at: None,
            }),
        )
    }

    pub fn build(self) -> BTreeMap<String, ObservedAttempt> {
        self.0
    }
}

/// A status with one run of `tasks` succeeded tasks, each with a message of `message_len`
/// bytes and ten datasets each way.
pub fn a_big_status(tasks: usize, message_len: usize) -> PipelineStatus {
    let names: Vec<String> = (0..tasks).map(|i| format!("task-number-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut run = tributary_core::plan::new_run(
        "s202601010000".into(),
        RunTrigger::Schedule,
        1,
        &refs,
        at("2026-01-01T00:00:00Z"),
    );
    for (i, task) in run.tasks.iter_mut().enumerate() {
        task.phase = TaskPhase::Succeeded;
        task.attempts = 1;
        task.job = Some(format!("retail-s202601010000-task-number-{i}-1"));
        task.started_at = Some(at("2026-01-01T00:00:00Z"));
        task.finished_at = Some(at("2026-01-01T00:01:00Z"));
        task.message = Some("m".repeat(message_len));
        let ids = (0..10)
            .map(|k| tributary_core::api::DatasetId {
                namespace: "s3://raw".into(),
                name: format!("transactions/2026-01-01/s202601010000/part-{k:05}.jsonl.gz"),
            })
            .collect::<Vec<_>>();
        task.lineage = Some(Box::new(TaskLineage {
            inputs: ids.clone(),
            outputs: ids,
            rows: Some(1000),
            bytes: Some(1 << 20),
            files: Some(10),
            checks: None,
            manifest: Some("_tributary/manifests/s202601010000/x.json".into()),
        }));
    }
    PipelineStatus {
        last_run: Some(run),
        ..Default::default()
    }
}

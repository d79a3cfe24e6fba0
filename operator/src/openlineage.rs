//! OpenLineage RunEvents from a decision's transitions, free of I/O: one OpenLineage run per
//! Pipeline run (job `<pipeline>`), one per task attempt (job `<pipeline>.<task>`, with a
//! `parent` facet pointing at its Pipeline run), run ids derived deterministically.
//!
//! `crate::openlineage_client` delivers what this builds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha1::{Digest, Sha1};
use tributary_core::api::{RunPhase, RunTrigger};
use tributary_core::lineage::DatasetReport;
use uuid::Uuid;

use crate::pipeline::{AttemptLineage, AttemptOutcome, Transition};

/// The spec version events are written against.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const PARENT_SCHEMA: &str =
    "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet";
const NOMINAL_TIME_SCHEMA: &str =
    "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet";
const ERROR_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const JOB_TYPE_SCHEMA: &str =
    "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const OUTPUT_STATISTICS_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";

/// Placeholder of `--openlineage-namespace` replaced by the Pipeline's Kubernetes namespace.
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";

/// `producer` of every event and `_producer` of every facet: this operator at its version.
pub fn producer() -> String {
    format!(
        "{}/tree/v{}/operator",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    )
}

/// Where the custom `tributary` run facet is described (a facet needs a schema URL).
fn tributary_facet_schema() -> String {
    format!(
        "{}/blob/v{}/docs/operator.md#openlineage",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    )
}

/// UUID namespace of Tributary's run ids: the v5 UUID of the project URL in the URL namespace.
fn uuid_namespace() -> Uuid {
    v5(
        &Uuid::NAMESPACE_URL,
        env!("CARGO_PKG_REPOSITORY").as_bytes(),
    )
}

/// RFC 9562 UUID version 5 (SHA-1 of namespace and name).
fn v5(namespace: &Uuid, name: &[u8]) -> Uuid {
    let mut hasher = Sha1::new();
    hasher.update(namespace.as_bytes());
    hasher.update(name);
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The OpenLineage runId of a Pipeline run: the same for the same Pipeline object (uid) and
/// run id, in every operator process, so a re-sent event updates the same run downstream.
pub fn pipeline_run_id(pipeline_uid: &str, run: &str) -> Uuid {
    v5(
        &uuid_namespace(),
        format!("{pipeline_uid}/{run}").as_bytes(),
    )
}

/// The OpenLineage runId of one task attempt of a Pipeline run.
pub fn attempt_run_id(pipeline_uid: &str, run: &str, task: &str, attempt: u32) -> Uuid {
    v5(
        &uuid_namespace(),
        format!("{pipeline_uid}/{run}/{task}/{attempt}").as_bytes(),
    )
}

/// The job namespace of a Pipeline's events: `template` with `{namespace}` replaced by the
/// Pipeline's Kubernetes namespace.
pub fn job_namespace(template: &str, kubernetes_namespace: &str) -> String {
    template.replace(NAMESPACE_PLACEHOLDER, kubernetes_namespace)
}

/// Checks a `--openlineage-namespace` value: not empty, no braces but the placeholder.
pub fn check_namespace_template(template: &str) -> Result<String, String> {
    let rest = template.replace(NAMESPACE_PLACEHOLDER, "");
    if template.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if rest.contains(['{', '}']) {
        return Err(format!(
            "{template:?}: the only placeholder is {NAMESPACE_PLACEHOLDER}"
        ));
    }
    Ok(template.to_string())
}

/// The Pipeline the events are about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

/// An OpenLineage RunEvent.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    pub event_type: EventType,
    pub event_time: String,
    pub producer: String,
    #[serde(rename = "schemaURL")]
    pub schema_url: &'static str,
    pub run: Run,
    pub job: Job,
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Start,
    Complete,
    Fail,
    Abort,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: Uuid,
    pub facets: RunFacets,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFacets {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRunFacet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nominal_time: Option<NominalTimeRunFacet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<ErrorMessageRunFacet>,
    /// Where the run comes from in Kubernetes terms, to find its Job and status.
    pub tributary: TributaryRunFacet,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParentRunFacet {
    #[serde(rename = "_producer")]
    pub producer: String,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub run: ParentRun,
    pub job: JobRef,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRun {
    pub run_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NominalTimeRunFacet {
    #[serde(rename = "_producer")]
    pub producer: String,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub nominal_start_time: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMessageRunFacet {
    #[serde(rename = "_producer")]
    pub producer: String,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub message: String,
    /// Required by the facet; the runner is Rust, a container task's image may be anything.
    pub programming_language: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TributaryRunFacet {
    #[serde(rename = "_producer")]
    pub producer: String,
    #[serde(rename = "_schemaURL")]
    pub schema_url: String,
    /// The Pipeline's Kubernetes namespace and name.
    pub kubernetes_namespace: String,
    pub pipeline: String,
    /// `status.lastRun.id` of the run.
    pub pipeline_run: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RunTrigger>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The Kubernetes Job of a task attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_job: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    pub facets: JobFacets,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobFacets {
    pub job_type: JobTypeJobFacet,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTypeJobFacet {
    #[serde(rename = "_producer")]
    pub producer: String,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub processing_type: &'static str,
    pub integration: &'static str,
    /// `DAG` for a Pipeline, `TASK` for one of its tasks.
    pub job_type: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_facets: Option<OutputFacets>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFacets {
    pub output_statistics: OutputStatisticsFacet,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputStatisticsFacet {
    #[serde(rename = "_producer")]
    pub producer: String,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// Bytes written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Builds the RunEvents of `transitions` about `subject`, in order; job namespaces from
/// `namespace_template`.
pub fn run_events(
    namespace_template: &str,
    subject: Subject<'_>,
    transitions: &[Transition],
) -> Vec<RunEvent> {
    let builder = Builder {
        producer: producer(),
        namespace: job_namespace(namespace_template, subject.namespace),
        subject,
    };
    transitions.iter().map(|t| builder.event(t)).collect()
}

struct Builder<'a> {
    producer: String,
    namespace: String,
    subject: Subject<'a>,
}

impl Builder<'_> {
    fn event(&self, transition: &Transition) -> RunEvent {
        match transition {
            Transition::RunStarted {
                run,
                trigger,
                nominal_time,
                at,
            } => {
                let mut facets = self.facets(run, Some(*trigger), None);
                facets.nominal_time = nominal_time.map(|t| NominalTimeRunFacet {
                    producer: self.producer.clone(),
                    schema_url: NOMINAL_TIME_SCHEMA,
                    nominal_start_time: time(t),
                });
                self.pipeline_event(EventType::Start, run, facets, *at)
            }
            Transition::RunFinished { run, phase, at } => {
                let event_type = match phase {
                    RunPhase::Succeeded => EventType::Complete,
                    RunPhase::Cancelled => EventType::Abort,
                    RunPhase::Failed | RunPhase::Running => EventType::Fail,
                };
                let facets = self.facets(run, None, None);
                self.pipeline_event(event_type, run, facets, *at)
            }
            Transition::AttemptStarted {
                run,
                task,
                attempt,
                job,
                at,
            } => self.attempt_event(
                EventType::Start,
                (run, task, *attempt, job),
                None,
                &AttemptLineage::default(),
                *at,
            ),
            Transition::AttemptFinished {
                run,
                task,
                attempt,
                job,
                outcome,
                message,
                lineage,
                at,
            } => {
                let (event_type, error) = match outcome {
                    AttemptOutcome::Succeeded => (EventType::Complete, None),
                    AttemptOutcome::Failed => (
                        EventType::Fail,
                        Some(message.clone().unwrap_or_else(|| "failed".into())),
                    ),
                    AttemptOutcome::Aborted => (EventType::Abort, None),
                };
                self.attempt_event(event_type, (run, task, *attempt, job), error, lineage, *at)
            }
        }
    }

    fn facets(
        &self,
        run: &str,
        trigger: Option<RunTrigger>,
        attempt: Option<(&str, u32, &str)>,
    ) -> RunFacets {
        RunFacets {
            tributary: TributaryRunFacet {
                producer: self.producer.clone(),
                schema_url: tributary_facet_schema(),
                kubernetes_namespace: self.subject.namespace.to_string(),
                pipeline: self.subject.name.to_string(),
                pipeline_run: run.to_string(),
                trigger,
                task: attempt.map(|(task, _, _)| task.to_string()),
                attempt: attempt.map(|(_, n, _)| n),
                kubernetes_job: attempt.map(|(_, _, job)| job.to_string()),
            },
            parent: None,
            nominal_time: None,
            error_message: None,
        }
    }

    fn job(&self, name: String, job_type: &'static str) -> Job {
        Job {
            namespace: self.namespace.clone(),
            name,
            facets: JobFacets {
                job_type: JobTypeJobFacet {
                    producer: self.producer.clone(),
                    schema_url: JOB_TYPE_SCHEMA,
                    processing_type: "BATCH",
                    integration: "TRIBUTARY",
                    job_type,
                },
            },
        }
    }

    fn pipeline_event(
        &self,
        event_type: EventType,
        run: &str,
        facets: RunFacets,
        at: DateTime<Utc>,
    ) -> RunEvent {
        RunEvent {
            event_type,
            event_time: time(at),
            producer: self.producer.clone(),
            schema_url: SCHEMA_URL,
            run: Run {
                run_id: pipeline_run_id(self.subject.uid, run),
                facets,
            },
            job: self.job(self.subject.name.to_string(), "DAG"),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn attempt_event(
        &self,
        event_type: EventType,
        (run, task, attempt, job): (&str, &str, u32, &str),
        error: Option<String>,
        lineage: &AttemptLineage,
        at: DateTime<Utc>,
    ) -> RunEvent {
        let mut facets = self.facets(run, None, Some((task, attempt, job)));
        facets.parent = Some(ParentRunFacet {
            producer: self.producer.clone(),
            schema_url: PARENT_SCHEMA,
            run: ParentRun {
                run_id: pipeline_run_id(self.subject.uid, run),
            },
            job: JobRef {
                namespace: self.namespace.clone(),
                name: self.subject.name.to_string(),
            },
        });
        facets.error_message = error.map(|message| ErrorMessageRunFacet {
            producer: self.producer.clone(),
            schema_url: ERROR_SCHEMA,
            message,
            programming_language: "Rust",
        });
        let single_output = lineage.outputs.len() == 1;
        RunEvent {
            event_type,
            event_time: time(at),
            producer: self.producer.clone(),
            schema_url: SCHEMA_URL,
            run: Run {
                run_id: attempt_run_id(self.subject.uid, run, task, attempt),
                facets,
            },
            job: self.job(format!("{}.{task}", self.subject.name), "TASK"),
            inputs: lineage
                .inputs
                .iter()
                .map(|d| Dataset {
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    output_facets: None,
                })
                .collect(),
            outputs: lineage
                .outputs
                .iter()
                .map(|d| self.output(d, single_output.then_some(lineage.files).flatten()))
                .collect(),
        }
    }

    /// An output dataset with its statistics facet when anything about its size is known.
    fn output(&self, report: &DatasetReport, files: Option<u64>) -> Dataset {
        let known = report.rows.is_some() || report.bytes.is_some() || files.is_some();
        Dataset {
            namespace: report.namespace.clone(),
            name: report.name.clone(),
            output_facets: known.then(|| OutputFacets {
                output_statistics: OutputStatisticsFacet {
                    producer: self.producer.clone(),
                    schema_url: OUTPUT_STATISTICS_SCHEMA,
                    row_count: report.rows,
                    size: report.bytes,
                    file_count: files,
                },
            }),
        }
    }
}

#[cfg(test)]
#[path = "openlineage_tests.rs"]
pub(crate) mod tests;

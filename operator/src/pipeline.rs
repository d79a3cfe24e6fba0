//! Reconcile decisions for a Pipeline, free of I/O: from the Pipeline, its DataSources, the
//! observed Jobs and the clock to the status to write, the Jobs to create or delete, the
//! Events to publish and when to look again.
//!
//! The sequence is dereference → validate → advance the active run → triggers (retry, manual,
//! generation, schedule) → conditions, as in Stackable's operators; the run itself is advanced
//! by `tributary_core::plan::step`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use tributary_core::api::{
    ConcurrencyPolicy, DataSourceSpec, Pipeline, PipelinePhase, PipelineSpec, PipelineStatus,
    RunPhase, RunStatus, RunTrigger, TaskLineage, TaskPhase,
};
use tributary_core::contract::{RunnerInput, TaskInput};
use tributary_core::dag::Dag;
use tributary_core::lineage::{DatasetReport, TaskResult, dataset};
use tributary_core::naming::{
    ANNOTATION_RETRY, ANNOTATION_RUN, generation_run_id, job_name, manual_run_id, retry_run_id,
    scheduled_run_id,
};
use tributary_core::plan::{self, JobObservation, RunContext, TaskEvent};
use tributary_core::retry::RetryPolicy;
use tributary_core::schedule::{self, Schedule, ScheduleDecision, ScheduleState, SkipReason};
use tributary_core::template::{TemplateContext, render};
use tributary_core::validate::{DataSources, ProblemKind, validate_pipeline};

use crate::budget;
use crate::conditions::{self, Desired, READY, SUCCEEDED, Status, VALID};
use crate::events::{EventNote, TaskStart};
use crate::jobs::{self, Owner, PodSettings, TaskJob};
use crate::observe::{PodResult, TaskJobFacts, observation};
use crate::status_queue::Urgency;

/// Largest status the operator writes; etcd objects stay far below their 1.5 MiB limit and
/// `kubectl get -o yaml` stays readable.
pub const STATUS_BUDGET: usize = 60 * 1024;

/// The parts of a Pipeline object the decisions read.
#[derive(Clone, Debug)]
pub struct PipelineView<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub generation: i64,
    pub created_at: DateTime<Utc>,
    pub run_request: Option<&'a str>,
    pub retry_request: Option<&'a str>,
    pub spec: &'a PipelineSpec,
    pub status: &'a PipelineStatus,
}

impl<'a> PipelineView<'a> {
    /// Reads a Pipeline; `status` is the status to build on (possibly newer than the object's).
    pub fn of(pipeline: &'a Pipeline, status: &'a PipelineStatus) -> PipelineView<'a> {
        let annotations = pipeline.metadata.annotations.as_ref();
        PipelineView {
            name: pipeline.metadata.name.as_deref().unwrap_or_default(),
            namespace: pipeline.metadata.namespace.as_deref().unwrap_or_default(),
            uid: pipeline.metadata.uid.as_deref().unwrap_or_default(),
            generation: pipeline.metadata.generation.unwrap_or(1),
            created_at: pipeline
                .metadata
                .creation_timestamp
                .as_ref()
                .map(crate::time::to_chrono)
                .unwrap_or_default(),
            run_request: annotations
                .and_then(|a| a.get(ANNOTATION_RUN))
                .map(String::as_str)
                .filter(|t| !t.is_empty()),
            retry_request: annotations
                .and_then(|a| a.get(ANNOTATION_RETRY))
                .map(String::as_str)
                .filter(|t| !t.is_empty()),
            spec: &pipeline.spec,
            status,
        }
    }
}

/// One observed attempt: the Job's facts and, once it finished, its pod's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAttempt {
    pub facts: TaskJobFacts,
    pub result: Option<PodResult>,
}

/// A Job the decision wants to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobToCreate {
    pub job_name: String,
    pub run_id: String,
    pub task: usize,
    pub attempt: u32,
    /// Already started by an earlier reconcile but not observed: creating it again must be idempotent.
    pub ensure_only: bool,
    /// Jobs of the task's dependencies (for the dispatch latency metric).
    pub dependency_jobs: Vec<String>,
}

/// Everything a reconcile of one Pipeline should do.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: PipelineStatus,
    pub create: Vec<JobToCreate>,
    /// Jobs to delete: running Jobs of cancelled runs, finished Jobs of old runs.
    pub delete: Vec<String>,
    /// Events to publish now.
    pub events: Vec<EventNote>,
    /// Tasks started: announced after the status write (`events::task_started_events`).
    pub tasks_started: Vec<TaskStart>,
    pub requeue_at: Option<DateTime<Utc>>,
    /// Outcomes for metrics.
    pub runs_finished: Vec<RunPhase>,
    pub tasks_finished: Vec<TaskPhase>,
    pub runs_started: Vec<RunTrigger>,
    /// Runs and task attempts that started or ended, in order (for OpenLineage RunEvents).
    pub transitions: Vec<Transition>,
}

/// A run or a task attempt changing state in this decision. Only real transitions: an
/// attempt adopted after a lost status write or re-ensured has none, so a consumer sees each
/// at most once per decision that is carried out.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    RunStarted {
        run: String,
        trigger: RunTrigger,
        /// The scheduled time of scheduled runs (and retries of them).
        nominal_time: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    RunFinished {
        run: String,
        phase: RunPhase,
        at: DateTime<Utc>,
    },
    AttemptStarted {
        run: String,
        task: String,
        attempt: u32,
        job: String,
        at: DateTime<Utc>,
    },
    AttemptFinished {
        run: String,
        task: String,
        attempt: u32,
        job: String,
        outcome: AttemptOutcome,
        message: Option<String>,
        lineage: AttemptLineage,
        at: DateTime<Utc>,
    },
}

/// How a task attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed (another attempt may follow).
    Failed,
    /// Its run was cancelled while it ran.
    Aborted,
}

/// What an attempt read and wrote: the runner's result when there is one (per-dataset rows
/// and bytes), else the lineage status holds (e.g. a container task's declared datasets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptLineage {
    pub inputs: Vec<DatasetReport>,
    pub outputs: Vec<DatasetReport>,
    pub files: Option<u64>,
}

impl AttemptLineage {
    fn of(result: Option<&TaskResult>, status: Option<&TaskLineage>) -> AttemptLineage {
        if let Some(result) = result
            && (!result.inputs.is_empty() || !result.outputs.is_empty())
        {
            let mut outputs = result.outputs.clone();
            // A single output gets the task's totals when the runner reported only those.
            if let [only] = outputs.as_mut_slice() {
                only.rows = only.rows.or(result.rows);
                only.bytes = only.bytes.or(result.bytes);
            }
            return AttemptLineage {
                inputs: result.inputs.clone(),
                outputs,
                files: result.files,
            };
        }
        let Some(status) = status else {
            return AttemptLineage::default();
        };
        let reports = |ids: &[tributary_core::api::DatasetId]| {
            ids.iter()
                .map(|id| DatasetReport {
                    namespace: id.namespace.clone(),
                    name: id.name.clone(),
                    ..Default::default()
                })
                .collect::<Vec<_>>()
        };
        let mut outputs = reports(&status.outputs);
        if let [only] = outputs.as_mut_slice() {
            only.rows = status.rows;
            only.bytes = status.bytes;
        }
        AttemptLineage {
            inputs: reports(&status.inputs),
            outputs,
            files: status.files,
        }
    }
}

/// The transitions of cancelling `run` (before `plan::cancel_run` marks its tasks): running
/// attempts are aborted, then the run.
fn cancel_transitions(run: &RunStatus, now: DateTime<Utc>) -> Vec<Transition> {
    run.tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Running)
        .filter_map(|t| {
            Some(Transition::AttemptFinished {
                run: run.id.clone(),
                task: t.name.clone(),
                attempt: t.attempts,
                job: t.job.clone()?,
                outcome: AttemptOutcome::Aborted,
                message: None,
                lineage: AttemptLineage::default(),
                at: now,
            })
        })
        .chain(std::iter::once(Transition::RunFinished {
            run: run.id.clone(),
            phase: RunPhase::Cancelled,
            at: now,
        }))
        .collect()
}

impl Decision {
    /// How soon its status must be written: at once when a run finished, Jobs are to be
    /// deleted (they wait for the write) or the phase changed from `built_on` (the status this
    /// decision built on: one still queued, else what the server holds) other than by a run
    /// starting; a starting run settles so that its first progress joins the write; anything
    /// else is progress, spaced. (Against the server's phase, every decision while a start is
    /// queued would count as a phase change and defeat the settling.)
    pub fn status_urgency(&self, built_on: &PipelineStatus) -> Urgency {
        if !self.delete.is_empty() || !self.runs_finished.is_empty() {
            Urgency::Now
        } else if !self.runs_started.is_empty() {
            Urgency::Settle
        } else if self.status.phase != built_on.phase {
            Urgency::Now
        } else {
            Urgency::Progress
        }
    }

    /// How long the run it finishes took (start to finish, as its status shows), when it
    /// finishes one that stays the last run: what the status queue settles later starts by.
    pub fn finished_run_took(&self) -> Option<std::time::Duration> {
        if self.runs_finished.is_empty() {
            return None;
        }
        let run = self.status.last_run.as_ref()?;
        (run.finished_at? - run.started_at).to_std().ok()
    }

    /// Whether carrying it out creates the first Jobs of a new run (which waits for a start:
    /// `--run-start-concurrency`).
    pub fn starts_a_run(&self) -> bool {
        !self.runs_started.is_empty() && !self.create.is_empty()
    }

    fn new(status: PipelineStatus) -> Decision {
        Decision {
            status,
            create: Vec::new(),
            delete: Vec::new(),
            events: Vec::new(),
            tasks_started: Vec::new(),
            requeue_at: None,
            runs_finished: Vec::new(),
            tasks_finished: Vec::new(),
            runs_started: Vec::new(),
            transitions: Vec::new(),
        }
    }

    fn wake(&mut self, at: Option<DateTime<Utc>>) {
        if let Some(at) = at {
            self.requeue_at = Some(self.requeue_at.map_or(at, |r| r.min(at)));
        }
    }
}

/// The DataSources of a namespace, by name.
pub type DataSourceMap = BTreeMap<String, DataSourceSpec>;

/// Decides one reconcile of a Pipeline.
pub fn decide(
    view: &PipelineView<'_>,
    data_sources: &DataSourceMap,
    jobs: &BTreeMap<String, ObservedAttempt>,
    now: DateTime<Utc>,
) -> Decision {
    let mut d = Decision::new(view.status.clone());
    d.status.observed_generation = Some(view.generation);
    let refs: DataSources<'_> = data_sources.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let problems = validate_pipeline(view.spec, &refs);
    if !problems.is_empty() {
        invalid(view, &mut d, &problems, now);
        return d;
    }
    let Ok(dag) = Dag::new(
        &view
            .spec
            .tasks
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect::<Vec<(&str, Vec<&str>)>>(),
    ) else {
        unreachable!("a valid Pipeline has a DAG");
    };
    let policies: Vec<RetryPolicy> = view
        .spec
        .tasks
        .iter()
        .map(|t| RetryPolicy::for_task(t, &view.spec.defaults))
        .collect();
    let runner = Runner {
        view,
        dag: &dag,
        policies: &policies,
        jobs,
        data_sources,
    };

    // Fold what the Jobs say first, so a run that just finished frees the way for a trigger.
    runner.advance(&mut d, now);

    let mut started = triggers(&runner, &mut d, now);
    if started {
        runner.advance(&mut d, now);
    }
    if let Some(expression) = &view.spec.schedule {
        let Ok(schedule) = Schedule::parse(expression, view.spec.time_zone.as_deref()) else {
            unreachable!("a valid Pipeline has a valid schedule");
        };
        started |= scheduled(&runner, &schedule, &mut d, started, now);
    } else {
        d.status.next_run_at = None;
    }
    let _ = started;

    delete_old_jobs(view, jobs, &mut d);
    d.status.phase = Some(plan::pipeline_phase(d.status.last_run.as_ref()));
    d.status.conditions = conditions::settle(
        &view.status.conditions,
        run_conditions(d.status.last_run.as_ref()),
        view.generation,
        now,
    );
    budget::fit(&mut d.status, STATUS_BUDGET);
    d
}

fn invalid(
    view: &PipelineView<'_>,
    d: &mut Decision,
    problems: &[tributary_core::validate::Problem],
    now: DateTime<Utc>,
) {
    let reason = if problems
        .iter()
        .all(|p| p.kind == ProblemKind::MissingDataSource)
    {
        "MissingDataSource"
    } else {
        "InvalidSpec"
    };
    let message = format!(
        "{} problem{}: {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let already_reported = conditions::find(&view.status.conditions, VALID).is_some_and(|c| {
        c.status == "False"
            && c.message == message
            && view.status.observed_generation == Some(view.generation)
    });
    if !already_reported {
        d.events.push(EventNote::warning(reason, message.clone()));
    }
    d.status.phase = Some(PipelinePhase::Invalid);
    d.status.next_run_at = None;
    let mut desired = run_conditions(d.status.last_run.as_ref());
    desired[0] = Desired::new(VALID, Status::False, reason, message.clone());
    desired[1] = Desired::new(READY, Status::False, reason, message);
    d.status.conditions =
        conditions::settle(&view.status.conditions, desired, view.generation, now);
    budget::fit(&mut d.status, STATUS_BUDGET);
}

/// `Valid`, `Ready`, `Succeeded` of a valid Pipeline from its last run.
fn run_conditions(last_run: Option<&RunStatus>) -> Vec<Desired> {
    let valid = Desired::new(VALID, Status::True, "Valid", "");
    let (ready, succeeded) = match last_run {
        None => (
            Desired::new(READY, Status::True, "Idle", "no run yet"),
            Desired::new(SUCCEEDED, Status::Unknown, "NoRun", "no run yet"),
        ),
        Some(run) => {
            let what = format!("run {} {}", run.id, run.progress);
            match run.phase {
                RunPhase::Running => (
                    Desired::new(READY, Status::False, "Running", what.clone()),
                    Desired::new(SUCCEEDED, Status::Unknown, "Running", what),
                ),
                RunPhase::Succeeded => (
                    Desired::new(READY, Status::True, "Succeeded", what.clone()),
                    Desired::new(SUCCEEDED, Status::True, "Succeeded", what),
                ),
                RunPhase::Failed => {
                    let failed = failed_tasks(run);
                    let message = format!("{what}; failed: {failed}");
                    (
                        Desired::new(READY, Status::False, "RunFailed", message.clone()),
                        Desired::new(SUCCEEDED, Status::False, "RunFailed", message),
                    )
                }
                RunPhase::Cancelled => (
                    Desired::new(READY, Status::True, "Cancelled", what.clone()),
                    Desired::new(SUCCEEDED, Status::False, "Cancelled", what),
                ),
            }
        }
    };
    vec![valid, ready, succeeded]
}

fn failed_tasks(run: &RunStatus) -> String {
    let names: Vec<&str> = run
        .tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Failed)
        .map(|t| t.name.as_str())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The fixed inputs for advancing runs of one Pipeline.
struct Runner<'a, 'v> {
    view: &'a PipelineView<'v>,
    dag: &'a Dag,
    policies: &'a [RetryPolicy],
    jobs: &'a BTreeMap<String, ObservedAttempt>,
    data_sources: &'a DataSourceMap,
}

impl Runner<'_, '_> {
    fn job_name(&self, run: &str, task: usize, attempt: u32) -> String {
        job_name(
            self.view.name,
            run,
            &self.view.spec.tasks[task].name,
            attempt,
        )
    }

    fn task_names(&self) -> Vec<&str> {
        self.view
            .spec
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect()
    }

    /// Steps the active run once with the observed Jobs.
    fn advance(&self, d: &mut Decision, now: DateTime<Utc>) {
        let Some(mut run) = d.status.last_run.take() else {
            return;
        };
        if run.phase.is_finished() {
            d.status.last_run = Some(run);
            return;
        }
        let names = self.task_names();
        if run
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .ne(names.iter().copied())
        {
            // The task list changed under a scheduled run: its indices no longer mean anything.
            d.transitions.extend(cancel_transitions(&run, now));
            let running = plan::cancel_run(&mut run, "the Pipeline's tasks changed", now);
            d.delete.extend(running);
            d.events.push(EventNote::warning(
                "RunCancelled",
                format!("run {} cancelled: the Pipeline's tasks changed", run.id),
            ));
            d.runs_finished.push(RunPhase::Cancelled);
            d.status.last_run = Some(run);
            return;
        }
        adopt(self, &mut run, now);
        let mut results: BTreeMap<usize, TaskResult> = BTreeMap::new();
        let observations: Vec<JobObservation> = run
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| {
                if task.phase != TaskPhase::Running {
                    return JobObservation::Missing;
                }
                let name = self.job_name(&run.id, i, task.attempts);
                match self.jobs.get(&name) {
                    None => JobObservation::Missing,
                    Some(attempt) => {
                        let (obs, result) = observation(
                            &attempt.facts.state,
                            attempt.result.as_ref(),
                            self.policies[i].timeout_seconds,
                        );
                        if let Some(result) = result {
                            results.insert(i, result);
                        }
                        obs
                    }
                }
            })
            .collect();
        let context = RunContext {
            dag: self.dag,
            policies: self.policies,
            parallelism: self.view.spec.parallelism,
        };
        let step = plan::step(
            context,
            &run.tasks,
            &observations,
            |i, attempt| self.job_name(&run.id, i, attempt),
            now,
        );
        plan::apply(&mut run, &step, now);
        d.wake(step.wake_at);
        for start in &step.starts {
            d.create.push(JobToCreate {
                job_name: self.job_name(&run.id, start.task, start.attempt),
                run_id: run.id.clone(),
                task: start.task,
                attempt: start.attempt,
                ensure_only: start.ensure_only,
                dependency_jobs: self
                    .dag
                    .dependencies(start.task)
                    .iter()
                    .filter_map(|&dep| run.tasks[dep].job.clone())
                    .collect(),
            });
        }
        for event in &step.events {
            self.task_event(&mut run, event, &results, d, now);
        }
        if run.phase.is_finished() {
            d.runs_finished.push(run.phase);
            d.transitions.push(Transition::RunFinished {
                run: run.id.clone(),
                phase: run.phase,
                at: now,
            });
            let note = format!(
                "run {} {:?} ({}) in {}s",
                run.id,
                run.phase,
                run.progress,
                (run.finished_at.unwrap_or(now) - run.started_at).num_seconds()
            );
            if run.phase == RunPhase::Succeeded {
                d.events.push(EventNote::normal("RunSucceeded", note));
            } else {
                let skipped = run
                    .tasks
                    .iter()
                    .filter(|t| t.phase == TaskPhase::Skipped)
                    .count();
                d.events.push(EventNote::warning(
                    "RunFailed",
                    format!("{note}; failed: {}; skipped: {skipped}", failed_tasks(&run)),
                ));
            }
        }
        d.status.last_run = Some(run);
    }

    fn task_event(
        &self,
        run: &mut RunStatus,
        event: &TaskEvent,
        results: &BTreeMap<usize, TaskResult>,
        d: &mut Decision,
        now: DateTime<Utc>,
    ) {
        let name = |i: usize| self.view.spec.tasks[i].name.as_str();
        let finished =
            |run: &RunStatus, task: usize, attempt: u32, outcome| Transition::AttemptFinished {
                run: run.id.clone(),
                task: name(task).to_string(),
                attempt,
                job: self.job_name(&run.id, task, attempt),
                outcome,
                message: run.tasks[task].message.clone(),
                lineage: AttemptLineage::of(results.get(&task), run.tasks[task].lineage.as_deref()),
                at: now,
            };
        match *event {
            TaskEvent::Started { task, attempt } => {
                let job = self.job_name(&run.id, task, attempt);
                // Announced once the status showing it is written, with the tasks started
                // since the previous write: a run's tasks starting layer by layer would
                // otherwise be as many Event writes competing with the Jobs' creation.
                d.tasks_started.push(TaskStart {
                    task: name(task).to_string(),
                    attempt,
                    job: job.clone(),
                    at: now,
                });
                d.transitions.push(Transition::AttemptStarted {
                    run: run.id.clone(),
                    task: name(task).to_string(),
                    attempt,
                    job,
                    at: now,
                })
            }
            TaskEvent::Succeeded { task } => {
                d.tasks_finished.push(TaskPhase::Succeeded);
                if let Some(watermark) = results.get(&task).and_then(|r| r.watermark.clone()) {
                    d.status
                        .watermarks
                        .insert(name(task).to_string(), watermark);
                }
                if run.tasks[task].lineage.is_none()
                    && let Some(declared) = self.declared_lineage(run, task, now)
                {
                    run.tasks[task].lineage = Some(Box::new(declared));
                }
                let attempt = run.tasks[task].attempts;
                d.transitions
                    .push(finished(run, task, attempt, AttemptOutcome::Succeeded));
            }
            TaskEvent::Retrying { task, attempt, at } => {
                d.tasks_finished.push(TaskPhase::Retrying);
                // `attempt` is the next one; the one that failed came before it.
                d.transitions
                    .push(finished(run, task, attempt - 1, AttemptOutcome::Failed));
                d.events.push(EventNote::warning(
                    "TaskRetrying",
                    format!(
                        "task {} {}; attempt {attempt} at {}",
                        name(task),
                        run.tasks[task].message.as_deref().unwrap_or("failed"),
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                ));
            }
            TaskEvent::Failed { task } => {
                d.tasks_finished.push(TaskPhase::Failed);
                let attempt = run.tasks[task].attempts;
                d.transitions
                    .push(finished(run, task, attempt, AttemptOutcome::Failed));
                d.events.push(EventNote::warning(
                    "TaskFailed",
                    format!(
                        "task {} {}",
                        name(task),
                        run.tasks[task].message.as_deref().unwrap_or("failed")
                    ),
                ));
            }
            TaskEvent::Skipped { .. } => d.tasks_finished.push(TaskPhase::Skipped),
        }
    }

    /// Lineage a `container` task declared, for when its image wrote no result.
    fn declared_lineage(
        &self,
        run: &RunStatus,
        task: usize,
        now: DateTime<Utc>,
    ) -> Option<TaskLineage> {
        let spec = &self.view.spec.tasks[task];
        let container = spec.container.as_ref()?;
        let context = self.template_context(run, task, now);
        let ids = |declared: &[tributary_core::api::DeclaredDataset]| {
            declared
                .iter()
                .filter_map(|d| {
                    let source = self.data_sources.get(&d.data_source)?;
                    let name = render(&d.name, &context).unwrap_or_else(|_| d.name.clone());
                    dataset(source, &name)
                })
                .collect::<Vec<_>>()
        };
        Some(TaskLineage {
            inputs: ids(&container.inputs),
            outputs: ids(&container.outputs),
            ..Default::default()
        })
    }

    fn template_context(
        &self,
        run: &RunStatus,
        task: usize,
        now: DateTime<Utc>,
    ) -> TemplateContext {
        let tz = tributary_core::schedule::parse_time_zone(self.view.spec.time_zone.as_deref())
            .unwrap_or(chrono_tz::UTC);
        let _ = now;
        TemplateContext::new(
            template_run_id(run),
            &logical_time(run).with_timezone(&tz),
            &self.view.spec.tasks[task].name,
            self.view.name,
            self.view.namespace,
        )
    }
}

/// Catches a run up with Jobs newer than its status says (a status write lost to a crash):
/// the newest observed attempt of a task becomes its current one instead of waiting out a
/// backoff or starting an attempt that already exists.
fn adopt(runner: &Runner<'_, '_>, run: &mut RunStatus, now: DateTime<Utc>) {
    for (i, task) in run.tasks.iter_mut().enumerate() {
        if task.phase.is_finished() {
            continue;
        }
        let newest = runner
            .jobs
            .values()
            .filter(|a| a.facts.run == run.id && a.facts.task == task.name)
            .map(|a| a.facts.attempt)
            .max();
        if let Some(attempt) = newest
            && (attempt > task.attempts
                || (attempt == task.attempts && task.phase == TaskPhase::Pending))
        {
            task.attempts = attempt;
            task.phase = TaskPhase::Running;
            task.job = Some(runner.job_name(&run.id, i, attempt));
            task.next_attempt_at = None;
            task.started_at.get_or_insert(now);
        }
    }
}

/// The run's logical time: the scheduled time for scheduled runs, the start otherwise.
pub fn logical_time(run: &RunStatus) -> DateTime<Utc> {
    if let Some(retried) = &run.retry_of {
        return retried.logical_time;
    }
    if run.trigger == RunTrigger::Schedule
        && let Some(stamp) = run.id.strip_prefix('s')
        && let Ok(time) = NaiveDateTime::parse_from_str(&format!("{stamp}00"), "%Y%m%d%H%M%S")
    {
        return time.and_utc();
    }
    run.started_at
}

/// The `{{ run.id }}` of a run's tasks: a retry's is the retried run's, so a re-run task
/// finds the objects that the tasks kept from that run wrote under its id.
pub fn template_run_id(run: &RunStatus) -> &str {
    run.retry_of
        .as_ref()
        .map_or(run.id.as_str(), |r| r.id.as_str())
}

/// Manual and retry requests, and the run of a new generation. Returns whether a run started.
fn triggers(runner: &Runner<'_, '_>, d: &mut Decision, now: DateTime<Utc>) -> bool {
    let view = runner.view;
    let active = d
        .status
        .last_run
        .as_ref()
        .is_some_and(|r| r.phase == RunPhase::Running);

    if let Some(token) = view.retry_request
        && d.status.handled_retry_request.as_deref() != Some(token)
        && !active
    {
        d.status.handled_retry_request = Some(token.to_string());
        match d.status.last_run.clone() {
            None => d.events.push(EventNote::warning(
                "RetryIgnored",
                format!("retry request {token:?}: there is no run to retry"),
            )),
            Some(previous)
                if previous
                    .tasks
                    .iter()
                    .all(|t| t.phase == TaskPhase::Succeeded) =>
            {
                d.events.push(EventNote::normal(
                    "RetryIgnored",
                    format!(
                        "retry request {token:?}: every task of run {} succeeded",
                        previous.id
                    ),
                ));
            }
            Some(previous) => {
                let run = plan::retry_run(
                    &previous,
                    retry_run_id(&previous.id, token),
                    logical_time(&previous),
                    now,
                );
                start_run(runner, d, run, None, now);
                return true;
            }
        }
    }

    if let Some(token) = view.run_request
        && d.status.handled_run_request.as_deref() != Some(token)
    {
        if view.spec.suspend {
            d.status.handled_run_request = Some(token.to_string());
            d.events.push(EventNote::warning(
                "RunRefused",
                format!("run request {token:?} refused: the Pipeline is suspended"),
            ));
        } else if !active || view.spec.concurrency_policy != ConcurrencyPolicy::Forbid {
            // Forbid defers the request until the active run finishes (its Job events wake us).
            d.status.handled_run_request = Some(token.to_string());
            let run = plan::new_run(
                manual_run_id(token),
                RunTrigger::Manual,
                view.generation,
                &runner.task_names(),
                now,
            );
            let replace = (view.spec.concurrency_policy == ConcurrencyPolicy::Replace)
                .then_some("replaced by a manual run");
            start_run(runner, d, run, replace, now);
            return true;
        }
    }

    let behind = d
        .status
        .last_run
        .as_ref()
        .is_none_or(|r| r.generation < view.generation);
    if view.spec.schedule.is_none() && !view.spec.suspend && behind {
        let run = plan::new_run(
            generation_run_id(view.generation),
            RunTrigger::Generation,
            view.generation,
            &runner.task_names(),
            now,
        );
        start_run(runner, d, run, Some("the Pipeline's spec changed"), now);
        return true;
    }
    false
}

/// The cron schedule. Returns whether a run started.
fn scheduled(
    runner: &Runner<'_, '_>,
    schedule: &Schedule,
    d: &mut Decision,
    started: bool,
    now: DateTime<Utc>,
) -> bool {
    let view = runner.view;
    let state = ScheduleState {
        last_schedule_time: d.status.last_schedule_time,
        created_at: view.created_at,
        run_active: d
            .status
            .last_run
            .as_ref()
            .is_some_and(|r| r.phase == RunPhase::Running),
        suspended: view.spec.suspend,
    };
    let decision = schedule::decide(
        schedule,
        state,
        view.spec.concurrency_policy,
        view.spec
            .starting_deadline_seconds
            .map(|s| Duration::seconds(i64::from(s))),
        now,
    );
    let next = match decision {
        ScheduleDecision::Wait { next } => next,
        ScheduleDecision::Start { next, .. } | ScheduleDecision::Skip { next, .. } if started => {
            // One run per reconcile: look again right away for the due scheduled run.
            d.wake(Some(now));
            next
        }
        ScheduleDecision::Skip {
            scheduled_at,
            reason,
            next,
        } => {
            d.status.last_schedule_time = Some(scheduled_at);
            let why = match reason {
                SkipReason::ConcurrencyForbid => {
                    "the previous run is still running (concurrencyPolicy Forbid)"
                }
                SkipReason::MissedDeadline => "it was missed by more than startingDeadlineSeconds",
                SkipReason::Suspended => "the Pipeline is suspended",
            };
            d.events.push(EventNote::normal(
                "ScheduledRunSkipped",
                format!(
                    "run scheduled at {} skipped: {why}",
                    scheduled_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ));
            next
        }
        ScheduleDecision::Start {
            scheduled_at,
            replace,
            next,
        } => {
            d.status.last_schedule_time = Some(scheduled_at);
            let run = plan::new_run(
                scheduled_run_id(scheduled_at),
                RunTrigger::Schedule,
                view.generation,
                &runner.task_names(),
                now,
            );
            start_run(
                runner,
                d,
                run,
                replace.then_some("replaced by the next scheduled run"),
                now,
            );
            runner.advance(d, now);
            d.status.next_run_at = (!view.spec.suspend).then_some(next).flatten();
            d.wake(next);
            return true;
        }
    };
    d.status.next_run_at = (!view.spec.suspend).then_some(next).flatten();
    d.wake(next);
    false
}

/// Makes `run` the last run. A still-running previous run is cancelled (its Jobs deleted)
/// when `replace` gives a reason; otherwise (`concurrencyPolicy: Allow`) its running Jobs are
/// left to finish but no more of its tasks start, as status tracks one run in detail.
fn start_run(
    runner: &Runner<'_, '_>,
    d: &mut Decision,
    run: RunStatus,
    replace: Option<&str>,
    now: DateTime<Utc>,
) {
    if let Some(mut previous) = d.status.last_run.take() {
        if previous.phase == RunPhase::Running {
            let reason = replace
                .unwrap_or("superseded by a concurrent run (its running Jobs finish on their own)");
            d.transitions.extend(cancel_transitions(&previous, now));
            let running = plan::cancel_run(&mut previous, reason, now);
            if replace.is_some() {
                d.delete.extend(running);
            }
            d.events.push(EventNote::warning(
                "RunCancelled",
                format!("run {} cancelled: {reason}", previous.id),
            ));
            d.runs_finished.push(RunPhase::Cancelled);
        }
        d.status.history.insert(0, plan::summarize(&previous));
        d.status
            .history
            .truncate(runner.view.spec.history_limit as usize);
    }
    d.events.push(EventNote::normal(
        "RunStarted",
        format!(
            "run {} started ({:?}): {} tasks",
            run.id,
            run.trigger,
            run.tasks.len()
        ),
    ));
    d.runs_started.push(run.trigger);
    d.transitions.push(Transition::RunStarted {
        run: run.id.clone(),
        trigger: run.trigger,
        nominal_time: (run.trigger == RunTrigger::Schedule || run.retry_of.is_some())
            .then(|| logical_time(&run)),
        at: run.started_at,
    });
    d.status.last_run = Some(run);
}

/// Finished Jobs of runs older than the last and the one before it are deleted: the last two
/// runs' Jobs stay for their logs (until their TTL), older ones are history.
fn delete_old_jobs(
    view: &PipelineView<'_>,
    jobs: &BTreeMap<String, ObservedAttempt>,
    d: &mut Decision,
) {
    let keep: Vec<&str> = d
        .status
        .last_run
        .iter()
        .map(|r| r.id.as_str())
        .chain(d.status.history.first().map(|h| h.id.as_str()))
        .collect();
    let _ = view;
    for (name, attempt) in jobs {
        if attempt.facts.state.is_finished()
            && !keep.contains(&attempt.facts.run.as_str())
            && !d.delete.contains(name)
        {
            d.delete.push(name.clone());
        }
    }
}

/// Jobs whose pod results the decision needs: finished attempts that the status has not
/// folded yet (of the last run). Results of other Jobs are never fetched.
pub fn results_needed(status: &PipelineStatus, jobs: &[TaskJobFacts]) -> Vec<String> {
    let Some(run) = status.last_run.as_ref() else {
        return jobs
            .iter()
            .filter(|j| j.state.is_finished())
            .map(|j| j.name.clone())
            .collect();
    };
    jobs.iter()
        .filter(|j| j.state.is_finished())
        .filter(|j| {
            if j.run != run.id {
                // A newer run than status knows of (lost write): fetch, it may become current.
                return run.phase.is_finished();
            }
            run.tasks.iter().any(|t| {
                t.name == j.task
                    && !t.phase.is_finished()
                    && (j.attempt > t.attempts
                        || (j.attempt == t.attempts && t.phase == TaskPhase::Running))
            })
        })
        .map(|j| j.name.clone())
        .collect()
}

/// Renders the Job for one attempt the decision asked for.
pub fn render_job(
    view: &PipelineView<'_>,
    status: &PipelineStatus,
    data_sources: &DataSourceMap,
    create: &JobToCreate,
    settings: &PodSettings,
) -> Option<Job> {
    let run = status.last_run.as_ref().filter(|r| r.id == create.run_id)?;
    let task = view.spec.tasks.get(create.task)?;
    let time_zone = view.spec.time_zone.clone();
    let tz =
        tributary_core::schedule::parse_time_zone(time_zone.as_deref()).unwrap_or(chrono_tz::UTC);
    let logical = logical_time(run);
    let input = RunnerInput::Task(TaskInput {
        pipeline: view.name.to_string(),
        namespace: view.namespace.to_string(),
        run_id: template_run_id(run).to_string(),
        attempt: create.attempt,
        logical_time: logical,
        time_zone,
        task: task.clone(),
        data_sources: task
            .data_source_refs()
            .iter()
            .filter_map(|u| {
                data_sources
                    .get(u.name)
                    .map(|s| (u.name.to_string(), s.clone()))
            })
            .collect(),
        watermark: status.watermarks.get(&task.name).cloned(),
    });
    let context = TemplateContext::new(
        template_run_id(run),
        &logical.with_timezone(&tz),
        &task.name,
        view.name,
        view.namespace,
    );
    let container_args = task
        .container
        .as_ref()
        .map(|c| {
            c.args
                .iter()
                .map(|a| render(a, &context).unwrap_or_else(|_| a.clone()))
                .collect()
        })
        .unwrap_or_default();
    let policy = RetryPolicy::for_task(task, &view.spec.defaults);
    Some(jobs::task_job(
        &Owner {
            kind: "Pipeline",
            name: view.name,
            namespace: view.namespace,
            uid: view.uid,
        },
        &TaskJob {
            job_name: create.job_name.clone(),
            run_id: &run.id,
            attempt: create.attempt,
            task,
            timeout_seconds: policy.timeout_seconds,
            input: &input,
            overrides: view.spec.runner.as_ref(),
            container_args,
        },
        settings,
    ))
}

/// The DataSources a Pipeline names (to map DataSource changes to Pipelines).
pub fn referenced_data_sources(spec: &PipelineSpec) -> Vec<String> {
    let mut names: Vec<String> = spec
        .tasks
        .iter()
        .flat_map(|t| t.data_source_refs().into_iter().map(|u| u.name.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Name of a Pipeline for logs (`namespace/name`).
pub fn display_name(pipeline: &Pipeline) -> String {
    format!(
        "{}/{}",
        pipeline.namespace().unwrap_or_default(),
        pipeline.name_any()
    )
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

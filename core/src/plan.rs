//! One evaluation step of a run, free of side effects: fold the observed Jobs into the task
//! states, propagate skips below failures, and choose which tasks start now.
//!
//! The operator calls `step` on every reconcile with what it observed and performs the
//! returned starts; calling it again with the same observations changes nothing.

use chrono::{DateTime, Utc};

use crate::api::{
    MAX_MESSAGE_LEN, PipelinePhase, RetriedRun, RunPhase, RunStatus, RunSummary, RunTrigger,
    TaskLineage, TaskPhase, TaskStatus,
};
use crate::dag::Dag;
use crate::retry::{GiveUpReason, RetryDecision, RetryPolicy};

/// What the operator observed of the Job of a task's current attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum JobObservation {
    /// No Job (yet, or any more) for the current attempt.
    Missing,
    /// The Job exists and has not finished.
    Active,
    /// The Job completed.
    Succeeded {
        finished_at: DateTime<Utc>,
        message: Option<String>,
        lineage: Option<TaskLineage>,
    },
    /// The Job failed; `retryable` is false for errors another attempt cannot fix.
    Failed {
        finished_at: DateTime<Utc>,
        message: String,
        retryable: bool,
    },
}

/// Start (or make sure of) the Job for `attempt` of task `task`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub task: usize,
    pub attempt: u32,
    /// True when the Job was already started by an earlier step but is not observed (e.g. the
    /// cache lags, or a restart lost the create): creating it again must be idempotent.
    pub ensure_only: bool,
}

/// A transition worth an Event and a metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    Started {
        task: usize,
        attempt: u32,
    },
    Succeeded {
        task: usize,
    },
    Retrying {
        task: usize,
        attempt: u32,
        at: DateTime<Utc>,
    },
    Failed {
        task: usize,
    },
    Skipped {
        task: usize,
    },
}

/// The fixed inputs of a run.
#[derive(Clone, Copy, Debug)]
pub struct RunContext<'a> {
    pub dag: &'a Dag,
    /// Resolved retry policy per task index.
    pub policies: &'a [RetryPolicy],
    /// Tasks allowed to run at once.
    pub parallelism: u32,
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Task states after this step, by task index.
    pub tasks: Vec<TaskStatus>,
    /// Jobs to create.
    pub starts: Vec<Start>,
    /// Transitions that happened in this step.
    pub events: Vec<TaskEvent>,
    /// Earliest time a waiting retry becomes due (requeue then).
    pub wake_at: Option<DateTime<Utc>>,
    /// Phase of the run after this step.
    pub phase: RunPhase,
    /// `finished/total`.
    pub progress: String,
}

/// A fresh run with every task Pending.
pub fn new_run(
    id: String,
    trigger: RunTrigger,
    generation: i64,
    task_names: &[&str],
    now: DateTime<Utc>,
) -> RunStatus {
    RunStatus {
        id,
        trigger,
        generation,
        started_at: now,
        finished_at: None,
        phase: RunPhase::Running,
        progress: format!("0/{}", task_names.len()),
        tasks: task_names.iter().map(|name| pending(name)).collect(),
        retry_of: None,
    }
}

fn pending(name: &str) -> TaskStatus {
    TaskStatus {
        name: name.to_string(),
        phase: TaskPhase::Pending,
        attempts: 0,
        job: None,
        started_at: None,
        finished_at: None,
        next_attempt_at: None,
        message: None,
        lineage: None,
    }
}

/// A retry of `previous`: its succeeded tasks are kept as they were, the rest run again,
/// under the identity of the run first retried (`logical_time` is `previous`'s), so that
/// templates resolve as they did for the kept tasks.
pub fn retry_run(
    previous: &RunStatus,
    id: String,
    logical_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> RunStatus {
    let tasks: Vec<TaskStatus> = previous
        .tasks
        .iter()
        .map(|t| {
            if t.phase == TaskPhase::Succeeded {
                t.clone()
            } else {
                pending(&t.name)
            }
        })
        .collect();
    let done = tasks.iter().filter(|t| t.phase.is_finished()).count();
    RunStatus {
        id,
        trigger: RunTrigger::Retry,
        generation: previous.generation,
        started_at: now,
        finished_at: None,
        phase: RunPhase::Running,
        progress: format!("{done}/{}", tasks.len()),
        tasks,
        retry_of: Some(previous.retry_of.clone().unwrap_or_else(|| RetriedRun {
            id: previous.id.clone(),
            logical_time,
        })),
    }
}

/// Stops a run: unfinished tasks become Skipped with `reason`. Returns the Jobs still running,
/// which the operator deletes.
pub fn cancel_run(run: &mut RunStatus, reason: &str, now: DateTime<Utc>) -> Vec<String> {
    let mut running_jobs = Vec::new();
    for task in run.tasks.iter_mut().filter(|t| !t.phase.is_finished()) {
        if task.phase == TaskPhase::Running
            && let Some(job) = &task.job
        {
            running_jobs.push(job.clone());
        }
        task.phase = TaskPhase::Skipped;
        task.finished_at = Some(now);
        task.next_attempt_at = None;
        task.message = Some(truncate(format!("cancelled: {reason}")));
    }
    run.phase = RunPhase::Cancelled;
    run.finished_at = Some(now);
    running_jobs
}

/// Evaluates one step of a run. `jobs[i]` is the observation for the current attempt of task `i`.
pub fn step(
    context: RunContext<'_>,
    tasks: &[TaskStatus],
    jobs: &[JobObservation],
    job_name: impl Fn(usize, u32) -> String,
    now: DateTime<Utc>,
) -> Step {
    let dag = context.dag;
    let mut tasks = tasks.to_vec();
    let mut starts = Vec::new();
    let mut events = Vec::new();

    for (i, task) in tasks.iter_mut().enumerate() {
        if task.phase != TaskPhase::Running {
            continue;
        }
        match &jobs[i] {
            JobObservation::Active => {}
            JobObservation::Missing => starts.push(Start {
                task: i,
                attempt: task.attempts,
                ensure_only: true,
            }),
            JobObservation::Succeeded {
                finished_at,
                message,
                lineage,
            } => {
                task.phase = TaskPhase::Succeeded;
                task.finished_at = Some(*finished_at);
                task.message = message.clone().map(truncate);
                task.lineage = lineage.clone().map(Box::new);
                events.push(TaskEvent::Succeeded { task: i });
            }
            JobObservation::Failed {
                finished_at,
                message,
                retryable,
            } => match context.policies[i].after_failure(task.attempts, *retryable, *finished_at) {
                RetryDecision::RetryAt(at) => {
                    task.phase = TaskPhase::Retrying;
                    task.next_attempt_at = Some(at);
                    task.message = Some(truncate(format!(
                        "attempt {} failed: {message}",
                        task.attempts
                    )));
                    events.push(TaskEvent::Retrying {
                        task: i,
                        attempt: task.attempts + 1,
                        at,
                    });
                }
                RetryDecision::GiveUp { reason } => {
                    task.phase = TaskPhase::Failed;
                    task.finished_at = Some(*finished_at);
                    let why = match reason {
                        GiveUpReason::Permanent => "permanent error".to_string(),
                        GiveUpReason::Exhausted => format!("{} attempts", task.attempts),
                    };
                    task.message = Some(truncate(format!("failed ({why}): {message}")));
                    events.push(TaskEvent::Failed { task: i });
                }
            },
        }
    }

    // In topological order, so a skip reaches the whole chain below a failure in one pass.
    for &i in dag.topological_order() {
        if tasks[i].phase != TaskPhase::Pending {
            continue;
        }
        let blocker = dag
            .dependencies(i)
            .iter()
            .find(|&&d| matches!(tasks[d].phase, TaskPhase::Failed | TaskPhase::Skipped));
        if let Some(&blocker) = blocker {
            let verb = if tasks[blocker].phase == TaskPhase::Failed {
                "failed"
            } else {
                "was skipped"
            };
            let message = format!("skipped: dependency {:?} {verb}", tasks[blocker].name);
            let task = &mut tasks[i];
            task.phase = TaskPhase::Skipped;
            task.finished_at = Some(now);
            task.message = Some(message);
            events.push(TaskEvent::Skipped { task: i });
        }
    }

    let running = tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Running)
        .count();
    let mut free = (context.parallelism as usize).saturating_sub(running);
    for &i in dag.topological_order() {
        if free == 0 {
            break;
        }
        let task = &tasks[i];
        let ready = match task.phase {
            TaskPhase::Pending => dag
                .dependencies(i)
                .iter()
                .all(|&d| tasks[d].phase == TaskPhase::Succeeded),
            TaskPhase::Retrying => task.next_attempt_at.is_none_or(|at| at <= now),
            _ => false,
        };
        if !ready {
            continue;
        }
        let task = &mut tasks[i];
        task.attempts += 1;
        task.phase = TaskPhase::Running;
        task.started_at.get_or_insert(now);
        task.next_attempt_at = None;
        task.job = Some(job_name(i, task.attempts));
        starts.push(Start {
            task: i,
            attempt: task.attempts,
            ensure_only: false,
        });
        events.push(TaskEvent::Started {
            task: i,
            attempt: task.attempts,
        });
        free -= 1;
    }

    let wake_at = tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Retrying)
        .filter_map(|t| t.next_attempt_at)
        .min();
    let finished = tasks.iter().filter(|t| t.phase.is_finished()).count();
    let phase = if finished < tasks.len() {
        RunPhase::Running
    } else if tasks.iter().all(|t| t.phase == TaskPhase::Succeeded) {
        RunPhase::Succeeded
    } else {
        RunPhase::Failed
    };
    Step {
        progress: format!("{finished}/{}", tasks.len()),
        tasks,
        starts,
        events,
        wake_at,
        phase,
    }
}

/// Applies a step to the run it was computed from.
pub fn apply(run: &mut RunStatus, step: &Step, now: DateTime<Utc>) {
    run.tasks = step.tasks.clone();
    run.phase = step.phase;
    run.progress = step.progress.clone();
    if step.phase.is_finished() && run.finished_at.is_none() {
        run.finished_at = Some(now);
    }
}

/// The summary kept in history once a run is over.
pub fn summarize(run: &RunStatus) -> RunSummary {
    RunSummary {
        id: run.id.clone(),
        trigger: run.trigger,
        started_at: run.started_at,
        finished_at: run.finished_at,
        phase: run.phase,
        progress: run.progress.clone(),
        failed_tasks: run
            .tasks
            .iter()
            .filter(|t| t.phase == TaskPhase::Failed)
            .take(10)
            .map(|t| t.name.clone())
            .collect(),
    }
}

/// The Pipeline phase shown to users, from its last run.
pub fn pipeline_phase(last_run: Option<&RunStatus>) -> PipelinePhase {
    match last_run.map(|r| r.phase) {
        None => PipelinePhase::Pending,
        Some(RunPhase::Running) => PipelinePhase::Running,
        Some(RunPhase::Succeeded) => PipelinePhase::Succeeded,
        Some(RunPhase::Failed) | Some(RunPhase::Cancelled) => PipelinePhase::Failed,
    }
}

/// Cuts a message to the status limit on a character boundary.
pub fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_LEN {
        let mut cut = MAX_MESSAGE_LEN - 3;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

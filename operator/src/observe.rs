//! What a Job (and its pod's termination message) says about a task attempt or a connection
//! check, turned into the core's `JobObservation`.

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::JobStatus;
use k8s_openapi::api::core::v1::PodStatus;
use tributary_core::lineage::{Outcome, TaskResult, outcome_of_exit_code};
use tributary_core::naming::{LABEL_ATTEMPT, LABEL_RUN, LABEL_TASK};
use tributary_core::plan::{JobObservation, truncate};

use crate::cached::CachedJob;
use crate::jobs::CONTAINER;
use crate::time::to_chrono;

/// Where a Job stands, from its conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Active,
    Complete {
        at: DateTime<Utc>,
    },
    Failed {
        at: DateTime<Utc>,
        /// The Job condition's reason, e.g. `DeadlineExceeded` or `BackoffLimitExceeded`.
        reason: String,
        message: String,
    },
}

impl JobState {
    pub fn is_finished(&self) -> bool {
        !matches!(self, JobState::Active)
    }
}

/// The facts about one task Job the decisions need (labels and state), small enough to cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskJobFacts {
    pub name: String,
    pub run: String,
    pub task: String,
    pub attempt: u32,
    pub state: JobState,
}

/// The state of a Job from the `Complete`/`Failed` conditions of its status.
pub fn job_state_of(status: Option<&JobStatus>) -> JobState {
    let Some(status) = status else {
        return JobState::Active;
    };
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        let at = condition
            .last_transition_time
            .as_ref()
            .map(to_chrono)
            .or(status.completion_time.as_ref().map(to_chrono))
            .unwrap_or_default();
        match condition.type_.as_str() {
            "Complete" => return JobState::Complete { at },
            "Failed" => {
                return JobState::Failed {
                    at,
                    reason: condition.reason.clone().unwrap_or_default(),
                    // Only its first words reach status; a cached Job keeps no more.
                    message: condition
                        .message
                        .as_deref()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect(),
                };
            }
            _ => {}
        }
    }
    JobState::Active
}

/// Labels and state of a task Job; `None` for a Job without the task labels.
pub fn task_job_facts(job: &CachedJob) -> Option<TaskJobFacts> {
    Some(TaskJobFacts {
        name: job.metadata.name.clone()?,
        run: job.label(LABEL_RUN)?.to_string(),
        task: job.label(LABEL_TASK)?.to_string(),
        attempt: job.label(LABEL_ATTEMPT)?.parse().ok()?,
        state: job.state.clone(),
    })
}

/// What the runner container left behind when it terminated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodResult {
    /// The termination message (the runner's JSON result, or a log tail when it died first).
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    /// When the container terminated: of several pods of one Job, the latest counts.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The most recently finished of several pods' results.
pub fn latest(results: impl Iterator<Item = PodResult>) -> Option<PodResult> {
    results.max_by_key(|result| result.finished_at)
}

/// What the runner container of one pod left behind, if it terminated.
pub fn pod_result_of(status: &PodStatus) -> Option<PodResult> {
    let statuses = status.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == CONTAINER)?;
    let terminated = status.state.as_ref()?.terminated.as_ref()?;
    Some(PodResult {
        message: terminated.message.clone().filter(|m| !m.trim().is_empty()),
        exit_code: Some(terminated.exit_code),
        finished_at: terminated.finished_at.as_ref().map(to_chrono),
    })
}

/// The runner's result, when the termination message is one.
pub fn parse_result(result: Option<&PodResult>) -> Option<TaskResult> {
    serde_json::from_str(result?.message.as_deref()?).ok()
}

/// A termination message that is not a result (a log tail): only its first line is kept,
/// shortened, so a long stack of log output never lands in status.
fn first_line(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut line = line.trim().to_string();
    if line.len() > 200 {
        let mut cut = 200;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

/// The core's observation of an attempt from its Job state and the pod's result.
pub fn observation(
    state: &JobState,
    result: Option<&PodResult>,
    timeout_seconds: u32,
) -> (JobObservation, Option<TaskResult>) {
    let parsed = parse_result(result);
    let observation = match state {
        JobState::Active => JobObservation::Active,
        JobState::Complete { at } => match &parsed {
            Some(r) if r.outcome != Outcome::Succeeded => JobObservation::Failed {
                finished_at: *at,
                message: truncate(r.message.clone()),
                retryable: r.outcome == Outcome::RetryableFailure,
            },
            Some(r) => JobObservation::Succeeded {
                finished_at: *at,
                message: (!r.message.is_empty()).then(|| truncate(r.message.clone())),
                lineage: Some(r.to_lineage()),
            },
            None => JobObservation::Succeeded {
                finished_at: *at,
                message: None,
                lineage: None,
            },
        },
        JobState::Failed {
            at,
            reason,
            message,
        } => {
            if reason == "DeadlineExceeded" {
                JobObservation::Failed {
                    finished_at: *at,
                    message: format!("timed out after {timeout_seconds}s"),
                    retryable: true,
                }
            } else if let Some(r) = &parsed {
                JobObservation::Failed {
                    finished_at: *at,
                    message: truncate(r.message.clone()),
                    retryable: r.outcome != Outcome::PermanentFailure,
                }
            } else {
                let code = result.and_then(|r| r.exit_code);
                let text = result
                    .and_then(|r| r.message.as_deref())
                    .map(first_line)
                    .filter(|l| !l.is_empty());
                let message = match (code, text) {
                    (Some(code), Some(text)) => format!("exit code {code}: {text}"),
                    (Some(code), None) => format!("exit code {code}"),
                    (None, Some(text)) => text,
                    (None, None) if !message.is_empty() => format!("{reason}: {message}"),
                    (None, None) => format!("Job failed ({reason})"),
                };
                JobObservation::Failed {
                    finished_at: *at,
                    message: truncate(message),
                    retryable: code
                        .is_none_or(|c| outcome_of_exit_code(c) != Outcome::PermanentFailure),
                }
            }
        }
    };
    (observation, parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{a_result, at};

    #[test]
    fn a_completed_job_with_a_result_succeeds_with_its_lineage() {
        let result = PodResult {
            message: Some(a_result(Outcome::Succeeded).rows(42).json()),
            exit_code: Some(0),
            finished_at: None,
        };
        let (obs, parsed) = observation(
            &JobState::Complete {
                at: at("2026-01-01T00:00:00Z"),
            },
            Some(&result),
            60,
        );
        let JobObservation::Succeeded { lineage, .. } = obs else {
            panic!("{obs:?}")
        };
        assert_eq!(lineage.unwrap().rows, Some(42));
        assert!(parsed.is_some());
    }

    #[test]
    fn a_deadline_exceeded_job_is_a_retryable_timeout() {
        let (obs, _) = observation(
            &JobState::Failed {
                at: at("2026-01-01T00:00:00Z"),
                reason: "DeadlineExceeded".into(),
                message: "Job was active longer than specified deadline".into(),
            },
            None,
            30,
        );
        assert_eq!(
            obs,
            JobObservation::Failed {
                finished_at: at("2026-01-01T00:00:00Z"),
                message: "timed out after 30s".into(),
                retryable: true
            }
        );
    }

    #[test]
    fn a_permanent_failure_reported_by_the_runner_is_not_retried() {
        let result = PodResult {
            message: Some(
                a_result(Outcome::PermanentFailure)
                    .message("table missing")
                    .json(),
            ),
            exit_code: Some(65),
            finished_at: None,
        };
        let (obs, _) = observation(
            &JobState::Failed {
                at: at("2026-01-01T00:00:00Z"),
                reason: "BackoffLimitExceeded".into(),
                message: String::new(),
            },
            Some(&result),
            30,
        );
        assert!(
            matches!(obs, JobObservation::Failed { retryable: false, ref message, .. } if message == "table missing")
        );
    }

    #[test]
    fn without_a_result_the_exit_code_decides_and_only_the_first_log_line_is_kept() {
        let result = PodResult {
            message: Some("\npanic: boom\nline two\nline three".into()),
            exit_code: Some(65),
            finished_at: None,
        };
        let (obs, _) = observation(
            &JobState::Failed {
                at: at("2026-01-01T00:00:00Z"),
                reason: "BackoffLimitExceeded".into(),
                message: String::new(),
            },
            Some(&result),
            30,
        );
        assert!(
            matches!(obs, JobObservation::Failed { retryable: false, ref message, .. } if message == "exit code 65: panic: boom")
        );
    }
}

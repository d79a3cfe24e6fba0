//! Reconcile decisions for a DataSource, free of I/O: kind and endpoint, the connection-check
//! Job to run (on every spec change and every `checkIntervalSeconds`), `Ready` from its result,
//! and the bounded lineage of recent reads and writes by Pipeline runs.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use tributary_core::api::{
    DataSource, DataSourceSpec, DataSourceStatus, Direction, LineageEntry, MAX_DATASOURCE_LINEAGE,
    PipelineSpec, PipelineStatus, TaskPhase,
};
use tributary_core::contract::{CheckConnectionInput, RunnerInput};
use tributary_core::lineage::{Outcome, namespace as lineage_namespace};
use tributary_core::naming::check_job_name;
use tributary_core::validate::validate_data_source;

use crate::conditions::{self, Desired, READY, Status};
use crate::events::EventNote;
use crate::jobs::{self, Owner, PodSettings};
use crate::observe::{JobState, PodResult, parse_result};

/// Label on check Jobs: the DataSource generation checked.
pub const LABEL_GENERATION: &str = "tributary.dev/generation";
/// Label on check Jobs: the check round (periods of `checkIntervalSeconds` since the epoch).
pub const LABEL_ROUND: &str = "tributary.dev/check-round";
/// `Ready`'s reason while the current spec's connection check has not concluded.
const CHECKING: &str = "Checking";
/// Wall-clock limit of one connection check.
pub const CHECK_TIMEOUT_SECONDS: i64 = 120;

/// The parts of a DataSource the decisions read.
#[derive(Clone, Debug)]
pub struct DataSourceView<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub generation: i64,
    pub spec: &'a DataSourceSpec,
    pub status: &'a DataSourceStatus,
}

impl<'a> DataSourceView<'a> {
    pub fn of(ds: &'a DataSource, status: &'a DataSourceStatus) -> DataSourceView<'a> {
        DataSourceView {
            name: ds.metadata.name.as_deref().unwrap_or_default(),
            namespace: ds.metadata.namespace.as_deref().unwrap_or_default(),
            uid: ds.metadata.uid.as_deref().unwrap_or_default(),
            generation: ds.metadata.generation.unwrap_or(1),
            spec: &ds.spec,
            status,
        }
    }
}

/// One observed connection-check Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedCheck {
    pub name: String,
    pub generation: i64,
    pub round: u64,
    pub state: JobState,
    pub result: Option<PodResult>,
}

/// A Pipeline of the same namespace, as far as lineage needs it.
#[derive(Clone, Copy, Debug)]
pub struct PipelineLineage<'a> {
    pub name: &'a str,
    pub spec: &'a PipelineSpec,
    pub status: Option<&'a PipelineStatus>,
}

/// Everything a reconcile of one DataSource should do.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: DataSourceStatus,
    /// The check Job to create (none while one for this spec and round exists or finished).
    pub check: Option<String>,
    pub events: Vec<EventNote>,
    pub requeue_at: Option<DateTime<Utc>>,
}

/// The check round `now` falls in: a new round (and a new check) every `interval` seconds,
/// aligned to the epoch so a restarted operator computes the same round.
pub fn check_round(interval_seconds: u32, now: DateTime<Utc>) -> u64 {
    if interval_seconds == 0 {
        0
    } else {
        now.timestamp().max(0) as u64 / u64::from(interval_seconds)
    }
}

/// Decides one reconcile of a DataSource.
pub fn decide(
    view: &DataSourceView<'_>,
    checks: &[ObservedCheck],
    pipelines: &[PipelineLineage<'_>],
    now: DateTime<Utc>,
) -> Decision {
    let mut status = view.status.clone();
    let mut events = Vec::new();
    status.kind = view.spec.kind();
    status.endpoint = lineage_namespace(view.spec);
    status.lineage = merge_lineage(view, pipelines);
    let previous_ready = conditions::find(&view.status.conditions, READY).cloned();

    let problems = validate_data_source(view.spec);
    if !problems.is_empty() {
        let message = problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let reported = previous_ready
            .as_ref()
            .is_some_and(|c| c.reason == "InvalidSpec" && c.message == message)
            && view.status.observed_generation == Some(view.generation);
        if !reported {
            events.push(EventNote::warning("InvalidSpec", message.clone()));
        }
        status.observed_generation = Some(view.generation);
        status.conditions = conditions::settle(
            &view.status.conditions,
            vec![Desired::new(READY, Status::False, "InvalidSpec", message)],
            view.generation,
            now,
        );
        return Decision {
            status,
            check: None,
            events,
            requeue_at: None,
        };
    }

    let interval = view.spec.check_interval_seconds;
    let round = check_round(interval, now);
    let latest = checks
        .iter()
        .filter(|c| c.generation == view.generation)
        .filter_map(|c| match &c.state {
            JobState::Active => None,
            JobState::Complete { at } | JobState::Failed { at, .. } => Some((*at, c)),
        })
        .max_by_key(|(at, c)| (*at, c.round));
    let ready = match latest {
        Some((at, check)) => {
            status.last_checked_at = Some(at);
            check_condition(check)
        }
        None if view.status.observed_generation == Some(view.generation) => previous_ready
            .as_ref()
            .map(|c| {
                Desired::new(
                    READY,
                    parse_status(&c.status),
                    c.reason.clone(),
                    c.message.clone(),
                )
            })
            .unwrap_or_else(checking),
        None => checking(),
    };
    let changed = previous_ready
        .as_ref()
        .is_none_or(|c| c.status != status_str(ready.status) || c.reason != ready.reason);
    if changed {
        match ready.status {
            Status::True => events.push(EventNote::normal("Connected", ready.message.clone())),
            Status::False => events.push(EventNote::warning(
                "ConnectionFailed",
                ready.message.clone(),
            )),
            Status::Unknown => {}
        }
    }
    status.observed_generation = Some(view.generation);
    status.conditions =
        conditions::settle(&view.status.conditions, vec![ready], view.generation, now);

    let job = check_job_name(view.name, view.generation, round);
    let round_start =
        DateTime::from_timestamp((round * u64::from(interval)) as i64, 0).unwrap_or_default();
    // This spec and round need no check Job when theirs is there (running or finished; the
    // name says which spec and round), or when it is gone after its TTL and the status says it
    // concluded: `Ready` not `Checking` for this generation, checked since the round began
    // (with periodic checks off, one round spans all time).
    let job_there = checks.iter().any(|c| c.name == job);
    let concluded = view.status.observed_generation == Some(view.generation)
        && previous_ready
            .as_ref()
            .is_some_and(|c| c.reason != CHECKING)
        && status.last_checked_at.is_some_and(|t| t >= round_start);
    let check = (!job_there && !concluded).then_some(job);
    let requeue_at = (interval > 0).then(|| {
        DateTime::from_timestamp(((round + 1) * u64::from(interval)) as i64, 0).unwrap_or(now)
    });
    Decision {
        status,
        check,
        events,
        requeue_at,
    }
}

fn status_str(status: Status) -> &'static str {
    match status {
        Status::True => "True",
        Status::False => "False",
        Status::Unknown => "Unknown",
    }
}

fn parse_status(s: &str) -> Status {
    match s {
        "True" => Status::True,
        "False" => Status::False,
        _ => Status::Unknown,
    }
}

/// `Ready` while the current spec's connection check has not concluded.
fn checking() -> Desired {
    Desired::new(READY, Status::Unknown, CHECKING, "connection check running")
}

fn check_condition(check: &ObservedCheck) -> Desired {
    let result = parse_result(check.result.as_ref());
    match (&check.state, result) {
        (_, Some(r)) if r.outcome == Outcome::Succeeded => {
            Desired::new(READY, Status::True, "Connected", r.message)
        }
        (_, Some(r)) => Desired::new(READY, Status::False, "ConnectionFailed", r.message),
        (JobState::Complete { .. }, None) => {
            Desired::new(READY, Status::True, "Connected", "connection check passed")
        }
        (JobState::Failed { reason, .. }, None) if reason == "DeadlineExceeded" => Desired::new(
            READY,
            Status::False,
            "ConnectionFailed",
            format!("connection check timed out after {CHECK_TIMEOUT_SECONDS}s"),
        ),
        (
            JobState::Failed {
                reason, message, ..
            },
            None,
        ) => Desired::new(
            READY,
            Status::False,
            "ConnectionFailed",
            format!("connection check failed ({reason}) {message}")
                .trim()
                .to_string(),
        ),
        (JobState::Active, None) => checking(),
    }
}

/// Recent reads and writes of this DataSource by the last runs of the namespace's Pipelines,
/// merged into what status already lists, newest first, at most 20.
fn merge_lineage(
    view: &DataSourceView<'_>,
    pipelines: &[PipelineLineage<'_>],
) -> Vec<LineageEntry> {
    let Some(namespace) = lineage_namespace(view.spec) else {
        return view.status.lineage.clone();
    };
    let mut entries = view.status.lineage.clone();
    let key = |e: &LineageEntry| {
        (
            e.pipeline.clone(),
            e.run.clone(),
            e.task.clone(),
            e.direction == Direction::Read,
            e.dataset.clone(),
        )
    };
    let mut seen: BTreeSet<_> = entries.iter().map(key).collect();
    for pipeline in pipelines {
        let Some(run) = pipeline.status.and_then(|s| s.last_run.as_ref()) else {
            continue;
        };
        for task in &run.tasks {
            let (Some(lineage), Some(at)) = (&task.lineage, task.finished_at) else {
                continue;
            };
            if task.phase != TaskPhase::Succeeded {
                continue;
            }
            let names_this_source = pipeline
                .spec
                .tasks
                .iter()
                .find(|t| t.name == task.name)
                .is_some_and(|t| t.data_source_refs().iter().any(|u| u.name == view.name));
            if !names_this_source {
                continue;
            }
            for (direction, ids) in [
                (Direction::Read, &lineage.inputs),
                (Direction::Write, &lineage.outputs),
            ] {
                let single = ids.len() == 1;
                for id in ids.iter().filter(|id| id.namespace == namespace) {
                    let entry = LineageEntry {
                        pipeline: pipeline.name.to_string(),
                        run: run.id.clone(),
                        task: task.name.clone(),
                        direction,
                        dataset: id.name.clone(),
                        at,
                        rows: if single { lineage.rows } else { None },
                        bytes: if single { lineage.bytes } else { None },
                    };
                    if seen.insert(key(&entry)) {
                        entries.push(entry);
                    }
                }
            }
        }
    }
    entries.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.task.cmp(&b.task)));
    entries.truncate(MAX_DATASOURCE_LINEAGE);
    entries
}

/// Renders the connection-check Job.
pub fn render_check(
    view: &DataSourceView<'_>,
    job_name: &str,
    round: u64,
    settings: &PodSettings,
) -> Job {
    let input = RunnerInput::CheckConnection(CheckConnectionInput {
        name: view.name.to_string(),
        namespace: view.namespace.to_string(),
        spec: view.spec.clone(),
    });
    let mut job = jobs::check_job(
        &Owner {
            kind: "DataSource",
            name: view.name,
            namespace: view.namespace,
            uid: view.uid,
        },
        job_name,
        &input,
        CHECK_TIMEOUT_SECONDS,
        settings,
    );
    let labels = job.metadata.labels.get_or_insert_default();
    labels.insert(LABEL_GENERATION.into(), view.generation.to_string());
    labels.insert(LABEL_ROUND.into(), round.to_string());
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{a_data_source, a_pipeline, a_result, at};

    fn view<'a>(ds: &'a DataSource) -> DataSourceView<'a> {
        DataSourceView::of(ds, ds.status.as_ref().unwrap())
    }

    #[test]
    fn a_new_data_source_gets_its_kind_endpoint_and_a_connection_check() {
        let ds = a_data_source()
            .named("lake")
            .s3("raw")
            .generation(3)
            .build();
        let d = decide(&view(&ds), &[], &[], at("2026-01-01T00:00:10Z"));
        assert_eq!(d.status.kind, Some(tributary_core::api::SourceKind::S3));
        assert_eq!(d.status.endpoint.as_deref(), Some("s3://raw"));
        let round = check_round(300, at("2026-01-01T00:00:10Z"));
        assert_eq!(d.check, Some(check_job_name("lake", 3, round)));
        assert_eq!(d.status.conditions[0].status, "Unknown");
        assert_eq!(
            d.requeue_at,
            DateTime::from_timestamp(((round + 1) * 300) as i64, 0)
        );
    }

    #[test]
    fn a_passed_check_makes_it_ready_and_no_new_check_runs_in_the_same_round() {
        let ds = a_data_source().named("lake").s3("raw").build();
        let now = at("2026-01-01T00:00:10Z");
        let round = check_round(300, now);
        let check = ObservedCheck {
            name: check_job_name("lake", 1, round),
            generation: 1,
            round,
            state: JobState::Complete { at: now },
            result: Some(PodResult {
                message: Some(
                    a_result(Outcome::Succeeded)
                        .message("listed 3 objects")
                        .json(),
                ),
                exit_code: Some(0),
                finished_at: None,
            }),
        };
        let d = decide(&view(&ds), &[check], &[], now);
        let ready = &d.status.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Connected")
        );
        assert_eq!(ready.message, "listed 3 objects");
        assert_eq!(d.check, None);
        assert_eq!(d.events[0].reason, "Connected");
    }

    #[test]
    fn a_failed_check_makes_it_not_ready_with_the_runner_message() {
        let ds = a_data_source().named("lake").s3("raw").build();
        let now = at("2026-01-01T00:00:10Z");
        let check = ObservedCheck {
            name: "x".into(),
            generation: 1,
            round: check_round(300, now),
            state: JobState::Failed {
                at: now,
                reason: "BackoffLimitExceeded".into(),
                message: String::new(),
            },
            result: Some(PodResult {
                message: Some(
                    a_result(Outcome::RetryableFailure)
                        .message("access denied")
                        .json(),
                ),
                exit_code: Some(75),
                finished_at: None,
            }),
        };
        let d = decide(&view(&ds), &[check], &[], now);
        assert_eq!(d.status.conditions[0].status, "False");
        assert_eq!(d.status.conditions[0].message, "access denied");
        assert!(d.events[0].warning);
    }

    /// The check Job of DataSource `lake` for `generation` and `round`.
    fn a_check(
        generation: i64,
        round: u64,
        state: JobState,
        result: Option<PodResult>,
    ) -> ObservedCheck {
        ObservedCheck {
            name: check_job_name("lake", generation, round),
            generation,
            round,
            state,
            result,
        }
    }

    fn a_passed_check(generation: i64, round: u64, at: DateTime<Utc>) -> ObservedCheck {
        let result = PodResult {
            message: Some(a_result(Outcome::Succeeded).json()),
            exit_code: Some(0),
            finished_at: None,
        };
        a_check(generation, round, JobState::Complete { at }, Some(result))
    }

    #[test]
    fn with_periodic_checks_off_a_passed_check_is_not_run_again_once_its_job_is_gone() {
        let mut ds = a_data_source().named("lake").s3("raw").build();
        ds.spec.check_interval_seconds = 0;
        let now = at("2026-01-01T00:00:10Z");
        let passed = decide(&view(&ds), &[a_passed_check(1, 0, now)], &[], now);
        ds.status = Some(passed.status);
        // A day later (an operator restart, say), the check Job long gone after its TTL.
        let later = decide(&view(&ds), &[], &[], at("2026-01-02T00:00:10Z"));
        assert_eq!(later.check, None);
        assert_eq!(later.status.conditions[0].reason, "Connected");
        assert_eq!(later.requeue_at, None);
    }

    #[test]
    fn a_new_spec_whose_check_job_vanished_before_it_concluded_is_checked_again() {
        let mut ds = a_data_source().named("lake").s3("raw").build();
        let now = at("2026-01-01T00:00:10Z");
        let round = check_round(300, now);
        let passed = decide(&view(&ds), &[a_passed_check(1, round, now)], &[], now);
        ds.status = Some(passed.status);
        ds.metadata.generation = Some(2);
        let changed = decide(&view(&ds), &[], &[], now);
        assert_eq!(changed.check, Some(check_job_name("lake", 2, round)));
        ds.status = Some(changed.status);
        // Its Job deleted before it finished, in the same round as the old spec's check.
        let again = decide(&view(&ds), &[], &[], at("2026-01-01T00:00:20Z"));
        assert_eq!(again.check, Some(check_job_name("lake", 2, round)));
        assert_eq!(again.status.conditions[0].reason, "Checking");
    }

    #[test]
    fn a_check_job_already_running_is_not_asked_for_again() {
        let ds = a_data_source().named("lake").s3("raw").build();
        let now = at("2026-01-01T00:00:10Z");
        let round = check_round(300, now);
        let running = a_check(1, round, JobState::Active, None);
        let d = decide(&view(&ds), &[running], &[], now);
        assert_eq!(d.check, None);
        assert_eq!(d.status.conditions[0].reason, "Checking");
    }

    #[test]
    fn an_invalid_data_source_is_not_checked_and_says_why() {
        let ds = a_data_source().named("web").http("ftp://nope").build();
        let d = decide(&view(&ds), &[], &[], at("2026-01-01T00:00:10Z"));
        assert_eq!(d.check, None);
        assert_eq!(d.status.conditions[0].reason, "InvalidSpec");
        assert_eq!(d.events.len(), 1);
    }

    #[test]
    fn lineage_lists_recent_reads_and_writes_of_pipeline_runs_newest_first_and_bounded() {
        let ds = a_data_source().named("lake").s3("raw").build();
        let pipeline = a_pipeline().named("elt").copy_tasks(30, "lake").build();
        let mut status = PipelineStatus::default();
        let mut run = tributary_core::plan::new_run(
            "g1".into(),
            tributary_core::api::RunTrigger::Generation,
            1,
            &pipeline
                .spec
                .tasks
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            at("2026-01-01T00:00:00Z"),
        );
        for (i, task) in run.tasks.iter_mut().enumerate() {
            task.phase = TaskPhase::Succeeded;
            task.finished_at =
                Some(at("2026-01-01T00:00:00Z") + chrono::Duration::seconds(i as i64));
            task.lineage = Some(Box::new(tributary_core::api::TaskLineage {
                outputs: vec![tributary_core::api::DatasetId {
                    namespace: "s3://raw".into(),
                    name: format!("k/{i}"),
                }],
                rows: Some(i as u64),
                ..Default::default()
            }));
        }
        status.last_run = Some(run);
        let d = decide(
            &view(&ds),
            &[],
            &[PipelineLineage {
                name: "elt",
                spec: &pipeline.spec,
                status: Some(&status),
            }],
            at("2026-01-01T01:00:00Z"),
        );
        assert_eq!(d.status.lineage.len(), MAX_DATASOURCE_LINEAGE);
        assert_eq!(d.status.lineage[0].dataset, "k/29");
        assert_eq!(d.status.lineage[0].direction, Direction::Write);
        assert_eq!(d.status.lineage[0].rows, Some(29));
    }
}

//! Run execution decided by the pure core: readiness, parallelism, retries, skips, completion.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use tributary_core::api::{RunPhase, RunTrigger, TaskPhase, TaskStatus};
use tributary_core::dag::Dag;
use tributary_core::plan::{self, JobObservation, RunContext, Start, Step, TaskEvent};
use tributary_core::retry::RetryPolicy;

const POLICY: RetryPolicy = RetryPolicy {
    retries: 2,
    backoff_seconds: 10,
    max_backoff_seconds: 60,
    timeout_seconds: 60,
};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T02:00:00Z")
        .unwrap()
        .to_utc()
}

/// A run under test: a DAG, its policies, the current task states and a clock.
struct Fixture {
    dag: Dag,
    policies: Vec<RetryPolicy>,
    parallelism: u32,
    tasks: Vec<TaskStatus>,
    now: DateTime<Utc>,
}

impl Fixture {
    fn new(edges: &[(&str, &[&str])]) -> Fixture {
        let graph: Vec<(&str, Vec<&str>)> = edges.iter().map(|(n, d)| (*n, d.to_vec())).collect();
        let dag = Dag::new(&graph).unwrap();
        let names: Vec<&str> = edges.iter().map(|(n, _)| *n).collect();
        let run = plan::new_run("g1".into(), RunTrigger::Generation, 1, &names, t0());
        Fixture {
            policies: vec![POLICY; names.len()],
            parallelism: 10,
            tasks: run.tasks,
            now: t0(),
            dag,
        }
    }

    fn parallelism(mut self, parallelism: u32) -> Fixture {
        self.parallelism = parallelism;
        self
    }

    fn index(&self, name: &str) -> usize {
        self.dag.index(name).unwrap()
    }

    /// One step where the named tasks' Jobs report `observation` and every other running Job is active.
    fn step_with(&mut self, observed: &[(&str, JobObservation)]) -> Step {
        let jobs: Vec<JobObservation> = (0..self.tasks.len())
            .map(|i| {
                observed
                    .iter()
                    .find(|(name, _)| self.index(name) == i)
                    .map(|(_, o)| o.clone())
                    .unwrap_or(JobObservation::Active)
            })
            .collect();
        let context = RunContext {
            dag: &self.dag,
            policies: &self.policies,
            parallelism: self.parallelism,
        };
        let step = plan::step(
            context,
            &self.tasks,
            &jobs,
            |i, attempt| format!("job-{i}-{attempt}"),
            self.now,
        );
        self.tasks = step.tasks.clone();
        step
    }

    fn step(&mut self) -> Step {
        self.step_with(&[])
    }

    fn started(&self, step: &Step) -> Vec<String> {
        step.starts
            .iter()
            .filter(|s| !s.ensure_only)
            .map(|s| self.dag.name(s.task).to_string())
            .collect()
    }

    fn phase(&self, name: &str) -> TaskPhase {
        self.tasks[self.index(name)].phase
    }
}

fn succeeded(at: DateTime<Utc>) -> JobObservation {
    JobObservation::Succeeded {
        finished_at: at,
        message: None,
        lineage: None,
    }
}

fn failed(at: DateTime<Utc>, retryable: bool) -> JobObservation {
    JobObservation::Failed {
        finished_at: at,
        message: "connection refused".into(),
        retryable,
    }
}

const DIAMOND: &[(&str, &[&str])] = &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])];

#[test]
fn a_diamond_starts_its_root_then_both_branches_then_the_join() {
    let mut run = Fixture::new(DIAMOND);
    let first = run.step();
    assert_eq!(run.started(&first), vec!["a"]);
    let second = run.step_with(&[("a", succeeded(t0()))]);
    assert_eq!(run.started(&second), vec!["b", "c"]);
    let third = run.step_with(&[("b", succeeded(t0()))]);
    assert!(run.started(&third).is_empty(), "d must wait for c");
    let fourth = run.step_with(&[("c", succeeded(t0()))]);
    assert_eq!(run.started(&fourth), vec!["d"]);
    let last = run.step_with(&[("d", succeeded(t0()))]);
    assert_eq!(
        (last.phase, last.progress.as_str()),
        (RunPhase::Succeeded, "4/4")
    );
}

#[test]
fn stepping_again_with_the_same_observations_starts_nothing_new() {
    let mut run = Fixture::new(DIAMOND);
    run.step();
    let again = run.step();
    assert!(run.started(&again).is_empty());
    assert!(again.events.is_empty());
}

#[test]
fn parallelism_caps_the_tasks_running_at_once() {
    let mut run = Fixture::new(&[("a", &[]), ("b", &[]), ("c", &[])]).parallelism(2);
    let first = run.step();
    assert_eq!(first.starts.len(), 2);
    let finished = run.dag.name(first.starts[0].task).to_string();
    let second = run.step_with(&[(finished.as_str(), succeeded(t0()))]);
    assert_eq!(
        second.starts.len(),
        1,
        "a slot freed by a finished task is reused at once"
    );
}

#[test]
fn a_failed_attempt_is_retried_after_its_backoff_with_a_new_job() {
    let mut run = Fixture::new(&[("a", &[])]);
    run.step();
    let failed_step = run.step_with(&[("a", failed(t0(), true))]);
    assert_eq!(run.phase("a"), TaskPhase::Retrying);
    assert_eq!(failed_step.wake_at, Some(t0() + Duration::seconds(10)));
    assert!(failed_step.events.contains(&TaskEvent::Retrying {
        task: 0,
        attempt: 2,
        at: t0() + Duration::seconds(10)
    }));
    run.now = t0() + Duration::seconds(9);
    assert!(
        run.step().starts.is_empty(),
        "not before the backoff has passed"
    );
    run.now = t0() + Duration::seconds(10);
    let retry = run.step();
    assert_eq!(
        retry.starts,
        vec![Start {
            task: 0,
            attempt: 2,
            ensure_only: false
        }]
    );
    assert_eq!(run.tasks[0].job.as_deref(), Some("job-0-2"));
}

#[test]
fn a_task_fails_after_its_retries_and_its_downstream_is_skipped() {
    let mut run = Fixture::new(DIAMOND);
    run.step();
    run.step_with(&[("a", succeeded(t0()))]);
    for attempt in 1..=3 {
        run.now = t0() + Duration::minutes(attempt);
        run.step_with(&[("b", failed(run.now, true))]);
        run.now += Duration::minutes(5);
        run.step_with(&[("c", succeeded(t0()))]);
    }
    assert_eq!(run.phase("b"), TaskPhase::Failed);
    assert_eq!(run.tasks[run.index("b")].attempts, 3);
    assert_eq!(run.phase("d"), TaskPhase::Skipped);
    assert!(
        run.tasks[run.index("d")]
            .message
            .as_deref()
            .unwrap()
            .contains("dependency \"b\" failed")
    );
    let last = run.step();
    assert_eq!(last.phase, RunPhase::Failed);
    assert_eq!(last.progress, "4/4");
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let mut run = Fixture::new(&[("a", &[]), ("b", &["a"])]);
    run.step();
    let step = run.step_with(&[("a", failed(t0(), false))]);
    assert_eq!(run.phase("a"), TaskPhase::Failed);
    assert!(
        run.tasks[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("failed (permanent error)")
    );
    assert_eq!(run.phase("b"), TaskPhase::Skipped);
    assert_eq!(step.phase, RunPhase::Failed);
}

#[test]
fn a_running_task_whose_job_is_not_observed_is_ensured_not_restarted() {
    let mut run = Fixture::new(&[("a", &[])]);
    run.step();
    let step = run.step_with(&[("a", JobObservation::Missing)]);
    assert_eq!(
        step.starts,
        vec![Start {
            task: 0,
            attempt: 1,
            ensure_only: true
        }]
    );
    assert_eq!(run.tasks[0].attempts, 1);
}

#[test]
fn a_retry_run_keeps_succeeded_tasks_and_reruns_failed_and_skipped_ones() {
    let mut run = Fixture::new(DIAMOND);
    run.policies = vec![
        RetryPolicy {
            retries: 0,
            ..POLICY
        };
        4
    ];
    run.step();
    run.step_with(&[("a", succeeded(t0()))]);
    run.step_with(&[("b", failed(t0(), true)), ("c", succeeded(t0()))]);
    let mut previous = plan::new_run(
        "g1".into(),
        RunTrigger::Generation,
        1,
        &["a", "b", "c", "d"],
        t0(),
    );
    previous.tasks = run.tasks.clone();
    let retried = plan::retry_run(&previous, "r1".into(), t0(), t0());
    let phases: Vec<TaskPhase> = retried.tasks.iter().map(|t| t.phase).collect();
    assert_eq!(
        phases,
        vec![
            TaskPhase::Succeeded,
            TaskPhase::Pending,
            TaskPhase::Succeeded,
            TaskPhase::Pending
        ]
    );
    assert_eq!(retried.progress, "2/4");
    // Templates of the re-run tasks resolve as they did for the kept ones.
    let identity = retried.retry_of.clone().unwrap();
    assert_eq!((identity.id.as_str(), identity.logical_time), ("g1", t0()));
    // A retry of the retry still borrows the first run's identity.
    let again = plan::retry_run(&retried, "r2".into(), t0(), t0());
    assert_eq!(again.retry_of.unwrap().id, "g1");
    run.tasks = retried.tasks;
    let step = run.step();
    assert_eq!(run.started(&step), vec!["b"]);
}

#[test]
fn cancelling_a_run_skips_unfinished_tasks_and_returns_running_jobs() {
    let mut run = Fixture::new(DIAMOND);
    run.step();
    let mut status = plan::new_run(
        "g1".into(),
        RunTrigger::Generation,
        1,
        &["a", "b", "c", "d"],
        t0(),
    );
    status.tasks = run.tasks.clone();
    let jobs = plan::cancel_run(&mut status, "replaced by run s1", t0());
    assert_eq!(jobs, vec!["job-0-1".to_string()]);
    assert_eq!(status.phase, RunPhase::Cancelled);
    assert!(status.tasks.iter().all(|t| t.phase == TaskPhase::Skipped));
}

/// Random DAGs (edges only to earlier tasks, so always acyclic) and random Job outcomes.
fn dag_and_outcomes() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<Vec<bool>>, u32)> {
    (1usize..20).prop_flat_map(|n| {
        let deps = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    prop::collection::btree_set(0..i, 0..3)
                        .prop_map(|s| s.into_iter().collect())
                        .boxed()
                }
            })
            .collect::<Vec<_>>();
        let outcomes = prop::collection::vec(prop::collection::vec(any::<bool>(), 3), n);
        (deps, outcomes, 1u32..5)
    })
}

proptest! {
    #[test]
    fn readiness_never_starts_a_task_before_its_dependencies_succeeded_and_every_run_completes(
        (deps, outcomes, parallelism) in dag_and_outcomes()
    ) {
        let names: Vec<String> = (0..deps.len()).map(|i| format!("t{i}")).collect();
        let edges: Vec<(&str, Vec<&str>)> = deps.iter().enumerate()
            .map(|(i, d)| (names[i].as_str(), d.iter().map(|&j| names[j].as_str()).collect()))
            .collect();
        let dag = Dag::new(&edges).unwrap();
        let policies = vec![POLICY; deps.len()];
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut tasks = plan::new_run("g1".into(), RunTrigger::Generation, 1, &name_refs, t0()).tasks;
        let mut now = t0();
        let mut jobs = vec![JobObservation::Missing; deps.len()];
        for _round in 0..500 {
            let context = RunContext { dag: &dag, policies: &policies, parallelism };
            let step = plan::step(context, &tasks, &jobs, |i, a| format!("{i}-{a}"), now);
            let running = step.tasks.iter().filter(|t| t.phase == TaskPhase::Running).count();
            prop_assert!(running <= parallelism as usize);
            for start in step.starts.iter().filter(|s| !s.ensure_only) {
                for &d in dag.dependencies(start.task) {
                    prop_assert_eq!(step.tasks[d].phase, TaskPhase::Succeeded);
                }
            }
            for (i, task) in step.tasks.iter().enumerate() {
                if task.phase == TaskPhase::Skipped {
                    prop_assert_eq!(task.attempts, 0, "a skipped task never ran");
                    prop_assert!(dag.dependencies(i).iter().any(|&d| matches!(step.tasks[d].phase, TaskPhase::Failed | TaskPhase::Skipped)));
                }
            }
            if step.phase != RunPhase::Running {
                prop_assert!(step.tasks.iter().all(|t| t.phase.is_finished()));
                let expect = if step.tasks.iter().all(|t| t.phase == TaskPhase::Succeeded) { RunPhase::Succeeded } else { RunPhase::Failed };
                prop_assert_eq!(step.phase, expect);
                return Ok(());
            }
            tasks = step.tasks;
            // The "cluster": every running Job finishes with its scripted outcome for this attempt.
            jobs = tasks.iter().enumerate().map(|(i, t)| match t.phase {
                TaskPhase::Running => {
                    let ok = outcomes[i][(t.attempts as usize - 1).min(2)];
                    if ok { succeeded(now) } else { failed(now, true) }
                }
                _ => JobObservation::Missing,
            }).collect();
            now += Duration::minutes(2);
        }
        prop_assert!(false, "the run did not complete in 500 steps");
    }
}

//! Unit tests of the Pipeline decisions, one behaviour per test.

use super::*;
use crate::fixtures::*;
use tributary_core::api::{PipelineStatus, RunPhase, TaskPhase};
use tributary_core::lineage::Outcome;

fn decide_for(
    pipeline: &Pipeline,
    jobs: &BTreeMap<String, ObservedAttempt>,
    now: &str,
) -> Decision {
    let status = pipeline.status.clone().unwrap_or_default();
    decide(
        &PipelineView::of(pipeline, &status),
        &the_warehouse_and_the_lake(),
        jobs,
        at(now),
    )
}

fn created(d: &Decision) -> Vec<&str> {
    d.create
        .iter()
        .filter(|c| !c.ensure_only)
        .map(|c| c.job_name.as_str())
        .collect()
}

fn phases(d: &Decision) -> Vec<(String, TaskPhase)> {
    d.status
        .last_run
        .as_ref()
        .unwrap()
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.phase))
        .collect()
}

fn phase_of(d: &Decision, task: &str) -> TaskPhase {
    phases(d).into_iter().find(|(n, _)| n == task).unwrap().1
}

fn after(d: &Decision) -> PipelineStatus {
    d.status.clone()
}

#[test]
fn an_unscheduled_pipeline_starts_one_run_per_generation_with_its_root_tasks() {
    let p = a_pipeline().diamond().generation(3).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:05Z");
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.id, "g3");
    assert_eq!(run.trigger, RunTrigger::Generation);
    assert_eq!(created(&d), vec!["retail-g3-a-1"]);
    assert_eq!(
        d.status.phase,
        Some(tributary_core::api::PipelinePhase::Running)
    );
    assert_eq!(d.status.observed_generation, Some(3));
    assert!(d.events.iter().any(|e| e.reason == "RunStarted"));

    // The same generation again: the run goes on, nothing new starts.
    let again = a_pipeline()
        .diamond()
        .generation(3)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs().running("g3", "a", 1).build();
    let d2 = decide_for(&again, &jobs, "2026-01-01T00:00:06Z");
    assert!(d2.create.is_empty());
    assert_eq!(d2.status.last_run.as_ref().unwrap().id, "g3");
    assert!(d2.events.is_empty());
}

#[test]
fn tasks_started_are_handed_on_for_announcement_with_their_jobs_and_not_as_events_of_their_own() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:05Z");
    let started = |d: &Decision| -> Vec<(String, u32, String)> {
        d.tasks_started
            .iter()
            .map(|s| (s.task.clone(), s.attempt, s.job.clone()))
            .collect()
    };
    assert_eq!(started(&d), [("a".into(), 1, "retail-g1-a-1".into())]);
    assert_eq!(d.tasks_started[0].at, at("2026-01-01T00:00:05Z"));
    assert!(d.events.iter().all(|e| e.reason != "TaskStarted"));

    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs().succeeded("g1", "a", 1, "2026-01-01T00:00:10Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:11Z");
    assert_eq!(
        started(&d),
        [
            ("b".into(), 1, "retail-g1-b-1".into()),
            ("c".into(), 1, "retail-g1-c-1".into())
        ]
    );
}

#[test]
fn a_dependent_task_starts_as_soon_as_its_last_dependency_succeeds() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:05Z");
    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs().succeeded("g1", "a", 1, "2026-01-01T00:00:10Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:11Z");
    assert_eq!(created(&d), vec!["retail-g1-b-1", "retail-g1-c-1"]);
    assert_eq!(d.create[0].dependency_jobs, vec!["retail-g1-a-1"]);

    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:10Z")
        .succeeded("g1", "b", 1, "2026-01-01T00:00:12Z")
        .running("g1", "c", 1);
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:13Z");
    assert!(created(&d).is_empty(), "d waits for c");
    assert_eq!(d.status.last_run.as_ref().unwrap().progress, "2/4");

    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:10Z")
        .succeeded("g1", "b", 1, "2026-01-01T00:00:12Z")
        .succeeded("g1", "c", 1, "2026-01-01T00:00:14Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:15Z");
    assert_eq!(created(&d), vec!["retail-g1-d-1"]);

    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:10Z")
        .succeeded("g1", "b", 1, "2026-01-01T00:00:12Z")
        .succeeded("g1", "c", 1, "2026-01-01T00:00:14Z")
        .succeeded_with(
            "g1",
            "d",
            1,
            "2026-01-01T00:00:16Z",
            a_result(Outcome::Succeeded).rows(7).json(),
        );
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:17Z");
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.phase, RunPhase::Succeeded);
    assert_eq!(run.progress, "4/4");
    assert_eq!(run.tasks[3].lineage.as_ref().unwrap().rows, Some(7));
    assert_eq!(d.runs_finished, vec![RunPhase::Succeeded]);
    let succeeded = conditions::find(&d.status.conditions, SUCCEEDED).unwrap();
    assert_eq!(succeeded.status, "True");
    let ready = conditions::find(&d.status.conditions, READY).unwrap();
    assert_eq!(ready.status, "True");
}

#[test]
fn a_failed_task_is_retried_with_backoff_then_fails_and_its_dependents_are_skipped() {
    let p = a_pipeline().diamond().retries(1).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline()
        .diamond()
        .retries(1)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs().failed("g1", "a", 1, "2026-01-01T00:00:10Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:11Z");
    assert_eq!(phase_of(&d, "a"), TaskPhase::Retrying);
    assert!(d.create.is_empty(), "backoff of 10s has not passed");
    assert_eq!(d.requeue_at, Some(at("2026-01-01T00:00:20Z")));
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == "TaskRetrying" && e.warning)
    );

    let p = a_pipeline()
        .diamond()
        .retries(1)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs().failed("g1", "a", 1, "2026-01-01T00:00:10Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:20Z");
    assert_eq!(created(&d), vec!["retail-g1-a-2"]);

    let p = a_pipeline()
        .diamond()
        .retries(1)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs()
        .failed("g1", "a", 1, "2026-01-01T00:00:10Z")
        .failed("g1", "a", 2, "2026-01-01T00:00:30Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:31Z");
    assert_eq!(
        phases(&d).into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
        vec![
            TaskPhase::Failed,
            TaskPhase::Skipped,
            TaskPhase::Skipped,
            TaskPhase::Skipped
        ]
    );
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.phase, RunPhase::Failed);
    assert!(
        run.tasks[0]
            .message
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );
    assert!(d.events.iter().any(|e| e.reason == "TaskFailed"));
    assert!(d.events.iter().any(|e| e.reason == "RunFailed"));
    assert_eq!(
        conditions::find(&d.status.conditions, READY)
            .unwrap()
            .status,
        "False"
    );
}

#[test]
fn an_invalid_pipeline_gets_a_condition_and_an_event_listing_every_problem_and_no_jobs() {
    let p = a_pipeline()
        .task(json_task("x", &["nope"], "warehouse"))
        .task(json_task("x", &[], "nowhere"))
        .schedule("61 * * * *")
        .build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    assert!(d.create.is_empty());
    assert_eq!(
        d.status.phase,
        Some(tributary_core::api::PipelinePhase::Invalid)
    );
    let valid = conditions::find(&d.status.conditions, VALID).unwrap();
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "InvalidSpec")
    );
    for needle in [
        "spec.schedule",
        "dependsOn[0]",
        "duplicate task name",
        "nowhere",
    ] {
        assert!(
            valid.message.contains(needle),
            "{needle} missing from {}",
            valid.message
        );
    }
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].note, valid.message);

    // Reported once: the same problems again publish no second Event.
    let again = a_pipeline()
        .task(json_task("x", &["nope"], "warehouse"))
        .task(json_task("x", &[], "nowhere"))
        .schedule("61 * * * *")
        .with_status(after(&d))
        .build();
    let d2 = decide_for(&again, &BTreeMap::new(), "2026-01-01T00:00:01Z");
    assert!(d2.events.is_empty());
}

fn json_task(name: &str, deps: &[&str], source: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "dependsOn": deps, "sql": {"dataSource": source, "statements": ["select 1"]}})
}

#[test]
fn a_pipeline_naming_only_missing_data_sources_says_so() {
    let p = a_pipeline().task(json_task("x", &[], "later")).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let valid = conditions::find(&d.status.conditions, VALID).unwrap();
    assert_eq!(valid.reason, "MissingDataSource");
}

#[test]
fn a_manual_run_request_starts_one_run_and_is_remembered() {
    let done = a_pipeline().chain(1).build();
    let d = decide_for(&done, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline().chain(1).with_status(after(&d)).build();
    let d = decide_for(
        &p,
        &observed_jobs()
            .succeeded("g1", "t0", 1, "2026-01-01T00:00:02Z")
            .build(),
        "2026-01-01T00:00:03Z",
    );
    assert_eq!(
        d.status.last_run.as_ref().unwrap().phase,
        RunPhase::Succeeded
    );

    let p = a_pipeline()
        .chain(1)
        .annotated("tributary.dev/run", "now-1")
        .with_status(after(&d))
        .build();
    let d = decide_for(
        &p,
        &observed_jobs()
            .succeeded("g1", "t0", 1, "2026-01-01T00:00:02Z")
            .build(),
        "2026-01-01T00:01:00Z",
    );
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.id, manual_run_id("now-1"));
    assert_eq!(run.trigger, RunTrigger::Manual);
    assert_eq!(d.status.handled_run_request.as_deref(), Some("now-1"));
    assert_eq!(d.status.history[0].id, "g1");
    assert_eq!(
        created(&d),
        vec![format!("retail-{}-t0-1", run.id).as_str()]
    );

    let p = a_pipeline()
        .chain(1)
        .annotated("tributary.dev/run", "now-1")
        .with_status(after(&d))
        .build();
    let d2 = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:01:01Z");
    assert_eq!(
        d2.status.last_run.as_ref().unwrap().id,
        run.id,
        "the same token never starts a second run"
    );
}

#[test]
fn a_manual_run_request_waits_for_the_active_run_under_forbid() {
    let p = a_pipeline().chain(1).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline()
        .chain(1)
        .annotated("tributary.dev/run", "x")
        .with_status(after(&d))
        .build();
    let d = decide_for(
        &p,
        &observed_jobs().running("g1", "t0", 1).build(),
        "2026-01-01T00:00:01Z",
    );
    assert_eq!(d.status.last_run.as_ref().unwrap().id, "g1");
    assert_eq!(d.status.handled_run_request, None);
}

#[test]
fn a_retry_request_reruns_only_the_failed_and_skipped_tasks_of_the_last_run() {
    let p = a_pipeline().diamond().retries(0).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline()
        .diamond()
        .retries(0)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs().succeeded("g1", "a", 1, "2026-01-01T00:00:01Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:02Z");
    let p = a_pipeline()
        .diamond()
        .retries(0)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:01Z")
        .succeeded("g1", "b", 1, "2026-01-01T00:00:03Z")
        .failed("g1", "c", 1, "2026-01-01T00:00:03Z")
        .build();
    let d = decide_for(&p, &jobs, "2026-01-01T00:00:04Z");
    assert_eq!(d.status.last_run.as_ref().unwrap().phase, RunPhase::Failed);

    let p = a_pipeline()
        .diamond()
        .retries(0)
        .annotated("tributary.dev/retry", "fix-1")
        .with_status(after(&d))
        .build();
    let d = decide_for(&p, &jobs, "2026-01-01T00:05:00Z");
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.trigger, RunTrigger::Retry);
    assert_eq!(run.id, retry_run_id("g1", "fix-1"));
    assert_eq!(
        phases(&d).into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
        vec![
            TaskPhase::Succeeded,
            TaskPhase::Succeeded,
            TaskPhase::Running,
            TaskPhase::Pending
        ]
    );
    assert_eq!(created(&d), vec![format!("retail-{}-c-1", run.id).as_str()]);
    assert_eq!(d.status.handled_retry_request.as_deref(), Some("fix-1"));
    assert_eq!(d.status.history[0].phase, RunPhase::Failed);

    // The re-run task renders its templates as the failed run's tasks did: `{{ run.id }}`
    // is g1 and the logical time g1's start, so it finds the objects a and b wrote.
    let status = p.status.clone().unwrap();
    let job = render_job(
        &PipelineView::of(&p, &status),
        &d.status,
        &the_warehouse_and_the_lake(),
        &d.create[0],
        &PodSettings::default(),
    )
    .unwrap();
    let env = job.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let input: serde_json::Value = serde_json::from_str(env[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(input["runId"], "g1");
    assert_eq!(input["logicalTime"], "2026-01-01T00:00:00Z");
    assert_eq!(logical_time(run), at("2026-01-01T00:00:00Z"));
}

#[test]
fn a_scheduled_pipeline_waits_for_its_next_fire_time_and_requeues_then() {
    let p = a_pipeline().diamond().schedule("*/5 * * * *").build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:01:00Z");
    assert!(d.status.last_run.is_none());
    assert!(d.create.is_empty());
    assert_eq!(d.status.next_run_at, Some(at("2026-01-01T00:05:00Z")));
    assert_eq!(d.requeue_at, Some(at("2026-01-01T00:05:00Z")));
    assert_eq!(
        d.status.phase,
        Some(tributary_core::api::PipelinePhase::Pending)
    );
}

#[test]
fn a_due_scheduled_run_starts_with_an_id_from_its_fire_time() {
    let p = a_pipeline().diamond().schedule("*/5 * * * *").build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:05:02Z");
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.id, "s202601010005");
    assert_eq!(
        d.status.last_schedule_time,
        Some(at("2026-01-01T00:05:00Z"))
    );
    assert_eq!(created(&d), vec!["retail-s202601010005-a-1"]);
    assert_eq!(d.status.next_run_at, Some(at("2026-01-01T00:10:00Z")));
    assert_eq!(logical_time(run), at("2026-01-01T00:05:00Z"));
}

#[test]
fn jobs_newer_than_the_status_are_adopted_not_duplicated() {
    // The status write after creating b-1 and c-1 was lost: status still says only a ran.
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:01Z")
        .running("g1", "b", 1)
        .failed("g1", "c", 1, "2026-01-01T00:00:02Z")
        .running("g1", "c", 2);
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:30Z");
    assert!(created(&d).is_empty(), "{:?}", d.create);
    let run = d.status.last_run.as_ref().unwrap();
    assert_eq!(run.tasks[2].attempts, 2);
    assert_eq!(run.tasks[2].job.as_deref(), Some("retail-g1-c-2"));
    assert_eq!(phase_of(&d, "b"), TaskPhase::Running);
}

#[test]
fn a_running_task_whose_job_is_not_seen_yet_is_ensured_idempotently() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:01Z");
    assert_eq!(d.create.len(), 1);
    assert!(d.create[0].ensure_only);
    assert_eq!(d.create[0].job_name, "retail-g1-a-1");
    assert!(d.events.is_empty());
}

/// The decision when generation 2 arrives while run g1's first task is running.
fn a_new_generation_while_g1_runs() -> Decision {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline()
        .diamond()
        .generation(2)
        .with_status(after(&d))
        .build();
    decide_for(
        &p,
        &observed_jobs().running("g1", "a", 1).build(),
        "2026-01-01T00:00:10Z",
    )
}

#[test]
fn a_new_generation_cancels_the_running_run_and_deletes_its_jobs() {
    let d = a_new_generation_while_g1_runs();
    assert_eq!(d.status.last_run.as_ref().unwrap().id, "g2");
    assert_eq!(d.delete, vec!["retail-g1-a-1"]);
    assert_eq!(d.status.history[0].phase, RunPhase::Cancelled);
    assert_eq!(created(&d), vec!["retail-g2-a-1"]);
}

#[test]
fn an_incremental_export_carries_its_watermark_to_the_next_run() {
    let export = serde_json::json!({"name": "export", "export": {
        "from": {"dataSource": "mongo", "collection": "tx"},
        "to": {"dataSource": "lake", "key": "tx/{{ run.id }}.jsonl"},
        "incremental": {"field": "_id"}}});
    let mut sources = the_warehouse_and_the_lake();
    sources.insert(
        "mongo".into(),
        serde_json::from_value(serde_json::json!({"mongodb": {"uri": "mongodb://127.0.0.1:27117/", "database": "retail"}})).unwrap(),
    );
    let p = a_pipeline().task(export.clone()).build();
    let status = PipelineStatus::default();
    let d = decide(
        &PipelineView::of(&p, &status),
        &sources,
        &BTreeMap::new(),
        at("2026-01-01T00:00:00Z"),
    );
    let p = a_pipeline()
        .task(export.clone())
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs()
        .succeeded_with(
            "g1",
            "export",
            1,
            "2026-01-01T00:00:05Z",
            a_result(Outcome::Succeeded)
                .watermark("{\"$oid\":\"abc\"}")
                .json(),
        )
        .build();
    let status = p.status.clone().unwrap();
    let d = decide(
        &PipelineView::of(&p, &status),
        &sources,
        &jobs,
        at("2026-01-01T00:00:06Z"),
    );
    assert_eq!(
        d.status.watermarks.get("export").map(String::as_str),
        Some("{\"$oid\":\"abc\"}")
    );

    // The next run's Job receives it.
    let p = a_pipeline()
        .task(export)
        .generation(2)
        .with_status(after(&d))
        .build();
    let status = p.status.clone().unwrap();
    let view = PipelineView::of(&p, &status);
    let d = decide(&view, &sources, &jobs, at("2026-01-01T00:01:00Z"));
    let job = render_job(
        &view,
        &d.status,
        &sources,
        &d.create[0],
        &PodSettings::default(),
    )
    .unwrap();
    let env = job.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    assert!(
        env[0]
            .value
            .as_deref()
            .unwrap()
            .contains("\"watermark\":\"{\\\"$oid\\\":\\\"abc\\\"}\"")
    );
}

#[test]
fn finished_jobs_of_runs_before_the_previous_one_are_deleted() {
    let mut status = a_big_status(1, 1);
    status.last_run.as_mut().unwrap().id = "m3".into();
    status.history = vec![tributary_core::plan::summarize(
        status.last_run.as_ref().unwrap(),
    )];
    status.history[0].id = "m2".into();
    let p = a_pipeline().chain(1).with_status(status).build();
    let jobs = BTreeMap::from_iter([("m1", "t0"), ("m2", "t0"), ("m3", "t0")].map(
        |(run, task)| {
            let name = job_name("retail", run, task, 1);
            (
                name.clone(),
                ObservedAttempt {
                    facts: crate::observe::TaskJobFacts {
                        name,
                        run: run.into(),
                        task: task.into(),
                        attempt: 1,
                        state: crate::observe::JobState::Complete {
                            at: at("2026-01-01T00:00:00Z"),
                        },
                    },
                    result: None,
                },
            )
        },
    ));
    let d = decide_for(&p, &jobs, "2026-01-01T01:00:00Z");
    assert_eq!(d.delete, vec!["retail-m1-t0-1"]);
}

#[test]
fn only_results_of_attempts_not_yet_folded_are_fetched() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let facts = |task: &str, attempt| crate::observe::TaskJobFacts {
        name: job_name("retail", "g1", task, attempt),
        run: "g1".into(),
        task: task.into(),
        attempt,
        state: crate::observe::JobState::Complete {
            at: at("2026-01-01T00:00:01Z"),
        },
    };
    let needed = results_needed(&d.status, &[facts("a", 1), facts("b", 1)]);
    assert_eq!(
        needed,
        vec!["retail-g1-a-1", "retail-g1-b-1"],
        "b-1 is newer than status: it may be adopted"
    );
    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let jobs = observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:01Z")
        .build();
    let d = decide_for(&p, &jobs, "2026-01-01T00:00:02Z");
    assert!(results_needed(&d.status, &[facts("a", 1)]).is_empty());
}

#[test]
fn a_suspended_pipeline_refuses_manual_runs_and_starts_no_generation_run() {
    let p = a_pipeline()
        .chain(1)
        .set("suspend", serde_json::json!(true))
        .annotated("tributary.dev/run", "go")
        .build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    assert!(d.status.last_run.is_none());
    assert!(d.events.iter().any(|e| e.reason == "RunRefused"));
    assert_eq!(d.status.handled_run_request.as_deref(), Some("go"));
}

fn attempts_finished(d: &Decision) -> Vec<(String, u32, AttemptOutcome)> {
    d.transitions
        .iter()
        .filter_map(|t| match t {
            Transition::AttemptFinished {
                task,
                attempt,
                outcome,
                ..
            } => Some((task.clone(), *attempt, *outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_run_start_reports_the_run_and_its_first_attempts_as_started_in_that_order() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:05Z");
    assert_eq!(
        d.transitions,
        vec![
            Transition::RunStarted {
                run: "g1".into(),
                trigger: RunTrigger::Generation,
                nominal_time: None,
                at: at("2026-01-01T00:00:05Z"),
            },
            Transition::AttemptStarted {
                run: "g1".into(),
                task: "a".into(),
                attempt: 1,
                job: "retail-g1-a-1".into(),
                at: at("2026-01-01T00:00:05Z"),
            },
        ]
    );
}

#[test]
fn a_finished_attempt_is_reported_with_the_datasets_of_its_runner_result() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline().diamond().with_status(after(&d)).build();
    let result = a_result(Outcome::Succeeded)
        .rows(5)
        .input("mongodb://mongo:27017", "retail.transactions")
        .output("s3://raw", "transactions/g1.jsonl.gz", 5, 512)
        .json();
    let jobs = observed_jobs().succeeded_with("g1", "a", 1, "2026-01-01T00:00:09Z", result);
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:10Z");
    let Some(Transition::AttemptFinished {
        task,
        job,
        outcome,
        lineage,
        ..
    }) = d.transitions.first()
    else {
        panic!("{:?}", d.transitions);
    };
    assert_eq!(
        (task.as_str(), job.as_str(), *outcome),
        ("a", "retail-g1-a-1", AttemptOutcome::Succeeded)
    );
    assert_eq!(lineage.inputs[0].name, "retail.transactions");
    assert_eq!(lineage.outputs[0].rows, Some(5));
    assert_eq!(lineage.outputs[0].bytes, Some(512));
    // Then b and c start.
    let started: Vec<_> = d
        .transitions
        .iter()
        .filter_map(|t| match t {
            Transition::AttemptStarted { task, .. } => Some(task.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec!["b", "c"]);
}

#[test]
fn a_retried_attempt_is_reported_failed_under_its_own_number_and_the_run_fails_at_the_end() {
    let p = a_pipeline().diamond().retries(1).build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline()
        .diamond()
        .retries(1)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs().failed("g1", "a", 1, "2026-01-01T00:00:10Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:11Z");
    assert_eq!(
        attempts_finished(&d),
        vec![("a".into(), 1, AttemptOutcome::Failed)]
    );
    let Some(Transition::AttemptFinished { message, .. }) = d.transitions.first() else {
        panic!()
    };
    assert!(message.as_deref().unwrap().contains("connection refused"));

    let p = a_pipeline()
        .diamond()
        .retries(1)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs().failed("g1", "a", 1, "2026-01-01T00:00:10Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:20Z");
    assert!(matches!(
        d.transitions.as_slice(),
        [Transition::AttemptStarted { attempt: 2, .. }]
    ));

    let p = a_pipeline()
        .diamond()
        .retries(1)
        .with_status(after(&d))
        .build();
    let jobs = observed_jobs()
        .failed("g1", "a", 1, "2026-01-01T00:00:10Z")
        .failed("g1", "a", 2, "2026-01-01T00:00:30Z");
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:31Z");
    assert_eq!(
        attempts_finished(&d),
        vec![("a".into(), 2, AttemptOutcome::Failed)]
    );
    assert!(matches!(
        d.transitions.last(),
        Some(Transition::RunFinished {
            phase: RunPhase::Failed,
            ..
        })
    ));
}

#[test]
fn deciding_again_on_the_same_state_reports_no_transition_twice() {
    let p = a_pipeline().diamond().build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    let p = a_pipeline().diamond().with_status(after(&d)).build();
    // The Job not seen yet (ensured again) and seen running: nothing new either way.
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:01Z");
    assert!(d.transitions.is_empty(), "{:?}", d.transitions);
    let jobs = observed_jobs().running("g1", "a", 1);
    let d = decide_for(&p, &jobs.build(), "2026-01-01T00:00:02Z");
    assert!(d.transitions.is_empty(), "{:?}", d.transitions);
}

#[test]
fn a_cancelled_run_reports_its_running_attempts_and_itself_as_aborted() {
    let d = a_new_generation_while_g1_runs();
    assert_eq!(
        d.transitions[..2],
        [
            Transition::AttemptFinished {
                run: "g1".into(),
                task: "a".into(),
                attempt: 1,
                job: "retail-g1-a-1".into(),
                outcome: AttemptOutcome::Aborted,
                message: None,
                lineage: AttemptLineage::default(),
                at: at("2026-01-01T00:00:10Z"),
            },
            Transition::RunFinished {
                run: "g1".into(),
                phase: RunPhase::Cancelled,
                at: at("2026-01-01T00:00:10Z"),
            },
        ]
    );
    assert!(matches!(
        &d.transitions[2],
        Transition::RunStarted { run, .. } if run == "g2"
    ));
}

#[test]
fn a_scheduled_run_reports_its_fire_time_as_nominal_time() {
    let p = a_pipeline().diamond().schedule("0 2 * * *").build();
    let d = decide_for(&p, &BTreeMap::new(), "2026-01-01T02:00:03Z");
    assert!(matches!(
        d.transitions.first(),
        Some(Transition::RunStarted { trigger: RunTrigger::Schedule, nominal_time: Some(t), .. })
            if *t == at("2026-01-01T02:00:00Z")
    ));
}

#[test]
fn a_starting_run_settles_its_progress_is_spaced_and_its_end_is_written_at_once() {
    let p = a_pipeline().diamond().build();
    let start = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    assert!(start.starts_a_run());
    assert_eq!(
        start.status_urgency(&PipelineStatus::default()),
        Urgency::Settle
    );

    let p = a_pipeline().diamond().with_status(after(&start)).build();
    let jobs = observed_jobs().running("g1", "a", 1).build();
    let progress = decide_for(&p, &jobs, "2026-01-01T00:00:02Z");
    assert!(!progress.starts_a_run());
    assert_eq!(progress.status_urgency(&start.status), Urgency::Progress);

    let jobs = all_diamond_jobs_succeeded_by_five_seconds();
    let end = decide_for(&p, &jobs, "2026-01-01T00:00:06Z");
    assert_eq!(end.runs_finished, vec![RunPhase::Succeeded]);
    assert_eq!(end.status_urgency(&start.status), Urgency::Now);
}

#[test]
fn a_decision_that_finishes_a_run_tells_how_long_the_run_took() {
    let p = a_pipeline().diamond().build();
    let start = decide_for(&p, &BTreeMap::new(), "2026-01-01T00:00:00Z");
    assert_eq!(start.finished_run_took(), None);

    let p = a_pipeline().diamond().with_status(after(&start)).build();
    let jobs = all_diamond_jobs_succeeded_by_five_seconds();
    let end = decide_for(&p, &jobs, "2026-01-01T00:00:06Z");
    assert_eq!(end.runs_finished, vec![RunPhase::Succeeded]);
    assert_eq!(
        end.finished_run_took(),
        Some(std::time::Duration::from_secs(6))
    );
}

/// The diamond's four Jobs of run g1, all succeeded by 00:00:05.
fn all_diamond_jobs_succeeded_by_five_seconds() -> BTreeMap<String, ObservedAttempt> {
    observed_jobs()
        .succeeded("g1", "a", 1, "2026-01-01T00:00:03Z")
        .succeeded("g1", "b", 1, "2026-01-01T00:00:04Z")
        .succeeded("g1", "c", 1, "2026-01-01T00:00:04Z")
        .succeeded("g1", "d", 1, "2026-01-01T00:00:05Z")
        .build()
}

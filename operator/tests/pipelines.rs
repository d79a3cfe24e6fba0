//! Integration tests of the operator against the real kube-apiserver and
//! kube-controller-manager of the local stack: DAG order, status, retries, skips, timeouts,
//! manual and retry requests, schedules, validation, connection checks and secrecy.

mod common;

use std::time::Duration;

use common::{Harness, sql_task, warehouse};
use serde_json::json;
use tributary_core::api::{PipelinePhase, RunPhase, RunTrigger, TaskPhase};

fn condition<'a>(
    p: &'a tributary_core::api::Pipeline,
    type_: &str,
) -> Option<&'a tributary_core::api::Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn run_phase(p: &tributary_core::api::Pipeline) -> Option<RunPhase> {
    Some(p.status.as_ref()?.last_run.as_ref()?.phase)
}

fn diamond(retries: u32) -> serde_json::Value {
    json!({
        "defaults": {"retries": retries, "backoffSeconds": 1, "timeoutSeconds": 600},
        "tasks": [sql_task("a", &[]), sql_task("b", &["a"]), sql_task("c", &["a"]), sql_task("d", &["b", "c"])]
    })
}

#[tokio::test]
async fn a_diamond_dag_runs_in_dag_order_and_reports_status_lineage_and_events_without_leaking_secrets()
 {
    let Some(mut h) = Harness::new("diamond").await else {
        return;
    };
    let secret_value = format!("pw-{}", rand::random::<u64>());
    h.create_secret(
        "pg",
        json!({"username": "tributary", "password": secret_value}),
    )
    .await;
    h.apply_data_source("warehouse", warehouse()).await;
    h.apply_pipeline("diamond", diamond(0)).await;
    h.start_operator();

    let a = h.wait_job("diamond-g1-a-1").await;
    assert_eq!(h.job_names("diamond").await, vec!["diamond-g1-a-1"]);
    // The Job spec: locked down, owned, secrets only by reference.
    let spec = a.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let container = &pod.containers[0];
    let sc = container.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root, Some(true));
    let env = container.env.clone().unwrap();
    assert!(env.iter().any(|e| e.name == "TRIBUTARY_INPUT"));
    let password = env.iter().find(|e| e.name.ends_with("_PASSWORD")).unwrap();
    assert_eq!(
        password
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap()
            .name,
        "pg"
    );
    assert_eq!(a.metadata.owner_references.unwrap()[0].kind, "Pipeline");

    h.succeed("diamond-g1-a-1", 10).await;
    h.wait_job("diamond-g1-b-1").await;
    h.wait_job("diamond-g1-c-1").await;
    h.succeed("diamond-g1-b-1", 20).await;
    // A second for a wrongly started d to show; the status wait below usually adds more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A run's start and its progress are written after a settling wait (3 s, up to 10 s
    // under load: docs/operator.md), so the status is awaited rather than read at once.
    h.wait_pipeline_for(
        "diamond",
        "the status to show the run at 2/4, Running",
        Duration::from_secs(15),
        |p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Some(PipelinePhase::Running)
                    && s.last_run.as_ref().is_some_and(|r| r.progress == "2/4")
            })
        },
    )
    .await;
    assert!(
        !h.job_names("diamond")
            .await
            .contains(&"diamond-g1-d-1".to_string()),
        "d must wait for c"
    );
    h.succeed("diamond-g1-c-1", 30).await;
    h.wait_job("diamond-g1-d-1").await;
    h.succeed("diamond-g1-d-1", 40).await;

    let p = h
        .wait_pipeline("diamond", "the run to succeed", |p| {
            run_phase(p) == Some(RunPhase::Succeeded)
        })
        .await;
    let status = p.status.clone().unwrap();
    let run = status.last_run.as_ref().unwrap();
    assert_eq!(
        (run.id.as_str(), run.trigger, run.progress.as_str()),
        ("g1", RunTrigger::Generation, "4/4")
    );
    assert_eq!(status.observed_generation, p.metadata.generation);
    assert_eq!(status.phase, Some(PipelinePhase::Succeeded));
    let d = &run.tasks[3];
    assert_eq!(
        (d.phase, d.attempts, d.job.as_deref()),
        (TaskPhase::Succeeded, 1, Some("diamond-g1-d-1"))
    );
    assert_eq!(d.message.as_deref(), Some("moved 40 rows"));
    assert_eq!(d.lineage.as_ref().unwrap().rows, Some(40));
    assert!(d.started_at.is_some() && d.finished_at.is_some());
    for type_ in ["Valid", "Ready", "Succeeded"] {
        assert_eq!(condition(&p, type_).unwrap().status, "True", "{type_}");
    }
    h.wait_event_reasons("diamond", &["RunStarted", "TaskStarted", "RunSucceeded"])
        .await;

    // Secrets never appear in status, Events or logs.
    let status_json = serde_json::to_string(&p.status).unwrap();
    assert!(!status_json.contains(&secret_value));
    let events_json = serde_json::to_string(&h.events().await).unwrap();
    assert!(!events_json.contains(&secret_value));
    let jobs_json =
        serde_json::to_string(&h.jobs_api().list(&Default::default()).await.unwrap()).unwrap();
    assert!(
        !jobs_json.contains(&secret_value),
        "a Job carries the secret value"
    );
    // Probes and metrics.
    assert_eq!(h.http_get("/healthz").0, 200);
    assert_eq!(h.http_get("/readyz").0, 200);
    let (code, metrics) = h.http_get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tributary_jobs_created_total 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tributary_runs_finished_total{outcome=\"Succeeded\"} 1"),
        "{metrics}"
    );
    let dispatched = metrics
        .lines()
        .find(|l| l.starts_with("tributary_dispatch_latency_seconds_count"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert_eq!(
        dispatched, 3.0,
        "b, c and d were dispatched after their dependencies"
    );
    // Runner results came from the pod watch (a list only when the watch could not tell).
    let reads = |source: &str| {
        let prefix = format!("tributary_pod_result_reads_total{{source=\"{source}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(reads("watch") >= 1.0, "{metrics}");
    assert!(reads("watch") + reads("list") >= 4.0, "{metrics}");
    h.kill_operator();
    let logs = h.logs();
    assert!(logs.contains("created Job"), "operator logs are captured");
    assert!(!logs.contains(&secret_value));
    // Logs are JSON, one object per line.
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
}

#[tokio::test]
async fn a_failing_task_is_retried_with_backoff_then_fails_its_dependents_are_skipped_and_a_retry_request_reruns_only_those()
 {
    let Some(mut h) = Harness::new("retry").await else {
        return;
    };
    h.add_warehouse().await;
    h.apply_pipeline("p", diamond(1)).await;
    h.start_operator();

    h.wait_job("p-g1-a-1").await;
    h.succeed("p-g1-a-1", 1).await;
    h.wait_job("p-g1-b-1").await;
    h.wait_job("p-g1-c-1").await;
    h.succeed("p-g1-b-1", 1).await;
    h.fail("p-g1-c-1", "connection reset by peer").await;
    let retrying = h
        .wait_pipeline("p", "c to be retrying or retried", |p| {
            let t = &p.status.as_ref().unwrap().last_run.as_ref().unwrap().tasks[2];
            t.phase == TaskPhase::Retrying || t.attempts == 2
        })
        .await;
    let c = &retrying
        .status
        .as_ref()
        .unwrap()
        .last_run
        .as_ref()
        .unwrap()
        .tasks[2];
    assert!(
        c.message
            .as_deref()
            .unwrap()
            .contains("connection reset by peer"),
        "{c:?}"
    );
    // Backoff: the second attempt comes about a second later.
    h.wait_job("p-g1-c-2").await;
    h.fail("p-g1-c-2", "connection reset by peer").await;

    let p = h
        .wait_pipeline("p", "the run to fail", |p| {
            run_phase(p) == Some(RunPhase::Failed)
        })
        .await;
    let run = p.status.as_ref().unwrap().last_run.clone().unwrap();
    let phases: Vec<TaskPhase> = run.tasks.iter().map(|t| t.phase).collect();
    assert_eq!(
        phases,
        vec![
            TaskPhase::Succeeded,
            TaskPhase::Succeeded,
            TaskPhase::Failed,
            TaskPhase::Skipped
        ]
    );
    assert_eq!(run.tasks[2].attempts, 2);
    assert!(
        run.tasks[3]
            .message
            .as_deref()
            .unwrap()
            .contains("\"c\" failed")
    );
    assert!(
        !h.job_names("p")
            .await
            .iter()
            .any(|j| j.starts_with("p-g1-d")),
        "a skipped task never runs"
    );
    assert_eq!(condition(&p, "Succeeded").unwrap().status, "False");
    assert_eq!(condition(&p, "Ready").unwrap().status, "False");
    h.wait_event_reasons("p", &["TaskRetrying", "TaskFailed", "RunFailed"])
        .await;

    // Retry: only c and d run again, in a new run.
    h.annotate("p", "tributary.dev/retry", "after-fix").await;
    let retry_id = tributary_core::naming::retry_run_id("g1", "after-fix");
    let c_job = format!("p-{retry_id}-c-1");
    h.wait_job(&c_job).await;
    let jobs = h.job_names("p").await;
    assert!(
        !jobs
            .iter()
            .any(|j| j.starts_with(&format!("p-{retry_id}-a"))
                || j.starts_with(&format!("p-{retry_id}-b"))),
        "{jobs:?}"
    );
    h.succeed(&c_job, 5).await;
    let d_job = format!("p-{retry_id}-d-1");
    h.wait_job(&d_job).await;
    h.succeed(&d_job, 5).await;
    let p = h
        .wait_pipeline("p", "the retry to succeed", |p| {
            p.status
                .as_ref()
                .unwrap()
                .last_run
                .as_ref()
                .is_some_and(|r| r.id == retry_id && r.phase == RunPhase::Succeeded)
        })
        .await;
    let status = p.status.unwrap();
    assert_eq!(status.last_run.as_ref().unwrap().trigger, RunTrigger::Retry);
    assert_eq!(status.history[0].id, "g1");
    assert_eq!(status.history[0].failed_tasks, vec!["c"]);
    assert_eq!(status.handled_retry_request.as_deref(), Some("after-fix"));
}

#[tokio::test]
async fn a_task_over_its_timeout_is_stopped_by_its_deadline_and_fails() {
    let Some(mut h) = Harness::new("timeout").await else {
        return;
    };
    h.add_warehouse().await;
    h.apply_pipeline(
        "slow",
        json!({"defaults": {"retries": 0, "timeoutSeconds": 2}, "tasks": [sql_task("sleepy", &[])]}),
    )
    .await;
    h.start_operator();
    let job = h.wait_job("slow-g1-sleepy-1").await;
    assert_eq!(job.spec.unwrap().active_deadline_seconds, Some(2));
    // The real Job controller enforces activeDeadlineSeconds; without one, stand in for it.
    let failed_by_controller = common::wait(Duration::from_secs(15), "deadline", || {
        let api = h.jobs_api();
        async move {
            let job = api.get("slow-g1-sleepy-1").await.ok()?;
            job.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Failed" && c.status == "True")
                .then_some(true)
        }
    });
    let by_controller = tokio::time::timeout(Duration::from_secs(16), failed_by_controller)
        .await
        .is_ok();
    if !by_controller {
        h.set_job_finished("slow-g1-sleepy-1", false, "DeadlineExceeded")
            .await;
    }
    let p = h
        .wait_pipeline("slow", "the run to fail on its timeout", |p| {
            run_phase(p) == Some(RunPhase::Failed)
        })
        .await;
    let task = &p.status.unwrap().last_run.unwrap().tasks[0];
    assert_eq!(task.phase, TaskPhase::Failed);
    assert!(
        task.message
            .as_deref()
            .unwrap()
            .contains("timed out after 2s"),
        "{task:?}"
    );
    eprintln!("deadline enforced by the Job controller: {by_controller}");
}

#[tokio::test]
async fn a_manual_run_request_starts_exactly_one_new_run() {
    let Some(mut h) = Harness::new("manual").await else {
        return;
    };
    h.add_warehouse().await;
    h.apply_pipeline("m", json!({"tasks": [sql_task("only", &[])]}))
        .await;
    h.start_operator();
    h.wait_job("m-g1-only-1").await;
    h.succeed("m-g1-only-1", 1).await;
    h.wait_pipeline("m", "g1 to succeed", |p| {
        run_phase(p) == Some(RunPhase::Succeeded)
    })
    .await;

    h.annotate("m", "tributary.dev/run", "go-1").await;
    let id = tributary_core::naming::manual_run_id("go-1");
    let job = format!("m-{id}-only-1");
    h.wait_job(&job).await;
    h.succeed(&job, 1).await;
    let p = h
        .wait_pipeline("m", "the manual run to succeed", |p| {
            p.status
                .as_ref()
                .unwrap()
                .last_run
                .as_ref()
                .is_some_and(|r| r.id == id && r.phase == RunPhase::Succeeded)
        })
        .await;
    let status = p.status.unwrap();
    assert_eq!(
        status.last_run.as_ref().unwrap().trigger,
        RunTrigger::Manual
    );
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.handled_run_request.as_deref(), Some("go-1"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.job_names("m").await.len(),
        2,
        "one Job per run, never a second manual run"
    );
}

#[tokio::test]
async fn finished_jobs_of_runs_before_the_last_two_are_deleted_after_the_status_moved_on() {
    let Some(mut h) = Harness::new("cleanup").await else {
        return;
    };
    h.add_warehouse().await;
    h.apply_pipeline("k", json!({"tasks": [sql_task("only", &[])]}))
        .await;
    h.start_operator();
    h.wait_job("k-g1-only-1").await;
    h.succeed("k-g1-only-1", 1).await;
    let mut runs = vec!["g1".to_string()];
    for request in ["again-1", "again-2"] {
        h.wait_pipeline("k", "the previous run to succeed", |p| {
            run_phase(p) == Some(RunPhase::Succeeded)
        })
        .await;
        h.annotate("k", "tributary.dev/run", request).await;
        let id = tributary_core::naming::manual_run_id(request);
        let job = format!("k-{id}-only-1");
        h.wait_job(&job).await;
        h.succeed(&job, 1).await;
        runs.push(id);
    }
    let last = runs.last().unwrap().clone();
    h.wait_pipeline("k", "the third run to succeed", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.last_run.as_ref())
            .is_some_and(|r| r.id == last && r.phase == RunPhase::Succeeded)
    })
    .await;
    let expected: Vec<String> = runs[1..]
        .iter()
        .map(|id| format!("k-{id}-only-1"))
        .collect();
    common::wait(
        common::TIMEOUT,
        "the first run's Job to be deleted",
        || async {
            let mut names = h.job_names("k").await;
            names.sort();
            let mut want = expected.clone();
            want.sort();
            (names == want).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn runs_starting_beyond_the_start_limit_wait_their_turn_and_all_complete() {
    let Some(mut h) = Harness::new("starts").await else {
        return;
    };
    h.add_warehouse().await;
    let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    for name in &names {
        h.apply_pipeline(
            name,
            json!({"tasks": [sql_task("a", &[]), sql_task("b", &[]), sql_task("c", &["a", "b"])]}),
        )
        .await;
    }
    // All eight arrive with the operator's first list, one start at a time.
    h.extra_args = vec!["--run-start-concurrency".into(), "1".into()];
    h.start_operator();
    for name in &names {
        for task in ["a", "b"] {
            let job = format!("{name}-g1-{task}-1");
            h.wait_job(&job).await;
            h.succeed(&job, 1).await;
        }
    }
    for name in &names {
        let job = format!("{name}-g1-c-1");
        h.wait_job(&job).await;
        h.succeed(&job, 1).await;
    }
    for name in &names {
        h.wait_pipeline(name, "its run to succeed", |p| {
            run_phase(p) == Some(RunPhase::Succeeded)
        })
        .await;
    }
    let (_, metrics) = h.http_get("/metrics");
    let deferred: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tributary_run_starts_deferred_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the deferred-starts counter");
    eprintln!("run starts deferred: {deferred}");
    assert!(
        deferred >= 1.0,
        "eight runs starting together with one start at a time: some must have waited"
    );
}

#[tokio::test]
async fn a_pipeline_on_a_one_minute_cron_runs_when_due_and_reports_its_next_run() {
    let Some(mut h) = Harness::new("cron").await else {
        return;
    };
    h.add_warehouse().await;
    h.apply_pipeline(
        "c",
        json!({"schedule": "* * * * *", "timeZone": "Europe/London", "tasks": [sql_task("tick", &[])]}),
    )
    .await;
    h.start_operator();
    let p = h
        .wait_pipeline("c", "nextRunAt", |p| {
            p.status.as_ref().is_some_and(|s| s.next_run_at.is_some())
        })
        .await;
    let next = p.status.unwrap().next_run_at.unwrap();
    let p = h
        .wait_pipeline_for("c", "the scheduled run", Duration::from_secs(90), |p| {
            p.status.as_ref().unwrap().last_run.is_some()
        })
        .await;
    let status = p.status.unwrap();
    let run = status.last_run.unwrap();
    let fired = status.last_schedule_time.expect("lastScheduleTime");
    assert_eq!(run.trigger, RunTrigger::Schedule);
    assert_eq!(run.id, tributary_core::naming::scheduled_run_id(fired));
    assert!(run.started_at >= fired, "started before it was due");
    assert_eq!(
        status.next_run_at,
        Some(fired + chrono::Duration::minutes(1))
    );
    // The first nextRunAt seen is the time that fired — or, when the operator started just
    // past a minute boundary and its first decision fired at once, the one after.
    assert!(
        next == fired || next == fired + chrono::Duration::minutes(1),
        "first saw nextRunAt {next}, the run fired for {fired}"
    );
    let job = format!("c-{}-tick-1", run.id);
    h.wait_job(&job).await;
    h.succeed(&job, 1).await;
    h.wait_pipeline("c", "the scheduled run to succeed", |p| {
        run_phase(p) == Some(RunPhase::Succeeded)
    })
    .await;
}

#[tokio::test]
async fn an_invalid_pipeline_reports_every_problem_starts_nothing_and_leaves_others_alone() {
    let Some(mut h) = Harness::new("invalid").await else {
        return;
    };
    h.add_warehouse().await;
    h.apply_pipeline(
        "broken",
        json!({"schedule": "0 25 * * *", "tasks": [
            sql_task("x", &["z"]), sql_task("z", &["x"]),
            {"name": "y", "sql": {"dataSource": "nowhere", "statements": ["select 1"]}}]}),
    )
    .await;
    h.apply_pipeline("fine", json!({"tasks": [sql_task("ok", &[])]}))
        .await;
    h.start_operator();
    let p = h
        .wait_pipeline("broken", "Valid=False", |p| {
            condition(p, "Valid").is_some_and(|c| c.status == "False")
        })
        .await;
    assert_eq!(
        p.status.as_ref().unwrap().phase,
        Some(PipelinePhase::Invalid)
    );
    let message = &condition(&p, "Valid").unwrap().message;
    for needle in ["spec.schedule", "dependency cycle", "nowhere"] {
        assert!(message.contains(needle), "{needle} missing from {message}");
    }
    h.wait_job("fine-g1-ok-1").await;
    h.wait_event_reasons("broken", &["InvalidSpec"]).await;
    let notes: Vec<String> = h
        .events()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
        .filter_map(|e| e.note)
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("dependency cycle") && notes[0].contains("nowhere"));
    assert!(h.job_names("broken").await.is_empty());
}

#[tokio::test]
async fn a_data_source_is_checked_reports_ready_and_lists_the_runs_that_wrote_it() {
    let Some(mut h) = Harness::new("datasource").await else {
        return;
    };
    h.create_secret(
        "minio",
        json!({"accessKeyId": "tributary", "secretAccessKey": "tributary-secret"}),
    )
    .await;
    h.apply_data_source(
        "lake",
        json!({"s3": {"endpoint": "http://127.0.0.1:19000", "bucket": "raw", "pathStyle": true,
            "credentialsSecretRef": {"name": "minio"}}, "checkIntervalSeconds": 3600}),
    )
    .await;
    h.apply_pipeline(
        "copy",
        json!({"tasks": [{"name": "files", "copy": {"from": {"dataSource": "lake", "path": "/in"},
            "to": {"dataSource": "lake", "prefix": "out/"}}}]}),
    )
    .await;
    h.start_operator();
    let api = h.jobs_api();
    let check = common::wait(common::TIMEOUT, "a check Job", || {
        let api = api.clone();
        async move {
            let list = api
                .list(&kube::api::ListParams::default().labels("tributary.dev/datasource=lake"))
                .await
                .ok()?;
            list.items.into_iter().next()
        }
    })
    .await;
    let env = check
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .env
        .clone()
        .unwrap();
    assert!(
        env[0]
            .value
            .as_deref()
            .unwrap()
            .contains("\"action\":\"checkConnection\"")
    );
    let check_result = common::result(
        tributary_core::lineage::Outcome::Succeeded,
        "bucket raw reachable",
        0,
    );
    h.finish_job(&kube::ResourceExt::name_any(&check), 0, Some(check_result))
        .await;

    h.wait_job("copy-g1-files-1").await;
    h.succeed("copy-g1-files-1", 7).await;

    let ds_api = h.data_sources();
    let ds = common::wait(common::TIMEOUT, "Ready and lineage", || {
        let api = ds_api.clone();
        async move {
            let ds = api.get("lake").await.ok()?;
            let s = ds.status.clone()?;
            (s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                && !s.lineage.is_empty())
            .then_some(ds)
        }
    })
    .await;
    let status = ds.status.unwrap();
    assert_eq!(status.kind, Some(tributary_core::api::SourceKind::S3));
    assert_eq!(status.endpoint.as_deref(), Some("s3://raw"));
    assert_eq!(status.conditions[0].message, "bucket raw reachable");
    let entry = &status.lineage[0];
    assert_eq!(
        (
            entry.pipeline.as_str(),
            entry.run.as_str(),
            entry.task.as_str()
        ),
        ("copy", "g1", "files")
    );
    assert_eq!(entry.dataset, "out/7.jsonl");
    assert_eq!(entry.rows, Some(7));
    h.wait_event_reasons("lake", &["Connected"]).await;
}

#[tokio::test]
async fn a_second_replica_stands_by_while_the_first_holds_the_lease() {
    let Some(mut h) = Harness::new("leader").await else {
        return;
    };
    h.add_warehouse().await;
    h.start_operator();
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(h.client.clone(), &h.ns);
    let holder = common::wait(common::TIMEOUT, "the Lease", || {
        let leases = leases.clone();
        async move {
            leases
                .get_opt("tributary-operator")
                .await
                .ok()??
                .spec?
                .holder_identity
        }
    })
    .await;
    assert_eq!(holder, "test-operator-1");
    // A second process with another identity must not act while the first renews.
    let first = h.operator.take();
    h.metrics_port += 1;
    h.start_operator();
    let second = h.operator.take();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let lease = leases.get("tributary-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("test-operator-1")
    );
    // Kill the leader: the standby takes over after the lease duration and acts.
    h.operator = first;
    h.kill_operator();
    h.operator = second;
    h.apply_pipeline("after", json!({"tasks": [sql_task("one", &[])]}))
        .await;
    h.wait_job("after-g1-one-1").await;
    let lease = leases.get("tributary-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("test-operator-2")
    );
}

//! Restart safety against the real API server: the operator is killed with SIGKILL at random
//! points while 60 runs execute; afterwards every run has completed, no task ran twice (no Job
//! was ever created twice, no attempt beyond the first) and no Job is orphaned.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Harness, sql_task};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::ListParams;
use rand::Rng;
use serde_json::json;
use tributary_core::api::RunPhase;

const PIPELINES: usize = 10;
/// Runs per Pipeline: the generation run plus manual runs.
const RUNS: usize = 6;

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"))
        })
}

#[tokio::test]
async fn killing_the_operator_at_random_points_never_loses_a_run_nor_runs_a_task_twice() {
    let Some(mut h) = Harness::new("restart").await else {
        return;
    };
    h.identity = Some("restart-operator".into());
    h.add_warehouse().await;
    for i in 0..PIPELINES {
        h.apply_pipeline(
            &format!("p{i}"),
            json!({"parallelism": 4, "tasks": [sql_task("a", &[]), sql_task("b", &["a"]), sql_task("c", &["a"]), sql_task("d", &["b", "c"])]}),
        )
        .await;
    }
    h.start_operator();

    // The stand-in kubelet: finishes every Job it sees and records each Job's uid by name.
    let seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    let jobs = h.jobs_api();
    let harness_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kubelet = {
        let seen = seen.clone();
        let done = harness_done.clone();
        let ns = h.ns.clone();
        let client = h.client.clone();
        tokio::spawn(async move {
            let finisher = Harness::attach(client, ns);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(list) = jobs
                    .list(&ListParams::default().labels("tributary.dev/pipeline"))
                    .await
                else {
                    continue;
                };
                for job in list.items {
                    seen.lock()
                        .unwrap()
                        .entry(job.name_any())
                        .or_default()
                        .insert(job.uid().unwrap());
                    if !finished(&job)
                        && let Err(err) = finisher
                            .try_set_job_finished(&job.name_any(), true, "")
                            .await
                    {
                        eprintln!("kubelet: could not finish {}: {err}", job.name_any());
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let mut rng = rand::rng();
    let mut requested = vec![1usize; PIPELINES];
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.random_range(200..1500));
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(420),
            "runs did not complete in time; requested {requested:?}"
        );
        if Instant::now() >= next_kill && requested.iter().sum::<usize>() < PIPELINES * RUNS {
            h.kill_operator();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
            h.start_operator();
            next_kill = Instant::now() + Duration::from_millis(rng.random_range(200..1500));
        }
        let mut complete = 0;
        for (i, count) in requested.iter_mut().enumerate() {
            let p = h.pipelines().get(&format!("p{i}")).await.unwrap();
            let Some(run) = p.status.as_ref().and_then(|s| s.last_run.as_ref()) else {
                continue;
            };
            if run.phase != RunPhase::Succeeded {
                continue;
            }
            let expected_id = if *count == 1 {
                "g1".to_string()
            } else {
                tributary_core::naming::manual_run_id(&format!("run-{count}"))
            };
            if run.id != expected_id {
                continue;
            }
            if *count < RUNS {
                *count += 1;
                h.annotate(
                    &format!("p{i}"),
                    "tributary.dev/run",
                    &format!("run-{count}"),
                )
                .await;
            } else {
                complete += 1;
            }
        }
        if complete == PIPELINES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness_done.store(true, std::sync::atomic::Ordering::Relaxed);
    kubelet.await.unwrap();
    eprintln!(
        "{kills} kills during {} runs in {:?}",
        PIPELINES * RUNS,
        start.elapsed()
    );
    assert!(kills >= 5, "only {kills} kills");

    // Every run completed: each Pipeline's history lists its earlier runs as Succeeded.
    for i in 0..PIPELINES {
        let p = h.pipelines().get(&format!("p{i}")).await.unwrap();
        let status = p.status.unwrap();
        assert_eq!(status.history.len(), RUNS - 1, "p{i}: {:?}", status.history);
        assert!(
            status
                .history
                .iter()
                .all(|r| r.phase == RunPhase::Succeeded && r.progress == "4/4"),
            "p{i}: {:?}",
            status.history
        );
    }
    // No task ran twice: no Job name was ever created twice, and nothing needed a second attempt.
    let seen = seen.lock().unwrap().clone();
    for (name, uids) in seen.iter() {
        assert_eq!(uids.len(), 1, "Job {name} was created {} times", uids.len());
        assert!(
            name.ends_with("-1"),
            "Job {name} is a second attempt: a task ran twice"
        );
    }
    let per_run = seen
        .keys()
        .fold(BTreeMap::<String, usize>::new(), |mut m, name| {
            let run = name.rsplitn(3, '-').nth(2).unwrap().to_string();
            *m.entry(run).or_default() += 1;
            m
        });
    assert_eq!(per_run.len(), PIPELINES * RUNS, "{per_run:?}");
    assert!(per_run.values().all(|&n| n == 4), "{per_run:?}");
    // No Job is orphaned: each remaining Job is owned by a live Pipeline and is finished.
    let pipelines: BTreeSet<String> = h
        .pipelines()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.uid())
        .collect();
    for job in h
        .jobs_api()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        let owner = job
            .owner_references()
            .first()
            .map(|o| o.uid.clone())
            .unwrap_or_default();
        assert!(
            pipelines.contains(&owner) || job.labels().contains_key("tributary.dev/datasource"),
            "orphan Job {}",
            job.name_any()
        );
        if job.labels().contains_key("tributary.dev/pipeline") {
            assert!(finished(&job), "Job {} left running", job.name_any());
        }
    }
}

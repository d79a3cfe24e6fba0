//! Unit tests of the OpenLineage RunEvents built from transitions.

use super::*;
use crate::fixtures::at;

const UID: &str = "0b6a1c7e-4f4b-4d36-9d59-1f8f0c6d2a11";

fn subject() -> Subject<'static> {
    Subject {
        name: "retail-elt",
        namespace: "retail",
        uid: UID,
    }
}

fn report(namespace: &str, name: &str, rows: Option<u64>, bytes: Option<u64>) -> DatasetReport {
    DatasetReport {
        namespace: namespace.into(),
        name: name.into(),
        rows,
        bytes,
        sha256: None,
    }
}

fn finished(task: &str, attempt: u32, outcome: AttemptOutcome) -> Transition {
    Transition::AttemptFinished {
        run: "g1".into(),
        task: task.into(),
        attempt,
        job: format!("retail-elt-g1-{task}-{attempt}"),
        outcome,
        message: Some("copied 3 files".into()),
        lineage: AttemptLineage {
            inputs: vec![report("ftp://files:21", "/procedures/a.pdf", None, None)],
            outputs: vec![report("s3://raw", "knowledge/a.pdf", Some(3), Some(4096))],
            files: Some(3),
        },
        at: at("2026-01-01T00:01:00Z"),
    }
}

fn one(transition: Transition) -> RunEvent {
    let mut events = run_events(NAMESPACE_PLACEHOLDER, subject(), &[transition]);
    assert_eq!(events.len(), 1);
    events.remove(0)
}

/// A task attempt's START, for tests elsewhere.
pub fn an_event() -> RunEvent {
    one(Transition::AttemptStarted {
        run: "g1".into(),
        task: "load".into(),
        attempt: 1,
        job: "retail-elt-g1-load-1".into(),
        at: at("2026-01-01T00:00:00Z"),
    })
}

#[test]
fn run_ids_are_version_5_uuids_that_a_restarted_operator_derives_again() {
    let run = pipeline_run_id(UID, "g1");
    assert_eq!(run.get_version_num(), 5);
    assert_eq!(run, pipeline_run_id(UID, "g1"));
    assert_ne!(run, pipeline_run_id(UID, "g2"));
    assert_ne!(run, pipeline_run_id("another-uid", "g1"));
    let attempt = attempt_run_id(UID, "g1", "load", 1);
    assert_eq!(attempt.get_version_num(), 5);
    assert_eq!(attempt, attempt_run_id(UID, "g1", "load", 1));
    assert_ne!(attempt, attempt_run_id(UID, "g1", "load", 2));
    assert_ne!(attempt, run);
}

#[test]
fn the_uuid_v5_matches_the_rfc_9562_test_vector() {
    // RFC 9562 appendix A.4: v5 of "www.example.com" in the DNS namespace.
    assert_eq!(
        v5(&Uuid::NAMESPACE_DNS, b"www.example.com").to_string(),
        "2ed6657d-e927-568b-95e1-2665a8aea6a2"
    );
}

#[test]
fn a_pipeline_run_start_names_the_pipeline_as_job_in_its_kubernetes_namespace() {
    let event = one(Transition::RunStarted {
        run: "s202601010200".into(),
        trigger: RunTrigger::Schedule,
        nominal_time: Some(at("2026-01-01T02:00:00Z")),
        at: at("2026-01-01T02:00:03Z"),
    });
    assert_eq!(event.event_type, EventType::Start);
    assert_eq!(event.event_time, "2026-01-01T02:00:03.000Z");
    assert_eq!(
        (event.job.namespace.as_str(), event.job.name.as_str()),
        ("retail", "retail-elt")
    );
    assert_eq!(event.run.run_id, pipeline_run_id(UID, "s202601010200"));
    assert_eq!(event.schema_url, SCHEMA_URL);
    assert!(event.producer.starts_with("https://"));
    assert!(event.producer.contains(env!("CARGO_PKG_VERSION")));
    assert!(event.run.facets.parent.is_none());
    assert_eq!(
        event.run.facets.nominal_time.unwrap().nominal_start_time,
        "2026-01-01T02:00:00.000Z"
    );
    assert_eq!(event.job.facets.job_type.job_type, "DAG");
    assert_eq!(
        event.run.facets.tributary.trigger,
        Some(RunTrigger::Schedule)
    );
}

#[test]
fn a_pipeline_run_ends_complete_fail_or_abort_by_its_phase() {
    let end = |phase| {
        one(Transition::RunFinished {
            run: "g1".into(),
            phase,
            at: at("2026-01-01T00:05:00Z"),
        })
        .event_type
    };
    assert_eq!(end(RunPhase::Succeeded), EventType::Complete);
    assert_eq!(end(RunPhase::Failed), EventType::Fail);
    assert_eq!(end(RunPhase::Cancelled), EventType::Abort);
}

#[test]
fn a_task_attempt_is_its_own_run_whose_parent_is_the_pipeline_run() {
    let event = an_event();
    assert_eq!(event.job.name, "retail-elt.load");
    assert_eq!(event.job.facets.job_type.job_type, "TASK");
    assert_eq!(event.run.run_id, attempt_run_id(UID, "g1", "load", 1));
    let parent = event.run.facets.parent.unwrap();
    assert_eq!(parent.run.run_id, pipeline_run_id(UID, "g1"));
    assert_eq!(
        parent.job,
        JobRef {
            namespace: "retail".into(),
            name: "retail-elt".into()
        }
    );
    let facet = event.run.facets.tributary;
    assert_eq!(
        facet.kubernetes_job.as_deref(),
        Some("retail-elt-g1-load-1")
    );
    assert_eq!(facet.attempt, Some(1));
}

#[test]
fn a_completed_attempt_lists_its_datasets_with_output_statistics() {
    let event = one(finished("docs", 1, AttemptOutcome::Succeeded));
    assert_eq!(event.event_type, EventType::Complete);
    assert!(event.run.facets.error_message.is_none());
    assert_eq!(event.inputs.len(), 1);
    assert_eq!(
        (
            event.inputs[0].namespace.as_str(),
            event.inputs[0].name.as_str()
        ),
        ("ftp://files:21", "/procedures/a.pdf")
    );
    let stats = &event.outputs[0]
        .output_facets
        .as_ref()
        .unwrap()
        .output_statistics;
    assert_eq!(
        (stats.row_count, stats.size, stats.file_count),
        (Some(3), Some(4096), Some(3))
    );
}

#[test]
fn a_failed_attempt_carries_its_message_as_error_facet() {
    let event = one(finished("docs", 2, AttemptOutcome::Failed));
    assert_eq!(event.event_type, EventType::Fail);
    assert_eq!(event.run.run_id, attempt_run_id(UID, "g1", "docs", 2));
    assert_eq!(
        event.run.facets.error_message.unwrap().message,
        "copied 3 files"
    );
    assert_eq!(
        one(finished("docs", 1, AttemptOutcome::Aborted)).event_type,
        EventType::Abort
    );
}

#[test]
fn an_output_with_nothing_known_of_its_size_has_no_statistics_facet() {
    let mut t = finished("docs", 1, AttemptOutcome::Succeeded);
    if let Transition::AttemptFinished { lineage, .. } = &mut t {
        lineage.outputs = vec![
            report("s3://raw", "a", None, None),
            report("s3://raw", "b", None, None),
        ];
    }
    let event = one(t);
    assert!(event.outputs.iter().all(|o| o.output_facets.is_none()));
}

#[test]
fn the_job_namespace_is_the_template_with_the_pipelines_namespace() {
    assert_eq!(job_namespace("{namespace}", "retail"), "retail");
    assert_eq!(
        job_namespace("prod-eu.{namespace}", "retail"),
        "prod-eu.retail"
    );
    assert_eq!(job_namespace("tributary", "retail"), "tributary");
    assert!(check_namespace_template("prod.{namespace}").is_ok());
    assert!(check_namespace_template("{cluster}.{namespace}").is_err());
    assert!(check_namespace_template(" ").is_err());
}

#[test]
fn events_serialise_with_the_field_names_of_the_spec() {
    let json = serde_json::to_value(one(finished("docs", 1, AttemptOutcome::Succeeded))).unwrap();
    assert_eq!(json["eventType"], "COMPLETE");
    assert_eq!(json["schemaURL"], SCHEMA_URL);
    assert!(json["run"]["runId"].as_str().unwrap().len() == 36);
    let parent = &json["run"]["facets"]["parent"];
    assert!(parent["_producer"].is_string() && parent["_schemaURL"].is_string());
    assert!(parent["run"]["runId"].is_string());
    assert_eq!(parent["job"]["name"], "retail-elt");
    let stats = &json["outputs"][0]["outputFacets"]["outputStatistics"];
    assert_eq!(stats["rowCount"], 3);
    assert_eq!(stats["size"], 4096);
    assert_eq!(stats["fileCount"], 3);
    assert_eq!(json["job"]["facets"]["jobType"]["processingType"], "BATCH");
    assert!(json["inputs"][0].get("outputFacets").is_none());
}

//! The Argo CD health checks (manifests/argocd/health/*.lua), run on sample Pipelines and
//! DataSources in every phase. Statuses are built from the operator's own Rust types, so a
//! renamed status field breaks these tests rather than Argo CD's view of a cluster.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tributary_core::api::{
    Condition, DataSourceStatus, PipelinePhase, PipelineStatus, RunPhase, RunStatus, RunTrigger,
};
use tributary_deploy_tests::{ARGO_HEALTH, Health, documents, health, read};

fn pipeline_lua() -> String {
    read("manifests/argocd/health/pipeline.lua")
}

fn datasource_lua() -> String {
    read("manifests/argocd/health/datasource.lua")
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: at("2026-01-01T02:00:00Z"),
        observed_generation: Some(3),
    }
}

fn run(phase: RunPhase, progress: &str) -> RunStatus {
    RunStatus {
        id: "r7".into(),
        trigger: RunTrigger::Schedule,
        generation: 3,
        started_at: at("2026-01-01T02:00:00Z"),
        finished_at: (phase != RunPhase::Running).then(|| at("2026-01-01T02:10:00Z")),
        phase,
        progress: progress.into(),
        tasks: vec![],
        retry_of: None,
    }
}

/// A Pipeline at generation 3 with the given spec additions and status.
fn pipeline(spec: Value, status: Option<&PipelineStatus>) -> Value {
    let mut spec_full =
        json!({"tasks": [{"name": "t", "sql": {"dataSource": "w", "statements": ["select 1"]}}]});
    for (k, v) in spec.as_object().unwrap() {
        spec_full[k] = v.clone();
    }
    let mut object = json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "retail-elt", "namespace": "retail", "generation": 3},
        "spec": spec_full,
    });
    if let Some(status) = status {
        object["status"] = serde_json::to_value(status).unwrap();
    }
    object
}

fn observed(phase: PipelinePhase) -> PipelineStatus {
    PipelineStatus {
        phase: Some(phase),
        observed_generation: Some(3),
        ..Default::default()
    }
}

fn check(script: &str, object: &Value) -> Health {
    let h = health(script, object);
    assert!(
        ARGO_HEALTH.contains(&h.status.as_str()),
        "not an Argo CD health status: {h:?}"
    );
    assert!(!h.message.is_empty(), "every verdict says why: {h:?}");
    h
}

#[test]
fn a_pipeline_without_status_is_progressing_until_the_operator_sees_it() {
    let h = check(&pipeline_lua(), &pipeline(json!({}), None));
    assert_eq!(h.status, "Progressing");
    assert!(h.message.contains("Waiting for the operator"), "{h:?}");
}

#[test]
fn a_pipeline_whose_new_generation_is_not_observed_yet_is_progressing_whatever_its_old_status() {
    // An old failure must not flag the fix as Degraded before the operator looked at it.
    let mut status = observed(PipelinePhase::Failed);
    status.observed_generation = Some(2);
    status.last_run = Some(run(RunPhase::Failed, "2/6"));
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Progressing");
    assert!(h.message.contains("generation 3"), "{h:?}");
}

#[test]
fn an_invalid_pipeline_is_degraded_with_the_validation_message() {
    let mut status = observed(PipelinePhase::Invalid);
    status.conditions = vec![
        condition(
            "Valid",
            "False",
            "InvalidSpec",
            "cycle: a -> b -> a; unknown dependency c",
        ),
        condition("Ready", "False", "InvalidSpec", "cycle"),
    ];
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Degraded");
    assert_eq!(
        h.message,
        "InvalidSpec: cycle: a -> b -> a; unknown dependency c"
    );
}

#[test]
fn a_running_pipeline_is_progressing_with_its_progress() {
    let mut status = observed(PipelinePhase::Running);
    status.last_run = Some(run(RunPhase::Running, "3/6"));
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Progressing");
    assert!(h.message.contains("run r7 running (3/6)"), "{h:?}");
}

#[test]
fn a_succeeded_pipeline_is_healthy() {
    let mut status = observed(PipelinePhase::Succeeded);
    status.last_run = Some(run(RunPhase::Succeeded, "6/6"));
    status.conditions = vec![
        condition("Valid", "True", "Valid", ""),
        condition("Ready", "True", "Succeeded", "run r7 6/6"),
        condition("Succeeded", "True", "Succeeded", "run r7 6/6"),
    ];
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Healthy");
    assert_eq!(h.message, "run r7 succeeded (6/6)");
}

#[test]
fn a_failed_pipeline_is_degraded_with_the_failed_tasks() {
    let mut status = observed(PipelinePhase::Failed);
    status.last_run = Some(run(RunPhase::Failed, "6/6"));
    status.conditions = vec![
        condition("Ready", "False", "RunFailed", "run r7 failed: check-facts"),
        condition(
            "Succeeded",
            "False",
            "RunFailed",
            "run r7 failed: check-facts",
        ),
    ];
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Degraded");
    assert_eq!(h.message, "RunFailed: run r7 failed: check-facts");
}

#[test]
fn a_pipeline_whose_last_run_was_cancelled_is_healthy_like_its_ready_condition() {
    // The operator maps a cancelled run to phase Failed but keeps Ready=True.
    let mut status = observed(PipelinePhase::Failed);
    status.last_run = Some(run(RunPhase::Cancelled, "2/6"));
    status.conditions = vec![condition("Ready", "True", "Cancelled", "run r7 2/6")];
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Healthy");
    assert!(h.message.contains("cancelled"), "{h:?}");
}

#[test]
fn a_suspended_pipeline_is_suspended_even_after_a_failure() {
    let mut status = observed(PipelinePhase::Failed);
    status.last_run = Some(run(RunPhase::Failed, "6/6"));
    let h = check(
        &pipeline_lua(),
        &pipeline(
            json!({"suspend": true, "schedule": "0 2 * * *"}),
            Some(&status),
        ),
    );
    assert_eq!(h.status, "Suspended");
    assert!(h.message.contains("run r7 failed"), "{h:?}");
}

#[test]
fn a_suspended_pipeline_with_a_run_in_progress_shows_the_run_until_it_finishes() {
    let mut status = observed(PipelinePhase::Running);
    status.last_run = Some(run(RunPhase::Running, "1/6"));
    let h = check(
        &pipeline_lua(),
        &pipeline(json!({"suspend": true}), Some(&status)),
    );
    assert_eq!(h.status, "Progressing");
}

#[test]
fn a_scheduled_pipeline_waiting_for_its_first_run_is_healthy_with_the_next_run_time() {
    let mut status = observed(PipelinePhase::Pending);
    status.next_run_at = Some(at("2026-01-02T02:00:00Z"));
    status.conditions = vec![condition("Ready", "True", "Idle", "no run yet")];
    let h = check(
        &pipeline_lua(),
        &pipeline(json!({"schedule": "0 2 * * *"}), Some(&status)),
    );
    assert_eq!(h.status, "Healthy");
    assert!(h.message.contains("2026-01-02T02:00:00Z"), "{h:?}");
}

#[test]
fn an_unscheduled_pending_pipeline_is_progressing_toward_its_first_run() {
    let status = observed(PipelinePhase::Pending);
    let h = check(&pipeline_lua(), &pipeline(json!({}), Some(&status)));
    assert_eq!(h.status, "Progressing");
}

#[test]
fn an_unknown_future_phase_falls_back_on_the_ready_condition() {
    let mut object = pipeline(json!({}), Some(&observed(PipelinePhase::Succeeded)));
    object["status"]["phase"] = json!("Draining");
    object["status"]["conditions"] = json!([
        {"type": "Ready", "status": "False", "reason": "Draining", "message": "x",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}
    ]);
    let h = check(&pipeline_lua(), &object);
    assert_eq!(h.status, "Degraded");
    assert_eq!(h.message, "Draining: x");
}

fn datasource(status: Option<&DataSourceStatus>) -> Value {
    let mut object = json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "DataSource",
        "metadata": {"name": "lake", "namespace": "retail", "generation": 2},
        "spec": {"s3": {"bucket": "raw", "credentialsSecretRef": {"name": "minio-creds"}}},
    });
    if let Some(status) = status {
        object["status"] = serde_json::to_value(status).unwrap();
    }
    object
}

fn ds_status(ready: Option<Condition>, generation: i64) -> DataSourceStatus {
    DataSourceStatus {
        observed_generation: Some(generation),
        conditions: ready.into_iter().collect(),
        ..Default::default()
    }
}

#[test]
fn a_datasource_without_status_is_progressing() {
    let h = check(&datasource_lua(), &datasource(None));
    assert_eq!(h.status, "Progressing");
}

#[test]
fn a_datasource_whose_new_generation_is_unchecked_is_progressing() {
    let status = ds_status(
        Some(condition("Ready", "False", "ConnectionFailed", "x")),
        1,
    );
    let h = check(&datasource_lua(), &datasource(Some(&status)));
    assert_eq!(h.status, "Progressing");
    assert!(h.message.contains("generation 2"), "{h:?}");
}

#[test]
fn a_connected_datasource_is_healthy() {
    let status = ds_status(
        Some(condition(
            "Ready",
            "True",
            "Connected",
            "bucket raw reachable",
        )),
        2,
    );
    let h = check(&datasource_lua(), &datasource(Some(&status)));
    assert_eq!(h.status, "Healthy");
    assert_eq!(h.message, "Connected: bucket raw reachable");
}

#[test]
fn a_datasource_whose_check_failed_is_degraded_with_the_reason() {
    let status = ds_status(
        Some(condition(
            "Ready",
            "False",
            "ConnectionFailed",
            "dial tcp 127.0.0.1:19000: connection refused",
        )),
        2,
    );
    let h = check(&datasource_lua(), &datasource(Some(&status)));
    assert_eq!(h.status, "Degraded");
    assert!(h.message.starts_with("ConnectionFailed: dial tcp"), "{h:?}");
}

#[test]
fn a_datasource_with_an_invalid_spec_is_degraded() {
    let status = ds_status(
        Some(condition("Ready", "False", "InvalidSpec", "unknown key")),
        2,
    );
    assert_eq!(
        check(&datasource_lua(), &datasource(Some(&status))).status,
        "Degraded"
    );
}

#[test]
fn a_datasource_being_checked_is_progressing() {
    let status = ds_status(
        Some(condition(
            "Ready",
            "Unknown",
            "Checking",
            "connection check running",
        )),
        2,
    );
    assert_eq!(
        check(&datasource_lua(), &datasource(Some(&status))).status,
        "Progressing"
    );
    let none = ds_status(None, 2);
    assert_eq!(
        check(&datasource_lua(), &datasource(Some(&none))).status,
        "Progressing"
    );
}

/// The key Argo CD reads each check from, and the file it must hold verbatim.
const KEYS: [(&str, &str); 2] = [
    (
        "resource.customizations.health.tributary.dev_Pipeline",
        "manifests/argocd/health/pipeline.lua",
    ),
    (
        "resource.customizations.health.tributary.dev_DataSource",
        "manifests/argocd/health/datasource.lua",
    ),
];

#[test]
fn the_argocd_cm_snippet_carries_the_tested_lua_verbatim() {
    let docs = documents("manifests/argocd/argocd-cm.yaml");
    assert_eq!(docs.len(), 1);
    let cm = &docs[0];
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    for (key, file) in KEYS {
        let embedded = cm["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-cm lacks {key}"));
        assert_eq!(
            embedded,
            read(file),
            "{key} differs from {file}: run `make manifests`"
        );
    }
    // The embedded copy is what Argo CD runs: run it too.
    let pipeline_script = cm["data"][KEYS[0].0].as_str().unwrap();
    assert_eq!(
        health(pipeline_script, &pipeline(json!({}), None)).status,
        "Progressing"
    );
}

#[test]
fn the_argo_helm_values_snippet_carries_the_tested_lua_verbatim() {
    let docs = documents("manifests/argocd/argocd-values.yaml");
    for (key, file) in KEYS {
        let embedded = docs[0]["configs"]["cm"][key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-values.yaml lacks configs.cm.{key}"));
        assert_eq!(embedded, read(file), "{key}: run `make manifests`");
    }
}

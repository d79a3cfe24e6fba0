//! OpenLineage delivery against the real API server of the local stack and a real HTTP
//! listener on loopback standing in for Marquez: the RunEvents of a run with a failed task,
//! their parent facets, datasets and bearer token, and a run that an unreachable endpoint
//! does not hold up.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{Harness, sql_task as task, warehouse};
use kube::ResourceExt;
use serde_json::{Value, json};
use tributary_core::api::RunPhase;
use tributary_core::lineage::{DatasetReport, Outcome, TaskResult};
use tributary_operator::openlineage::{attempt_run_id, pipeline_run_id};

/// One POST the endpoint accepted: its Authorization header and JSON body.
#[derive(Clone, Debug)]
struct Received {
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Endpoint {
    received: Arc<Mutex<Vec<Received>>>,
    /// Requests answered 503 before accepting any, to make the operator retry.
    refuse_first: Arc<Mutex<u32>>,
}

async fn lineage(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut refuse = endpoint.refuse_first.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    endpoint.received.lock().unwrap().push(Received {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    });
    StatusCode::CREATED
}

/// A real HTTP server on 127.0.0.1 (like Marquez's `POST /api/v1/lineage`); returns its URL.
async fn start_endpoint(endpoint: Endpoint) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/lineage", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/api/v1/lineage", axum::routing::post(lineage))
        .with_state(endpoint);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn dataset(namespace: &str, name: &str, rows: Option<u64>) -> DatasetReport {
    DatasetReport {
        namespace: namespace.into(),
        name: name.into(),
        rows,
        bytes: rows.map(|r| r * 100),
        sha256: None,
    }
}

/// A runner result with lineage, as the runner writes it to its termination message.
fn result(
    outcome: Outcome,
    message: &str,
    inputs: Vec<DatasetReport>,
    outputs: Vec<DatasetReport>,
) -> String {
    TaskResult {
        inputs,
        outputs,
        ..TaskResult::new(outcome, message)
    }
    .to_termination_message()
}

/// Events of one OpenLineage job, in arrival order, as (eventType, body).
fn of_job<'a>(events: &'a [Received], job: &str) -> Vec<(&'a str, &'a Value)> {
    events
        .iter()
        .filter(|r| r.body["job"]["name"] == job)
        .map(|r| (r.body["eventType"].as_str().unwrap_or_default(), &r.body))
        .collect()
}

fn types(events: &[(&str, &Value)]) -> Vec<String> {
    events.iter().map(|(t, _)| t.to_string()).collect()
}

#[tokio::test]
async fn a_run_with_a_failed_task_sends_start_and_end_events_with_parent_facets_datasets_and_the_bearer_token()
 {
    let Some(mut h) = Harness::new("openlineage").await else {
        return;
    };
    let token = format!("ol-token-{}", rand::random::<u64>());
    let secret_value = format!("pw-{}", rand::random::<u64>());
    h.create_secret(
        "pg",
        json!({"username": "tributary", "password": secret_value}),
    )
    .await;
    let endpoint = Endpoint::default();
    *endpoint.refuse_first.lock().unwrap() = 1;
    let url = start_endpoint(endpoint.clone()).await;
    h.extra_args = vec!["--openlineage-url".into(), url];
    h.extra_env = vec![("TRIBUTARY_OPENLINEAGE_API_KEY".into(), token.clone())];
    h.apply_data_source("warehouse", warehouse()).await;
    // extract → (load, check) → report; check fails for good, so report is skipped.
    h.apply_pipeline(
        "lineage",
        json!({"defaults": {"retries": 0, "backoffSeconds": 1, "timeoutSeconds": 600},
               "tasks": [task("extract", &[]), task("load", &["extract"]),
                         task("check", &["extract"]), task("report", &["check"])]}),
    )
    .await;
    h.start_operator();

    h.wait_job("lineage-g1-extract-1").await;
    let raw = dataset("s3://raw", "transactions/g1.jsonl", Some(42));
    h.finish_job(
        "lineage-g1-extract-1",
        0,
        Some(result(
            Outcome::Succeeded,
            "exported 42 documents",
            vec![dataset(
                "mongodb://127.0.0.1:27017",
                "retail.transactions",
                None,
            )],
            vec![raw.clone()],
        )),
    )
    .await;
    h.wait_job("lineage-g1-load-1").await;
    h.wait_job("lineage-g1-check-1").await;
    h.finish_job(
        "lineage-g1-load-1",
        0,
        Some(result(
            Outcome::Succeeded,
            "loaded 42 rows",
            vec![dataset("s3://raw", "transactions/g1.jsonl", None)],
            vec![dataset(
                "postgres://127.0.0.1:15432",
                "warehouse.staging.transactions",
                Some(42),
            )],
        )),
    )
    .await;
    h.finish_job(
        "lineage-g1-check-1",
        65,
        Some(result(
            Outcome::PermanentFailure,
            "notNull(customer_id): 3 nulls",
            vec![dataset(
                "postgres://127.0.0.1:15432",
                "warehouse.staging.transactions",
                None,
            )],
            vec![],
        )),
    )
    .await;
    let p = h
        .wait_pipeline("lineage", "the run to fail", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.last_run.as_ref())
                .is_some_and(|r| r.phase == RunPhase::Failed)
        })
        .await;
    let uid = p.uid().unwrap();

    // START + COMPLETE ×2, START + FAIL, and the run's START + FAIL: 8 events.
    let start = Instant::now();
    let events = loop {
        let events = endpoint.received.lock().unwrap().clone();
        if events.len() >= 8 {
            break events;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "8 OpenLineage events expected; got {:#?}",
            events.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Nothing more trickles in.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(endpoint.received.lock().unwrap().len(), 8);

    let run_id = pipeline_run_id(&uid, "g1").to_string();
    let pipeline = of_job(&events, "lineage");
    assert_eq!(types(&pipeline), vec!["START", "FAIL"]);
    for (_, body) in &pipeline {
        assert_eq!(body["run"]["runId"], run_id.as_str());
        assert_eq!(body["job"]["namespace"], h.ns.as_str());
        assert!(body["run"]["facets"].get("parent").is_none());
    }
    for (name, ends) in [
        ("extract", "COMPLETE"),
        ("load", "COMPLETE"),
        ("check", "FAIL"),
    ] {
        let job = format!("lineage.{name}");
        let task_events = of_job(&events, &job);
        assert_eq!(types(&task_events), vec!["START", ends], "{job}");
        for (_, body) in &task_events {
            assert_eq!(
                body["run"]["runId"],
                attempt_run_id(&uid, "g1", name, 1).to_string().as_str()
            );
            let parent = &body["run"]["facets"]["parent"];
            assert_eq!(parent["run"]["runId"], run_id.as_str(), "{job}");
            assert_eq!(parent["job"]["name"], "lineage");
            assert_eq!(parent["job"]["namespace"], h.ns.as_str());
            assert_eq!(
                body["run"]["facets"]["tributary"]["kubernetesJob"],
                format!("lineage-g1-{name}-1").as_str()
            );
        }
    }
    assert!(
        of_job(&events, "lineage.report").is_empty(),
        "a skipped task never ran"
    );
    // The pipeline's START comes before any task's; its FAIL after every task's end.
    let position = |job: &str, t: &str| {
        events
            .iter()
            .position(|r| r.body["job"]["name"] == job && r.body["eventType"] == t)
            .unwrap()
    };
    assert_eq!(position("lineage", "START"), 0);
    assert_eq!(position("lineage", "FAIL"), 7);

    // Datasets and statistics from the runner's results.
    let extract_done = of_job(&events, "lineage.extract")[1].1;
    assert_eq!(
        extract_done["inputs"][0]["namespace"],
        "mongodb://127.0.0.1:27017"
    );
    assert_eq!(extract_done["inputs"][0]["name"], "retail.transactions");
    let output = &extract_done["outputs"][0];
    assert_eq!(
        (output["namespace"].as_str(), output["name"].as_str()),
        (Some("s3://raw"), Some("transactions/g1.jsonl"))
    );
    assert_eq!(output["outputFacets"]["outputStatistics"]["rowCount"], 42);
    assert_eq!(output["outputFacets"]["outputStatistics"]["size"], 4200);
    let load_done = of_job(&events, "lineage.load")[1].1;
    assert_eq!(load_done["inputs"][0]["name"], "transactions/g1.jsonl");
    assert_eq!(
        load_done["outputs"][0]["name"],
        "warehouse.staging.transactions"
    );
    let check_failed = of_job(&events, "lineage.check")[1].1;
    assert!(
        check_failed["run"]["facets"]["errorMessage"]["message"]
            .as_str()
            .unwrap()
            .contains("3 nulls")
    );
    for r in &events {
        assert_eq!(
            r.body["schemaURL"],
            tributary_operator::openlineage::SCHEMA_URL
        );
        assert!(
            r.body["producer"]
                .as_str()
                .unwrap()
                .contains(env!("CARGO_PKG_VERSION"))
        );
        assert!(r.body["eventTime"].as_str().unwrap().ends_with('Z'));
    }

    // The bearer token arrived with every event; the 503 was retried, not lost.
    for r in &events {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str())
        );
    }
    let (_, metrics) = h.http_get("/metrics");
    assert!(
        metrics.contains("tributary_openlineage_events_total{outcome=\"sent\"} 8"),
        "{metrics}"
    );
    assert!(!metrics.contains("outcome=\"dropped\""), "{metrics}");

    // Neither the token nor the DataSource secret shows in status, Events, events sent or logs.
    h.wait_event_reasons("lineage", &["RunStarted", "RunFailed"])
        .await;
    let status_json = serde_json::to_string(&p.status).unwrap();
    let events_json = serde_json::to_string(&h.events().await).unwrap();
    let sent_json =
        serde_json::to_string(&events.iter().map(|r| &r.body).collect::<Vec<_>>()).unwrap();
    h.kill_operator();
    let logs = h.logs();
    assert!(logs.contains("sending OpenLineage RunEvents"), "{logs}");
    for (what, text) in [
        ("status", &status_json),
        ("Events", &events_json),
        ("the operator log", &logs),
    ] {
        assert!(!text.contains(&token), "the API key shows in {what}");
        assert!(!text.contains(&secret_value), "the secret shows in {what}");
    }
    assert!(!sent_json.contains(&secret_value));
    assert!(!sent_json.contains(&token));
}

#[tokio::test]
async fn an_endpoint_that_never_answers_does_not_hold_up_the_run() {
    let Some(mut h) = Harness::new("openlineage-down").await else {
        return;
    };
    // Accepts connections and never answers: the worst case for a sender (each request waits
    // for its timeout), worse than a refused connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let accepting = {
        let held = held.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                held.lock().unwrap().push(socket);
            }
        })
    };
    let token = format!("ol-token-{}", rand::random::<u64>());
    h.extra_args = vec![
        "--openlineage-url".into(),
        format!("http://{address}/api/v1/lineage"),
    ];
    h.extra_env = vec![("TRIBUTARY_OPENLINEAGE_API_KEY".into(), token.clone())];
    h.add_warehouse().await;
    h.apply_pipeline(
        "stuck",
        json!({"tasks": [task("a", &[]), task("b", &["a"]), task("c", &["b"])]}),
    )
    .await;
    h.start_operator();

    let start = Instant::now();
    for name in ["a", "b", "c"] {
        let job = format!("stuck-g1-{name}-1");
        h.wait_job(&job).await;
        h.succeed(&job, 1).await;
    }
    h.wait_pipeline("stuck", "the run to succeed", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.last_run.as_ref())
            .is_some_and(|r| r.phase == RunPhase::Succeeded)
    })
    .await;
    // A request times out after 10 s; had Job creation waited for one, this took 30 s or more.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the run took {:?}",
        start.elapsed()
    );
    assert!(
        !held.lock().unwrap().is_empty(),
        "the operator did try to deliver"
    );
    let (_, metrics) = h.http_get("/metrics");
    assert!(!metrics.contains("outcome=\"sent\""), "{metrics}");
    assert_eq!(h.http_get("/readyz").0, 200);
    h.kill_operator();
    assert!(!h.logs().contains(&token));
    accepting.abort();
}

//! Test harness against the real API server of the local stack: CRDs, a namespace per test,
//! the operator as a child process, and a stand-in kubelet that finishes runner pods.
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use serde_json::json;
use tributary_core::api::{DataSource, Pipeline};
use tributary_core::lineage::{Outcome, TaskResult};

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// One test's namespace and operator.
pub struct Harness {
    pub client: Client,
    pub ns: String,
    pub operator: Option<Child>,
    pub log_path: PathBuf,
    pub metrics_port: u16,
    pub extra_args: Vec<String>,
    /// Environment variables of the operator process (as the chart sets from Secrets).
    pub extra_env: Vec<(String, String)>,
    /// A fixed Lease identity (a restarted container of the same pod); default: one per start.
    pub identity: Option<String>,
    starts: u32,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Applies both CRDs (server-side) and waits until they are served.
pub async fn apply_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [DataSource::crd(), Pipeline::crd()] {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("tributary-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        wait(Duration::from_secs(30), "CRD established", || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

/// Polls `probe` until it returns `Some`, panicking with `what` after `timeout`.
pub async fn wait<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Harness {
    /// A fresh namespace with the CRDs applied; `None` (skip) without the stack outside CI.
    pub async fn new(test: &str) -> Option<Harness> {
        let stack = tributary_testkit::stack()?;
        // SAFETY of the environment: tests only read KUBECONFIG, set once to the same value.
        if std::env::var("KUBECONFIG").ok().as_deref() != Some(stack.kubeconfig.as_str()) {
            panic!("KUBECONFIG must point at the stack ({})", stack.kubeconfig);
        }
        let client = Client::try_default().await.expect("a client for the stack");
        apply_crds(&client).await;
        let suffix: u32 = rand::random::<u32>() % 100_000;
        let ns = format!("t-{test}-{suffix}");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": ns, "labels": {"tributary-test": "true"}}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let log_path = std::env::temp_dir().join(format!("{ns}-operator.log"));
        Some(Harness {
            client,
            ns,
            operator: None,
            log_path,
            metrics_port: free_port(),
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            identity: None,
            starts: 0,
        })
    }

    /// A handle on an existing namespace (for helper tasks); it never deletes the namespace.
    pub fn attach(client: Client, ns: String) -> Harness {
        Harness {
            client,
            ns,
            operator: None,
            log_path: PathBuf::new(),
            metrics_port: 0,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            identity: None,
            starts: u32::MAX / 2,
        }
    }

    /// Starts the operator (single-namespace mode, leader election in the test namespace).
    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none());
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        self.starts += 1;
        let child = Command::new(env!("CARGO_BIN_EXE_tributary-operator"))
            .args([
                "--namespace",
                &self.ns,
                "--lease-namespace",
                &self.ns,
                "--lease-duration-seconds",
                "4",
                "--metrics-addr",
                &format!("127.0.0.1:{}", self.metrics_port),
                "--identity",
                &self
                    .identity
                    .clone()
                    .unwrap_or_else(|| format!("test-operator-{}", self.starts)),
                "--runner-image",
                "tributary-runner:test",
                // This harness plays the kubelet: a kubelet the stack runs must never start
                // (and then overwrite the status of) a test's pods.
                "--runner-node-selector",
                "tributary.dev/test=no-such-node",
            ])
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the operator binary starts");
        self.operator = Some(child);
    }

    /// Kills the operator without warning (SIGKILL).
    pub fn kill_operator(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the operator with SIGTERM and returns whether it exited cleanly within 15 s.
    pub fn terminate_operator(&mut self) -> bool {
        let Some(mut child) = self.operator.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        false
    }

    /// A plain HTTP GET against the operator's endpoints: (status code, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pipelines(&self) -> Api<Pipeline> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn data_sources(&self) -> Api<DataSource> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn jobs_api(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn create_secret(&self, name: &str, data: serde_json::Value) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap(),
        )
        .await
        .unwrap();
    }

    pub async fn apply_data_source(&self, name: &str, spec: serde_json::Value) {
        let body = json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "DataSource",
            "metadata": {"name": name}, "spec": spec});
        self.data_sources()
            .patch(
                name,
                &PatchParams::apply("tributary-tests").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap();
    }

    /// The `warehouse` DataSource (`warehouse()`) and the `pg` Secret it takes its credentials
    /// from: what most tests' Pipelines read or write.
    pub async fn add_warehouse(&self) {
        self.create_secret("pg", json!({"username": "u", "password": "p"}))
            .await;
        self.apply_data_source("warehouse", warehouse()).await;
    }

    pub async fn apply_pipeline(&self, name: &str, spec: serde_json::Value) {
        let body = json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "Pipeline",
            "metadata": {"name": name}, "spec": spec});
        self.pipelines()
            .patch(
                name,
                &PatchParams::apply("tributary-tests").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap();
    }

    pub async fn annotate(&self, pipeline: &str, key: &str, value: &str) {
        let body = json!({"metadata": {"annotations": {key: value}}});
        self.pipelines()
            .patch(pipeline, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .unwrap();
    }

    /// Task Jobs of a Pipeline, by name.
    pub async fn job_names(&self, pipeline: &str) -> Vec<String> {
        let list = self
            .jobs_api()
            .list(&ListParams::default().labels(&format!("tributary.dev/pipeline={pipeline}")))
            .await
            .unwrap();
        let mut names: Vec<String> = list.items.iter().map(|j| j.name_any()).collect();
        names.sort();
        names
    }

    pub async fn wait_job(&self, name: &str) -> Job {
        let api = self.jobs_api();
        wait(TIMEOUT, &format!("Job {name}"), || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok().flatten() }
        })
        .await
    }

    pub async fn wait_pipeline(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Pipeline) -> bool,
    ) -> Pipeline {
        self.wait_pipeline_for(name, what, TIMEOUT, check).await
    }

    pub async fn wait_pipeline_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Pipeline) -> bool,
    ) -> Pipeline {
        let api = self.pipelines();
        let check = &check;
        wait(timeout, what, || {
            let api = api.clone();
            async move {
                let p = api.get(name).await.ok()?;
                check(&p).then_some(p)
            }
        })
        .await
    }

    pub async fn events(&self) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default()).await.unwrap().items
    }

    pub async fn event_reasons(&self, object: &str) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
            .filter_map(|e| e.reason)
            .collect()
    }

    /// The Event reasons of `object` once all of `expected` are among them. Events go out
    /// through the operator's bounded queue after the status write, so a test that saw
    /// the status must give them a moment; panics naming the missing ones after 20 s.
    pub async fn wait_event_reasons(&self, object: &str, expected: &[&str]) -> Vec<String> {
        let start = Instant::now();
        loop {
            let reasons = self.event_reasons(object).await;
            let missing: Vec<&&str> = expected
                .iter()
                .filter(|want| !reasons.iter().any(|r| r == **want))
                .collect();
            if missing.is_empty() {
                return reasons;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "Events {missing:?} of {object} missing after 20 s; seen {reasons:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Plays the kubelet for one runner pod: the container terminates with `exit_code` and
    /// `message` as its termination message; the Job is then finished by the real Job
    /// controller (or by us when none runs). Returns once the Job shows the outcome.
    pub async fn finish_job(&self, job: &str, exit_code: i32, message: Option<String>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let selector = format!("batch.kubernetes.io/job-name={job}");
        let start = Instant::now();
        let mut pod = None;
        while start.elapsed() < Duration::from_secs(3) {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap();
            if let Some(p) = list.items.into_iter().next() {
                pod = Some(p);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pod_name = match pod {
            Some(p) => p.name_any(),
            None => {
                // No Job controller: stand in for it with a pod of our own.
                let name = format!("{job}-harness");
                let body = json!({"metadata": {"name": name, "labels": {"batch.kubernetes.io/job-name": job,
                        "app.kubernetes.io/managed-by": "tributary-operator"}},
                    "spec": {"restartPolicy": "Never", "automountServiceAccountToken": false,
                             "containers": [{"name": "runner", "image": "tributary-runner:test"}]}});
                pods.create(
                    &PostParams::default(),
                    &serde_json::from_value(body).unwrap(),
                )
                .await
                .unwrap();
                name
            }
        };
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let mut terminated = json!({"exitCode": exit_code, "startedAt": now, "finishedAt": now, "reason": if exit_code == 0 {"Completed"} else {"Error"}});
        if let Some(message) = message {
            terminated["message"] = json!(message);
        }
        let status = json!({"status": {
            "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
            "containerStatuses": [{"name": "runner", "image": "tributary-runner:test", "imageID": "",
                "ready": false, "restartCount": 0, "started": false,
                "state": {"terminated": terminated}}]}});
        pods.patch_status(&pod_name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        let jobs = self.jobs_api();
        let finished = |job: &Job| {
            job.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                    })
                })
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if finished(&jobs.get(job).await.unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.set_job_finished(job, exit_code == 0, "BackoffLimitExceeded")
            .await;
    }

    /// Sets a Job's terminal conditions through the status subresource directly.
    pub async fn set_job_finished(&self, job: &str, succeeded: bool, reason: &str) {
        self.try_set_job_finished(job, succeeded, reason)
            .await
            .unwrap();
    }

    pub async fn try_set_job_finished(
        &self,
        job: &str,
        succeeded: bool,
        reason: &str,
    ) -> Result<(), kube::Error> {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        // A finished Job needs a startTime; the Job controller may not have set it yet.
        let started = self
            .jobs_api()
            .get(job)
            .await?
            .status
            .and_then(|s| s.start_time)
            .is_some();
        let status = if succeeded {
            json!({"status": {"conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now}],
                "completionTime": now, "succeeded": 1, "active": 0}})
        } else {
            json!({"status": {"conditions": [
                {"type": "FailureTarget", "status": "True", "reason": reason, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": reason, "message": "failed", "lastTransitionTime": now}],
                "failed": 1, "active": 0}})
        };
        let mut status = status;
        if !started {
            status["status"]["startTime"] = json!(now);
        }
        self.jobs_api()
            .patch_status(job, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map(|_| ())
    }

    /// Finishes a task Job successfully with a runner result.
    pub async fn succeed(&self, job: &str, rows: u64) {
        let result = result(Outcome::Succeeded, &format!("moved {rows} rows"), rows);
        self.finish_job(job, 0, Some(result)).await;
    }

    /// Fails a task Job with a retryable runner result.
    pub async fn fail(&self, job: &str, message: &str) {
        let result = result(Outcome::RetryableFailure, message, 0);
        self.finish_job(job, 75, Some(result)).await;
    }
}

/// A runner result as the runner writes it to its termination message.
pub fn result(outcome: Outcome, message: &str, rows: u64) -> String {
    TaskResult {
        outputs: vec![tributary_core::lineage::DatasetReport {
            namespace: "s3://raw".into(),
            name: format!("out/{rows}.jsonl"),
            rows: Some(rows),
            bytes: Some(rows * 100),
            sha256: None,
        }],
        rows: Some(rows),
        bytes: Some(rows * 100),
        files: Some(1),
        ..TaskResult::new(outcome, message)
    }
    .to_termination_message()
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill_operator();
        if self.starts < u32::MAX / 2 && std::env::var("TRIBUTARY_KEEP_NAMESPACES").is_err() {
            let _ = Command::new("kubectl")
                .args(["delete", "namespace", &self.ns, "--wait=false"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A `sql` task on the `warehouse` DataSource.
pub fn sql_task(name: &str, deps: &[&str]) -> serde_json::Value {
    json!({"name": name, "dependsOn": deps, "sql": {"dataSource": "warehouse", "statements": ["select 1"]}})
}

/// The warehouse DataSource of the local stack, with its credentials in Secret `pg`.
pub fn warehouse() -> serde_json::Value {
    json!({"postgres": {"host": "127.0.0.1", "port": 15432, "database": "warehouse", "sslMode": "disable",
        "credentialsSecretRef": {"name": "pg"}}, "checkIntervalSeconds": 0})
}

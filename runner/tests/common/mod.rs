//! Shared helpers of the runner's integration tests: DataSources pointing at the local stack,
//! credentials through the contract's bindings, unique names so tests run in parallel.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tributary_core::api::{DataSourceSpec, Task};
use tributary_core::contract::{
    CheckConnectionInput, RunnerInput, SecretField, TaskInput, secret_bindings,
};
use tributary_core::lineage::TaskResult;
use tributary_runner::connectors::s3::Lake;
use tributary_runner::{Progress, Secrets};
use tributary_testkit::{Stack, url_parts};

pub use tributary_testkit::stack;

/// A name unique to this process and call: tests share servers and run in parallel.
pub fn unique(label: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{label}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (h, p) = authority.rsplit_once(':').unwrap();
    (h.to_string(), p.parse().unwrap())
}

/// Every DataSource of the stack, named as in the retail example, plus their secret values.
pub struct Sources {
    pub specs: BTreeMap<String, DataSourceSpec>,
    pub env: HashMap<String, String>,
}

pub fn sources(stack: &Stack) -> Sources {
    let (s3_host, s3_port) = host_port(&stack.s3.endpoint);
    let (ftp_user, ftp_password, ftp_host, ftp_port) = url_parts(&stack.ftp_url);
    let (sftp_user, sftp_password, sftp_host, sftp_port) = url_parts(&stack.sftp_url);
    let specs: BTreeMap<String, DataSourceSpec> = [
        ("lake", json!({"s3": {"endpoint": format!("http://{s3_host}:{s3_port}"), "region": stack.s3.region,
            "bucket": stack.s3.bucket, "pathStyle": true, "credentialsSecretRef": {"name": "minio"}}})),
        ("warehouse", json!({"postgres": {"host": stack.postgres.host, "port": stack.postgres.port,
            "database": stack.postgres.database, "sslMode": "disable", "credentialsSecretRef": {"name": "pg"}}})),
        ("retail-mongo", json!({"mongodb": {"uri": stack.mongodb_uri, "database": "retail"}})),
        ("hr-ftp", json!({"ftp": {"host": ftp_host, "port": ftp_port, "credentialsSecretRef": {"name": "ftp"}}})),
        ("hr-ftps", json!({"ftp": {"host": ftp_host, "port": ftp_port, "tls": "explicit",
            "tlsOptions": {"insecureSkipVerify": true}, "credentialsSecretRef": {"name": "ftp"}}})),
        ("hr-sftp", json!({"sftp": {"host": sftp_host, "port": sftp_port,
            "insecureSkipHostKeyVerification": true, "credentialsSecretRef": {"name": "sftp"}}})),
        ("hr-sftp-key", json!({"sftp": {"host": sftp_host, "port": sftp_port,
            "insecureSkipHostKeyVerification": true, "credentialsSecretRef": {"name": "sftp-key"}}})),
        ("hr-http", json!({"http": {"baseUrl": format!("{}/", stack.http_url.trim_end_matches('/')), "listing": "json"}})),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), serde_json::from_value(v).unwrap()))
    .collect();
    let mut values: BTreeMap<(&str, SecretField), String> = BTreeMap::new();
    values.insert(
        ("lake", SecretField::AccessKeyId),
        stack.s3.access_key_id.clone(),
    );
    values.insert(
        ("lake", SecretField::SecretAccessKey),
        stack.s3.secret_access_key.clone(),
    );
    values.insert(
        ("warehouse", SecretField::Username),
        stack.postgres.user.clone(),
    );
    values.insert(
        ("warehouse", SecretField::Password),
        stack.postgres.password.clone(),
    );
    for ds in ["hr-ftp", "hr-ftps"] {
        values.insert((ds, SecretField::Username), ftp_user.clone());
        values.insert((ds, SecretField::Password), ftp_password.clone());
    }
    values.insert(("hr-sftp", SecretField::Username), sftp_user.clone());
    values.insert(("hr-sftp", SecretField::Password), sftp_password.clone());
    values.insert(("hr-sftp-key", SecretField::Username), sftp_user);
    values.insert(
        ("hr-sftp-key", SecretField::PrivateKey),
        std::fs::read_to_string(&stack.sftp_key).unwrap_or_default(),
    );
    // The environment a pod would get: variable names from the contract's bindings.
    let refs: BTreeMap<&str, &DataSourceSpec> =
        specs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut env = HashMap::new();
    for b in secret_bindings(&refs) {
        if let Some(v) = values.get(&(b.data_source.as_str(), b.field.clone())) {
            env.insert(b.env.clone(), v.clone());
        }
    }
    Sources { specs, env }
}

impl Sources {
    /// Replaces a DataSource spec (e.g. a wrong port or a missing bucket) keeping its secrets.
    pub fn with(mut self, name: &str, spec: Value) -> Sources {
        self.specs
            .insert(name.to_string(), serde_json::from_value(spec).unwrap());
        self
    }

    pub fn set_env(mut self, name: &str, value: &str) -> Sources {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    pub fn task_input(&self, task: Value) -> RunnerInput {
        let task: Task = serde_json::from_value(task).unwrap();
        let names: Vec<String> = task
            .data_source_refs()
            .iter()
            .map(|u| u.name.to_string())
            .collect();
        RunnerInput::Task(TaskInput {
            pipeline: "tests".into(),
            namespace: "retail".into(),
            run_id: unique("r"),
            attempt: 1,
            logical_time: chrono::Utc::now(),
            time_zone: Some("Europe/London".into()),
            data_sources: self
                .specs
                .iter()
                .filter(|(n, _)| names.contains(n))
                .map(|(n, s)| (n.clone(), s.clone()))
                .collect(),
            task,
            watermark: None,
        })
    }

    pub async fn run(&self, input: &RunnerInput) -> TaskResult {
        let secrets = Secrets::resolve(input, |name| self.env.get(name).cloned()).unwrap();
        tributary_runner::execute(input, &secrets, Progress::default()).await
    }

    pub async fn run_task(&self, task: Value) -> TaskResult {
        self.run(&self.task_input(task)).await
    }

    pub async fn check_connection(&self, name: &str) -> TaskResult {
        let input = RunnerInput::CheckConnection(CheckConnectionInput {
            name: name.into(),
            namespace: "retail".into(),
            spec: self.specs[name].clone(),
        });
        self.run(&input).await
    }

    pub fn lake(&self) -> Lake {
        let input = RunnerInput::CheckConnection(CheckConnectionInput {
            name: "lake".into(),
            namespace: "retail".into(),
            spec: self.specs["lake"].clone(),
        });
        let secrets = Secrets::resolve(&input, |name| self.env.get(name).cloned()).unwrap();
        Lake::connect("lake", self.specs["lake"].s3.as_ref().unwrap(), &secrets).unwrap()
    }
}

pub async fn pg(stack: &Stack) -> tokio_postgres::Client {
    let p = &stack.postgres;
    let (client, conn) = tokio_postgres::Config::new()
        .host(&p.host)
        .port(p.port)
        .user(&p.user)
        .password(&p.password)
        .dbname(&p.database)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Reads a whole (small) object for assertions.
pub async fn read_object(lake: &Lake, key: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    lake.get(key)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

pub fn assert_succeeded(result: &TaskResult) {
    assert_eq!(
        result.outcome,
        tributary_core::lineage::Outcome::Succeeded,
        "{}",
        result.message
    );
}

pub fn assert_permanent(result: &TaskResult) {
    assert_eq!(
        result.outcome,
        tributary_core::lineage::Outcome::PermanentFailure,
        "{}",
        result.message
    );
}

pub fn assert_retryable(result: &TaskResult) {
    assert_eq!(
        result.outcome,
        tributary_core::lineage::Outcome::RetryableFailure,
        "{}",
        result.message
    );
}

/// A port on loopback where nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

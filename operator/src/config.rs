//! Operator configuration: command-line flags, each also settable by an environment variable.

use std::net::SocketAddr;

use clap::Parser;

/// How the operator runs. Every flag has an environment variable, for the Helm chart.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "tributary-operator",
    version,
    about = "Reconciles Tributary Pipelines and DataSources into Kubernetes Jobs."
)]
pub struct Config {
    /// Runner image used for every task Job unless a Pipeline sets `spec.runner.image`.
    #[arg(
        long,
        env = "TRIBUTARY_RUNNER_IMAGE",
        default_value = "ghcr.io/tributary-dev/runner:0.1.0"
    )]
    pub runner_image: String,
    /// Pull policy of the runner image unless a Pipeline sets `spec.runner.imagePullPolicy`.
    #[arg(
        long,
        env = "TRIBUTARY_RUNNER_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub runner_image_pull_policy: String,
    /// Only watch and act in this namespace (single-namespace mode, for a Role instead of a ClusterRole).
    #[arg(long, env = "TRIBUTARY_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Run task and check pods in the node's network namespace. For test beds whose data
    /// services listen on 127.0.0.1 only; never in production (pods see the node's ports).
    #[arg(long, env = "TRIBUTARY_HOST_NETWORK", default_value_t = false)]
    pub host_network: bool,
    /// `ttlSecondsAfterFinished` of task Jobs. Must exceed the longest operator downtime: a Job
    /// removed before the operator saw it finish is created again.
    #[arg(long, env = "TRIBUTARY_JOB_TTL_SECONDS", default_value_t = 86_400)]
    pub job_ttl_seconds: i32,
    /// `ttlSecondsAfterFinished` of DataSource connection-check Jobs.
    #[arg(long, env = "TRIBUTARY_CHECK_JOB_TTL_SECONDS", default_value_t = 3_600)]
    pub check_job_ttl_seconds: i32,
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoints.
    #[arg(long, env = "TRIBUTARY_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Take a coordination.k8s.io Lease before acting, so that only one replica acts.
    #[arg(long, env = "TRIBUTARY_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(
        long,
        env = "TRIBUTARY_LEASE_NAME",
        default_value = "tributary-operator"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (defaults to the pod's namespace, then `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// How long a Lease stays valid without renewal, in seconds.
    #[arg(long, env = "TRIBUTARY_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u32,
    /// Identity written into the Lease (defaults to the pod name, then host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Sustained requests per second toward the API server (client-side rate limit).
    #[arg(long, env = "TRIBUTARY_KUBE_QPS", default_value_t = 50)]
    pub kube_qps: u32,
    /// Requests allowed in a burst above `kube-qps`.
    #[arg(long, env = "TRIBUTARY_KUBE_BURST", default_value_t = 100)]
    pub kube_burst: u32,
    /// Requests in flight toward the API server at most. Every one holds an HTTP/1
    /// connection (with its TLS buffers) open, so this bounds the client's memory too.
    #[arg(long, env = "TRIBUTARY_KUBE_MAX_IN_FLIGHT", default_value_t = 32)]
    pub kube_max_in_flight: usize,
    /// Pipelines (and DataSources) reconciled at once.
    #[arg(long, env = "TRIBUTARY_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "TRIBUTARY_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// Publish an Event for every task start (runs, retries and failures always get one).
    #[arg(long, env = "TRIBUTARY_TASK_START_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub task_start_events: bool,
}

impl Config {
    /// The identity of this replica in the Lease.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "tributary-operator".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

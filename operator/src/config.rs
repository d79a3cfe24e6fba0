//! Operator configuration: command-line flags, each also settable by an environment variable.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use clap::Parser;

/// A node selector as the operator's flag gives it.
pub type NodeSelector = BTreeMap<String, String>;

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
    /// Node selector of every runner pod (task and connection check), as `key=value` pairs
    /// separated by commas, e.g. `tributary.dev/pool=data`. A Pipeline that sets
    /// `spec.runner.nodeSelector` replaces it for its tasks.
    #[arg(long, env = "TRIBUTARY_RUNNER_NODE_SELECTOR", default_value = "", value_parser = parse_node_selector)]
    pub runner_node_selector: NodeSelector,
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
    /// New runs whose first Jobs are being created at once; further run starts (and all while
    /// 16 Job creates are in flight) wait their turn, so that runs under way keep dispatching
    /// their next tasks during a burst.
    #[arg(long, env = "TRIBUTARY_RUN_START_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub run_start_concurrency: u16,
    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "TRIBUTARY_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// Publish `TaskStarted` Events: one per status write, naming every task started since the
    /// previous one (runs, retries and failures always get theirs).
    #[arg(long, env = "TRIBUTARY_TASK_START_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub task_start_events: bool,
    /// OpenLineage endpoint RunEvents are POSTed to, e.g. `http://marquez:5000/api/v1/lineage`.
    /// Unset: no events are sent (lineage is still written into status). A bearer token, if
    /// the endpoint needs one, comes only from `TRIBUTARY_OPENLINEAGE_API_KEY`.
    #[arg(long, env = "TRIBUTARY_OPENLINEAGE_URL", value_parser = crate::openlineage_client::parse_url)]
    pub openlineage_url: Option<reqwest::Url>,
    /// OpenLineage job namespace of a Pipeline's runs; `{namespace}` stands for the
    /// Pipeline's Kubernetes namespace (the default), e.g. `prod-eu.{namespace}` to tell
    /// clusters apart.
    #[arg(
        long,
        env = "TRIBUTARY_OPENLINEAGE_NAMESPACE",
        default_value = crate::openlineage::NAMESPACE_PLACEHOLDER,
        value_parser = crate::openlineage::check_namespace_template
    )]
    pub openlineage_namespace: String,
}

/// Environment variable of the OpenLineage bearer token; never a flag, so it stays out of
/// process listings and `--help`.
pub const OPENLINEAGE_API_KEY_ENV: &str = "TRIBUTARY_OPENLINEAGE_API_KEY";

impl Config {
    /// Where to send OpenLineage RunEvents, if anywhere; the API key from the environment.
    pub fn openlineage(&self) -> Option<crate::openlineage_client::Settings> {
        Some(crate::openlineage_client::Settings {
            url: self.openlineage_url.clone()?,
            namespace: self.openlineage_namespace.clone(),
            api_key: std::env::var(OPENLINEAGE_API_KEY_ENV)
                .ok()
                .and_then(crate::openlineage_client::ApiKey::new),
        })
    }

    /// The identity of this replica in the Lease.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "tributary-operator".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Parses `key=value[,key=value…]` (empty: no selector); keys and values must be valid
/// label keys and values, or the operator refuses to start.
pub fn parse_node_selector(text: &str) -> Result<NodeSelector, String> {
    let mut selector = NodeSelector::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        if !valid_label_key(key) {
            return Err(format!("{key:?} is not a valid label key"));
        }
        if !valid_label_value(value) {
            return Err(format!("{value:?} (of {key}) is not a valid label value"));
        }
        if selector
            .insert(key.to_string(), value.to_string())
            .is_some()
        {
            return Err(format!("{key} is given twice"));
        }
    }
    Ok(selector)
}

/// `[prefix/]name`: a DNS subdomain prefix and a name of up to 63 characters.
fn valid_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_label_value(name)
}

/// Up to 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric (or empty).
fn valid_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value
            .bytes()
            .next()
            .is_none_or(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_none_or(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_selector_is_read_from_comma_separated_pairs() {
        let selector = parse_node_selector("tributary.dev/pool=data, zone=eu-1").unwrap();
        assert_eq!(selector["tributary.dev/pool"], "data");
        assert_eq!(selector["zone"], "eu-1");
        assert!(parse_node_selector("").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_node_selector_is_refused_with_the_offending_part() {
        assert!(
            parse_node_selector("pool")
                .unwrap_err()
                .contains("\"pool\" is not key=value")
        );
        assert!(
            parse_node_selector("Bad_Prefix/x=1")
                .unwrap_err()
                .contains("label key")
        );
        assert!(
            parse_node_selector("pool=-x")
                .unwrap_err()
                .contains("label value")
        );
        assert!(
            parse_node_selector("a=1,a=2")
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn the_node_selector_flag_reaches_the_configuration() {
        let config =
            Config::try_parse_from(["tributary-operator", "--runner-node-selector", "pool=data"])
                .unwrap();
        assert_eq!(config.runner_node_selector["pool"], "data");
        let error = Config::try_parse_from(["tributary-operator", "--runner-node-selector", "x"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--runner-node-selector"), "{error}");
    }

    #[test]
    fn a_bad_openlineage_url_is_rejected_at_startup_naming_the_flag() {
        let err =
            Config::try_parse_from(["tributary-operator", "--openlineage-url", "marquez:5000"])
                .unwrap_err()
                .to_string();
        assert!(err.contains("--openlineage-url"), "{err}");
        assert!(err.contains("http or https"), "{err}");
    }

    #[test]
    fn without_an_openlineage_url_nothing_is_sent_and_the_namespace_defaults_to_the_pipelines() {
        let config = Config::try_parse_from(["tributary-operator"]).unwrap();
        assert!(config.openlineage().is_none());
        assert_eq!(config.openlineage_namespace, "{namespace}");
        let config = Config::try_parse_from([
            "tributary-operator",
            "--openlineage-url",
            "http://marquez:5000/api/v1/lineage",
            "--openlineage-namespace",
            "prod.{namespace}",
        ])
        .unwrap();
        let settings = config.openlineage().unwrap();
        assert_eq!(settings.url.as_str(), "http://marquez:5000/api/v1/lineage");
        assert_eq!(settings.namespace, "prod.{namespace}");
        assert!(
            Config::try_parse_from(["tributary-operator", "--openlineage-namespace", "{x}"])
                .unwrap_err()
                .to_string()
                .contains("--openlineage-namespace")
        );
    }
}

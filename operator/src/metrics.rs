//! Prometheus metrics of the operator (prometheus-client), served on `/metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    /// The `Error` variant (`Error::metric_label`).
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadLabels {
    /// `watch` (the pod watch knew), `watch_after_wait` (once it caught up with the Job) or
    /// `list` (asked the API server).
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// A request to the API server: `verb` (`create`, `patch`, `list`, `watch`, …) and
/// `resource` (with subresource, e.g. `pipelines/status`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    pub trigger: String,
}

/// Every metric of the operator.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    pub runs_started: Family<TriggerLabels, Counter>,
    pub runs_finished: Family<OutcomeLabels, Counter>,
    pub tasks: Family<OutcomeLabels, Counter>,
    pub jobs_created: Counter,
    pub run_starts_deferred: Counter,
    pub dispatch_latency: Histogram,
    pub leader: Gauge,
    pub kube_requests: Family<RequestLabels, Counter>,
    pub pod_result_reads: Family<ReadLabels, Counter>,
    pub kube_request_duration: Family<RequestLabels, Histogram>,
    pub openlineage_events: Family<OutcomeLabels, Counter>,
    pub status_spacing: Gauge<f64, AtomicU64>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tributary");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles started, by controller",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and error variant",
            errors.clone(),
        );
        let reconcile_duration =
            Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(latency_buckets())
            });
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile, by controller",
            reconcile_duration.clone(),
        );
        let runs_started = Family::<TriggerLabels, Counter>::default();
        registry.register(
            "runs_started",
            "Pipeline runs started, by trigger",
            runs_started.clone(),
        );
        let runs_finished = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "runs_finished",
            "Pipeline runs finished, by outcome (Succeeded, Failed, Cancelled)",
            runs_finished.clone(),
        );
        let tasks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tasks_finished",
            "Task attempts that ended, by outcome (Succeeded, Failed, Skipped, Retrying)",
            tasks.clone(),
        );
        let jobs_created = Counter::default();
        registry.register(
            "jobs_created",
            "Jobs created (task attempts and connection checks)",
            jobs_created.clone(),
        );
        let run_starts_deferred = Counter::default();
        registry.register(
            "run_starts_deferred",
            "Run starts that waited for their turn (--run-start-concurrency runs were starting)",
            run_starts_deferred.clone(),
        );
        let dispatch_latency = Histogram::new(latency_buckets());
        registry.register(
            "dispatch_latency_seconds",
            "From the operator seeing the last dependency's Job finish to the dependent Job created",
            dispatch_latency.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and acts",
            leader.clone(),
        );
        let kube_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kube_requests",
            "Requests sent to the API server, by verb and resource",
            kube_requests.clone(),
        );
        let pod_result_reads = Family::<ReadLabels, Counter>::default();
        registry.register(
            "pod_result_reads",
            "Runner results of finished Jobs read, by source (the pod watch, or a list request)",
            pod_result_reads.clone(),
        );
        let kube_request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(latency_buckets())
            });
        registry.register(
            "kube_request_duration_seconds",
            "Time from sending a request to the API server to its response (watches excluded)",
            kube_request_duration.clone(),
        );
        let openlineage_events = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "openlineage_events",
            "OpenLineage RunEvents, by outcome (sent, failed after retries or refused, dropped from a full queue)",
            openlineage_events.clone(),
        );
        let status_spacing = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "status_progress_spacing_seconds",
            "Least time between two progress writes of one Pipeline's status now (1 s; longer while many Pipelines have status waiting)",
            status_spacing.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            errors,
            reconcile_duration,
            runs_started,
            runs_finished,
            tasks,
            jobs_created,
            run_starts_deferred,
            dispatch_latency,
            leader,
            kube_requests,
            pod_result_reads,
            kube_request_duration,
            openlineage_events,
            status_spacing,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_labelled_by_their_variant() {
        let metrics = Metrics::default();
        metrics
            .errors
            .get_or_create(&ErrorLabels {
                controller: "pipeline",
                error: crate::error::Error::MissingField("x").metric_label(),
            })
            .inc();
        let text = metrics.render();
        assert!(text.contains("tributary_reconcile_errors_total{controller=\"pipeline\",error=\"missing_field\"} 1"), "{text}");
        assert!(text.contains("tributary_dispatch_latency_seconds_bucket"));
    }

    #[test]
    fn the_status_progress_spacing_is_exported_in_seconds() {
        let metrics = Metrics::default();
        metrics.status_spacing.set(5.0);
        let text = metrics.render();
        assert!(
            text.contains("\ntributary_status_progress_spacing_seconds 5"),
            "{text}"
        );
    }
}

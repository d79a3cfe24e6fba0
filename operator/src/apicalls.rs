//! Counts and times every request the kube client sends, by verb and resource, so the cost
//! of a run in API calls can be read off `/metrics` (`tributary_kube_requests_total`,
//! `tributary_kube_request_duration_seconds`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tower::{Layer, Service};

use crate::metrics::RequestLabels;

/// The verb and resource (with subresource, e.g. `pipelines/status`) of a request path.
pub fn classify(method: &http::Method, path: &str, query: Option<&str>) -> RequestLabels {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Skip the group/version prefix: `/api/v1` or `/apis/{group}/{version}`.
    let rest: &[&str] = match segments.first() {
        Some(&"api") => segments.get(2..).unwrap_or_default(),
        Some(&"apis") => segments.get(3..).unwrap_or_default(),
        _ => &[],
    };
    // `namespaces/{ns}/{resource}…`, unless the namespace itself is the resource.
    let rest = match rest {
        ["namespaces", _, resource, more @ ..] => {
            let mut v = vec![*resource];
            v.extend_from_slice(more);
            v
        }
        other => other.to_vec(),
    };
    let resource = match rest.as_slice() {
        [] => "other".to_string(),
        [resource] | [resource, _] => (*resource).to_string(),
        [resource, _, sub, ..] => format!("{resource}/{sub}"),
    };
    let named = rest.len() >= 2;
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PATCH => "patch",
        http::Method::PUT => "update",
        http::Method::DELETE => "delete",
        _ => "other",
    };
    RequestLabels { verb, resource }
}

/// Layer counting requests into `counts` and timing them (until the response headers; not
/// watches, which stay open) into `durations`.
#[derive(Clone)]
pub struct CountRequestsLayer {
    counts: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
}

impl CountRequestsLayer {
    pub fn new(
        counts: Family<RequestLabels, Counter>,
        durations: Family<RequestLabels, Histogram>,
    ) -> CountRequestsLayer {
        CountRequestsLayer { counts, durations }
    }
}

impl<S> Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            counts: self.counts.clone(),
            durations: self.durations.clone(),
        }
    }
}

/// A service counting and timing each request it passes on.
#[derive(Clone)]
pub struct CountRequests<S> {
    inner: S,
    counts: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
}

impl<S, B> Service<http::Request<B>> for CountRequests<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let uri = request.uri();
        let labels = classify(request.method(), uri.path(), uri.query());
        self.counts.get_or_create(&labels).inc();
        let timed = (labels.verb != "watch").then(|| self.durations.get_or_create(&labels).clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let started = Instant::now();
            let result = response.await;
            if let Some(histogram) = timed {
                histogram.observe(started.elapsed().as_secs_f64());
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(method: http::Method, path: &str, query: Option<&str>) -> (String, String) {
        let l = classify(&method, path, query);
        (l.verb.to_string(), l.resource)
    }

    #[test]
    fn requests_are_named_by_verb_and_resource_with_subresource() {
        let cases = [
            (
                http::Method::POST,
                "/apis/batch/v1/namespaces/a/jobs",
                None,
                ("create", "jobs"),
            ),
            (
                http::Method::PATCH,
                "/apis/tributary.dev/v1alpha1/namespaces/a/pipelines/p/status",
                Some("fieldManager=x&force=true"),
                ("patch", "pipelines/status"),
            ),
            (
                http::Method::GET,
                "/api/v1/namespaces/a/pods",
                Some("labelSelector=x&resourceVersion=0"),
                ("list", "pods"),
            ),
            (
                http::Method::GET,
                "/apis/batch/v1/jobs",
                Some("watch=true&resourceVersion=5"),
                ("watch", "jobs"),
            ),
            (
                http::Method::GET,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
                None,
                ("get", "leases"),
            ),
            (
                http::Method::GET,
                "/api/v1/namespaces/a",
                None,
                ("get", "namespaces"),
            ),
        ];
        for (method, path, query, (verb, resource)) in cases {
            assert_eq!(
                labels(method, path, query),
                (verb.to_string(), resource.to_string()),
                "{path}"
            );
        }
    }
}

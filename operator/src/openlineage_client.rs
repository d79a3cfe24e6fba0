//! Delivery of OpenLineage RunEvents to an HTTP endpoint: bounded queues drained by a few
//! workers, retries with backoff on server and connection errors, drops counted, never
//! blocking a reconcile.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::sync::mpsc;

use crate::metrics::OutcomeLabels;
use crate::openlineage::RunEvent;

/// Events waiting to be sent at most, over all workers; beyond it new ones are dropped (and
/// counted) so a slow or absent endpoint never makes them pile up in memory.
pub const QUEUE: usize = 4096;
/// Workers, each owning a share of the queue. Events of one Pipeline always go to the same
/// worker, so they arrive in the order they were decided (START before COMPLETE).
pub const WORKERS: usize = 4;
/// Tries per event (the first and the retries).
pub const TRIES: u32 = 5;
/// Wait before the first retry; doubled for each next one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Per request, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The bearer token, never printed.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Option<ApiKey> {
        let key = key.trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: reqwest::Url,
    /// Job namespace template (`{namespace}` is the Pipeline's namespace).
    pub namespace: String,
    pub api_key: Option<ApiKey>,
}

/// Counts of `tributary_openlineage_events_total` by outcome.
#[derive(Clone)]
struct Outcomes(Family<OutcomeLabels, Counter>);

impl Outcomes {
    fn count(&self, outcome: &str) {
        self.0
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
}

/// Queues RunEvents for delivery.
#[derive(Clone)]
pub struct Sender {
    namespace: Arc<str>,
    queues: Arc<[mpsc::Sender<Arc<[u8]>>]>,
    outcomes: Outcomes,
}

impl Sender {
    /// Starts the workers (needs a Tokio runtime).
    pub fn new(settings: Settings, events: Family<OutcomeLabels, Counter>) -> Sender {
        let outcomes = Outcomes(events);
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("tributary-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with the default TLS roots");
        let authorization = settings.api_key.as_ref().map(|key| {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.0))
                .expect("an API key without control characters");
            // Kept out of debug output and HTTP/2 header compression tables.
            value.set_sensitive(true);
            value
        });
        let queues: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Arc<[u8]>>(QUEUE / WORKERS);
                let worker = Worker {
                    client: client.clone(),
                    url: settings.url.clone(),
                    authorization: authorization.clone(),
                    outcomes: outcomes.clone(),
                };
                tokio::spawn(worker.run(rx));
                tx
            })
            .collect();
        Sender {
            namespace: settings.namespace.into(),
            queues: queues.into(),
            outcomes,
        }
    }

    /// The job namespace template events are built with.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Queues the events about one Pipeline (identified by `key`) in order; drops those that
    /// do not fit. Never waits.
    pub fn send(&self, key: &str, events: Vec<RunEvent>) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let queue = &self.queues[(hasher.finish() % self.queues.len() as u64) as usize];
        for event in events {
            let body = match serde_json::to_vec(&event) {
                Ok(body) => body,
                Err(err) => {
                    tracing::warn!(error = %err, "OpenLineage event not serialisable; dropped");
                    self.outcomes.count("dropped");
                    continue;
                }
            };
            if queue.try_send(body.into()).is_err() {
                self.outcomes.count("dropped");
                tracing::debug!("OpenLineage queue full; dropping an event");
            }
        }
    }
}

struct Worker {
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: Option<HeaderValue>,
    outcomes: Outcomes,
}

/// What one POST came to.
enum Attempt {
    Sent,
    /// Worth trying again: connection error, timeout, 5xx, 429.
    Retry(String),
    /// Trying again cannot help: the endpoint refused the event (4xx).
    GiveUp(String),
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Arc<[u8]>>) {
        while let Some(body) = rx.recv().await {
            self.deliver(&body).await;
        }
    }

    async fn deliver(&self, body: &Arc<[u8]>) {
        let mut backoff = FIRST_BACKOFF;
        for tried in 1..=TRIES {
            match self.post(body).await {
                Attempt::Sent => {
                    self.outcomes.count("sent");
                    return;
                }
                Attempt::GiveUp(why) => {
                    tracing::warn!(endpoint = %self.endpoint(), error = %why, "OpenLineage endpoint refused an event; dropped");
                    self.outcomes.count("failed");
                    return;
                }
                Attempt::Retry(why) if tried == TRIES => {
                    tracing::warn!(endpoint = %self.endpoint(), error = %why, tries = TRIES, "OpenLineage event not delivered; dropped");
                    self.outcomes.count("failed");
                    return;
                }
                Attempt::Retry(why) => {
                    tracing::debug!(endpoint = %self.endpoint(), error = %why, "OpenLineage event not delivered; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
    }

    async fn post(&self, body: &Arc<[u8]>) -> Attempt {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        match request.send().await {
            Ok(response) => classify(response.status()),
            // reqwest's error text names the URL, never headers.
            Err(err) => Attempt::Retry(without_url(&err)),
        }
    }

    /// The endpoint for logs: scheme, host and port only (a query could hold a token).
    fn endpoint(&self) -> String {
        let mut url = self.url.clone();
        url.set_path("");
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }
}

fn classify(status: reqwest::StatusCode) -> Attempt {
    if status.is_success() {
        Attempt::Sent
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Attempt::Retry(format!("HTTP {status}"))
    } else {
        Attempt::GiveUp(format!("HTTP {status}"))
    }
}

fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Checks `--openlineage-url`: absolute http(s), a host, no credentials in it (the API key
/// goes in `TRIBUTARY_OPENLINEAGE_API_KEY`, so it never lands in logs or process lists).
pub fn parse_url(value: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not http or https (e.g. http://marquez:5000/api/v1/lineage)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials do not belong in the URL; set TRIBUTARY_OPENLINEAGE_API_KEY".into(),
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_or_https_url_with_a_host_is_accepted() {
        let url = parse_url("http://marquez:5000/api/v1/lineage").unwrap();
        assert_eq!(url.path(), "/api/v1/lineage");
        assert!(parse_url("https://lineage.example.com/api/v1/lineage").is_ok());
    }

    #[test]
    fn a_url_that_is_not_http_or_has_credentials_is_rejected_with_the_reason() {
        assert!(parse_url("marquez:5000").unwrap_err().contains("scheme"));
        assert!(parse_url("not a url").unwrap_err().contains("not a URL"));
        assert!(
            parse_url("http://user:pw@marquez:5000/api/v1/lineage")
                .unwrap_err()
                .contains("TRIBUTARY_OPENLINEAGE_API_KEY")
        );
    }

    #[test]
    fn server_errors_and_throttling_are_retried_but_other_refusals_are_not() {
        assert!(matches!(
            classify(reqwest::StatusCode::CREATED),
            Attempt::Sent
        ));
        assert!(matches!(
            classify(reqwest::StatusCode::BAD_GATEWAY),
            Attempt::Retry(_)
        ));
        assert!(matches!(
            classify(reqwest::StatusCode::TOO_MANY_REQUESTS),
            Attempt::Retry(_)
        ));
        assert!(matches!(
            classify(reqwest::StatusCode::UNAUTHORIZED),
            Attempt::GiveUp(_)
        ));
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let settings = Settings {
            url: parse_url("http://marquez:5000/api/v1/lineage").unwrap(),
            namespace: "{namespace}".into(),
            api_key: ApiKey::new("s3cr3t-key".into()),
        };
        assert!(!format!("{settings:?}").contains("s3cr3t-key"));
        assert!(ApiKey::new("  ".into()).is_none());
    }

    #[tokio::test]
    async fn events_beyond_the_queue_are_dropped_and_counted_without_waiting() {
        let family = Family::<OutcomeLabels, Counter>::default();
        // A port nothing listens on: every worker is busy retrying its first event.
        let sender = Sender::new(
            Settings {
                url: parse_url("http://127.0.0.1:9/lineage").unwrap(),
                namespace: "{namespace}".into(),
                api_key: None,
            },
            family.clone(),
        );
        let event = crate::openlineage::tests::an_event();
        let start = std::time::Instant::now();
        sender.send("ns/p", vec![event; QUEUE / WORKERS + 10]);
        assert!(start.elapsed() < Duration::from_secs(1));
        let dropped = family
            .get_or_create(&OutcomeLabels {
                outcome: "dropped".into(),
            })
            .get();
        assert!((9..=10).contains(&dropped), "dropped {dropped}");
    }
}

//! Events the decisions ask for, and their publication as `events.k8s.io/v1` Events.
//!
//! kube-runtime's `Recorder` folds events with the same reason into one series and keeps the
//! first note, which would hide the second task's start behind the first; each Event here is
//! its own object so every note survives.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

/// Longest Event note the API server accepts.
pub const MAX_NOTE: usize = 1024;

/// One Event to publish about the reconciled object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub warning: bool,
    /// CamelCase reason, e.g. `RunStarted`.
    pub reason: &'static str,
    pub note: String,
}

impl EventNote {
    pub fn normal(reason: &'static str, note: impl Into<String>) -> EventNote {
        EventNote {
            warning: false,
            reason,
            note: note.into(),
        }
    }

    pub fn warning(reason: &'static str, note: impl Into<String>) -> EventNote {
        EventNote {
            warning: true,
            reason,
            note: note.into(),
        }
    }
}

/// Cuts a note to the API server's limit on a character boundary.
pub fn fit_note(mut note: String) -> String {
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    note
}

/// Events waiting to be published at most; beyond it new Events are dropped (as client-go's
/// broadcaster does), so a slow API server never makes Events pile up in memory or compete
/// with Job creation without bound.
pub const QUEUE: usize = 1024;

/// Publishes Events as the operator, from a bounded queue drained by a few workers.
#[derive(Clone)]
pub struct Publisher {
    queue: tokio::sync::mpsc::Sender<(ObjectReference, EventNote)>,
}

impl Publisher {
    /// Starts the workers (needs a Tokio runtime).
    pub fn new(client: Client, instance: String) -> Publisher {
        let (queue, rx) = tokio::sync::mpsc::channel::<(ObjectReference, EventNote)>(QUEUE);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..4 {
            let rx = rx.clone();
            let client = client.clone();
            let instance = instance.clone();
            tokio::spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some((object, event)) = next else { break };
                    create(&client, &instance, &object, &event).await;
                }
            });
        }
        Publisher { queue }
    }

    /// Queues Events regarding `object`, in order; drops them when the queue is full.
    pub fn publish(&self, object: &ObjectReference, events: Vec<EventNote>) {
        for event in events {
            if self.queue.try_send((object.clone(), event)).is_err() {
                tracing::debug!("Event queue full; dropping an Event");
            }
        }
    }
}

/// Creates one Event regarding `object`. Failures are logged, never fatal: an Event is advice
/// to humans and must not block a run.
async fn create(client: &Client, instance: &str, object: &ObjectReference, event: &EventNote) {
    let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
    let now = Timestamp::now();
    let name = format!(
        "{}.{:x}",
        object.name.as_deref().unwrap_or("tributary"),
        now.as_nanosecond()
    );
    let body = Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        action: Some("Reconcile".into()),
        reason: Some(event.reason.into()),
        note: Some(fit_note(event.note.clone())),
        type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
        event_time: Some(MicroTime(now)),
        regarding: Some(object.clone()),
        reporting_controller: Some("tributary.dev/operator".into()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(err) = api.create(&PostParams::default(), &body).await {
        tracing::warn!(reason = event.reason, error = %err, "could not publish an Event");
    }
}

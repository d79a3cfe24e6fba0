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

/// Publishes Events as the operator.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    instance: String,
}

impl Publisher {
    pub fn new(client: Client, instance: String) -> Publisher {
        Publisher { client, instance }
    }

    /// Creates one Event regarding `object`. Failures are logged, never fatal: an Event is
    /// advice to humans and must not block a run.
    pub async fn publish(&self, object: &ObjectReference, event: &EventNote) {
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
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(err) = api.create(&PostParams::default(), &body).await {
            tracing::warn!(reason = event.reason, error = %err, "could not publish an Event");
        }
    }
}

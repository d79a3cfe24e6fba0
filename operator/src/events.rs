//! Events the decisions ask for, and their publication as `events.k8s.io/v1` Events.
//!
//! kube-runtime's `Recorder` folds events with the same reason into one series and keeps the
//! first note, which would hide the second task's start behind the first; each Event here is
//! its own object so every note survives.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::creates::CreatesInFlight;

/// The `reportingController` of every Event the operator publishes.
pub const REPORTING_CONTROLLER: &str = "tributary.dev/operator";

/// Longest Event note the API server accepts.
pub const MAX_NOTE: usize = 1024;

/// One Event to publish about the reconciled object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub warning: bool,
    /// CamelCase reason, e.g. `RunStarted`.
    pub reason: &'static str,
    pub note: String,
    /// When it happened, if not when it is published.
    pub at: Option<DateTime<Utc>>,
}

impl EventNote {
    pub fn normal(reason: &'static str, note: impl Into<String>) -> EventNote {
        EventNote {
            warning: false,
            reason,
            note: note.into(),
            at: None,
        }
    }

    pub fn warning(reason: &'static str, note: impl Into<String>) -> EventNote {
        EventNote {
            warning: true,
            reason,
            note: note.into(),
            at: None,
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

/// A task a decision started: announced in a `TaskStarted` Event once the status showing it
/// is written (`task_started_events`), together with the other tasks of the same Pipeline
/// started since the previous write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStart {
    pub task: String,
    pub attempt: u32,
    pub job: String,
    /// When it was decided: the Event's time, however late the write.
    pub at: DateTime<Utc>,
}

/// The `TaskStarted` Events announcing `starts`, in order: one naming every task and its Job,
/// or — past the note limit — as many as needed, none cut short. Each is dated by its first
/// start.
pub fn task_started_events(starts: &[TaskStart]) -> Vec<EventNote> {
    let items: Vec<String> = starts.iter().map(started_item).collect();
    let mut events = Vec::new();
    // The batch is `first..i`; `items_len` its items' length with their ", " separators.
    let (mut first, mut items_len) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let prefix_len = format!("{} tasks started: ", i - first + 1).len();
        if i > first && prefix_len + items_len + 2 + item.len() > MAX_NOTE {
            events.push(task_started_event(&starts[first..i], &items[first..i]));
            first = i;
        }
        items_len = if i == first {
            item.len()
        } else {
            items_len + 2 + item.len()
        };
    }
    if first < items.len() {
        events.push(task_started_event(&starts[first..], &items[first..]));
    }
    events
}

fn started_item(start: &TaskStart) -> String {
    format!(
        "{} attempt {} as Job {}",
        start.task, start.attempt, start.job
    )
}

/// One Event for a batch of starts and their items (`started_item`).
fn task_started_event(batch: &[TaskStart], items: &[String]) -> EventNote {
    let note = match batch {
        [one] => format!(
            "task {} attempt {} started as Job {}",
            one.task, one.attempt, one.job
        ),
        many => format!("{} tasks started: {}", many.len(), items.join(", ")),
    };
    EventNote {
        at: batch.first().map(|s| s.at),
        ..EventNote::normal("TaskStarted", note)
    }
}

/// Events waiting to be published at most; beyond it new Events are dropped (as client-go's
/// broadcaster does), so a slow API server never makes Events pile up in memory or compete
/// with Job creation without bound.
pub const QUEUE: usize = 1024;
/// Events being published at once. More than the API server needs in flight, because each
/// may first wait (up to `YIELD_TO_CREATES`) for Job creates to drain: at that bound eight
/// still publish forty a second (the benchmark's thousand Pipelines ask for about fifteen).
const WORKERS: usize = 8;
/// How long an Event waits at most for the Job creates in flight to drain.
const YIELD_TO_CREATES: Duration = Duration::from_millis(200);

/// Publishes Events as the operator, from a bounded queue drained by a few workers.
#[derive(Clone)]
pub struct Publisher {
    queue: tokio::sync::mpsc::Sender<(ObjectReference, EventNote)>,
}

impl Publisher {
    /// Starts the workers (needs a Tokio runtime). Each Event first lets the operator's Job
    /// creates in flight drain, for at most `YIELD_TO_CREATES`: an Event can wait, a
    /// dependent task's Job should not (`crate::creates`).
    pub fn new(client: Client, instance: String, creates: Arc<CreatesInFlight>) -> Publisher {
        let (queue, rx) = tokio::sync::mpsc::channel::<(ObjectReference, EventNote)>(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WORKERS {
            let rx = rx.clone();
            let client = client.clone();
            let instance = instance.clone();
            let creates = creates.clone();
            tokio::spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some((object, event)) = next else { break };
                    creates.drained(YIELD_TO_CREATES).await;
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
    let happened = event
        .at
        .and_then(|at| Timestamp::from_second(at.timestamp()).ok())
        .unwrap_or(now);
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
        event_time: Some(MicroTime(happened)),
        regarding: Some(object.clone()),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(err) = api.create(&PostParams::default(), &body).await {
        tracing::warn!(reason = event.reason, error = %err, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::at;

    fn start(task: &str, second: u32) -> TaskStart {
        TaskStart {
            task: task.into(),
            attempt: 1,
            job: format!("retail-g1-{task}-1"),
            at: at(&format!("2026-01-01T00:00:{second:02}Z")),
        }
    }

    #[test]
    fn one_task_started_reads_as_a_sentence_naming_its_job() {
        let events = task_started_events(&[start("a", 5)]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "TaskStarted");
        assert_eq!(
            events[0].note,
            "task a attempt 1 started as Job retail-g1-a-1"
        );
        assert_eq!(events[0].at, Some(at("2026-01-01T00:00:05Z")));
    }

    #[test]
    fn tasks_started_between_two_status_writes_share_one_event_dated_by_the_first() {
        let events = task_started_events(&[start("b", 7), start("c", 9)]);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].note,
            "2 tasks started: b attempt 1 as Job retail-g1-b-1, c attempt 1 as Job retail-g1-c-1"
        );
        assert_eq!(events[0].at, Some(at("2026-01-01T00:00:07Z")));
    }

    #[test]
    fn tasks_past_the_note_limit_go_on_in_further_events_none_cut_short() {
        let starts: Vec<_> = (0..60)
            .map(|i| start(&format!("task-{i:02}"), i % 60))
            .collect();
        let events = task_started_events(&starts);
        assert!(events.len() > 1, "{} events", events.len());
        assert!(events.iter().all(|e| e.note.len() <= MAX_NOTE));
        assert!(events.iter().all(|e| !e.note.ends_with("...")));
        let named: Vec<String> = events
            .iter()
            .flat_map(|e| {
                let (_, items) = e.note.split_once("tasks started: ").expect("several");
                items
                    .split(", ")
                    .map(|i| i.split(' ').next().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let expected: Vec<String> = (0..60).map(|i| format!("task-{i:02}")).collect();
        assert_eq!(named, expected);
        // The second Event is dated by its own first task.
        let second_first = events[1].note.split_once(": ").unwrap().1;
        let index: u32 = second_first[5..7].parse().unwrap();
        assert_eq!(
            events[1].at,
            Some(at(&format!("2026-01-01T00:00:{index:02}Z")))
        );
    }
}

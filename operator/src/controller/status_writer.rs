//! The tasks that write the Pipeline statuses reconciles decided (queued in
//! `crate::status_queue`): one task per Pipeline with something to write, so writes of one
//! Pipeline never overlap, and a bound on writes in flight, each of which first lets the Job
//! creates in flight drain (`crate::creates`, bounded), so they leave room for Job creates.
//! After a status is written, the tasks it shows started are announced (`TaskStarted`) and
//! the Jobs it no longer points at are deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::{Api, Resource};
use serde_json::value::RawValue;
use tokio::sync::{Notify, Semaphore};
use tributary_core::api::Pipeline;

use super::{Context, apply_status};
use crate::creates::CreatesInFlight;
use crate::error::{Error, Result};
use crate::status_queue::{Next, StatusQueue, Submission, Write};

/// Status writes in flight at once, across all Pipelines.
const WRITES_IN_FLIGHT: usize = 8;
/// How long a due write waits at most for the operator's Job creates in flight to drain
/// (`crate::creates`): long enough for a layer's creates on a busy server, short enough
/// that writes keep flowing while creates never stop.
const YIELD_TO_CREATES: Duration = Duration::from_millis(500);
/// How long a failed write (or deletion) waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

pub struct StatusWriter {
    state: Mutex<State>,
    permits: Semaphore,
    creates: Arc<CreatesInFlight>,
}

struct State {
    queue: StatusQueue,
    /// The running writer of each Pipeline, by object key: woken by newer submissions.
    writers: HashMap<String, Arc<Notify>>,
}

impl StatusWriter {
    pub fn new(interval: Duration, creates: Arc<CreatesInFlight>) -> Self {
        StatusWriter {
            state: Mutex::new(State {
                queue: StatusQueue::new(interval),
                writers: HashMap::new(),
            }),
            permits: Semaphore::new(WRITES_IN_FLIGHT),
            creates,
        }
    }

    /// Queues a decided status (and the Jobs to delete after it), starting the Pipeline's
    /// writer if none runs.
    pub fn submit(&self, ctx: &Arc<Context>, key: &str, submission: Submission) {
        let mut state = self.state.lock().expect("status writer lock");
        state.queue.submit(key, submission, Instant::now());
        report_spacing(ctx, &state.queue);
        // A writer that is still running (even one about to find its slot forgotten) is the
        // only one: two would write the same object concurrently.
        match state.writers.get(key) {
            Some(writer) => writer.notify_one(),
            None => {
                let wake = Arc::new(Notify::new());
                state.writers.insert(key.to_string(), wake.clone());
                tokio::spawn(write_pipeline_status(ctx.clone(), key.to_string(), wake));
            }
        }
    }

    /// The decided status not yet confirmed written, as JSON, if any.
    pub fn latest(&self, key: &str, uid: &str) -> Option<Arc<str>> {
        let state = self.state.lock().expect("status writer lock");
        state.queue.latest(key, uid)
    }

    /// The Pipeline is gone: nothing of it is written any more.
    pub fn forget(&self, key: &str) {
        let mut state = self.state.lock().expect("status writer lock");
        state.queue.forget(key);
        if let Some(writer) = state.writers.get(key) {
            writer.notify_one();
        }
    }

    /// Writes everything queued now and waits (at most `within`) until it is written: on
    /// shutdown, so that the next leader finds the statuses decided before it.
    pub async fn flush(&self, within: Duration) {
        let writers: Vec<Arc<Notify>> = {
            let mut state = self.state.lock().expect("status writer lock");
            state.queue.expedite_all(Instant::now());
            state.writers.values().cloned().collect()
        };
        writers.iter().for_each(|w| w.notify_one());
        let drained = async {
            while !self
                .state
                .lock()
                .expect("status writer lock")
                .writers
                .is_empty()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(within, drained).await.is_err() {
            tracing::warn!(
                "stopping with Pipeline statuses not written; the next leader rebuilds them from the Jobs"
            );
        }
    }

    fn next(&self, ctx: &Context, key: &str) -> Next {
        let mut state = self.state.lock().expect("status writer lock");
        let next = state.queue.next(key, Instant::now());
        if next == Next::Idle {
            state.writers.remove(key);
            report_spacing(ctx, &state.queue);
        }
        next
    }

    fn with_queue(&self, f: impl FnOnce(&mut StatusQueue)) {
        f(&mut self.state.lock().expect("status writer lock").queue)
    }
}

/// Publishes the progress spacing, which changes as Pipelines start and stop having status
/// waiting.
fn report_spacing(ctx: &Context, queue: &StatusQueue) {
    ctx.metrics
        .status_spacing
        .set(queue.spacing().as_secs_f64());
}

/// Writes one Pipeline's queued statuses until nothing is left to write.
async fn write_pipeline_status(ctx: Arc<Context>, key: String, wake: Arc<Notify>) {
    let writer = &ctx.status_writer;
    loop {
        let write = match writer.next(&ctx, &key) {
            Next::Idle => return,
            Next::WaitUntil(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = wake.notified() => {}
                }
                continue;
            }
            Next::Write(write) => write,
        };
        let permit = writer.permits.acquire().await.expect("never closed");
        writer.creates.drained(YIELD_TO_CREATES).await;
        let outcome = apply(&ctx, &key, &write).await;
        drop(permit);
        match outcome {
            Ok(()) => {
                writer.with_queue(|q| q.written(&key, &write, Instant::now()));
                announce_started(&ctx, &write);
                let failed = delete_jobs(&ctx, &key, &write).await;
                if !failed.is_empty() {
                    let retry = Write {
                        deletes: failed,
                        started: Vec::new(),
                        ..write
                    };
                    writer.with_queue(|q| q.failed(&key, retry, Instant::now() + RETRY_AFTER));
                }
            }
            Err(Error::Kube { source, .. }) if is_not_found(&source) => {
                // Deleted meanwhile: its Jobs go with it.
                writer.with_queue(|q| q.forget(&key));
            }
            Err(err) => {
                ctx.count_error("pipeline", &err);
                tracing::warn!(pipeline = %key, error = %err, "status write failed; retrying");
                writer.with_queue(|q| q.failed(&key, write, Instant::now() + RETRY_AFTER));
            }
        }
    }
}

async fn apply(ctx: &Context, key: &str, write: &Write) -> Result<()> {
    let target = &write.target;
    let status =
        RawValue::from_string(write.status.to_string()).map_err(|source| Error::Serialize {
            what: "status",
            source,
        })?;
    let resource_version = apply_status::<Pipeline>(
        &ctx.client,
        &target.namespace,
        &target.name,
        &status,
        "apply Pipeline status",
    )
    .await?;
    ctx.remember_written(
        key.to_string(),
        target.uid.clone(),
        resource_version.as_deref(),
        write.status.as_bytes(),
    );
    Ok(())
}

/// Publishes the `TaskStarted` Events of the tasks the status just written shows started.
fn announce_started(ctx: &Context, write: &Write) {
    if write.started.is_empty() {
        return;
    }
    let target = &write.target;
    let pipeline = ObjectReference {
        api_version: Some(Pipeline::api_version(&()).into_owned()),
        kind: Some(Pipeline::kind(&()).into_owned()),
        namespace: Some(target.namespace.clone()),
        name: Some(target.name.clone()),
        uid: Some(target.uid.clone()),
        ..Default::default()
    };
    ctx.events.publish(
        &pipeline,
        crate::events::task_started_events(&write.started),
    );
}

/// Deletes the Jobs `write` names (the status just written no longer points at them);
/// returns those that could not be deleted.
async fn delete_jobs(ctx: &Context, key: &str, write: &Write) -> Vec<String> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &write.target.namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    let mut failed = Vec::new();
    for job in &write.deletes {
        match jobs.delete(job, &params).await {
            Ok(_) => tracing::info!(pipeline = %key, job = %job, "deleted Job"),
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                ctx.count_error("pipeline", &Error::kube("delete Job")(err));
                failed.push(job.clone());
            }
        }
    }
    failed
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

//! The Pipeline reconciler: reads the caches, asks `crate::pipeline::decide`, and carries out
//! the decision in a crash-safe order: create Jobs, apply status, delete Jobs, publish Events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tributary_core::api::{Pipeline, PipelineStatus};

use super::start_gate::StartGate;
use super::{Context, key};
use crate::cached::CachedJob;
use crate::error::{Error, Result};
use crate::job_index::IndexedJob;
use crate::metrics::{ControllerLabels, OutcomeLabels, TriggerLabels};
use crate::observe::PodResult;
use crate::pipeline::{
    DataSourceMap, JobToCreate, ObservedAttempt, PipelineView, decide, render_job, results_needed,
};
use crate::status_queue::{Submission, Target};

const CONTROLLER: &str = "pipeline";

/// Job creations (and pod-result reads) one reconcile has in flight at once.
const CREATES_IN_FLIGHT: usize = 8;

pub async fn reconcile(pipeline: Arc<Pipeline>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let labels = ControllerLabels {
        controller: CONTROLLER,
    };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let result = reconcile_inner(&pipeline, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(pipeline: &Pipeline, ctx: &Arc<Context>) -> Result<Action> {
    let namespace = pipeline
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = pipeline.name_any();
    let uid = pipeline.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let object_key = key(&namespace, &name);
    if pipeline.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the Jobs.
        ctx.forget(&object_key);
        return Ok(Action::await_change());
    }
    // Decisions on half-filled caches would report DataSources as missing and miss Jobs.
    if !super::pipeline_caches_ready(ctx).await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }

    // What the API server holds (ours if the cache lags behind our last write), and what to
    // build on: a decided status still waiting to be written, else that.
    let applied: PipelineStatus = ctx
        .newest_status(&object_key, &uid, pipeline.resource_version().as_deref())
        .unwrap_or_else(|| pipeline.status.clone().unwrap_or_default());
    let status: PipelineStatus = ctx
        .pending_status(&object_key, &uid)
        .unwrap_or_else(|| applied.clone());

    let data_sources: DataSourceMap = ctx
        .data_sources
        .state()
        .iter()
        .filter(|ds| ds.namespace().as_deref() == Some(namespace.as_str()))
        .map(|ds| (ds.name_any(), ds.spec.clone()))
        .collect();

    let jobs = ctx.task_jobs.lock().expect("job index lock").jobs_of(&uid);
    let facts: Vec<_> = jobs.iter().map(|j| j.facts.clone()).collect();
    for f in facts.iter().filter(|f| f.state.is_finished()) {
        ctx.mark_finished_seen(&key(&namespace, &f.name));
    }
    let needed = results_needed(&status, &facts);
    // Pod results of a layer's finished Jobs, fetched concurrently: read one after the other
    // they would delay the dependents' Jobs by one round trip each.
    let to_read: Vec<IndexedJob> = jobs
        .into_iter()
        .filter(|j| needed.contains(&j.facts.name))
        .collect();
    let namespace_ref = namespace.as_str();
    let mut results: BTreeMap<String, _> = futures::stream::iter(to_read)
        .map(|job| read_result(ctx, namespace_ref, job))
        .buffer_unordered(CREATES_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    let mut attempts = BTreeMap::new();
    for facts in facts {
        let result = match results.remove(&facts.name) {
            Some(result) => result?,
            None => None,
        };
        attempts.insert(facts.name.clone(), ObservedAttempt { facts, result });
    }

    let view = PipelineView::of(pipeline, &status);
    // Whole seconds: status stays compact and stable (Job times have that resolution too).
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let decision = decide(&view, &data_sources, &attempts, now);

    // A new run's first Jobs wait for a start while `--run-start-concurrency` others are
    // being started (the decision is made again when its turn comes).
    let _admission = if !decision.starts_a_run() {
        None
    } else {
        match ctx
            .start_gate
            .try_admit(&ObjectRef::new(&name).within(&namespace))
        {
            Ok(admission) => Some(admission),
            Err(deferred) => {
                ctx.metrics.run_starts_deferred.inc();
                return Ok(Action::requeue(deferred.retry_after));
            }
        }
    };

    // 1. Jobs first: a crash after this point leaves Jobs that the next reconcile adopts.
    // Created concurrently: a layer of tasks ready together should not wait in line.
    let renders: Vec<_> = decision
        .create
        .iter()
        .filter(|create| {
            !(create.ensure_only && ctx.recently_created(&key(&namespace, &create.job_name)))
        })
        .filter_map(|create| {
            render_job(
                &view,
                &decision.status,
                &data_sources,
                create,
                &ctx.settings,
            )
            .map(|job| (create.clone(), job))
        })
        .collect();
    let gate = ctx.start_gate.clone();
    let outcomes: Vec<_> = futures::stream::iter(renders)
        .map(|(create, job)| create_job(&ctx.client, namespace_ref, gate.clone(), create, job))
        .buffer_unordered(CREATES_IN_FLIGHT)
        .collect()
        .await;
    let mut create_error = None;
    for (create, result, done) in outcomes {
        let job_key = key(&namespace, &create.job_name);
        match result {
            Ok(_) => {
                ctx.metrics.jobs_created.inc();
                ctx.mark_created(&job_key);
                if !create.ensure_only {
                    let ready_since = create
                        .dependency_jobs
                        .iter()
                        .filter_map(|j| ctx.finished_seen(&key(&namespace, j)))
                        .max();
                    if let Some(since) = ready_since {
                        ctx.metrics
                            .dispatch_latency
                            .observe(done.saturating_duration_since(since).as_secs_f64());
                    }
                }
                tracing::info!(pipeline = %object_key, job = %create.job_name, attempt = create.attempt, "created Job");
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                ctx.mark_created(&job_key);
            }
            Err(err) => {
                create_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = create_error {
        return Err(Error::kube("create Job")(err));
    }

    // 2. Status, by server-side apply with our one field manager (never the spec), and then
    // deletions (status must no longer point at what is deleted): queued, written behind
    // this reconcile so that the next one (and the Jobs it creates) does not wait for the
    // write. While a run merely progresses, writes of one Pipeline are spaced (the decided
    // status is built on meanwhile; lost in a crash, it is rebuilt from the Jobs like any
    // lost write).
    if decision.status != status || !decision.delete.is_empty() {
        let urgency = decision.status_urgency(&status);
        let json = serde_json::to_string(&decision.status).map_err(|source| Error::Serialize {
            what: "status",
            source,
        })?;
        let submission = Submission {
            target: Target {
                namespace: namespace.clone(),
                name: name.clone(),
                uid: uid.clone(),
            },
            status: json.into(),
            deletes: decision.delete.clone(),
            urgency,
            started: if ctx.task_start_events {
                decision.tasks_started.clone()
            } else {
                Vec::new()
            },
            finished_run_took: decision.finished_run_took(),
        };
        ctx.status_writer.submit(ctx, &object_key, submission);
    }

    // 4. Events and metrics: advice, never blocking the run. (Task starts are announced by
    // the status writer, after the write.)
    if !decision.events.is_empty() {
        ctx.events
            .publish(&pipeline.object_ref(&()), decision.events.clone());
    }
    if let Some(lineage) = &ctx.openlineage
        && !decision.transitions.is_empty()
    {
        let subject = crate::openlineage::Subject {
            name: &name,
            namespace: &namespace,
            uid: &uid,
        };
        let events =
            crate::openlineage::run_events(lineage.namespace(), subject, &decision.transitions);
        lineage.send(&object_key, events);
    }
    for trigger in &decision.runs_started {
        ctx.metrics
            .runs_started
            .get_or_create(&TriggerLabels {
                trigger: format!("{trigger:?}"),
            })
            .inc();
    }
    for phase in &decision.runs_finished {
        ctx.metrics
            .runs_finished
            .get_or_create(&OutcomeLabels {
                outcome: format!("{phase:?}"),
            })
            .inc();
        tracing::info!(pipeline = %object_key, outcome = ?phase, "run finished");
    }
    for phase in &decision.tasks_finished {
        ctx.metrics
            .tasks
            .get_or_create(&OutcomeLabels {
                outcome: format!("{phase:?}"),
            })
            .inc();
    }

    // Wake a little after the due time so the clock check in the core passes.
    let due = decision
        .requeue_at
        .map(|at| (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100));
    Ok(match due {
        Some(wait) => Action::requeue(wait),
        None => Action::await_change(),
    })
}

/// The pod result of one finished Job, by Job name.
async fn read_result(
    ctx: &Context,
    namespace: &str,
    job: IndexedJob,
) -> (String, Result<Option<PodResult>>) {
    let result = ctx
        .job_result(super::FinishedJob::task(namespace, &job))
        .await;
    (job.facts.name, result)
}

/// Creates one Job; returns when the API server answered. Counted in flight meanwhile: new
/// runs wait while creates back up (`StartGate`). The created Job the server sends back is
/// read as a `CachedJob`: a whole `Job` (its pod template, its managed fields) would be
/// decoded only to be dropped.
async fn create_job(
    client: &kube::Client,
    namespace: &str,
    gate: Arc<StartGate>,
    create: JobToCreate,
    job: Job,
) -> (JobToCreate, kube::Result<CachedJob>, Instant) {
    let _in_flight = gate.creating();
    let result = async {
        let body = serde_json::to_vec(&job).map_err(kube::Error::SerdeError)?;
        let request = kube::core::Request::new(Job::url_path(&(), Some(namespace)))
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        client.request::<CachedJob>(request).await
    }
    .await;
    (create, result, Instant::now())
}

pub fn error_policy(pipeline: Arc<Pipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.count_error(CONTROLLER, error);
    tracing::warn!(pipeline = %crate::pipeline::display_name(&pipeline), error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

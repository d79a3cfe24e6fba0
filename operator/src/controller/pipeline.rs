//! The Pipeline reconciler: reads the caches, asks `crate::pipeline::decide`, and carries out
//! the decision in a crash-safe order: create Jobs, apply status, delete Jobs, publish Events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tributary_core::api::{Pipeline, PipelineStatus};
use tributary_core::naming::{LABEL_PIPELINE, label_value};

use super::{Context, key};
use crate::FIELD_MANAGER;
use crate::error::{Error, Result};
use crate::metrics::{ControllerLabels, OutcomeLabels, TriggerLabels};
use crate::observe::task_job_facts;
use crate::pipeline::{
    DataSourceMap, ObservedAttempt, PipelineView, decide, render_job, results_needed,
};

const CONTROLLER: &str = "pipeline";

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

async fn reconcile_inner(pipeline: &Pipeline, ctx: &Context) -> Result<Action> {
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
    if !super::caches_ready(&ctx.data_sources, &ctx.task_jobs).await {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }

    let status: PipelineStatus = ctx
        .newest_status(&object_key, &uid, pipeline.resource_version().as_deref())
        .unwrap_or_else(|| pipeline.status.clone().unwrap_or_default());

    let data_sources: DataSourceMap = ctx
        .data_sources
        .state()
        .iter()
        .filter(|ds| ds.namespace().as_deref() == Some(namespace.as_str()))
        .map(|ds| (ds.name_any(), ds.spec.clone()))
        .collect();

    let label = label_value(&name);
    let jobs: Vec<Arc<Job>> = ctx
        .task_jobs
        .state()
        .into_iter()
        .filter(|j| j.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|j| j.labels().get(LABEL_PIPELINE) == Some(&label))
        .filter(|j| j.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    let facts: Vec<_> = jobs.iter().filter_map(|j| task_job_facts(j)).collect();
    for f in facts.iter().filter(|f| f.state.is_finished()) {
        ctx.mark_finished_seen(&key(&namespace, &f.name));
    }
    let needed = results_needed(&status, &facts);
    let mut attempts = BTreeMap::new();
    for (job, facts) in jobs.iter().zip(jobs.iter().map(|j| task_job_facts(j))) {
        let Some(facts) = facts else { continue };
        let result = if needed.contains(&facts.name) {
            ctx.job_result(job).await?
        } else {
            None
        };
        attempts.insert(facts.name.clone(), ObservedAttempt { facts, result });
    }

    let view = PipelineView::of(pipeline, &status);
    // Whole seconds: status stays compact and stable (Job times have that resolution too).
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let decision = decide(&view, &data_sources, &attempts, now);

    // 1. Jobs first: a crash after this point leaves Jobs that the next reconcile adopts.
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    for create in &decision.create {
        let job_key = key(&namespace, &create.job_name);
        if create.ensure_only && ctx.recently_created(&job_key) {
            continue;
        }
        let Some(job) = render_job(
            &view,
            &decision.status,
            &data_sources,
            create,
            &ctx.settings,
        ) else {
            continue;
        };
        match jobs_api.create(&PostParams::default(), &job).await {
            Ok(_) => {
                ctx.metrics.jobs_created.inc();
                ctx.mark_created(job_key);
                if !create.ensure_only {
                    let ready_since = create
                        .dependency_jobs
                        .iter()
                        .filter_map(|j| ctx.finished_seen(&key(&namespace, j)))
                        .max();
                    if let Some(since) = ready_since {
                        ctx.metrics
                            .dispatch_latency
                            .observe(since.elapsed().as_secs_f64());
                    }
                }
                tracing::info!(pipeline = %object_key, job = %create.job_name, attempt = create.attempt, "created Job");
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                ctx.mark_created(job_key);
            }
            Err(err) => return Err(Error::kube("create Job")(err)),
        }
    }

    // 2. Status, by server-side apply with our one field manager; never the spec.
    if decision.status != status {
        let body = serde_json::json!({
            "apiVersion": Pipeline::api_version(&()),
            "kind": Pipeline::kind(&()),
            "status": decision.status,
        });
        let api: Api<Pipeline> = Api::namespaced(ctx.client.clone(), &namespace);
        let applied = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::kube("apply Pipeline status"))?;
        ctx.remember_written(
            object_key.clone(),
            uid.clone(),
            applied.resource_version().as_deref(),
            serde_json::to_value(&decision.status).map_err(|source| Error::Serialize {
                what: "Pipeline status",
                source,
            })?,
        );
    }

    // 3. Deletions only once status no longer points at what is deleted.
    for job in &decision.delete {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match jobs_api.delete(job, &params).await {
            Ok(_) => tracing::info!(pipeline = %object_key, job = %job, "deleted Job"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(Error::kube("delete Job")(err)),
        }
    }

    // 4. Events and metrics: advice, never blocking the run.
    let events: Vec<_> = decision
        .events
        .iter()
        .filter(|e| ctx.task_start_events || e.reason != "TaskStarted")
        .cloned()
        .collect();
    if !events.is_empty() {
        ctx.events.publish(&pipeline.object_ref(&()), events);
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

    Ok(match decision.requeue_at {
        Some(at) => {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            // Wake a little after the due time so the clock check in the core passes.
            Action::requeue(wait + std::time::Duration::from_millis(100))
        }
        None => Action::await_change(),
    })
}

pub fn error_policy(pipeline: Arc<Pipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.count_error(CONTROLLER, error);
    tracing::warn!(pipeline = %crate::pipeline::display_name(&pipeline), error = %error, "reconcile failed; retrying");
    Action::requeue(std::time::Duration::from_secs(2))
}

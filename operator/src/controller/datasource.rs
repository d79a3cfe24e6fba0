//! The DataSource reconciler: connection-check Jobs, `Ready`, and lineage from Pipeline runs.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tributary_core::api::{DataSource, DataSourceStatus, PipelineStatus};
use tributary_core::naming::{LABEL_DATASOURCE, label_value};

use super::{Context, apply_status, key};
use crate::datasource::{
    DataSourceView, LABEL_GENERATION, LABEL_ROUND, ObservedCheck, PipelineLineage, check_round,
    decide, render_check,
};
use crate::error::{Error, Result};
use crate::metrics::ControllerLabels;

const CONTROLLER: &str = "datasource";

pub async fn reconcile(ds: Arc<DataSource>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let labels = ControllerLabels {
        controller: CONTROLLER,
    };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let result = reconcile_inner(&ds, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(ds: &DataSource, ctx: &Context) -> Result<Action> {
    let namespace = ds
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = ds.name_any();
    let uid = ds.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let object_key = key(&namespace, &name);
    if ds.metadata.deletion_timestamp.is_some() {
        ctx.forget(&object_key);
        return Ok(Action::await_change());
    }
    if !super::caches_ready(&ctx.check_jobs, &ctx.pipelines).await {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    let status: DataSourceStatus = ctx
        .newest_status(&object_key, &uid, ds.resource_version().as_deref())
        .unwrap_or_else(|| ds.status.clone().unwrap_or_default());

    let label = label_value(&name);
    let mut checks = Vec::new();
    for job in ctx.check_jobs.state() {
        if job.namespace().as_deref() != Some(namespace.as_str())
            || job.label(LABEL_DATASOURCE) != Some(label.as_str())
            || !job.owned_by(&uid)
        {
            continue;
        }
        let parse = |l: &str| job.label(l).and_then(|v| v.parse::<u64>().ok());
        let (Some(generation), Some(round)) = (parse(LABEL_GENERATION), parse(LABEL_ROUND)) else {
            continue;
        };
        let state = job.state.clone();
        let result =
            if state.is_finished() && generation as i64 == ds.metadata.generation.unwrap_or(1) {
                ctx.job_result(super::FinishedJob::cached(&job)).await?
            } else {
                None
            };
        checks.push(ObservedCheck {
            name: job.name_any(),
            generation: generation as i64,
            round,
            state,
            result,
        });
    }

    let pipelines = ctx.pipelines.state();
    // Borrowed from the cache unless ours is newer: cloning a thousand statuses per
    // reconcile would be a burst of allocations for nothing.
    let statuses: Vec<Option<Cow<'_, PipelineStatus>>> = pipelines
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .map(|p| {
            ctx.newest_status(
                &key(&namespace, &p.name_any()),
                &p.uid().unwrap_or_default(),
                p.resource_version().as_deref(),
            )
            .map(Cow::Owned)
            .or_else(|| p.status.as_ref().map(Cow::Borrowed))
        })
        .collect();
    let lineage: Vec<PipelineLineage<'_>> = pipelines
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .zip(statuses.iter())
        .map(|(p, status)| PipelineLineage {
            name: p.metadata.name.as_deref().unwrap_or_default(),
            spec: &p.spec,
            status: status.as_deref(),
        })
        .collect();

    let view = DataSourceView::of(ds, &status);
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let decision = decide(&view, &checks, &lineage, now);

    if let Some(job_name) = &decision.check {
        let job_key = key(&namespace, job_name);
        if !ctx.recently_created(&job_key) {
            let round = check_round(ds.spec.check_interval_seconds, now);
            let job = render_check(&view, job_name, round, &ctx.settings);
            let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.create(&PostParams::default(), &job).await {
                Ok(_) => {
                    ctx.metrics.jobs_created.inc();
                    tracing::info!(datasource = %object_key, job = %job_name, "created connection-check Job");
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(err) => return Err(Error::kube("create check Job")(err)),
            }
            ctx.mark_created(&job_key);
        }
    }

    if decision.status != status {
        let resource_version = apply_status::<DataSource>(
            &ctx.client,
            &namespace,
            &name,
            &decision.status,
            "apply DataSource status",
        )
        .await?;
        let json = serde_json::to_vec(&decision.status).map_err(|source| Error::Serialize {
            what: "status",
            source,
        })?;
        ctx.remember_written(object_key.clone(), uid, resource_version.as_deref(), &json);
    }

    if !decision.events.is_empty() {
        ctx.events
            .publish(&ds.object_ref(&()), decision.events.clone());
    }

    Ok(match decision.requeue_at {
        Some(at) => Action::requeue(
            (at - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(100),
        ),
        None => Action::await_change(),
    })
}

pub fn error_policy(ds: Arc<DataSource>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.count_error(CONTROLLER, error);
    tracing::warn!(datasource = %ds.name_any(), error = %error, "reconcile failed; retrying");
    Action::requeue(std::time::Duration::from_secs(2))
}

//! Task kinds: each turns a task input into a `TaskResult`, or an error with its class.

pub mod check;
pub mod check_connection;
pub mod copy;
pub mod export;
pub mod load;
pub mod sql;

use bytes::Bytes;
use tributary_core::lineage::{MAX_STATUS_DATASETS, MAX_TERMINATION_MESSAGE, TaskResult};

use crate::connectors::s3::Lake;
use crate::context::TaskContext;
use crate::error::{Error, Result};

/// Runs the task's kind.
pub async fn run(ctx: &TaskContext) -> Result<TaskResult> {
    let task = &ctx.input.task;
    let mut result = if let Some(t) = &task.copy {
        copy::run(ctx, t).await?
    } else if let Some(t) = &task.export {
        export::run(ctx, t).await?
    } else if let Some(t) = &task.load {
        load::run(ctx, t).await?
    } else if let Some(t) = &task.sql {
        sql::run(ctx, t).await?
    } else if let Some(t) = &task.check {
        check::run(ctx, t).await?
    } else if task.container.is_some() {
        return Err(Error::permanent(
            "container tasks run the user's image, not the runner",
        ));
    } else {
        return Err(Error::permanent(format!(
            "task {:?} sets no kind",
            task.name
        )));
    };
    write_manifest_if_needed(ctx, &mut result).await;
    Ok(result)
}

/// The S3 DataSource a task's manifest goes to: the lake it reads or writes.
fn manifest_lake(ctx: &TaskContext) -> Option<String> {
    let task = &ctx.input.task;
    let name = if let Some(t) = &task.copy {
        &t.to.data_source
    } else if let Some(t) = &task.export {
        &t.to.data_source
    } else if let Some(t) = &task.load {
        &t.from.data_source
    } else if let Some(t) = &task.check {
        &t.data_source
    } else {
        return None;
    };
    ctx.data_source(name).ok()?.s3.as_ref()?;
    Some(name.clone())
}

/// When the result does not fit a termination message whole (or lists more datasets than status
/// keeps), the full result goes to `_tributary/manifests/{pipeline}/{run}/{task}.json`.
async fn write_manifest_if_needed(ctx: &TaskContext, result: &mut TaskResult) {
    let json = serde_json::to_vec_pretty(result).expect("a TaskResult serialises");
    let big = serde_json::to_string(result).map_or(0, |s| s.len()) > MAX_TERMINATION_MESSAGE
        || result.inputs.len() > MAX_STATUS_DATASETS
        || result.outputs.len() > MAX_STATUS_DATASETS;
    if !big {
        return;
    }
    let Some(name) = manifest_lake(ctx) else {
        return;
    };
    let key = ctx.manifest_key();
    let written = async {
        let spec = ctx.data_source(&name)?.s3.as_ref().expect("checked above");
        let lake = Lake::connect(&name, spec, &ctx.secrets)?;
        lake.put(&key, Bytes::from(json), "application/json").await
    }
    .await;
    match written {
        Ok(()) => result.manifest = Some(key),
        // The data is safe; only the long listing is lost. Say so, do not fail the task.
        Err(e) => tracing::warn!(error = %e, "could not write the run manifest"),
    }
}

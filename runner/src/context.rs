//! What a running task knows: its input, rendered templates, credentials and progress.

use chrono::TimeZone;
use tributary_core::api::DataSourceSpec;
use tributary_core::contract::TaskInput;
use tributary_core::lineage::{DatasetReport, dataset};
use tributary_core::template::{TemplateContext, render};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::secrets::Secrets;

/// One attempt of one task, with everything its connectors need.
#[derive(Clone, Debug)]
pub struct TaskContext {
    pub input: TaskInput,
    pub secrets: Secrets,
    pub progress: Progress,
    template: TemplateContext,
}

impl TaskContext {
    pub fn new(input: TaskInput, secrets: Secrets, progress: Progress) -> Result<TaskContext> {
        let template = match input.time_zone.as_deref() {
            Some(tz) => {
                let tz: chrono_tz::Tz = tz
                    .parse()
                    .map_err(|_| Error::permanent(format!("unknown time zone {tz:?}")))?;
                let local = tz.from_utc_datetime(&input.logical_time.naive_utc());
                TemplateContext::new(
                    &input.run_id,
                    &local,
                    &input.task.name,
                    &input.pipeline,
                    &input.namespace,
                )
            }
            None => TemplateContext::new(
                &input.run_id,
                &input.logical_time,
                &input.task.name,
                &input.pipeline,
                &input.namespace,
            ),
        };
        Ok(TaskContext {
            input,
            secrets,
            progress,
            template,
        })
    }

    /// Renders a templated key, prefix or statement.
    pub fn render(&self, template: &str) -> Result<String> {
        Ok(render(template, &self.template)?)
    }

    /// The named DataSource's spec; a missing one is a permanent error.
    pub fn data_source(&self, name: &str) -> Result<&DataSourceSpec> {
        self.input
            .data_sources
            .get(name)
            .ok_or_else(|| Error::permanent(format!("DataSource {name:?} was not resolved")))
    }

    /// An OpenLineage dataset report for `name` inside DataSource `source`.
    pub fn dataset(&self, source: &str, name: &str) -> Result<DatasetReport> {
        let spec = self.data_source(source)?;
        let id = dataset(spec, name)
            .ok_or_else(|| Error::permanent(format!("DataSource {source:?} has no kind")))?;
        Ok(DatasetReport {
            namespace: id.namespace,
            name: id.name,
            ..Default::default()
        })
    }

    /// Key of the run manifest of this task in the lake.
    pub fn manifest_key(&self) -> String {
        format!(
            "_tributary/manifests/{}/{}/{}.json",
            self.input.pipeline, self.input.run_id, self.input.task.name
        )
    }
}

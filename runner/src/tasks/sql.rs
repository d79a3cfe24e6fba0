//! `sql`: templated statements on PostgreSQL in one transaction; affected rows reported.

use tokio_postgres::SimpleQueryMessage;
use tributary_core::api::SqlTask;
use tributary_core::lineage::{CheckReport, Outcome, TaskResult};

use crate::context::TaskContext;
use crate::error::{Error, Result};

pub async fn run(ctx: &TaskContext, task: &SqlTask) -> Result<TaskResult> {
    let pg = ctx
        .data_source(&task.data_source)?
        .postgres
        .as_ref()
        .ok_or_else(|| {
            Error::permanent(format!("{} is not a postgres DataSource", task.data_source))
        })?;
    // Render every statement first: a template error must not leave half the work done.
    let statements = task
        .statements
        .iter()
        .map(|s| ctx.render(s))
        .collect::<Result<Vec<_>>>()?;
    let mut client =
        crate::connectors::postgres::connect(&task.data_source, pg, &ctx.secrets).await?;
    let tx = client.transaction().await?;
    let mut total: u64 = 0;
    let mut per_statement = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let messages = tx
            .simple_query(statement)
            .await
            .map_err(|e| Error::from(e).context(format!("statement {}", i + 1)))?;
        let affected: u64 = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .sum();
        total += affected;
        per_statement.push(affected);
        ctx.progress.add_rows(affected);
        tracing::info!(statement = i + 1, affected, "statement done");
    }
    tx.commit().await?;
    let dataset = ctx.dataset(&task.data_source, &pg.database)?;
    Ok(TaskResult {
        outcome: Outcome::Succeeded,
        message: format!(
            "{} statement(s) committed; rows affected per statement: {per_statement:?}",
            statements.len()
        ),
        inputs: vec![],
        outputs: vec![tributary_core::lineage::DatasetReport {
            name: pg.database.clone(),
            rows: Some(total),
            ..dataset
        }],
        rows: Some(total),
        bytes: None,
        files: None,
        checks: Vec::<CheckReport>::new(),
        schema: Default::default(),
        watermark: None,
        manifest: None,
    })
}

//! The Tributary runner: executes one task (or a DataSource connection check) and reports a
//! compact `TaskResult`. The binary wraps it for a Job's pod; `tributary run` calls it in process.

pub mod connectors;
pub mod context;
pub mod ejson;
pub mod error;
pub mod progress;
pub mod redact;
pub mod rows;
pub mod secrets;
pub mod tasks;

use std::time::Duration;

use tributary_core::contract::RunnerInput;
use tributary_core::lineage::{Outcome, TaskResult};

pub use context::TaskContext;
pub use error::{Class, Error};
pub use progress::{Progress, Snapshot};
pub use secrets::Secrets;

/// How often progress is logged while a task runs.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs `input` to completion and always returns a result: failures become a result with a
/// retryable or permanent outcome. Secret values never appear in the message.
pub async fn execute(input: &RunnerInput, secrets: &Secrets, progress: Progress) -> TaskResult {
    let label = match input {
        RunnerInput::Task(t) => format!("{}/{}", t.run_id, t.task.name),
        RunnerInput::CheckConnection(c) => format!("check {}", c.name),
    };
    let _ticker = progress.log_every(PROGRESS_EVERY, label.clone());
    let started = std::time::Instant::now();
    let outcome = match input {
        RunnerInput::Task(task) => {
            match TaskContext::new(task.clone(), secrets.clone(), progress.clone()) {
                Ok(ctx) => tasks::run(&ctx).await,
                Err(e) => Err(e),
            }
        }
        RunnerInput::CheckConnection(check) => tasks::check_connection::run(check, secrets).await,
    };
    let mut result = match outcome {
        Ok(result) => result,
        Err(e) => failure(&e),
    };
    result.message = redact::mask(&redact::redact_text(&result.message), &secrets.values());
    let seconds = started.elapsed().as_secs_f64();
    match result.outcome {
        Outcome::Succeeded => {
            tracing::info!(task = %label, seconds, message = %result.message, "succeeded")
        }
        _ => {
            tracing::error!(task = %label, seconds, outcome = ?result.outcome, message = %result.message, "failed")
        }
    }
    result
}

/// The result reported for an error.
pub fn failure(e: &Error) -> TaskResult {
    TaskResult::new(e.outcome(), e.message.clone())
}

/// Installs JSON logs on stderr (level from `RUST_LOG`, default `info`).
pub fn init_json_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,tokio_postgres=warn,mongodb=warn,russh=warn,suppaftp=warn")
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs human-readable logs on stderr for the CLI (level from `RUST_LOG`, default `warn`,
/// so the live progress view stays readable).
pub fn init_cli_logs() {
    use tracing_subscriber::EnvFilter;
    // Outcomes are shown by the CLI's own view; logging them too would print each twice.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,tributary_runner::outcome=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

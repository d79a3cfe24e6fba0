//! `tributary run`: executes a whole Pipeline on this machine, in process, through the runner
//! library, honouring the DAG, parallelism, retries, backoff and timeouts of `tributary_core::plan`.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use serde::Deserialize;
use tributary_core::api::{DataSourceSpec, PipelineSpec, RunPhase, RunTrigger, TaskPhase};
use tributary_core::contract::{RunnerInput, TaskInput, secret_bindings};
use tributary_core::dag::Dag;
use tributary_core::lineage::{Outcome, TaskResult};
use tributary_core::plan::{self, JobObservation, RunContext};
use tributary_core::retry::RetryPolicy;
use tributary_core::validate::validate_pipeline;
use tributary_runner::{Progress, Secrets};

use crate::documents;

/// Options of `tributary run`.
pub struct Options {
    pub files: Vec<PathBuf>,
    pub namespace: String,
    pub pipeline: Option<String>,
    pub secrets: Vec<PathBuf>,
    pub run_id: Option<String>,
    pub state: Option<PathBuf>,
    pub skip_containers: bool,
    pub json: bool,
}

/// Secret values from Kubernetes Secret documents (`stringData` or base64 `data`) and from
/// `KEY=VALUE` files, looked up the way the runner pod would see them.
#[derive(Default)]
struct LocalSecrets {
    /// (Secret name, key) → value, from Secret documents.
    documents: HashMap<(String, String), String>,
    /// Environment variable name → value, from env files.
    variables: HashMap<String, String>,
}

#[derive(Deserialize)]
struct SecretDocument {
    kind: Option<String>,
    metadata: Option<SecretMetadata>,
    #[serde(default, rename = "stringData")]
    string_data: BTreeMap<String, String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct SecretMetadata {
    name: String,
}

impl LocalSecrets {
    fn read(&mut self, file: &Path) -> anyhow::Result<()> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let is_yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                let line = line.strip_prefix("export ").unwrap_or(line);
                if let Some((k, v)) = line.split_once('=') {
                    let v = v.trim().trim_matches('"').trim_matches('\'');
                    self.variables.insert(k.trim().to_string(), v.to_string());
                }
            }
            return Ok(());
        }
        for document in serde_yaml::Deserializer::from_str(&text) {
            let Ok(doc) = SecretDocument::deserialize(document) else {
                continue;
            };
            if doc.kind.as_deref() != Some("Secret") {
                continue;
            }
            let Some(meta) = doc.metadata else { continue };
            for (k, v) in doc.string_data {
                self.documents.insert((meta.name.clone(), k), v);
            }
            for (k, v) in doc.data {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .with_context(|| format!("Secret {} key {k}: not base64", meta.name))?;
                self.documents.insert(
                    (meta.name.clone(), k),
                    String::from_utf8_lossy(&decoded).into_owned(),
                );
            }
        }
        Ok(())
    }

    /// Values for every binding of `input`: the environment first, then env files, then Secrets.
    fn resolve(&self, input: &RunnerInput) -> tributary_runner::error::Result<Secrets> {
        let bindings = secret_bindings(&input.data_sources());
        Secrets::resolve(input, |env| {
            std::env::var(env)
                .ok()
                .or_else(|| self.variables.get(env).cloned())
                .or_else(|| {
                    let b = bindings.iter().find(|b| b.env == env)?;
                    self.documents
                        .get(&(b.secret.name.clone(), b.secret.key.clone()))
                        .cloned()
                })
        })
    }
}

/// How one attempt ended.
struct Finished {
    task: usize,
    attempt: u32,
    result: TaskResult,
    at: chrono::DateTime<Utc>,
}

pub fn run(options: Options) -> anyhow::Result<ExitCode> {
    let docs = documents::read(&options.files, &options.namespace)?;
    if let Some(bad) = docs.unreadable.first() {
        bail!(
            "{}#{} {}: {} {}",
            bad.file.display(),
            bad.document,
            bad.what,
            bad.path,
            bad.message
        );
    }
    let pipeline = match &options.pipeline {
        Some(name) => docs.pipelines.iter().find(|p| &p.name == name),
        None if docs.pipelines.len() == 1 => docs.pipelines.first(),
        None => bail!(
            "{} Pipelines found; choose one with --pipeline ({})",
            docs.pipelines.len(),
            docs.pipelines
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    .context("no such Pipeline in the files")?;
    let sources: BTreeMap<&str, &DataSourceSpec> = docs
        .data_sources
        .iter()
        .filter(|d| d.namespace == pipeline.namespace)
        .map(|d| (d.name.as_str(), &d.spec))
        .collect();
    let problems = validate_pipeline(&pipeline.spec, &sources);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{}: {}: {}", pipeline.name, p.path, p.message);
        }
        bail!("the Pipeline is not valid; run `tributary validate` for details");
    }
    let mut secrets = LocalSecrets::default();
    for file in documents::expand(&options.files)? {
        secrets.read(&file)?;
    }
    for file in &options.secrets {
        secrets.read(file)?;
    }
    let mut state: BTreeMap<String, String> = match &options.state {
        Some(path) if path.exists() => serde_json::from_str(&std::fs::read_to_string(path)?)
            .with_context(|| format!("reading state {}", path.display()))?,
        _ => BTreeMap::new(),
    };
    tributary_runner::init_cli_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let now = Utc::now();
    let run_id = options
        .run_id
        .clone()
        .unwrap_or_else(|| format!("local-{}", now.format("%Y%m%d%H%M%S")));
    let (status, results) = runtime.block_on(execute(
        &pipeline.name,
        &pipeline.namespace,
        &pipeline.spec,
        &sources,
        &secrets,
        &run_id,
        &state,
        &options,
    ))?;
    for (i, task) in pipeline.spec.tasks.iter().enumerate() {
        if let Some(mark) = results.get(&i).and_then(|r| r.watermark.clone()) {
            state.insert(task.name.clone(), mark);
        }
    }
    if let Some(path) = &options.state {
        std::fs::write(path, serde_json::to_string_pretty(&state)?)?;
    }
    if options.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_summary(&status, &results, &pipeline.spec);
    }
    Ok(if status.phase == RunPhase::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    pipeline: &str,
    namespace: &str,
    spec: &PipelineSpec,
    sources: &BTreeMap<&str, &DataSourceSpec>,
    secrets: &LocalSecrets,
    run_id: &str,
    state: &BTreeMap<String, String>,
    options: &Options,
) -> anyhow::Result<(tributary_core::api::RunStatus, BTreeMap<usize, TaskResult>)> {
    let edges: Vec<(String, Vec<String>)> = spec
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.depends_on.clone()))
        .collect();
    let dag = Dag::new(&edges).map_err(|p| anyhow::anyhow!("invalid DAG: {p:?}"))?;
    let policies: Vec<RetryPolicy> = spec
        .tasks
        .iter()
        .map(|t| RetryPolicy::for_task(t, &spec.defaults))
        .collect();
    let context = RunContext {
        dag: &dag,
        policies: &policies,
        parallelism: spec.parallelism,
    };
    let names: Vec<&str> = spec.tasks.iter().map(|t| t.name.as_str()).collect();
    let logical_time = Utc::now();
    let mut run = plan::new_run(
        run_id.to_string(),
        RunTrigger::Manual,
        0,
        &names,
        logical_time,
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Finished>();
    // Current attempt per task: its progress while running, its result once finished.
    let mut running: HashMap<usize, (u32, Progress, Instant)> = HashMap::new();
    let mut finished: HashMap<usize, (u32, JobObservation)> = HashMap::new();
    let mut results: BTreeMap<usize, TaskResult> = BTreeMap::new();
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_view = Instant::now() - Duration::from_secs(60);
    eprintln!(
        "run {run_id} of {namespace}/{pipeline}: {} tasks, parallelism {}",
        names.len(),
        spec.parallelism
    );
    loop {
        let jobs: Vec<JobObservation> = (0..names.len())
            .map(|i| {
                let attempt = run.tasks[i].attempts;
                if running.get(&i).is_some_and(|(a, _, _)| *a == attempt) {
                    JobObservation::Active
                } else if let Some((a, obs)) = finished.get(&i).filter(|(a, _)| *a == attempt) {
                    let _ = a;
                    obs.clone()
                } else {
                    JobObservation::Missing
                }
            })
            .collect();
        let now = Utc::now();
        let step = plan::step(
            context,
            &run.tasks,
            &jobs,
            |i, attempt| format!("{}-{attempt}", names[i]),
            now,
        );
        plan::apply(&mut run, &step, now);
        for event in &step.events {
            report_event(event, &names, &run, tty);
        }
        for start in &step.starts {
            if running.contains_key(&start.task) {
                continue;
            }
            let i = start.task;
            let task = spec.tasks[i].clone();
            let progress = Progress::default();
            running.insert(i, (start.attempt, progress.clone(), Instant::now()));
            let tx = tx.clone();
            if task.container.is_some() {
                let result = container_result(options.skip_containers);
                let _ = tx.send(Finished {
                    task: i,
                    attempt: start.attempt,
                    result,
                    at: Utc::now(),
                });
                continue;
            }
            let input = RunnerInput::Task(TaskInput {
                pipeline: pipeline.to_string(),
                namespace: namespace.to_string(),
                run_id: run_id.to_string(),
                attempt: start.attempt,
                logical_time,
                time_zone: spec.time_zone.clone(),
                data_sources: task
                    .data_source_refs()
                    .iter()
                    .filter_map(|u| {
                        sources
                            .get(u.name)
                            .map(|s| (u.name.to_string(), (*s).clone()))
                    })
                    .collect(),
                watermark: state.get(&task.name).cloned(),
                task,
            });
            let resolved = secrets.resolve(&input);
            let timeout = Duration::from_secs(u64::from(policies[i].timeout_seconds));
            let attempt = start.attempt;
            tokio::spawn(async move {
                let result = match resolved {
                    Err(e) => tributary_runner::failure(&e),
                    Ok(secrets) => match tokio::time::timeout(
                        timeout,
                        tributary_runner::execute(&input, &secrets, progress),
                    )
                    .await
                    {
                        Ok(result) => result,
                        Err(_) => tributary_runner::failure(&tributary_runner::Error::retryable(
                            format!("timed out after {}s", timeout.as_secs()),
                        )),
                    },
                };
                let _ = tx.send(Finished {
                    task: i,
                    attempt,
                    result,
                    at: Utc::now(),
                });
            });
        }
        if run.phase.is_finished() {
            break;
        }
        // Wait for a task to finish, a retry to become due, or the next progress view.
        let wake = step
            .wake_at
            .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(3600))
            .min(Duration::from_secs(1));
        let done = tokio::time::timeout(wake, rx.recv()).await;
        if let Ok(Some(f)) = done {
            running.remove(&f.task);
            let observation = match f.result.outcome {
                Outcome::Succeeded => JobObservation::Succeeded {
                    finished_at: f.at,
                    message: Some(f.result.message.clone()),
                    lineage: Some(f.result.to_lineage()),
                },
                outcome => JobObservation::Failed {
                    finished_at: f.at,
                    message: f.result.message.clone(),
                    retryable: outcome == Outcome::RetryableFailure,
                },
            };
            finished.insert(f.task, (f.attempt, observation));
            results.insert(f.task, f.result);
        }
        if last_view.elapsed() >= Duration::from_secs(if tty { 1 } else { 5 })
            && !running.is_empty()
        {
            last_view = Instant::now();
            show_progress(&run, &names, &running, started.elapsed(), tty);
        }
    }
    if tty {
        eprint!("\r\x1b[K");
    }
    Ok((run, results))
}

fn container_result(skip: bool) -> TaskResult {
    let (outcome, message) = if skip {
        (
            Outcome::Succeeded,
            "container task not run locally (--skip-containers)",
        )
    } else {
        (
            Outcome::PermanentFailure,
            "container tasks run the user's image and are not run locally; pass --skip-containers to treat them as done",
        )
    };
    TaskResult::new(outcome, message)
}

fn report_event(
    event: &plan::TaskEvent,
    names: &[&str],
    run: &tributary_core::api::RunStatus,
    tty: bool,
) {
    use plan::TaskEvent::*;
    let line = match event {
        Started { task, attempt } if *attempt > 1 => {
            format!("▶ {} (attempt {attempt})", names[*task])
        }
        Started { task, .. } => format!("▶ {}", names[*task]),
        Succeeded { task } => format!(
            "✔ {}: {}",
            names[*task],
            run.tasks[*task].message.as_deref().unwrap_or("")
        ),
        Retrying { task, attempt, at } => format!(
            "↻ {} will retry (attempt {attempt}) at {}: {}",
            names[*task],
            at.format("%H:%M:%S"),
            run.tasks[*task].message.as_deref().unwrap_or("")
        ),
        Failed { task } => format!(
            "✘ {}: {}",
            names[*task],
            run.tasks[*task].message.as_deref().unwrap_or("")
        ),
        Skipped { task } => format!(
            "⊘ {}: {}",
            names[*task],
            run.tasks[*task].message.as_deref().unwrap_or("")
        ),
    };
    // On a terminal, the event line replaces the live progress line.
    if tty {
        eprintln!("\r\x1b[K{line}");
    } else {
        eprintln!("{line}");
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn show_progress(
    run: &tributary_core::api::RunStatus,
    names: &[&str],
    running: &HashMap<usize, (u32, Progress, Instant)>,
    elapsed: Duration,
    tty: bool,
) {
    let mut parts: Vec<String> = running
        .iter()
        .map(|(i, (_, p, since))| {
            let s = p.snapshot();
            format!(
                "{} {}s {} rows {}",
                names[*i],
                since.elapsed().as_secs(),
                s.rows,
                human_bytes(s.bytes)
            )
        })
        .collect();
    parts.sort();
    let line = format!(
        "[{:>4}s] {} done | {}",
        elapsed.as_secs(),
        run.progress,
        parts.join(" | ")
    );
    if tty {
        eprint!("\r\x1b[K{line}");
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("{line}");
    }
}

fn print_summary(
    run: &tributary_core::api::RunStatus,
    results: &BTreeMap<usize, TaskResult>,
    spec: &PipelineSpec,
) {
    println!("\nrun {}: {:?} ({})", run.id, run.phase, run.progress);
    let width = spec
        .tasks
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<9}  {:>8}  {:>9}  {:>10}  MESSAGE",
        "TASK", "PHASE", "ATTEMPTS", "SECONDS", "ROWS"
    );
    for (i, task) in run.tasks.iter().enumerate() {
        let seconds = match (task.started_at, task.finished_at) {
            (Some(a), Some(b)) => format!("{:.1}", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => "-".into(),
        };
        let rows = results
            .get(&i)
            .and_then(|r| r.rows)
            .map_or("-".into(), |r| r.to_string());
        println!(
            "{:<width$}  {:<9}  {:>8}  {:>9}  {:>10}  {}",
            task.name,
            format!("{:?}", task.phase),
            task.attempts,
            seconds,
            rows,
            task.message.as_deref().unwrap_or("")
        );
    }
    println!("\nlineage:");
    for (i, task) in run.tasks.iter().enumerate() {
        let Some(result) = results
            .get(&i)
            .filter(|_| task.phase == TaskPhase::Succeeded)
        else {
            continue;
        };
        for input in &result.inputs {
            println!(
                "  {:<width$}  ← {}/{}{}",
                task.name,
                input.namespace.trim_end_matches('/'),
                input.name.trim_start_matches('/'),
                facts(input)
            );
        }
        for output in &result.outputs {
            println!(
                "  {:<width$}  → {}/{}{}",
                task.name,
                output.namespace.trim_end_matches('/'),
                output.name.trim_start_matches('/'),
                facts(output)
            );
        }
        for check in &result.checks {
            println!(
                "  {:<width$}  {} {} ({}): {}",
                task.name,
                if check.passed { "✔" } else { "✘" },
                check.name,
                check.severity,
                check.observed
            );
        }
        if let Some(mark) = &result.watermark {
            println!("  {:<width$}  watermark {mark}", task.name);
        }
        if let Some(manifest) = &result.manifest {
            println!("  {:<width$}  manifest {manifest}", task.name);
        }
    }
}

fn facts(d: &tributary_core::lineage::DatasetReport) -> String {
    let mut out = Vec::new();
    if let Some(r) = d.rows {
        out.push(format!("{r} rows"));
    }
    if let Some(b) = d.bytes {
        out.push(human_bytes(b));
    }
    if let Some(s) = &d.sha256 {
        out.push(format!("sha256 {}", &s[..12.min(s.len())]));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" ({})", out.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_secret_documents_and_env_files() {
        let dir = std::env::temp_dir().join(format!("tributary-run-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("s.yaml");
        std::fs::write(&yaml, "apiVersion: v1\nkind: Secret\nmetadata: {name: pg}\nstringData: {username: u}\ndata: {password: cDRzcw==}\n").unwrap();
        let env = dir.join("local.env");
        std::fs::write(
            &env,
            "# comment\nexport TRIBUTARY_DS_X_USERNAME=\"other\"\n",
        )
        .unwrap();
        let mut secrets = LocalSecrets::default();
        secrets.read(&yaml).unwrap();
        secrets.read(&env).unwrap();
        assert_eq!(secrets.documents[&("pg".into(), "password".into())], "p4ss");
        assert_eq!(secrets.variables["TRIBUTARY_DS_X_USERNAME"], "other");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn byte_counts_are_shown_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}

//! The `tributary` command line: offline validation, graphs, CRDs, and local runs.

mod documents;
mod graph;
mod run;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Tributary: typed data pipelines on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Pipelines and DataSources offline; prints every problem with file and field.
    Validate {
        /// YAML files or directories (searched recursively for *.yaml / *.yml).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Namespace for documents that do not set one.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Do not report DataSources that the files reference but do not define
        /// (they may already exist in the cluster).
        #[arg(long)]
        allow_missing_datasources: bool,
    },
    /// Print the task graph of each Pipeline.
    Graph {
        /// YAML files or directories.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Run a Pipeline on this machine, in process: DAG order, parallelism, retries and timeouts
    /// as in the cluster, with live progress, then the final status and lineage.
    Run {
        /// YAML files or directories with the Pipeline, its DataSources and (optionally) Secrets.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Namespace for documents that do not set one.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// The Pipeline to run when the files hold several.
        #[arg(short = 'p', long)]
        pipeline: Option<String>,
        /// More Secret values: Kubernetes Secret YAML, or `TRIBUTARY_DS_…=value` lines.
        /// Environment variables named as the runner contract says take precedence.
        #[arg(long = "secrets")]
        secrets: Vec<PathBuf>,
        /// Run id (default: local-YYYYMMDDHHMMSS), used in templated keys as `{{ run.id }}`.
        #[arg(long)]
        run_id: Option<String>,
        /// JSON file keeping incremental-export watermarks from run to run.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Treat `container` tasks as done instead of failing them (they need a cluster).
        #[arg(long)]
        skip_containers: bool,
        /// Print the final run status as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the CustomResourceDefinitions, or write them into a directory.
    Crds {
        /// Write one file per CRD into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Graph output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders in GitHub and most Markdown viewers).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate {
            files,
            namespace,
            allow_missing_datasources,
        } => validate::run(&files, &namespace, allow_missing_datasources),
        Command::Graph { files, format } => graph::run(&files, format),
        Command::Crds { out_dir } => crds(out_dir),
        Command::Run {
            files,
            namespace,
            pipeline,
            secrets,
            run_id,
            state,
            skip_containers,
            json,
        } => run::run(run::Options {
            files,
            namespace,
            pipeline,
            secrets,
            run_id,
            state,
            skip_containers,
            json,
        }),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn crds(out_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match out_dir {
        None => print!("{}", tributary_core::crd::crds_yaml()),
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in tributary_core::crd::crd_files() {
                std::fs::write(dir.join(file), yaml)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

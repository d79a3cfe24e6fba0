//! `tributary graph`: each Pipeline's DAG as Mermaid or Graphviz dot.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tributary_core::api::PipelineSpec;

use crate::GraphFormat;
use crate::documents;

/// Prints the graph of every Pipeline in the files.
pub fn run(files: &[PathBuf], format: GraphFormat) -> anyhow::Result<ExitCode> {
    let docs = documents::read(files, "default")?;
    if docs.pipelines.is_empty() {
        anyhow::bail!("no Pipeline found in the given files");
    }
    for pipeline in &docs.pipelines {
        let text = match format {
            GraphFormat::Mermaid => mermaid(&pipeline.name, &pipeline.spec),
            GraphFormat::Dot => dot(&pipeline.name, &pipeline.spec),
        };
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_label(spec: &PipelineSpec, index: usize) -> String {
    let task = &spec.tasks[index];
    task.kind()
        .map_or_else(|| "?".to_string(), |k| k.to_string())
}

/// A Mermaid flowchart, left to right; node ids are task indices so any name is safe.
pub fn mermaid(name: &str, spec: &PipelineSpec) -> String {
    let mut out = format!("%% Pipeline {name}\nflowchart LR\n");
    for (i, task) in spec.tasks.iter().enumerate() {
        let _ = writeln!(
            out,
            "  t{i}[\"{}<br/><i>{}</i>\"]",
            task.name.replace('"', "'"),
            kind_label(spec, i)
        );
    }
    for (i, task) in spec.tasks.iter().enumerate() {
        for dep in &task.depends_on {
            if let Some(j) = spec.tasks.iter().position(|t| &t.name == dep) {
                let _ = writeln!(out, "  t{j} --> t{i}");
            }
        }
    }
    out
}

/// A Graphviz digraph.
pub fn dot(name: &str, spec: &PipelineSpec) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n",
        name.replace('"', "\\\"")
    );
    for (i, task) in spec.tasks.iter().enumerate() {
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n({})\"];",
            task.name,
            task.name,
            kind_label(spec, i)
        );
    }
    for task in &spec.tasks {
        for dep in &task.depends_on {
            let _ = writeln!(out, "  \"{dep}\" -> \"{}\";", task.name);
        }
    }
    out.push_str("}\n");
    out
}

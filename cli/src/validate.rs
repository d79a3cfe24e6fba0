//! `tributary validate`: every problem of every Pipeline and DataSource, with file and field.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use tributary_core::api::DataSourceSpec;
use tributary_core::validate::{ProblemKind, validate_data_source, validate_pipeline};

use crate::documents;

/// One reported problem.
struct Finding {
    location: String,
    path: String,
    message: String,
}

/// Validates the files; exit code 1 when anything is wrong.
pub fn run(
    files: &[PathBuf],
    namespace: &str,
    allow_missing_datasources: bool,
) -> anyhow::Result<ExitCode> {
    let docs = documents::read(files, namespace)?;
    let mut findings = Vec::new();
    for bad in &docs.unreadable {
        findings.push(Finding {
            location: format!("{}#{} {}", bad.file.display(), bad.document, bad.what),
            path: bad.path.clone(),
            message: bad.message.clone(),
        });
    }
    let mut by_namespace: BTreeMap<&str, BTreeMap<&str, &DataSourceSpec>> = BTreeMap::new();
    for source in &docs.data_sources {
        by_namespace
            .entry(source.namespace.as_str())
            .or_default()
            .insert(source.name.as_str(), &source.spec);
        for problem in validate_data_source(&source.spec) {
            findings.push(Finding {
                location: format!(
                    "{}#{} DataSource/{}",
                    source.file.display(),
                    source.document,
                    source.name
                ),
                path: problem.path,
                message: problem.message,
            });
        }
    }
    let empty = BTreeMap::new();
    for pipeline in &docs.pipelines {
        let sources = by_namespace
            .get(pipeline.namespace.as_str())
            .unwrap_or(&empty);
        for problem in validate_pipeline(&pipeline.spec, sources) {
            if allow_missing_datasources && problem.kind == ProblemKind::MissingDataSource {
                continue;
            }
            findings.push(Finding {
                location: format!(
                    "{}#{} Pipeline/{}",
                    pipeline.file.display(),
                    pipeline.document,
                    pipeline.name
                ),
                path: problem.path,
                message: problem.message,
            });
        }
    }
    for finding in &findings {
        if finding.path.is_empty() {
            println!("{}: {}", finding.location, finding.message);
        } else {
            println!(
                "{}: {}: {}",
                finding.location, finding.path, finding.message
            );
        }
    }
    let checked = docs.pipelines.len() + docs.data_sources.len();
    if findings.is_empty() {
        eprintln!(
            "{checked} resources valid ({} Pipelines, {} DataSources)",
            docs.pipelines.len(),
            docs.data_sources.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} problems in {checked} resources", findings.len());
        Ok(ExitCode::from(1))
    }
}

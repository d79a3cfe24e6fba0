//! Reading Kubernetes YAML: files and directories, multi-document streams, typed resources
//! with field paths on type errors.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tributary_core::api::{DataSourceSpec, GROUP, PipelineSpec};

/// A Tributary resource read from a file.
#[derive(Debug)]
pub struct Resource<S> {
    pub file: PathBuf,
    /// 1-based position of the document in its file.
    pub document: usize,
    pub namespace: String,
    pub name: String,
    pub spec: S,
}

/// A document that is a Tributary resource but could not be read as one.
#[derive(Debug)]
pub struct Unreadable {
    pub file: PathBuf,
    pub document: usize,
    pub what: String,
    pub path: String,
    pub message: String,
}

/// Everything read from the given files.
#[derive(Debug, Default)]
pub struct Documents {
    pub pipelines: Vec<Resource<PipelineSpec>>,
    pub data_sources: Vec<Resource<DataSourceSpec>>,
    pub unreadable: Vec<Unreadable>,
}

/// Expands directories (recursively, `*.yaml` / `*.yml`, sorted) and keeps files as given.
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_yaml(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}

fn collect_yaml(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    Ok(())
}

/// Reads every Pipeline and DataSource in the files; other kinds are ignored.
pub fn read(paths: &[PathBuf], default_namespace: &str) -> anyhow::Result<Documents> {
    let mut documents = Documents::default();
    for file in expand(paths)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let position = index + 1;
            let value = match serde_yaml::Value::deserialize(document) {
                Ok(value) => value,
                Err(err) => {
                    documents.unreadable.push(Unreadable {
                        file: file.clone(),
                        document: position,
                        what: "document".into(),
                        path: String::new(),
                        message: format!("not valid YAML: {err}"),
                    });
                    break;
                }
            };
            if value.is_null() {
                continue;
            }
            read_resource(&file, position, value, default_namespace, &mut documents);
        }
    }
    Ok(documents)
}

fn read_resource(
    file: &Path,
    document: usize,
    value: serde_yaml::Value,
    default_namespace: &str,
    out: &mut Documents,
) {
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if api_version.split('/').next() != Some(GROUP) {
        return;
    }
    let metadata = value.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(|v| v.as_str())
        .unwrap_or(default_namespace)
        .to_string();
    let what = format!(
        "{kind}/{}",
        if name.is_empty() { "<unnamed>" } else { &name }
    );
    let unreadable = |path: String, message: String| Unreadable {
        file: file.to_path_buf(),
        document,
        what: what.clone(),
        path,
        message,
    };
    if api_version != format!("{GROUP}/{}", tributary_core::api::VERSION) {
        out.unreadable.push(unreadable(
            "apiVersion".into(),
            format!("unsupported version {api_version:?}; use {GROUP}/v1alpha1"),
        ));
        return;
    }
    if name.is_empty() {
        out.unreadable
            .push(unreadable("metadata.name".into(), "is required".into()));
    }
    let spec = value
        .get("spec")
        .cloned()
        .unwrap_or(serde_yaml::Value::Null);
    match kind {
        "Pipeline" => match typed::<PipelineSpec>(spec) {
            Ok(spec) => out.pipelines.push(Resource {
                file: file.to_path_buf(),
                document,
                namespace,
                name,
                spec,
            }),
            Err((path, message)) => out.unreadable.push(unreadable(path, message)),
        },
        "DataSource" => match typed::<DataSourceSpec>(spec) {
            Ok(spec) => out.data_sources.push(Resource {
                file: file.to_path_buf(),
                document,
                namespace,
                name,
                spec,
            }),
            Err((path, message)) => out.unreadable.push(unreadable(path, message)),
        },
        other => out.unreadable.push(unreadable(
            "kind".into(),
            format!("unknown kind {other:?}; expected Pipeline or DataSource"),
        )),
    }
}

/// Deserialises a spec, locating a type error by its field path (e.g. `spec.tasks[2].retries`).
fn typed<T: DeserializeOwned>(spec: serde_yaml::Value) -> Result<T, (String, String)> {
    if spec.is_null() {
        return Err(("spec".into(), "is required".into()));
    }
    serde_path_to_error::deserialize(spec).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        (path, err.into_inner().to_string())
    })
}

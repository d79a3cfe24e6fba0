//! The CustomResourceDefinitions generated from the Rust types, as YAML.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{DataSource, Pipeline};

const HEADER: &str =
    "# Generated from the Rust types by `tributary crds` (make crds). Do not edit.\n";

fn crds() -> [CustomResourceDefinition; 2] {
    [DataSource::crd(), Pipeline::crd()]
}

fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml::to_string(crd).expect("a CRD always serialises to YAML")
}

/// Both CRDs as one multi-document YAML stream, in a stable order.
pub fn crds_yaml() -> String {
    let documents: Vec<String> = crds().iter().map(to_yaml).collect();
    format!("{HEADER}---\n{}", documents.join("---\n"))
}

/// One `(file name, YAML)` per CRD, as checked in under `crds/`.
pub fn crd_files() -> Vec<(String, String)> {
    crds()
        .iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            (format!("{name}.yaml"), format!("{HEADER}{}", to_yaml(crd)))
        })
        .collect()
}

//! The CustomResourceDefinitions generated from the Rust types, as YAML.

use kube::CustomResourceExt;

use crate::api::{DataSource, Pipeline};

/// Both CRDs as one multi-document YAML stream, in a stable order.
pub fn crds_yaml() -> String {
    let header = "# Generated from the Rust types by `tributary crds` (make crds). Do not edit.\n";
    let documents = [DataSource::crd(), Pipeline::crd()]
        .iter()
        .map(|crd| serde_yaml::to_string(crd).expect("a CRD always serialises to YAML"))
        .collect::<Vec<_>>();
    format!("{header}---\n{}", documents.join("---\n"))
}

//! The CustomResourceDefinitions generated from the Rust types, as YAML.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;
use serde_json::{Map, Value};

use crate::api::{DataSource, Pipeline};

const HEADER: &str =
    "# Generated from the Rust types by `tributary crds` (make crds). Do not edit.\n";

fn crds() -> [CustomResourceDefinition; 2] {
    [DataSource::crd(), Pipeline::crd()]
}

/// The CRD with every free-form JSON value in its schemas (defaults, examples, enum values)
/// written with sorted keys. serde_json keeps insertion order when any crate in the build
/// turns on its `preserve_order` feature (bson does), so without this the YAML would
/// depend on which packages happen to be compiled together.
fn canonical(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            canonical_schema(schema);
        }
    }
    crd
}

fn canonical_schema(schema: &mut JSONSchemaProps) {
    for json in schema
        .default
        .iter_mut()
        .chain(schema.example.iter_mut())
        .chain(schema.enum_.iter_mut().flatten())
    {
        json.0 = sorted_keys(std::mem::take(&mut json.0));
    }
    let nested = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(
            schema
                .pattern_properties
                .iter_mut()
                .flat_map(|p| p.values_mut()),
        )
        .chain(schema.definitions.iter_mut().flat_map(|p| p.values_mut()))
        .chain(schema.all_of.iter_mut().flatten())
        .chain(schema.any_of.iter_mut().flatten())
        .chain(schema.one_of.iter_mut().flatten())
        .chain(schema.not.as_deref_mut());
    let mut children: Vec<&mut JSONSchemaProps> = nested.collect();
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => children.push(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => children.extend(items.iter_mut()),
        None => {}
    }
    for extra in [
        schema.additional_properties.as_mut(),
        schema.additional_items.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        if let JSONSchemaPropsOrBool::Schema(s) = extra {
            children.push(s);
        }
    }
    for child in children {
        canonical_schema(child);
    }
}

fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let sorted: Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k, sorted_keys(v)))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml::to_string(&canonical(crd.clone())).expect("a CRD always serialises to YAML")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_are_written_with_sorted_keys_at_every_depth() {
        let value: Value = serde_json::json!({"b": 1, "a": {"d": [{"z": 0, "y": 1}], "c": 2}});
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let sorted = sorted_keys(value);
        assert_eq!(keys(&sorted), ["a", "b"]);
        assert_eq!(keys(&sorted["a"]), ["c", "d"]);
        assert_eq!(keys(&sorted["a"]["d"][0]), ["y", "z"]);
    }
}

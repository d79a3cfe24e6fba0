//! The checked-in CRDs under `crds/` are exactly what the Rust types generate.

use kube::CustomResourceExt;
use tributary_core::api::{DataSource, Pipeline};
use tributary_core::crd::crd_files;

#[test]
fn checked_in_crds_match_the_rust_types() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
    for (file, generated) in crd_files() {
        let path = format!("{dir}/{file}");
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{path} is missing: run `make crds`"));
        assert!(
            on_disk == generated,
            "{path} differs from the Rust types: run `make crds` and commit the result"
        );
    }
}

#[test]
fn crds_are_namespaced_with_status_short_names_and_the_tributary_category() {
    for crd in [DataSource::crd(), Pipeline::crd()] {
        let spec = &crd.spec;
        assert_eq!(spec.scope, "Namespaced");
        assert_eq!(
            spec.names.categories.as_deref(),
            Some(&["tributary".to_string()][..])
        );
        let short = spec.names.short_names.clone().unwrap_or_default();
        assert!(
            !short.is_empty() && !short.contains(&"ds".to_string()),
            "short names must not collide with built-ins"
        );
        let version = &spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
    }
}

fn descriptions_missing(schema: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, property) in properties {
            let here = format!("{path}.{name}");
            // metadata and apiVersion/kind are documented by Kubernetes itself.
            let standard = matches!(name.as_str(), "metadata" | "apiVersion" | "kind");
            if !standard && property.get("description").is_none() {
                missing.push(here.clone());
            }
            descriptions_missing(property, &here, missing);
        }
    }
    if let Some(items) = schema.get("items") {
        descriptions_missing(items, &format!("{path}[]"), missing);
    }
}

#[test]
fn every_field_of_our_own_types_has_a_description_for_kubectl_explain() {
    for crd in [DataSource::crd(), Pipeline::crd()] {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let mut missing = Vec::new();
        descriptions_missing(
            &schema["openAPIV3Schema"],
            &crd.spec.names.kind,
            &mut missing,
        );
        // Embedded core/v1 types (resources, tolerations, env) carry Kubernetes' own docs where
        // k8s-openapi has them; our own fields must all be described.
        missing.retain(|p| {
            !p.contains(".resources.") && !p.contains(".tolerations[]") && !p.contains(".env[]")
        });
        assert!(
            missing.is_empty(),
            "fields without description: {missing:#?}"
        );
    }
}

//! Static checks of the deployment files that need no server: the chart's RBAC covers
//! exactly the kinds the operator's code calls, never Secrets; the chart's CRD copies are
//! the generated ones; the Argo CD Applications point at paths that exist.
//! (tests/deploy/run.sh proves the same RBAC on the real API server with `kubectl auth can-i`.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use tributary_deploy_tests::{documents, read, repo};

/// (kind in `Api<Kind>`, API group, resource) for every kind the operator may call.
/// A new `Api<…>` in operator/src fails `the_operator_calls_only_kinds_the_chart_grants`
/// until it is listed here and granted in charts/tributary/templates/rbac.yaml.
/// (`CachedJob` and `RunnerPod` are the operator's lean decodings of Jobs and Pods.)
const KNOWN: [(&str, &str, &str); 8] = [
    ("Pipeline", "tributary.dev", "pipelines"),
    ("DataSource", "tributary.dev", "datasources"),
    ("Job", "batch", "jobs"),
    ("CachedJob", "batch", "jobs"),
    ("Pod", "", "pods"),
    ("RunnerPod", "", "pods"),
    ("Event", "events.k8s.io", "events"),
    ("Lease", "coordination.k8s.io", "leases"),
];

/// Kinds named as `Api<Kind>` or `api::<Kind>` in the operator's sources.
fn kinds_called(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            kinds_called(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["Api<", "api::<"] {
                for (i, _) in text.match_indices(marker) {
                    let rest = &text[i + marker.len()..];
                    let kind: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    // `Api<K>` in generic helpers names a type parameter, not a kind.
                    if kind.len() > 1 {
                        found.insert(kind);
                    }
                }
            }
        }
    }
}

/// (group, resource) pairs granted by the rules of one Role or ClusterRole.
fn granted(role: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                out.insert((
                    group.as_str().unwrap().to_string(),
                    resource.as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn install_bundle() -> Vec<Value> {
    documents("manifests/install/install.yaml")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("install.yaml has no {kind} {name}"))
}

#[test]
fn the_operator_calls_only_kinds_the_chart_grants() {
    let mut called = BTreeSet::new();
    kinds_called(&repo().join("operator/src"), &mut called);
    assert!(
        called.contains("Pipeline") && called.contains("Job"),
        "the scan found nothing: {called:?}"
    );
    let docs = install_bundle();
    let mut rights = granted(find(&docs, "ClusterRole", "tributary"));
    rights.extend(granted(find(&docs, "Role", "tributary-leader-election")));
    for kind in &called {
        let (_, group, resource) = KNOWN.iter().find(|(k, _, _)| k == kind).unwrap_or_else(|| {
            panic!(
                "operator/src calls Api<{kind}>: grant it in charts/tributary/templates/rbac.yaml \
                     (with a comment saying why), then list it in KNOWN here"
            )
        });
        assert!(
            rights.contains(&(group.to_string(), resource.to_string())),
            "Api<{kind}> is used but {group}/{resource} is not granted"
        );
    }
}

#[test]
fn the_chart_grants_nothing_the_operator_does_not_call_and_never_secrets() {
    let mut called = BTreeSet::new();
    kinds_called(&repo().join("operator/src"), &mut called);
    assert!(
        !called.contains("Secret"),
        "the operator must never read Secrets"
    );
    let docs = install_bundle();
    let needed: BTreeSet<(String, String)> = KNOWN
        .iter()
        .filter(|(k, _, _)| called.contains(*k))
        .flat_map(|(_, g, r)| {
            // Owners of Jobs: status is written, finalizers only checked when a Job's
            // ownerReference sets blockOwnerDeletion.
            let subresources: Vec<(String, String)> = if matches!(*r, "pipelines" | "datasources") {
                ["status", "finalizers"]
                    .iter()
                    .map(|sub| (g.to_string(), format!("{r}/{sub}")))
                    .collect()
            } else {
                Vec::new()
            };
            std::iter::once((g.to_string(), r.to_string())).chain(subresources)
        })
        .collect();
    for (kind, name) in [
        ("ClusterRole", "tributary"),
        ("Role", "tributary-leader-election"),
    ] {
        let role = find(&docs, kind, name);
        for (group, resource) in granted(role) {
            assert!(
                needed.contains(&(group.clone(), resource.clone())),
                "{kind} {name} grants {group}/{resource}, which the operator never calls"
            );
        }
        let text = serde_json::to_string(role).unwrap();
        assert!(!text.contains("secrets"), "{kind} {name} mentions secrets");
        assert!(!text.contains("\"*\""), "{kind} {name} has a wildcard");
    }
}

#[test]
fn every_rbac_rule_in_the_chart_says_why() {
    // Each `- apiGroups:` list item is preceded by a comment line saying why it is there.
    let text = read("charts/tributary/templates/rbac.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("- apiGroups:") {
            rules += 1;
            let above = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap();
            let commented = above.trim_start().starts_with('#');
            assert!(
                commented,
                "rbac.yaml line {}: rule without a comment",
                i + 1
            );
        }
    }
    assert!(rules >= 7, "expected the operator's rules, found {rules}");
}

#[test]
fn the_chart_ships_the_generated_crds_unchanged() {
    for file in [
        "pipelines.tributary.dev.yaml",
        "datasources.tributary.dev.yaml",
    ] {
        assert_eq!(
            read(&format!("charts/tributary/files/crds/{file}")),
            read(&format!("crds/{file}")),
            "charts/tributary/files/crds/{file} is stale: run `make manifests`"
        );
    }
}

#[test]
fn the_install_bundle_installs_the_crds_with_the_keep_policy_and_no_secrets_access() {
    let docs = install_bundle();
    assert_eq!(docs[0]["kind"], "Namespace");
    let crds: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(crds.len(), 2);
    for crd in crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }
    for doc in &docs {
        if doc["kind"] == "ServiceAccount" {
            assert_eq!(doc["automountServiceAccountToken"], false, "{doc}");
        }
    }
}

#[test]
fn the_argocd_applications_point_at_paths_that_exist() {
    for (file, path) in [
        (
            "manifests/argocd/tributary-application.yaml",
            "charts/tributary",
        ),
        (
            "manifests/argocd/pipelines-application.yaml",
            "manifests/examples/retail",
        ),
    ] {
        let docs = documents(file);
        assert_eq!(docs.len(), 1, "{file}");
        let app = &docs[0];
        assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1", "{file}");
        assert_eq!(app["kind"], "Application", "{file}");
        assert_eq!(app["spec"]["source"]["path"], path, "{file}");
        assert!(repo().join(path).is_dir(), "{file}: {path} is missing");
        let options: Vec<&str> = app["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert!(options.contains(&"ServerSideApply=true"), "{file}");
    }
}

#[test]
fn the_chart_application_values_are_chart_values() {
    // valuesObject keys must exist in values.yaml (the schema rejects unknown keys at render).
    let app = &documents("manifests/argocd/tributary-application.yaml")[0];
    let values = &documents("charts/tributary/values.yaml")[0];
    for key in app["spec"]["source"]["helm"]["valuesObject"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(values.get(key).is_some(), "{key} is not a chart value");
    }
}

#[test]
fn the_pipelines_application_deploys_into_the_namespace_of_its_objects() {
    let app = &documents("manifests/argocd/pipelines-application.yaml")[0];
    let namespace = app["spec"]["destination"]["namespace"].as_str().unwrap();
    let excluded = app["spec"]["source"]["directory"]["exclude"]
        .as_str()
        .unwrap();
    let dir = repo().join("manifests/examples/retail");
    assert!(
        dir.join(excluded).is_file(),
        "{excluded} is not in the folder"
    );
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == excluded || !name.ends_with(".yaml") {
            continue;
        }
        for doc in documents(&format!("manifests/examples/retail/{name}")) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            if kind != "Namespace" {
                assert_eq!(doc["metadata"]["namespace"], namespace, "{name}: {kind}");
            }
            kinds.insert(kind);
        }
    }
    assert!(
        kinds.contains("Pipeline") && kinds.contains("DataSource"),
        "{kinds:?}"
    );
    assert!(!kinds.contains("Secret"), "Secrets do not belong in Git");
}

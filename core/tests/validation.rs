//! Validation of whole Pipelines written as users write them (YAML), against DataSources.

use std::collections::BTreeMap;

use tributary_core::api::{DataSourceSpec, PipelineSpec};
use tributary_core::validate::{Problem, ProblemKind, validate_data_source, validate_pipeline};

fn pipeline(yaml: &str) -> PipelineSpec {
    serde_yaml::from_str(yaml).expect("fixture parses")
}

fn sources() -> BTreeMap<&'static str, DataSourceSpec> {
    let yaml = r#"
lake: {s3: {bucket: raw, credentialsSecretRef: {name: minio}}}
warehouse: {postgres: {host: db, database: warehouse, credentialsSecretRef: {name: pg}}}
hr-ftp: {ftp: {host: ftp.example.com}}
retail-mongo: {mongodb: {uri: "mongodb://mongo:27017/", database: retail}}
"#;
    serde_yaml::from_str(yaml).unwrap()
}

fn problems(spec: &PipelineSpec) -> Vec<Problem> {
    let sources = sources();
    let by_name = sources.iter().map(|(n, s)| (*n, s)).collect();
    validate_pipeline(spec, &by_name)
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

#[test]
fn the_retail_example_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/examples/retail");
    let mut specs = BTreeMap::new();
    let mut pipelines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(document).unwrap();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match value["kind"].as_str() {
                Some("DataSource") => {
                    let spec: DataSourceSpec =
                        serde_yaml::from_value(value["spec"].clone()).unwrap();
                    assert_eq!(validate_data_source(&spec), vec![], "DataSource {name}");
                    specs.insert(name, spec);
                }
                Some("Pipeline") => pipelines
                    .push(serde_yaml::from_value::<PipelineSpec>(value["spec"].clone()).unwrap()),
                _ => {}
            }
        }
    }
    let by_name = specs.iter().map(|(n, s)| (n.as_str(), s)).collect();
    assert_eq!(pipelines.len(), 1);
    assert_eq!(validate_pipeline(&pipelines[0], &by_name), vec![]);
}

#[test]
fn a_cycle_an_unknown_dependency_and_a_bad_cron_are_all_reported_with_their_paths() {
    let spec = pipeline(
        r#"
schedule: "0 25 * * *"
tasks:
- {name: a, dependsOn: [c], sql: {dataSource: warehouse, statements: ["select 1"]}}
- {name: b, dependsOn: [a], sql: {dataSource: warehouse, statements: ["select 1"]}}
- {name: c, dependsOn: [b, nope], sql: {dataSource: warehouse, statements: ["select 1"]}}
"#,
    );
    let found = problems(&spec);
    assert_eq!(
        paths(&found),
        vec!["spec.schedule", "spec.tasks", "spec.tasks[2].dependsOn[1]"],
        "{found:#?}"
    );
    assert!(
        found[1].message.contains("dependency cycle: a → c → b → a"),
        "{}",
        found[1].message
    );
    assert!(found[2].message.contains("\"nope\""));
}

#[test]
fn a_task_kind_that_cannot_use_the_datasource_kind_is_reported() {
    let spec = pipeline(
        r#"
tasks:
- name: export-from-ftp
  export: {from: {dataSource: hr-ftp, collection: c}, to: {dataSource: lake, key: "x.jsonl"}}
- name: load-into-lake
  load: {from: {dataSource: lake, key: k.jsonl}, to: {dataSource: lake, table: t}}
"#,
    );
    let found = problems(&spec);
    assert_eq!(
        paths(&found),
        vec![
            "spec.tasks[0].export.from.dataSource",
            "spec.tasks[1].load.to.dataSource"
        ]
    );
    assert!(
        found[0]
            .message
            .contains("is ftp, but this field needs a mongodb DataSource"),
        "{}",
        found[0].message
    );
}

#[test]
fn an_unknown_datasource_is_reported_as_missing_rather_than_as_a_spec_error() {
    let spec = pipeline("tasks: [{name: s, sql: {dataSource: elsewhere, statements: [select 1]}}]");
    let found = problems(&spec);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ProblemKind::MissingDataSource);
    assert_eq!(found[0].path, "spec.tasks[0].sql.dataSource");
}

#[test]
fn table_names_with_quotes_or_semicolons_are_rejected() {
    let spec = pipeline(
        r#"
tasks:
- name: evil
  load: {from: {dataSource: lake, key: k.jsonl}, to: {dataSource: warehouse, table: "t\"; drop table x; --"}}
- name: evil-check
  check: {dataSource: warehouse, table: "a;b", expect: [{rowCount: {min: 1}}]}
"#,
    );
    assert_eq!(
        paths(&problems(&spec)),
        vec!["spec.tasks[0].load.to.table", "spec.tasks[1].check.table"]
    );
}

#[test]
fn duplicate_names_and_self_dependencies_are_reported() {
    let spec = pipeline(
        r#"
tasks:
- {name: a, dependsOn: [a], sql: {dataSource: warehouse, statements: [select 1]}}
- {name: a, sql: {dataSource: warehouse, statements: [select 1]}}
"#,
    );
    assert_eq!(
        paths(&problems(&spec)),
        vec!["spec.tasks[0].dependsOn[0]", "spec.tasks[1].name"]
    );
}

#[test]
fn a_task_with_two_kinds_or_none_is_reported() {
    let spec = pipeline(
        r#"
tasks:
- {name: both, sql: {dataSource: warehouse, statements: [select 1]}, container: {image: busybox}}
- {name: neither}
"#,
    );
    let found = problems(&spec);
    assert_eq!(paths(&found), vec!["spec.tasks[0]", "spec.tasks[1]"]);
    assert!(found[0].message.contains("found sql, container"));
    assert!(found[1].message.contains("found none"));
}

#[test]
fn unknown_template_variables_and_time_zones_are_reported() {
    let spec = pipeline(
        r#"
timeZone: Europe/Londres
tasks:
- name: export
  export: {from: {dataSource: retail-mongo, collection: tx}, to: {dataSource: lake, key: "tx/{{ run.day }}.jsonl.gz"}}
"#,
    );
    let found = problems(&spec);
    assert_eq!(
        paths(&found),
        vec!["spec.tasks[0].export.to.key", "spec.timeZone"]
    );
    assert!(found[0].message.contains("\"run.day\""));
}

#[test]
fn expectations_must_fit_what_is_checked() {
    let spec = pipeline(
        r#"
tasks:
- name: c
  check:
    dataSource: warehouse
    table: fact
    expect:
    - exists: true
    - rowCount: {min: 5, max: 1}
    - {notNull: [a], unique: [a]}
"#,
    );
    let found = problems(&spec);
    assert_eq!(
        paths(&found),
        vec![
            "spec.tasks[0].check.expect[0].exists",
            "spec.tasks[0].check.expect[1].rowCount",
            "spec.tasks[0].check.expect[2]"
        ]
    );
}

#[test]
fn upsert_without_a_key_is_reported() {
    let spec = pipeline(
        r#"
tasks:
- name: l
  load: {from: {dataSource: lake, prefix: "p/"}, to: {dataSource: warehouse, table: t}, mode: Upsert}
"#,
    );
    assert_eq!(paths(&problems(&spec)), vec!["spec.tasks[0].load.key"]);
}

#[test]
fn datasources_with_credentials_in_urls_or_without_host_key_are_reported() {
    let sources: BTreeMap<String, DataSourceSpec> = serde_yaml::from_str(
        r#"
mongo: {mongodb: {uri: "mongodb://admin:hunter2@mongo:27017/", database: d}}
sftp: {sftp: {host: h, credentialsSecretRef: {name: s}}}
two: {s3: {bucket: raw}, postgres: {host: h, database: d, credentialsSecretRef: {name: p}}}
"#,
    )
    .unwrap();
    assert_eq!(
        paths(&validate_data_source(&sources["mongo"])),
        vec!["spec.mongodb.uri"]
    );
    assert_eq!(
        paths(&validate_data_source(&sources["sftp"])),
        vec!["spec.sftp.hostKey"]
    );
    let two = validate_data_source(&sources["two"]);
    assert_eq!(paths(&two), vec!["spec"]);
    assert!(two[0].message.contains("found s3, postgres"));
}

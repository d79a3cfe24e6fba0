//! `tributary validate` as users run it: exit codes and every problem with file and field.

use std::process::Command;

fn tributary(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const SOURCES: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {name: warehouse}
spec: {postgres: {host: db, database: w, credentialsSecretRef: {name: pg}}}
"#;

#[test]
fn the_retail_example_validates_with_exit_code_zero() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/examples/retail");
    let (code, stdout, stderr) = tributary(&["validate", "-f", example]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("1 Pipelines, 6 DataSources"), "{stderr}");
}

#[test]
fn a_cycle_an_unknown_dependency_and_a_bad_cron_are_all_printed_and_exit_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "bad.yaml",
        &format!(
            "{SOURCES}---\n{}",
            r#"
apiVersion: tributary.dev/v1alpha1
kind: Pipeline
metadata: {name: broken}
spec:
  schedule: "every day"
  tasks:
  - {name: a, dependsOn: [b], sql: {dataSource: warehouse, statements: [select 1]}}
  - {name: b, dependsOn: [a, ghost], sql: {dataSource: warehouse, statements: [select 1]}}
"#
        ),
    );
    let (code, stdout, _) = tributary(&["validate", "-f", &file]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&format!("{file}#2 Pipeline/broken: "))),
        "{stdout}"
    );
    assert!(
        stdout.contains("spec.schedule: invalid cron expression \"every day\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("spec.tasks: dependency cycle: a → b → a"),
        "{stdout}"
    );
    assert!(
        stdout.contains("spec.tasks[1].dependsOn[1]: task \"b\" depends on \"ghost\""),
        "{stdout}"
    );
}

#[test]
fn a_wrongly_typed_field_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "typed.yaml",
        r#"
apiVersion: tributary.dev/v1alpha1
kind: Pipeline
metadata: {name: typed}
spec:
  tasks:
  - {name: a, retries: many, sql: {dataSource: warehouse, statements: [select 1]}}
"#,
    );
    let (code, stdout, _) = tributary(&["validate", "-f", &file]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("Pipeline/typed: spec.tasks[0].retries: invalid type"),
        "{stdout}"
    );
}

#[test]
fn missing_datasources_can_be_allowed_when_they_live_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "p.yaml",
        r#"
apiVersion: tributary.dev/v1alpha1
kind: Pipeline
metadata: {name: p}
spec: {tasks: [{name: a, sql: {dataSource: elsewhere, statements: [select 1]}}]}
"#,
    );
    assert_eq!(tributary(&["validate", "-f", &file]).0, 1);
    assert_eq!(
        tributary(&["validate", "--allow-missing-datasources", "-f", &file]).0,
        0
    );
}

#[test]
fn graph_prints_mermaid_and_dot_edges() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/examples/retail");
    let (code, mermaid, _) = tributary(&["graph", "-f", example]);
    assert_eq!(code, 0);
    assert!(
        mermaid.contains("flowchart LR") && mermaid.contains("t6 --> t7"),
        "{mermaid}"
    );
    let (_, dot, _) = tributary(&["graph", "-f", example, "--format", "dot"]);
    assert!(
        dot.contains("\"load-transactions\" -> \"build-star\";"),
        "{dot}"
    );
}

#[test]
fn crds_prints_both_definitions() {
    let (code, yaml, _) = tributary(&["crds"]);
    assert_eq!(code, 0);
    assert!(
        yaml.contains("name: pipelines.tributary.dev")
            && yaml.contains("name: datasources.tributary.dev")
    );
}

#[test]
fn a_missing_file_is_an_error_with_exit_code_two() {
    let (code, _, stderr) = tributary(&["validate", "-f", "/nonexistent/pipeline.yaml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/pipeline.yaml: no such file or directory"),
        "{stderr}"
    );
}

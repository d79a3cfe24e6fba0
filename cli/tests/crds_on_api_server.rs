//! The generated CRDs on the real API server of the local stack: accepted, documented for
//! `kubectl explain`, printing the right columns, and enforcing their CEL rules.

use std::io::Write;
use std::process::{Command, Stdio};

use tributary_testkit::stack;

/// Names our group for `kubectl explain`: another CRD (Tekton's, say) may own the kind `Pipeline`.
const API_VERSION: &str = "--api-version=tributary.dev/v1alpha1";

fn kubectl(kubeconfig: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn install_crds(kubeconfig: &str) {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
    let (ok, out) = kubectl(
        kubeconfig,
        &["apply", "--server-side", "--force-conflicts", "-f", crds],
        None,
    );
    assert!(ok, "CRDs rejected by the API server: {out}");
    let (ok, out) = kubectl(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd/pipelines.tributary.dev",
            "crd/datasources.tributary.dev",
            "--timeout=60s",
        ],
        None,
    );
    assert!(ok, "{out}");
}

/// Server-side dry run of one manifest in a throwaway namespace name (dry runs create nothing).
fn dry_run(kubeconfig: &str, manifest: &str) -> (bool, String) {
    kubectl(
        kubeconfig,
        &["apply", "--dry-run=server", "-n", "default", "-f", "-"],
        Some(manifest),
    )
}

#[test]
fn the_api_server_accepts_the_crds_and_explains_every_field() {
    let Some(stack) = stack() else { return };
    install_crds(&stack.kubeconfig);
    // Discovery may lag a moment behind Established.
    let mut explained = String::new();
    for _ in 0..30 {
        let (ok, out) = kubectl(
            &stack.kubeconfig,
            &["explain", "pipeline.spec.tasks", API_VERSION],
            None,
        );
        explained = out;
        if ok {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(explained.contains("One node of the DAG"), "{explained}");
    assert!(
        explained.contains("Names of tasks that must succeed before this one starts"),
        "{explained}"
    );
    let (ok, out) = kubectl(
        &stack.kubeconfig,
        &[
            "explain",
            "datasource.spec.s3.credentialsSecretRef",
            API_VERSION,
        ],
        None,
    );
    assert!(ok && out.contains("accessKeyId"), "{out}");
}

#[test]
fn the_retail_example_is_accepted_by_a_server_side_dry_run() {
    let Some(stack) = stack() else { return };
    install_crds(&stack.kubeconfig);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/examples/retail");
    for file in ["20-datasources.yaml", "30-pipeline.yaml"] {
        let text = std::fs::read_to_string(format!("{example}/{file}"))
            .unwrap()
            .replace("namespace: retail", "namespace: default");
        let (ok, out) = dry_run(&stack.kubeconfig, &text);
        assert!(ok, "{file}: {out}");
    }
}

#[test]
fn cel_rules_reject_two_connector_kinds_credentials_in_a_uri_and_two_task_kinds() {
    let Some(stack) = stack() else { return };
    install_crds(&stack.kubeconfig);
    let (ok, out) = dry_run(
        &stack.kubeconfig,
        r#"
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {name: two-kinds}
spec: {s3: {bucket: raw}, postgres: {host: h, database: d, credentialsSecretRef: {name: p}}}
"#,
    );
    assert!(
        !ok && out.contains("exactly one of ftp, sftp, http, mongodb, s3, postgres must be set"),
        "{out}"
    );
    let (ok, out) = dry_run(
        &stack.kubeconfig,
        r#"
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {name: leaky}
spec: {mongodb: {uri: "mongodb://admin:hunter2@mongo:27017/", database: d}}
"#,
    );
    assert!(
        !ok && out.contains("uri must not contain credentials"),
        "{out}"
    );
    let (ok, out) = dry_run(
        &stack.kubeconfig,
        r#"
apiVersion: tributary.dev/v1alpha1
kind: Pipeline
metadata: {name: two-task-kinds}
spec:
  tasks:
  - {name: a, sql: {dataSource: w, statements: [select 1]}, container: {image: busybox}}
  - {name: B_bad, sql: {dataSource: w, statements: [select 1]}}
"#,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("exactly one of copy, export, load, sql, check, container must be set"),
        "{out}"
    );
    assert!(
        out.contains("spec.tasks[1].name"),
        "the name pattern is enforced too: {out}"
    );
}

#[test]
fn duplicate_task_names_are_rejected_by_the_list_map_schema() {
    let Some(stack) = stack() else { return };
    install_crds(&stack.kubeconfig);
    let (ok, out) = dry_run(
        &stack.kubeconfig,
        r#"
apiVersion: tributary.dev/v1alpha1
kind: Pipeline
metadata: {name: dupes}
spec:
  tasks:
  - {name: a, sql: {dataSource: w, statements: [select 1]}}
  - {name: a, sql: {dataSource: w, statements: [select 2]}}
"#,
    );
    assert!(!ok && out.contains("Duplicate value"), "{out}");
}

#[test]
fn kubectl_get_prints_the_documented_columns() {
    let Some(stack) = stack() else { return };
    install_crds(&stack.kubeconfig);
    let (ok, out) = kubectl(
        &stack.kubeconfig,
        &["get", "pipelines.tributary.dev", "-A"],
        None,
    );
    assert!(ok, "{out}");
    let (_, table) = kubectl(
        &stack.kubeconfig,
        &[
            "get",
            "--raw",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pipelines.tributary.dev",
        ],
        None,
    );
    for column in [
        "\"Phase\"",
        "\"Progress\"",
        "\"Last Run\"",
        "\"Next Run\"",
        "\"Age\"",
    ] {
        assert!(table.contains(column), "missing printer column {column}");
    }
    let (_, table) = kubectl(
        &stack.kubeconfig,
        &[
            "get",
            "--raw",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/datasources.tributary.dev",
        ],
        None,
    );
    for column in ["\"Kind\"", "\"Ready\"", "\"Age\""] {
        assert!(table.contains(column), "missing printer column {column}");
    }
}

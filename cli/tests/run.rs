//! `tributary run` end to end against the local stack: DAG order, retries, skips, lineage.

use std::process::Command;

use tributary_testkit::{stack, url_parts};

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (h, p) = authority.rsplit_once(':').unwrap();
    (h.to_string(), p.parse().unwrap())
}

#[test]
fn a_local_run_follows_the_dag_retries_skips_and_prints_lineage() {
    let Some(stack) = stack() else { return };
    let (s3_host, s3_port) = host_port(&stack.s3.endpoint);
    let (sftp_user, sftp_password, sftp_host, sftp_port) = url_parts(&stack.sftp_url);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = format!("cli{}", std::process::id());
    let table = format!("cli_run_{id}");
    let pg = &stack.postgres;
    let yaml = format!(
        r#"
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {{name: lake}}
spec: {{s3: {{endpoint: "http://{s3_host}:{s3_port}", bucket: {bucket}, pathStyle: true, credentialsSecretRef: {{name: minio}}}}}}
---
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {{name: warehouse}}
spec: {{postgres: {{host: "{pg_host}", port: {pg_port}, database: {pg_db}, sslMode: disable, credentialsSecretRef: {{name: pg}}}}}}
---
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {{name: mongo}}
spec: {{mongodb: {{uri: "{mongo}", database: retail}}}}
---
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {{name: files}}
spec: {{sftp: {{host: "{sftp_host}", port: {sftp_port}, insecureSkipHostKeyVerification: true, credentialsSecretRef: {{name: sftp}}}}}}
---
apiVersion: tributary.dev/v1alpha1
kind: DataSource
metadata: {{name: gone}}
spec: {{ftp: {{host: 127.0.0.1, port: {closed}}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: minio}}
stringData: {{accessKeyId: "{s3_id}", secretAccessKey: "{s3_secret}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: pg}}
stringData: {{username: "{pg_user}", password: "{pg_password}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sftp}}
stringData: {{username: "{sftp_user}", password: "{sftp_password}"}}
---
apiVersion: tributary.dev/v1alpha1
kind: Pipeline
metadata: {{name: cli-run}}
spec:
  parallelism: 2
  defaults: {{retries: 1, backoffSeconds: 1, timeoutSeconds: 120}}
  tasks:
  - name: docs
    copy:
      from: {{dataSource: files, path: /procedures, glob: "*.pdf"}}
      to: {{dataSource: lake, prefix: "tests/cli/{{{{ run.id }}}}/docs/"}}
  - name: export
    export:
      from: {{dataSource: mongo, collection: customer_transactions, filter: {{InvoiceNo: "536365"}}}}
      to: {{dataSource: lake, key: "tests/cli/{{{{ run.id }}}}/tx.jsonl"}}
  - name: load
    dependsOn: [export]
    load:
      from: {{dataSource: lake, key: "tests/cli/{{{{ run.id }}}}/tx.jsonl"}}
      to: {{dataSource: warehouse, table: {table}}}
      columns:
      - {{name: invoice_no, type: text, source: InvoiceNo}}
      - {{name: quantity, type: bigint, source: Quantity}}
  - name: build
    dependsOn: [load]
    sql: {{dataSource: warehouse, statements: ["DELETE FROM {table} WHERE quantity < 0"]}}
  - name: check
    dependsOn: [build]
    check: {{dataSource: warehouse, table: {table}, expect: [{{rowCount: {{min: 1}}}}, {{notNull: [invoice_no]}}]}}
  - name: flaky
    copy:
      from: {{dataSource: gone, path: /, glob: "*"}}
      to: {{dataSource: lake, prefix: "tests/cli/never/"}}
  - name: after-flaky
    dependsOn: [flaky]
    sql: {{dataSource: warehouse, statements: ["SELECT 1"]}}
"#,
        bucket = stack.s3.bucket,
        pg_host = pg.host,
        pg_port = pg.port,
        pg_db = pg.database,
        pg_user = pg.user,
        pg_password = pg.password,
        mongo = stack.mongodb_uri,
        s3_id = stack.s3.access_key_id,
        s3_secret = stack.s3.secret_access_key,
    );
    let dir = std::env::temp_dir().join(format!("tributary-cli-run-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pipeline.yaml"), yaml).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-n", "tests", "--run-id", &id, "-f"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1), "a failed task fails the run");
    let line = |task: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(task))
            .unwrap_or_else(|| panic!("no status line for {task}"))
            .to_string()
    };
    for task in ["docs", "export", "load", "build", "check"] {
        assert!(line(task).contains("Succeeded"), "{}", line(task));
    }
    let flaky: Vec<String> = line("flaky")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(flaky[1], "Failed");
    assert_eq!(flaky[2], "2", "one retry after a retryable failure");
    assert!(line("after-flaky").contains("Skipped"));
    assert!(stderr.contains("↻ flaky will retry"), "{stderr}");
    let output_of_load = format!(
        "→ postgres://{}:{}/{}.public.{table}",
        pg.host, pg.port, pg.database
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("load ") && l.contains(&output_of_load)),
        "{stdout}"
    );
    assert!(stdout.contains("✔ rowCount(>=1)"), "{stdout}");
    assert!(!stdout.contains(&pg.password) || pg.password.len() < 4);
}

//! Connection checks of every DataSource kind against the real servers.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn every_datasource_kind_connects_and_reports_what_it_saw() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    for name in [
        "lake",
        "warehouse",
        "retail-mongo",
        "hr-ftp",
        "hr-ftps",
        "hr-sftp",
        "hr-sftp-key",
        "hr-http",
    ] {
        let result = s.check_connection(name).await;
        assert_succeeded(&result);
        assert!(!result.message.is_empty());
        println!("{name}: {}", result.message);
    }
    let mongo = s.check_connection("retail-mongo").await;
    assert!(
        mongo.message.contains("customer_transactions"),
        "{}",
        mongo.message
    );
}

#[tokio::test]
async fn wrong_credentials_are_permanent_failures() {
    let Some(stack) = stack() else { return };
    for (name, var) in [
        ("warehouse", "TRIBUTARY_DS_WAREHOUSE_PASSWORD"),
        ("lake", "TRIBUTARY_DS_LAKE_SECRET_ACCESS_KEY"),
        ("hr-ftp", "TRIBUTARY_DS_HR_FTP_PASSWORD"),
        ("hr-sftp", "TRIBUTARY_DS_HR_SFTP_PASSWORD"),
    ] {
        let s = sources(&stack).set_env(var, "wrong-secret-value");
        let result = s.check_connection(name).await;
        assert_permanent(&result);
        assert!(!result.message.contains("wrong-secret-value"));
    }
}

#[tokio::test]
async fn unreachable_servers_are_retryable_failures() {
    let Some(stack) = stack() else { return };
    let port = closed_port();
    let s = sources(&stack)
        .with(
            "warehouse",
            json!({"postgres": {"host": "127.0.0.1", "port": port, "database": "x",
            "credentialsSecretRef": {"name": "pg"}}}),
        )
        .with(
            "retail-mongo",
            json!({"mongodb": {"uri": format!("mongodb://127.0.0.1:{port}/"), "database": "x"}}),
        )
        .with(
            "hr-sftp",
            json!({"sftp": {"host": "127.0.0.1", "port": port,
            "insecureSkipHostKeyVerification": true, "credentialsSecretRef": {"name": "sftp"}}}),
        )
        .with(
            "hr-http",
            json!({"http": {"baseUrl": format!("http://127.0.0.1:{port}/")}}),
        )
        .with(
            "lake",
            json!({"s3": {"endpoint": format!("http://127.0.0.1:{port}"), "bucket": "raw",
            "pathStyle": true, "credentialsSecretRef": {"name": "minio"}}}),
        );
    for name in ["warehouse", "retail-mongo", "hr-sftp", "hr-http", "lake"] {
        let result = s.check_connection(name).await;
        assert_retryable(&result);
    }
}

#[tokio::test]
async fn a_pinned_host_key_that_does_not_match_is_refused() {
    let Some(stack) = stack() else { return };
    let (_, _, host, port) = tributary_testkit::url_parts(&stack.sftp_url);
    let s = sources(&stack).with("hr-sftp", json!({"sftp": {"host": host, "port": port,
        "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "credentialsSecretRef": {"name": "sftp"}}}));
    let result = s.check_connection("hr-sftp").await;
    assert_ne!(
        result.outcome,
        tributary_core::lineage::Outcome::Succeeded,
        "{}",
        result.message
    );
}

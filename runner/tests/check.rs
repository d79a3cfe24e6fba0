//! `check` expectations on the real PostgreSQL and MinIO.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;

#[tokio::test]
async fn every_table_expectation_is_reported_and_warn_does_not_fail() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let table = unique("checked");
    let client = pg(&stack).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id bigint, country text, at timestamptz);
             INSERT INTO {table} VALUES (1, 'France', now()), (2, 'EIRE', now() - interval '2 days'), (2, NULL, NULL)"
        ))
        .await
        .unwrap();
    let result = s
        .run_task(json!({"name": "check", "check": {"dataSource": "warehouse", "table": table, "expect": [
            {"rowCount": {"min": 1, "max": 10}},
            {"notNull": ["id"]},
            {"acceptedValues": {"column": "country", "values": ["France", "EIRE"]}},
            {"freshness": {"column": "at", "maxAgeSeconds": 3600}},
            {"columns": [{"name": "id", "type": "int8"}, {"name": "at", "type": "timestamptz"}]},
            {"unique": ["id"], "severity": "Warn"},
            {"notNull": ["country"], "severity": "Warn"},
        ]}}))
        .await;
    assert_succeeded(&result);
    let passed: Vec<bool> = result.checks.iter().map(|c| c.passed).collect();
    assert_eq!(
        passed,
        vec![true, true, true, true, true, false, false],
        "{:?}",
        result.checks
    );
    assert!(
        result.checks[5].observed.contains("1 duplicate keys"),
        "{:?}",
        result.checks[5]
    );
    assert!(
        result.message.contains("2 warning(s)"),
        "{}",
        result.message
    );
}

#[tokio::test]
async fn a_failed_error_expectation_fails_the_task_with_what_was_observed() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let table = unique("failing");
    let client = pg(&stack).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int, c text); INSERT INTO {table} VALUES (1, 'x'), (1, 'y')"
        ))
        .await
        .unwrap();
    let result = s
        .run_task(
            json!({"name": "check", "check": {"dataSource": "warehouse", "table": table, "expect": [
                {"unique": ["id"]}, {"acceptedValues": {"column": "c", "values": ["x"]}},
                {"columns": [{"name": "c", "type": "bigint"}, {"name": "gone", "type": "text"}]},
            ]}}),
        )
        .await;
    assert_permanent(&result);
    assert!(
        result.checks.iter().all(|c| !c.passed),
        "{:?}",
        result.checks
    );
    assert!(
        result.checks[1].observed.contains("\"y\""),
        "{:?}",
        result.checks[1]
    );
    assert!(
        result.checks[2].observed.contains("gone missing"),
        "{:?}",
        result.checks[2]
    );
}

#[tokio::test]
async fn a_missing_table_is_a_permanent_failure() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let result = s
        .run_task(json!({"name": "check", "check": {"dataSource": "warehouse", "table": "no_such_table_here",
            "expect": [{"rowCount": {"min": 1}}]}}))
        .await;
    assert_permanent(&result);
    assert!(result.message.contains("42P01"), "{}", result.message);
}

#[tokio::test]
async fn object_expectations_check_existence_size_and_json_lines() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.jsonl", unique("tests/check/obj"));
    s.lake()
        .put(
            &key,
            Bytes::from_static(b"{}\n{}\n{}\n"),
            "application/x-ndjson",
        )
        .await
        .unwrap();
    let result = s
        .run_task(
            json!({"name": "check", "check": {"dataSource": "lake", "key": key, "expect": [
                {"exists": true}, {"minBytes": 9}, {"rowCount": {"min": 3, "max": 3}},
            ]}}),
        )
        .await;
    assert_succeeded(&result);
    assert_eq!(result.checks.len(), 3);
    let missing = s
        .run_task(
            json!({"name": "check", "check": {"dataSource": "lake", "key": "tests/check/none.jsonl",
            "expect": [{"exists": true}]}}),
        )
        .await;
    assert_permanent(&missing);
}

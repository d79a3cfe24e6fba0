//! `sql` against the real PostgreSQL: one transaction, templating, affected rows.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn statements_run_in_one_transaction_and_report_affected_rows() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let table = unique("sql_ok");
    let result = s
        .run_task(json!({"name": "build", "sql": {"dataSource": "warehouse", "statements": [
            format!("CREATE TABLE {table} (id int, run text)"),
            format!("INSERT INTO {table} SELECT g, '{{{{ run.id }}}}' FROM generate_series(1, 5) g"),
            format!("UPDATE {table} SET id = id + 10 WHERE id > 3"),
        ]}}))
        .await;
    assert_succeeded(&result);
    assert_eq!(result.rows, Some(7), "{}", result.message);
    let client = pg(&stack).await;
    let row = client
        .query_one(&format!("SELECT count(*), min(run) FROM {table}"), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5);
    assert!(
        row.get::<_, String>(1).starts_with("r_"),
        "the run id was rendered"
    );
    client
        .execute(&format!("DROP TABLE {table}"), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_statement_rolls_back_the_ones_before_it() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let table = unique("sql_rollback");
    let result = s
        .run_task(
            json!({"name": "build", "sql": {"dataSource": "warehouse", "statements": [
                format!("CREATE TABLE {table} (id int)"),
                "SELECT * FROM no_such_table_anywhere",
            ]}}),
        )
        .await;
    assert_permanent(&result);
    assert!(result.message.contains("statement 2"), "{}", result.message);
    let client = pg(&stack).await;
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0);
    assert!(!exists, "the first statement was rolled back");
}

#[tokio::test]
async fn an_unknown_template_variable_fails_before_any_statement_runs() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let result = s
        .run_task(json!({"name": "build", "sql": {"dataSource": "warehouse",
            "statements": ["SELECT 1", "SELECT '{{ run.data }}'"]}}))
        .await;
    assert_permanent(&result);
    assert!(result.message.contains("run.data"), "{}", result.message);
}

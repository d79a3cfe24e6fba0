//! `load` from the real MinIO into the real PostgreSQL with COPY.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;

async fn put(s: &Sources, key: &str, body: &str) {
    let data = if key.ends_with(".gz") {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body.as_bytes()).unwrap();
        e.finish().unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    s.lake()
        .put(key, Bytes::from(data), "application/octet-stream")
        .await
        .unwrap();
}

const RETAIL: &str = concat!(
    r#"{"_id":{"$oid":"4d88e15b60f486e428412dc9"},"InvoiceNo":"536365","Quantity":{"$numberInt":"6"},"UnitPrice":{"$numberDouble":"2.55"},"CustomerID":{"$numberDouble":"17850.0"},"Country":"United Kingdom"}"#,
    "\n",
    r#"{"_id":{"$oid":"4d88e15b60f486e428412dca"},"InvoiceNo":"C536379","Quantity":{"$numberInt":"-1"},"UnitPrice":{"$numberDouble":"27.5"},"CustomerID":{"$numberDouble":"NaN"},"Country":"United Kingdom"}"#,
    "\n",
    r#"{"_id":{"$oid":"4d88e15b60f486e428412dcb"},"InvoiceNo":"536366","Quantity":{"$numberInt":"2"},"UnitPrice":{"$numberDouble":"1.85"},"Country":"France"}"#,
    "\n",
);

fn retail_columns() -> serde_json::Value {
    json!([
        {"name": "source_id", "type": "text", "source": "_id"},
        {"name": "invoice_no", "type": "text", "source": "InvoiceNo"},
        {"name": "quantity", "type": "bigint", "source": "Quantity"},
        {"name": "unit_price", "type": "numeric", "source": "UnitPrice"},
        {"name": "customer_id", "type": "double precision", "source": "CustomerID"},
        {"name": "country", "type": "text", "source": "Country"},
    ])
}

#[tokio::test]
async fn extended_json_lands_in_declared_typed_columns_with_nan_and_nulls_preserved() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.jsonl.gz", unique("tests/load/retail"));
    put(&s, &key, RETAIL).await;
    let table = format!("staging.{}", unique("transactions"));
    let result = s
        .run_task(json!({"name": "load", "load": {
            "from": {"dataSource": "lake", "key": key},
            "to": {"dataSource": "warehouse", "table": table},
            "mode": "Replace", "columns": retail_columns()}}))
        .await;
    assert_succeeded(&result);
    assert_eq!(result.rows, Some(3));
    assert_eq!(result.schema["customer_id"], "double precision");
    assert_eq!(result.outputs[0].name, format!("warehouse.{table}"));
    let client = pg(&stack).await;
    let rows = client
        .query(&format!("SELECT source_id, quantity, customer_id, customer_id = 'NaN'::float8 FROM {table} ORDER BY invoice_no"), &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "4d88e15b60f486e428412dc9");
    assert_eq!(rows[0].get::<_, i64>(1), 6);
    assert_eq!(rows[0].get::<_, Option<f64>>(2), Some(17850.0));
    assert_eq!(
        rows[1].get::<_, Option<f64>>(2),
        None,
        "a missing field is NULL"
    );
    assert!(rows[2].get::<_, bool>(3), "NaN stays NaN");
}

#[tokio::test]
async fn replace_swaps_the_table_and_can_run_again() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.jsonl", unique("tests/load/replace"));
    put(&s, &key, RETAIL).await;
    let table = unique("replace_me");
    let task = json!({"name": "load", "load": {
        "from": {"dataSource": "lake", "key": key},
        "to": {"dataSource": "warehouse", "table": table},
        "mode": "Replace", "key": ["source_id"], "columns": retail_columns()}});
    assert_succeeded(&s.run_task(task.clone()).await);
    let again = s.run_task(task).await;
    assert_succeeded(&again);
    let client = pg(&stack).await;
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "replaced, not appended");
    let pkey: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = $1)",
            &[&format!("{table}_pkey")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(pkey, "the primary key index carries the table's name");
}

#[tokio::test]
async fn append_adds_rows_and_upsert_updates_by_key() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let first = format!("{}.jsonl", unique("tests/load/up"));
    put(
        &s,
        &first,
        "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n",
    )
    .await;
    let second = format!("{}.jsonl", unique("tests/load/up"));
    put(
        &s,
        &second,
        "{\"id\":2,\"v\":\"B\"}\n{\"id\":3,\"v\":\"c\"}\n{\"id\":3,\"v\":\"C\"}\n",
    )
    .await;
    let columns = json!([{"name": "id", "type": "bigint"}, {"name": "v", "type": "text"}]);
    let appended = unique("appended");
    for key in [&first, &second] {
        let r = s
            .run_task(json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
                "to": {"dataSource": "warehouse", "table": appended}, "mode": "Append", "columns": columns}}))
            .await;
        assert_succeeded(&r);
    }
    let upserted = unique("upserted");
    for key in [&first, &second] {
        let r = s
            .run_task(json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
                "to": {"dataSource": "warehouse", "table": upserted}, "mode": "Upsert", "key": ["id"],
                "columns": columns}}))
            .await;
        assert_succeeded(&r);
    }
    let client = pg(&stack).await;
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {appended}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    let rows = client
        .query(&format!("SELECT id, v FROM {upserted} ORDER BY id"), &[])
        .await
        .unwrap();
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![(1, "a".into()), (2, "B".into()), (3, "C".into())],
        "the last row of a key wins"
    );
}

#[tokio::test]
async fn columns_are_inferred_and_nested_values_go_to_jsonb() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.jsonl", unique("tests/load/infer"));
    put(&s, &key, "{\"id\":1,\"price\":2.5,\"tags\":[\"a\"],\"meta\":{\"k\":1},\"ok\":true}\n{\"id\":2,\"price\":3,\"ok\":false}\n").await;
    let table = unique("inferred");
    let result = s
        .run_task(
            json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
            "to": {"dataSource": "warehouse", "table": table}}}),
        )
        .await;
    assert_succeeded(&result);
    assert_eq!(result.schema["id"], "bigint");
    assert_eq!(result.schema["price"], "double precision");
    assert_eq!(result.schema["tags"], "jsonb");
    assert_eq!(result.schema["ok"], "boolean");
    let client = pg(&stack).await;
    let k: i32 = client
        .query_one(
            &format!("SELECT (meta->>'k')::int FROM {table} WHERE id = 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(k, 1);
}

#[tokio::test]
async fn a_csv_object_loads_with_its_header() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.csv", unique("tests/load/customers"));
    put(
        &s,
        &key,
        "CustomerID,Name,Country\n12346,\"Smith, Olivia\",United Kingdom\n12347,,France\n",
    )
    .await;
    let table = unique("customers");
    let result = s
        .run_task(
            json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
            "to": {"dataSource": "warehouse", "table": table}}}),
        )
        .await;
    assert_succeeded(&result);
    assert_eq!(result.schema["CustomerID"], "bigint");
    let client = pg(&stack).await;
    let rows = client
        .query(
            &format!("SELECT \"Name\" FROM {table} ORDER BY \"CustomerID\""),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows[0].get::<_, Option<String>>(0).as_deref(),
        Some("Smith, Olivia")
    );
    assert_eq!(rows[1].get::<_, Option<String>>(0), None);
}

#[tokio::test]
async fn malformed_jsonl_fails_naming_the_object_and_line_and_loads_nothing() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.jsonl", unique("tests/load/bad"));
    put(&s, &key, "{\"id\":1}\n\n{\"id\":2\n{\"id\":3}\n").await;
    let table = unique("bad");
    let result = s
        .run_task(
            json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
            "to": {"dataSource": "warehouse", "table": table}, "mode": "Append",
            "columns": [{"name": "id", "type": "bigint"}]}}),
        )
        .await;
    assert_permanent(&result);
    assert!(
        result
            .message
            .contains(&format!("line 3 of s3://raw/{key}")),
        "{}",
        result.message
    );
    let client = pg(&stack).await;
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0);
    assert!(
        !exists,
        "the transaction rolled back, even the CREATE TABLE"
    );
}

#[tokio::test]
async fn bad_rows_go_to_the_rejects_object_when_allowed() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let key = format!("{}.jsonl", unique("tests/load/rej"));
    put(
        &s,
        &key,
        "{\"id\":1}\n{\"id\":\"x\"}\nnot json\n{\"id\":4}\n",
    )
    .await;
    let prefix = format!("{}/", unique("tests/rejects"));
    let table = unique("with_rejects");
    let result = s
        .run_task(
            json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
            "to": {"dataSource": "warehouse", "table": table},
            "columns": [{"name": "id", "type": "bigint"}],
            "rejects": {"prefix": prefix, "maxRejects": 5}}}),
        )
        .await;
    assert_succeeded(&result);
    assert_eq!(result.rows, Some(2));
    let rejects = result
        .outputs
        .iter()
        .find(|o| o.name.starts_with(&prefix))
        .expect("rejects object reported");
    assert_eq!(rejects.rows, Some(2));
    let body = String::from_utf8(read_object(&s.lake(), &rejects.name).await).unwrap();
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[1]["line"], 3);
    assert_eq!(lines[1]["object"], format!("s3://raw/{key}"));
}

#[tokio::test]
async fn a_row_violating_a_constraint_fails_with_its_line_and_rolls_back() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let table = unique("constrained");
    let client = pg(&stack).await;
    client
        .batch_execute(&format!("CREATE TABLE {table} (id bigint PRIMARY KEY, v text NOT NULL); INSERT INTO {table} VALUES (0, 'old')"))
        .await
        .unwrap();
    let key = format!("{}.jsonl", unique("tests/load/dup"));
    put(
        &s,
        &key,
        "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n{\"id\":1,\"v\":\"again\"}\n",
    )
    .await;
    let result = s
        .run_task(
            json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": key},
            "to": {"dataSource": "warehouse", "table": table}, "mode": "Append",
            "columns": [{"name": "id", "type": "bigint"}, {"name": "v", "type": "text"}]}}),
        )
        .await;
    assert_permanent(&result);
    assert!(
        result.message.contains("line 3 of s3://raw/"),
        "{}",
        result.message
    );
    assert!(result.message.contains("23505"), "{}", result.message);
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "nothing from the failed load remains");
}

#[tokio::test]
async fn a_table_name_with_quotes_or_semicolons_is_rejected_before_any_sql() {
    let Some(stack) = stack() else { return };
    // The warehouse points at a closed port: reaching it would be a retryable connection error,
    // so a permanent identifier error proves nothing was sent.
    let s = sources(&stack).with(
        "warehouse",
        json!({"postgres": {"host": "127.0.0.1",
        "port": closed_port(), "database": "x", "credentialsSecretRef": {"name": "pg"}}}),
    );
    for table in [r#"t"; DROP TABLE x; --"#, "t;drop", "a.b.c"] {
        let result = s
            .run_task(json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": "tests/x.jsonl"},
                "to": {"dataSource": "warehouse", "table": table}}}))
            .await;
        assert_permanent(&result);
        assert!(result.message.contains("identifier"), "{}", result.message);
    }
}

#[tokio::test]
async fn a_missing_object_or_bucket_is_permanent() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let task = json!({"name": "load", "load": {"from": {"dataSource": "lake", "key": "tests/no/such.jsonl"},
        "to": {"dataSource": "warehouse", "table": "never_created"}}});
    assert_permanent(&s.run_task(task.clone()).await);
    let mut lake = s.specs["lake"].clone();
    lake.s3.as_mut().unwrap().bucket = "no-such-bucket".into();
    let s = s.with("lake", serde_json::to_value(lake).unwrap());
    assert_permanent(&s.run_task(task).await);
}

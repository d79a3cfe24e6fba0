//! `export` from the real FerretDB (MongoDB wire protocol) into the real MinIO.

mod common;

use bson::{Binary, DateTime, doc, oid::ObjectId};
use common::*;
use serde_json::{Value, json};
use tributary_core::contract::RunnerInput;

async fn collection(
    stack: &tributary_testkit::Stack,
    name: &str,
) -> mongodb::Collection<bson::Document> {
    let client = mongodb::Client::with_uri_str(&stack.mongodb_uri)
        .await
        .unwrap();
    client.database("retail").collection(name)
}

fn lines(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn bson_types_and_missing_fields_survive_as_canonical_extended_json() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let name = unique("export_types");
    let coll = collection(&stack, &name).await;
    let id = ObjectId::new();
    coll.insert_many([
        doc! {"_id": id, "InvoiceNo": "536365", "Quantity": 6_i32, "UnitPrice": 2.55,
        "CustomerID": 17850.0, "when": DateTime::from_millis(1_291_192_000_000),
        "blob": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
        "nested": {"tags": ["a", "b"]}},
        doc! {"_id": ObjectId::new(), "InvoiceNo": "C536379", "Quantity": -1_i64},
    ])
    .await
    .unwrap();
    let key = format!("{}.jsonl.gz", unique("tests/export/types"));
    let result = s
        .run_task(json!({"name": "export", "export": {
            "from": {"dataSource": "retail-mongo", "collection": name},
            "to": {"dataSource": "lake", "key": key}}}))
        .await;
    assert_succeeded(&result);
    assert_eq!(result.rows, Some(2));
    assert_eq!(result.outputs[0].name, key);
    assert_eq!(result.inputs[0].name, format!("retail.{name}"));
    let rows = lines(&gunzip(&read_object(&s.lake(), &key).await));
    assert_eq!(rows[0]["_id"], json!({"$oid": id.to_hex()}));
    // FerretDB 1.24 refuses NaN on the wire ("NaN is not supported"), so NaN is covered by the
    // unit tests of `ejson`; here a double keeps its canonical form.
    assert_eq!(rows[0]["CustomerID"], json!({"$numberDouble": "17850.0"}));
    assert_eq!(
        rows[0]["blob"],
        json!({"$binary": {"base64": "AQID", "subType": "00"}})
    );
    assert_eq!(rows[0]["Quantity"], json!({"$numberInt": "6"}));
    assert_eq!(
        rows[0]["when"],
        json!({"$date": {"$numberLong": "1291192000000"}})
    );
    assert_eq!(rows[1]["Quantity"], json!({"$numberLong": "-1"}));
    assert!(
        rows[1].get("CustomerID").is_none(),
        "a missing field stays missing"
    );
    coll.drop().await.unwrap();
}

#[tokio::test]
async fn filter_and_projection_select_documents_and_fields() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    // A collection of its own: FerretDB's SQLite backend scans without pushing this filter
    // down, so filtering the 541,909-document collection would take a minute.
    let name = unique("export_filter");
    let coll = collection(&stack, &name).await;
    coll.insert_many((0..30).map(|i| {
        doc! {"InvoiceNo": if i % 3 == 0 { "536365" } else { "536366" }, "StockCode": format!("8512{i}"),
              "Quantity": i, "Country": "France"}
    }))
    .await
    .unwrap();
    let key = format!("{}.jsonl", unique("tests/export/filter"));
    let result = s
        .run_task(json!({"name": "export", "export": {
            "from": {"dataSource": "retail-mongo", "collection": name,
                     "filter": {"InvoiceNo": "536365"}, "projection": {"InvoiceNo": 1, "StockCode": 1}},
            "to": {"dataSource": "lake", "key": key}}}))
        .await;
    assert_succeeded(&result);
    let rows = lines(&read_object(&s.lake(), &key).await);
    assert_eq!(rows.len(), 10);
    assert_eq!(result.rows, Some(10));
    for row in &rows {
        assert_eq!(row["InvoiceNo"], "536365");
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["_id", "InvoiceNo", "StockCode"]);
    }
    coll.drop().await.unwrap();
}

#[tokio::test]
async fn an_incremental_export_continues_from_the_reported_watermark() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let name = unique("export_incr");
    let coll = collection(&stack, &name).await;
    coll.insert_many(
        (1..=3).map(|i| doc! {"n": i as i32, "updatedAt": DateTime::from_millis(i * 1000)}),
    )
    .await
    .unwrap();
    let task = |key: &str| {
        json!({"name": "export", "export": {
            "from": {"dataSource": "retail-mongo", "collection": name},
            "to": {"dataSource": "lake", "key": key},
            "incremental": {"field": "updatedAt"}}})
    };
    let first_key = format!("{}.jsonl", unique("tests/export/incr"));
    let first = s.run_task(task(&first_key)).await;
    assert_succeeded(&first);
    assert_eq!(first.rows, Some(3));
    assert_eq!(
        first.watermark.as_deref(),
        Some(r#"{"$date":{"$numberLong":"3000"}}"#)
    );

    coll.insert_many(
        (4..=5).map(|i| doc! {"n": i as i32, "updatedAt": DateTime::from_millis(i * 1000)}),
    )
    .await
    .unwrap();
    let second_key = format!("{}.jsonl", unique("tests/export/incr"));
    let mut input = s.task_input(task(&second_key));
    if let RunnerInput::Task(t) = &mut input {
        t.watermark = first.watermark.clone();
    }
    let second = s.run(&input).await;
    assert_succeeded(&second);
    assert_eq!(second.rows, Some(2), "{}", second.message);
    let rows = lines(&read_object(&s.lake(), &second_key).await);
    assert_eq!(rows[0]["n"], json!({"$numberInt": "4"}));
    assert_eq!(
        second.watermark.as_deref(),
        Some(r#"{"$date":{"$numberLong":"5000"}}"#)
    );
    coll.drop().await.unwrap();
}

#[tokio::test]
async fn part_files_roll_over_at_the_part_size() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let name = unique("export_parts");
    let coll = collection(&stack, &name).await;
    let pad = "x".repeat(1000);
    coll.insert_many((0..2500).map(|i| doc! {"i": i, "pad": &pad}))
        .await
        .unwrap();
    let key = format!("{}.jsonl", unique("tests/export/parts"));
    let result = s
        .run_task(json!({"name": "export", "export": {
            "from": {"dataSource": "retail-mongo", "collection": name},
            "to": {"dataSource": "lake", "key": key}, "partSizeMib": 1}}))
        .await;
    assert_succeeded(&result);
    assert_eq!(result.files, Some(3), "{}", result.message);
    let stem = key.trim_end_matches(".jsonl");
    assert_eq!(result.outputs[1].name, format!("{stem}-00001.jsonl"));
    let total: u64 = result.outputs.iter().map(|o| o.rows.unwrap()).sum();
    assert_eq!(total, 2500);
    coll.drop().await.unwrap();
}

#[tokio::test]
async fn a_missing_collection_is_a_permanent_failure() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let result = s
        .run_task(json!({"name": "export", "export": {
            "from": {"dataSource": "retail-mongo", "collection": "no_such_collection"},
            "to": {"dataSource": "lake", "key": "tests/x.jsonl"}}}))
        .await;
    assert_permanent(&result);
    assert!(
        result.message.contains("does not exist"),
        "{}",
        result.message
    );
}

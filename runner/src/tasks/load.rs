//! `load`: S3 JSONL/CSV (optionally gzip) into a PostgreSQL table with COPY, in one transaction:
//! replace (new table swapped in), append, or upsert (staging + INSERT … ON CONFLICT).

use std::collections::BTreeMap;

use async_compression::tokio::bufread::GzipDecoder;
use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::Sender;
use tributary_core::api::{FileFormat, LoadMode, LoadTask};
use tributary_core::identifier::{TableName, quote_identifier};
use tributary_core::lineage::{Outcome, TaskResult};

use crate::connectors::s3::{Lake, ObjectInfo, ObjectWriter, WriteOptions};
use crate::context::TaskContext;
use crate::error::{Class, Error, Result};
use crate::progress::Progress;
use crate::rows::{self, Column, Inference};

/// Encoded COPY bytes sent to the server at once.
const CHUNK: usize = 256 * 1024;
/// Chunks waiting between the parsing task and COPY: bounds that buffer to about 1 MiB.
const IN_FLIGHT: usize = 4;
/// Longest accepted JSON line; longer means corrupt input, not data.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// The format of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// Format and compression of `key` given the task's format.
pub fn format_of(key: &str, declared: FileFormat) -> Result<(Format, bool)> {
    let gz = key.ends_with(".gz");
    let stem = key.trim_end_matches(".gz");
    let format = match declared {
        FileFormat::Jsonl => Format::Jsonl,
        FileFormat::Csv => Format::Csv,
        FileFormat::Auto => {
            if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") || stem.ends_with(".json") {
                Format::Jsonl
            } else if stem.ends_with(".csv") {
                Format::Csv
            } else {
                return Err(Error::permanent(format!(
                    "cannot tell the format of {key:?} from its extension; set format: jsonl or csv"
                )));
            }
        }
    };
    Ok((format, gz))
}

/// Maps COPY row numbers back to source line numbers: one breakpoint per skipped line.
#[derive(Clone, Debug, Default)]
pub struct LineMap {
    breakpoints: Vec<(u64, u64)>,
}

impl LineMap {
    /// Records that COPY row `row` (1-based) came from source line `line`, when they drift.
    fn record(&mut self, row: u64, line: u64) {
        let expected = self.line_of(row);
        if expected != line {
            self.breakpoints.push((row, line));
        }
    }

    /// The source line of COPY row `row`.
    pub fn line_of(&self, row: u64) -> u64 {
        match self.breakpoints.iter().rev().find(|(r, _)| *r <= row) {
            Some((r, l)) => l + (row - r),
            None => row,
        }
    }
}

/// The COPY row number in a PostgreSQL error context such as `COPY t, line 3, column x: …`.
pub fn copy_line(message: &str) -> Option<u64> {
    let at = message.find("COPY ")?;
    let rest = &message[at..];
    let line_at = rest.find(", line ")? + 7;
    let digits: String = rest[line_at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Where rejected rows go, when the task allows rejects.
struct Rejects {
    writer: Option<ObjectWriter>,
    lake: Lake,
    key: String,
    max: u64,
    count: u64,
}

impl Rejects {
    async fn add(&mut self, object: &str, line: u64, error: &str, raw: &str) -> Result<()> {
        self.count += 1;
        if self.count > self.max {
            return Err(Error::permanent(format!(
                "more than {} rejected rows (latest: line {line} of {object}: {error})",
                self.max
            )));
        }
        if self.writer.is_none() {
            self.writer = Some(self.lake.writer(
                &self.key,
                WriteOptions {
                    part_size: 5 * 1024 * 1024,
                    concurrency: 1,
                    content_type: Some("application/x-ndjson".into()),
                    ..Default::default()
                },
            )?);
        }
        let mut entry = serde_json::to_vec(&serde_json::json!({
            "object": object, "line": line, "error": error, "row": raw,
        }))
        .expect("a JSON value serialises");
        entry.push(b'\n');
        self.writer
            .as_mut()
            .expect("created above")
            .write(&entry)
            .await
    }
}

/// What one object contributed.
#[derive(Clone, Debug, Default)]
struct ObjectStats {
    rows: u64,
    rejected: u64,
    bytes: u64,
}

pub async fn run(ctx: &TaskContext, task: &LoadTask) -> Result<TaskResult> {
    // Every identifier is checked before any connection is opened or SQL is written.
    let table = TableName::parse(&task.to.table)?;
    for column in &task.columns {
        if column.name.is_empty() || column.name.len() > 63 {
            return Err(Error::permanent(format!(
                "column name {:?} must be 1 to 63 characters",
                column.name
            )));
        }
    }
    let from = ctx.data_source(&task.from.data_source)?;
    let s3 = from.s3.as_ref().ok_or_else(|| {
        Error::permanent(format!("{} is not an s3 DataSource", task.from.data_source))
    })?;
    let to = ctx.data_source(&task.to.data_source)?;
    let pg = to.postgres.as_ref().ok_or_else(|| {
        Error::permanent(format!(
            "{} is not a postgres DataSource",
            task.to.data_source
        ))
    })?;
    if task.mode == LoadMode::Upsert && task.key.is_empty() {
        return Err(Error::permanent("mode Upsert needs key columns"));
    }

    let lake = Lake::connect(&task.from.data_source, s3, &ctx.secrets)?;
    let objects = list_objects(ctx, task, &lake).await?;
    for object in &objects {
        format_of(&object.key, task.format)?;
    }

    let columns: Vec<Column> = if task.columns.is_empty() {
        infer(&lake, &objects[0], task).await?
    } else {
        task.columns.iter().map(Column::from_spec).collect()
    };
    if columns.is_empty() {
        return Err(Error::permanent(
            "no columns declared and none found in the sample",
        ));
    }
    for key in &task.key {
        if !columns.iter().any(|c| &c.name == key) {
            return Err(Error::permanent(format!(
                "key column {key:?} is not among the columns"
            )));
        }
    }

    let mut client =
        crate::connectors::postgres::connect(&task.to.data_source, pg, &ctx.secrets).await?;
    let tx = client.transaction().await?;
    let quoted_columns: Vec<String> = columns.iter().map(|c| quote_identifier(&c.name)).collect();
    let column_list = quoted_columns.join(", ");
    let definitions: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", quote_identifier(&c.name), c.pg_type))
        .collect();
    let primary_key = if task.key.is_empty() {
        String::new()
    } else {
        format!(
            ", PRIMARY KEY ({})",
            task.key
                .iter()
                .map(|k| quote_identifier(k))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let schema = quote_identifier(table.schema_or_public());
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    // The table COPY writes into, per mode.
    let staging_name = staging_name(&table.table, &ctx.input.run_id, ctx.input.attempt);
    let copy_target = match task.mode {
        LoadMode::Replace => {
            let new = format!("{schema}.{}", quote_identifier(&staging_name));
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {new}; CREATE TABLE {new} ({}{primary_key})",
                definitions.join(", ")
            ))
            .await?;
            new
        }
        LoadMode::Append => {
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({}{primary_key})",
                table.quoted(),
                definitions.join(", ")
            ))
            .await?;
            table.quoted()
        }
        LoadMode::Upsert => {
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({}{primary_key}); \
                 CREATE TEMP TABLE \"__tributary_stage\" ({}, \"__tributary_seq\" bigserial) ON COMMIT DROP",
                table.quoted(),
                definitions.join(", "),
                definitions.join(", ")
            ))
            .await?;
            "\"__tributary_stage\"".to_string()
        }
    };

    let rejects_key = match &task.rejects {
        Some(r) => {
            let prefix = ctx.render(&r.prefix)?;
            let sep = if prefix.is_empty() || prefix.ends_with('/') {
                ""
            } else {
                "/"
            };
            Some((
                format!(
                    "{prefix}{sep}{}-{}.rejects.jsonl",
                    ctx.input.run_id, ctx.input.task.name
                ),
                r.max_rejects,
            ))
        }
        None => None,
    };
    let mut rejects = rejects_key.map(|(key, max)| Rejects {
        writer: None,
        lake: lake.clone(),
        key,
        max,
        count: 0,
    });

    let copy = format!("COPY {copy_target} ({column_list}) FROM STDIN");
    let mut per_object = Vec::new();
    for object in &objects {
        let stats = load_object(
            ctx,
            &lake,
            &tx,
            &copy,
            object,
            &columns,
            task.format,
            &mut rejects,
        )
        .await;
        match stats {
            Ok(stats) => per_object.push((object.clone(), stats)),
            Err(e) => {
                if let Some(r) = rejects.take()
                    && let Some(w) = r.writer
                {
                    w.abort().await;
                }
                return Err(e);
            }
        }
    }

    let mut affected = None;
    match task.mode {
        LoadMode::Replace => {
            let new = quote_identifier(&staging_name);
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; ALTER TABLE {schema}.{new} RENAME TO {}; \
                 ALTER INDEX IF EXISTS {schema}.{} RENAME TO {}",
                table.quoted(),
                quote_identifier(&table.table),
                quote_identifier(&format!("{staging_name}_pkey")),
                quote_identifier(&format!("{}_pkey", table.table)),
            ))
            .await?;
        }
        LoadMode::Append => {}
        LoadMode::Upsert => {
            let keys: Vec<String> = task.key.iter().map(|k| quote_identifier(k)).collect();
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !task.key.contains(&c.name))
                .map(|c| format!("{0} = EXCLUDED.{0}", quote_identifier(&c.name)))
                .collect();
            let action = if updates.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            // The last row of a key in the input wins, as if the rows were applied in order.
            let statement = format!(
                "INSERT INTO {} ({column_list}) SELECT DISTINCT ON ({keys}) {column_list} \
                 FROM \"__tributary_stage\" ORDER BY {keys}, \"__tributary_seq\" DESC \
                 ON CONFLICT ({keys}) {action}",
                table.quoted(),
                keys = keys.join(", ")
            );
            affected = Some(tx.execute(&statement, &[]).await?);
        }
    }
    let rejected: u64 = per_object.iter().map(|(_, s)| s.rejected).sum();
    let rejects_object = match rejects.take() {
        Some(Rejects {
            writer: Some(w), ..
        }) => Some(w.finish().await?),
        _ => None,
    };
    tx.commit().await?;

    let rows: u64 = per_object.iter().map(|(_, s)| s.rows).sum();
    let bytes: u64 = per_object.iter().map(|(_, s)| s.bytes).sum();
    let mut inputs = Vec::new();
    for (object, stats) in &per_object {
        let mut report = ctx.dataset(&task.from.data_source, &object.key)?;
        report.rows = Some(stats.rows + stats.rejected);
        report.bytes = Some(stats.bytes);
        inputs.push(report);
    }
    let mut output = ctx.dataset(&task.to.data_source, &table.to_string())?;
    output.rows = Some(rows);
    let mut outputs = vec![output];
    if let Some(r) = &rejects_object {
        let mut report = ctx.dataset(&task.from.data_source, &r.key)?;
        report.rows = Some(rejected);
        report.bytes = Some(r.bytes);
        report.sha256 = Some(r.sha256.clone());
        outputs.push(report);
    }
    let schema_report: BTreeMap<String, String> = columns
        .iter()
        .map(|c| (c.name.clone(), c.pg_type.clone()))
        .collect();
    let mode = match task.mode {
        LoadMode::Replace => "replaced",
        LoadMode::Append => "appended to",
        LoadMode::Upsert => "upserted into",
    };
    let mut message = format!(
        "{mode} {table} with {rows} rows from {} object(s)",
        per_object.len()
    );
    if let Some(n) = affected {
        message.push_str(&format!(" ({n} rows inserted or updated)"));
    }
    if rejected > 0 {
        message.push_str(&format!(
            "; {rejected} rows rejected to s3://{}/{}",
            lake.bucket,
            rejects_object.as_ref().map_or("", |r| r.key.as_str())
        ));
    }
    Ok(TaskResult {
        outcome: Outcome::Succeeded,
        message,
        inputs,
        outputs,
        rows: Some(rows),
        bytes: Some(bytes),
        files: Some(per_object.len() as u64),
        checks: vec![],
        schema: schema_report,
        watermark: None,
        manifest: None,
    })
}

/// A per-run name for the table a replace loads into, at most 63 bytes.
fn staging_name(table: &str, run_id: &str, attempt: u32) -> String {
    let hash = tributary_core::naming::short_hash(&[table, run_id, &attempt.to_string()], 8);
    let keep: String = table.chars().take(63 - 20).collect();
    format!("{keep}__tributary_{hash}")
}

async fn list_objects(ctx: &TaskContext, task: &LoadTask, lake: &Lake) -> Result<Vec<ObjectInfo>> {
    if let Some(key) = &task.from.key {
        let key = ctx.render(key)?;
        return match lake.head(&key).await? {
            Some(info) => Ok(vec![info]),
            None => Err(Error::permanent(format!(
                "object s3://{}/{key} does not exist",
                lake.bucket
            ))),
        };
    }
    let prefix = ctx.render(task.from.prefix.as_deref().unwrap_or(""))?;
    let objects: Vec<ObjectInfo> = lake
        .list_prefix(&prefix)
        .await?
        .into_iter()
        // Tributary's own manifests and rejects are never input.
        .filter(|o| !o.key.starts_with("_tributary/") && !o.key.ends_with(".rejects.jsonl"))
        .collect();
    if objects.is_empty() {
        return Err(Error::permanent(format!(
            "no object under s3://{}/{prefix}",
            lake.bucket
        )));
    }
    Ok(objects)
}

/// Opens an object as buffered, decompressed bytes.
async fn open(lake: &Lake, key: &str, gz: bool) -> Result<Box<dyn AsyncBufRead + Send + Unpin>> {
    let raw = BufReader::with_capacity(256 * 1024, lake.get(key).await?);
    Ok(if gz {
        let mut decoder = GzipDecoder::new(raw);
        decoder.multiple_members(true);
        Box::new(BufReader::with_capacity(256 * 1024, decoder))
    } else {
        Box::new(raw)
    })
}

async fn infer(lake: &Lake, object: &ObjectInfo, task: &LoadTask) -> Result<Vec<Column>> {
    let (format, gz) = format_of(&object.key, task.format)?;
    let mut reader = open(lake, &object.key, gz).await?;
    let mut inference = Inference::default();
    let limit = task.infer_rows as usize;
    match format {
        Format::Jsonl => {
            let mut line = Vec::new();
            let mut n = 0;
            while n < limit {
                line.clear();
                if reader.read_until(b'\n', &mut line).await? == 0 {
                    break;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Ok(serde_json::Value::Object(row)) = serde_json::from_slice(&line) {
                    inference.observe_json(&row);
                    n += 1;
                }
            }
        }
        Format::Csv => {
            let mut csv = csv_async::AsyncReaderBuilder::new()
                .has_headers(true)
                .create_reader(reader);
            let headers: Vec<String> = csv
                .headers()
                .await
                .map_err(|e| Error::permanent(format!("CSV header of {}: {e}", object.key)))?
                .iter()
                .map(str::to_string)
                .collect();
            inference.observe_headers(&headers);
            let mut records = csv.records();
            let mut n = 0;
            while n < limit {
                match records.next().await {
                    Some(Ok(record)) => inference.observe_csv(&headers, &record),
                    Some(Err(_)) => {}
                    None => break,
                }
                n += 1;
            }
        }
    }
    Ok(inference.columns())
}

/// Streams one object through COPY. Bad rows go to rejects when allowed, otherwise fail the
/// task naming the object key and line.
///
/// Decompressing, parsing and encoding run on their own task, so they overlap with the
/// server's work on the chunks already sent; at most `IN_FLIGHT` chunks wait between the two.
#[allow(clippy::too_many_arguments)]
async fn load_object(
    ctx: &TaskContext,
    lake: &Lake,
    tx: &tokio_postgres::Transaction<'_>,
    copy: &str,
    object: &ObjectInfo,
    columns: &[Column],
    declared: FileFormat,
    rejects: &mut Option<Rejects>,
) -> Result<ObjectStats> {
    let (format, gz) = format_of(&object.key, declared)?;
    let shown = format!("s3://{}/{}", lake.bucket, object.key);
    let sink = tx.copy_in::<_, Bytes>(copy).await?;
    futures::pin_mut!(sink);
    let reader = open(lake, &object.key, gz).await?;
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(IN_FLIGHT);
    let mut producer = Producer {
        object: shown.clone(),
        columns: columns.to_vec(),
        rejects: rejects.take(),
        progress: ctx.progress.clone(),
        stats: ObjectStats {
            bytes: object.size,
            ..Default::default()
        },
        map: LineMap::default(),
    };
    // Dropping the handle (this future cancelled by a timeout) drops the producer too, so no
    // parsing outlives the attempt; a panic there resumes here.
    let (producing, handle) = async move {
        // The sender goes with `run`, so the channel closes when parsing ends.
        let result = producer.run(reader, format, chunks).await;
        (producer, result)
    }
    .remote_handle();
    tokio::spawn(producing);

    let mut sent: Result<()> = Ok(());
    while let Some(chunk) = received.recv().await {
        if let Err(e) = sink.send(chunk).await {
            sent = Err(e.into());
            break;
        }
    }
    // A producer still sending sees the channel closed and stops.
    drop(received);
    let (producer, produced) = handle.await;
    *rejects = producer.rejects;
    let (stats, map) = (producer.stats, producer.map);
    // The server's error first: the producer only stops early because COPY did.
    if let Err(e) = sent.and(produced) {
        // Dropping the sink without finishing aborts the COPY; the transaction rolls back.
        return Err(server_error_with_line(e, &map, &shown));
    }
    let copied = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| server_error_with_line(Error::from(e), &map, &shown))?;
    debug_assert_eq!(copied, stats.rows);
    ctx.progress.add_files(1);
    ctx.progress.add_bytes(object.size);
    tracing::info!(object = %shown, rows = stats.rows, rejected = stats.rejected, "object loaded");
    Ok(stats)
}

/// The parsing side of one object's COPY: reads rows, encodes them into chunks for the
/// channel, and sends bad rows to rejects.
struct Producer {
    object: String,
    columns: Vec<Column>,
    rejects: Option<Rejects>,
    progress: Progress,
    stats: ObjectStats,
    map: LineMap,
}

impl Producer {
    async fn run(
        &mut self,
        reader: Box<dyn AsyncBufRead + Send + Unpin>,
        format: Format,
        chunks: Sender<Bytes>,
    ) -> Result<()> {
        let mut out: Vec<u8> = Vec::with_capacity(CHUNK + 64 * 1024);
        let mut reported: u64 = 0;
        match format {
            Format::Jsonl => {
                let mut reader = reader;
                let plan = rows::JsonPlan::new(&self.columns);
                let mut line: Vec<u8> = Vec::with_capacity(4096);
                let mut number: u64 = 0;
                loop {
                    line.clear();
                    let n = read_line(&mut reader, &mut line).await.map_err(|e| {
                        e.context(format!("line {} of {}", number + 1, self.object))
                    })?;
                    if n == 0 {
                        break;
                    }
                    number += 1;
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match rows::encode_json_line(&mut out, &line, &plan, &self.columns) {
                        Ok(()) => self.loaded(number),
                        Err(error) => {
                            let raw = String::from_utf8_lossy(&line);
                            self.reject(number, &error, raw.trim_end()).await?;
                        }
                    }
                    if out.len() >= CHUNK && !self.send(&chunks, &mut out, &mut reported).await {
                        return Ok(());
                    }
                }
            }
            Format::Csv => {
                let mut csv = csv_async::AsyncReaderBuilder::new()
                    .has_headers(true)
                    .flexible(true)
                    .create_reader(reader);
                let headers: Vec<String> = csv
                    .headers()
                    .await
                    .map_err(|e| Error::permanent(format!("CSV header of {}: {e}", self.object)))?
                    .iter()
                    .map(str::to_string)
                    .collect();
                let positions: Vec<Option<usize>> = self
                    .columns
                    .iter()
                    .map(|c| headers.iter().position(|h| h == &c.source.join(".")))
                    .collect();
                let mut records = csv.records();
                while let Some(record) = records.next().await {
                    let (number, result) = match record {
                        Ok(record) => {
                            let number = record.position().map_or(0, |p| p.line());
                            let encoded =
                                rows::encode_csv_row(&mut out, &record, &positions, &self.columns);
                            (
                                number,
                                encoded
                                    .map_err(|e| (e, record.iter().collect::<Vec<_>>().join(","))),
                            )
                        }
                        Err(e) => {
                            let number = e.position().map_or(0, |p| p.line());
                            (number, Err((format!("malformed CSV: {e}"), String::new())))
                        }
                    };
                    match result {
                        Ok(()) => self.loaded(number),
                        Err((error, raw)) => self.reject(number, &error, &raw).await?,
                    }
                    if out.len() >= CHUNK && !self.send(&chunks, &mut out, &mut reported).await {
                        return Ok(());
                    }
                }
            }
        }
        if !out.is_empty() {
            self.send(&chunks, &mut out, &mut reported).await;
        }
        Ok(())
    }

    fn loaded(&mut self, line: u64) {
        self.stats.rows += 1;
        self.map.record(self.stats.rows, line);
    }

    /// Hands a full chunk to COPY; `false` when COPY has stopped (its error is reported there).
    async fn send(
        &mut self,
        chunks: &Sender<Bytes>,
        out: &mut Vec<u8>,
        reported: &mut u64,
    ) -> bool {
        self.progress.add_rows(self.stats.rows - *reported);
        *reported = self.stats.rows;
        let chunk = Bytes::from(std::mem::replace(
            out,
            Vec::with_capacity(CHUNK + 64 * 1024),
        ));
        chunks.send(chunk).await.is_ok()
    }

    async fn reject(&mut self, line: u64, error: &str, raw: &str) -> Result<()> {
        match &mut self.rejects {
            Some(r) => {
                self.stats.rejected += 1;
                r.add(&self.object, line, error, raw).await
            }
            None => Err(Error::permanent(format!(
                "line {line} of {}: {error}",
                self.object
            ))),
        }
    }
}

/// Reads one line (with its newline), refusing absurdly long ones.
async fn read_line(
    reader: &mut (dyn AsyncBufRead + Send + Unpin),
    line: &mut Vec<u8>,
) -> Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..used]);
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
        if line.len() > MAX_LINE {
            return Err(Error::permanent(format!(
                "a line longer than {MAX_LINE} bytes"
            )));
        }
    }
}

/// Rewrites a server error that names a COPY line into one naming the object and source line.
fn server_error_with_line(e: Error, map: &LineMap, object: &str) -> Error {
    match copy_line(&e.message) {
        Some(row) if e.class == Class::Permanent => Error::permanent(format!(
            "line {} of {object}: {}",
            map.line_of(row),
            e.message
        )),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_extension_and_gzip_is_recognised() {
        assert_eq!(
            format_of("a/b.jsonl.gz", FileFormat::Auto).unwrap(),
            (Format::Jsonl, true)
        );
        assert_eq!(
            format_of("a/b.csv", FileFormat::Auto).unwrap(),
            (Format::Csv, false)
        );
        assert!(format_of("a/b.parquet", FileFormat::Auto).is_err());
        assert_eq!(
            format_of("a/b", FileFormat::Csv).unwrap(),
            (Format::Csv, false)
        );
    }

    #[test]
    fn copy_rows_map_back_to_source_lines_across_skipped_lines() {
        let mut map = LineMap::default();
        // Lines 1, 2 load; line 3 is blank; lines 4, 5 load; line 6 rejected; line 7 loads.
        for (row, line) in [(1, 1), (2, 2), (3, 4), (4, 5), (5, 7)] {
            map.record(row, line);
        }
        assert_eq!(map.line_of(2), 2);
        assert_eq!(map.line_of(3), 4);
        assert_eq!(map.line_of(4), 5);
        assert_eq!(map.line_of(5), 7);
    }

    #[test]
    fn the_copy_line_is_found_in_a_server_error_context() {
        assert_eq!(
            copy_line(
                "postgres 23505: duplicate key (Key (id)=(1) already exists.) [COPY t, line 3]"
            ),
            Some(3)
        );
        assert_eq!(copy_line("postgres 42P01: relation does not exist"), None);
    }

    #[test]
    fn staging_tables_fit_in_an_identifier() {
        let name = staging_name(&"t".repeat(63), "s202607010200", 1);
        assert!(name.len() <= 63, "{name}");
    }
}

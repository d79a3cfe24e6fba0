//! `export`: a MongoDB collection to S3 as JSON Lines of canonical Extended JSON, gzip by key,
//! part files rolled by size, incremental by a cursor field with a high-water mark.

use std::io::Write;

use bson::RawDocumentBuf;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::TryStreamExt;
use tributary_core::api::ExportTask;
use tributary_core::lineage::{Outcome, TaskResult};

use crate::connectors::mongo::Mongo;
use crate::connectors::s3::{Lake, ObjectWriter, WriteOptions, Written};
use crate::context::TaskContext;
use crate::ejson;
use crate::error::{Error, Result};

/// Documents fetched per round trip and handed to the writer at once.
const BATCH: usize = 2000;
/// Uncompressed bytes buffered before they are handed to the object writer.
const FLUSH_AT: usize = 1 << 20;

pub async fn run(ctx: &TaskContext, task: &ExportTask) -> Result<TaskResult> {
    let from = ctx.data_source(&task.from.data_source)?;
    let to = ctx.data_source(&task.to.data_source)?;
    let mongo_spec = from.mongodb.as_ref().ok_or_else(|| {
        Error::permanent(format!(
            "{} is not a mongodb DataSource",
            task.from.data_source
        ))
    })?;
    let s3_spec = to.s3.as_ref().ok_or_else(|| {
        Error::permanent(format!("{} is not an s3 DataSource", task.to.data_source))
    })?;
    let key_template = task
        .to
        .key
        .as_deref()
        .ok_or_else(|| Error::permanent("export needs to.key"))?;
    let key = ctx.render(key_template)?;
    let mut filter = match &task.from.filter {
        Some(f) => {
            ejson::parse_document(f).map_err(|e| Error::permanent(format!("filter: {e}")))?
        }
        None => bson::Document::new(),
    };
    let projection = match &task.from.projection {
        Some(p) => Some(
            ejson::parse_document(p).map_err(|e| Error::permanent(format!("projection: {e}")))?,
        ),
        None => None,
    };
    let incremental = task.incremental.as_ref();
    let start_after = match incremental {
        Some(inc) => match ctx.input.watermark.as_deref().or(inc.initial.as_deref()) {
            Some(text) => Some(
                ejson::parse_value(text)
                    .map_err(|e| Error::permanent(format!("watermark {text:?}: {e}")))?,
            ),
            None => None,
        },
        None => None,
    };
    if let (Some(inc), Some(mark)) = (incremental, &start_after) {
        let past = bson::doc! { inc.field.clone(): { "$gt": mark.clone() } };
        filter = if filter.is_empty() {
            past
        } else {
            bson::doc! { "$and": [filter, past] }
        };
    }

    let mongo = Mongo::connect(&task.from.data_source, mongo_spec, &ctx.secrets).await?;
    mongo.require_collection(&task.from.collection).await?;
    let lake = Lake::connect(&task.to.data_source, s3_spec, &ctx.secrets)?;
    let collection = mongo
        .database
        .collection::<RawDocumentBuf>(&task.from.collection);
    let mut find = collection.find(filter).batch_size(BATCH as u32);
    if let Some(p) = projection {
        find = find.projection(p);
    }
    if let Some(inc) = incremental {
        // Ascending order makes the last document's value the high-water mark.
        find = find.sort(bson::doc! { inc.field.clone(): 1 });
    }
    let mut cursor = find.await.map_err(|e| {
        Error::from(e).context(format!(
            "find in {}.{}",
            mongo_spec.database, task.from.collection
        ))
    })?;

    // The cursor runs in its own task so the next batch is fetched while this one is encoded.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<RawDocumentBuf>>>(2);
    let reader = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match cursor.try_next().await {
                Ok(Some(doc)) => {
                    batch.push(doc);
                    if batch.len() == BATCH
                        && tx
                            .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    if !batch.is_empty() {
                        let _ = tx.send(Ok(batch)).await;
                    }
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(Error::from(e).context("read cursor"))).await;
                    return;
                }
            }
        }
    });

    let mut parts = Parts::new(
        lake.clone(),
        key.clone(),
        u64::from(task.part_size_mib) * 1024 * 1024,
        ctx.progress.clone(),
    );
    let mut rows: u64 = 0;
    let mut watermark: Option<String> = None;
    let mut line = Vec::with_capacity(1024);
    let outcome: Result<()> = async {
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            for doc in &batch {
                line.clear();
                ejson::write_document(&mut line, doc)
                    .map_err(|e| Error::permanent(format!("malformed BSON document: {e}")))?;
                line.push(b'\n');
                parts.write_line(&line).await?;
                rows += 1;
            }
            ctx.progress.add_rows(batch.len() as u64);
            if let (Some(inc), Some(last)) = (incremental, batch.last())
                && let Ok(Some(value)) = last.get(&inc.field)
            {
                watermark = Some(ejson::value_text(value));
            }
        }
        Ok(())
    }
    .await;
    reader.abort();
    if let Err(e) = outcome {
        parts.abort().await;
        return Err(e);
    }
    let written = parts.finish().await?;

    let mut input = ctx.dataset(&task.from.data_source, &task.from.collection)?;
    input.rows = Some(rows);
    let mut outputs = Vec::new();
    let mut bytes = 0;
    for (w, part_rows) in &written {
        bytes += w.bytes;
        let mut report = ctx.dataset(&task.to.data_source, &w.key)?;
        report.rows = Some(*part_rows);
        report.bytes = Some(w.bytes);
        report.sha256 = Some(w.sha256.clone());
        outputs.push(report);
    }
    // Without a new document the previous mark stays valid; keep reporting it.
    let watermark = watermark.or_else(|| incremental.and(ctx.input.watermark.clone()));
    Ok(TaskResult {
        outcome: Outcome::Succeeded,
        message: format!(
            "exported {rows} documents from {}.{} into {} part(s) under s3://{}/{}",
            mongo_spec.database,
            task.from.collection,
            written.len(),
            lake.bucket,
            key
        ),
        inputs: vec![input],
        outputs,
        rows: Some(rows),
        bytes: Some(bytes),
        files: Some(written.len() as u64),
        checks: vec![],
        schema: Default::default(),
        watermark,
        manifest: None,
    })
}

/// Key of part `index`: the first keeps `key`; later ones get `-00001`… before the extension.
pub fn part_key(key: &str, index: u32) -> String {
    if index == 0 {
        return key.to_string();
    }
    let name_start = key.rfind('/').map_or(0, |i| i + 1);
    let ext_start = key[name_start..]
        .find('.')
        .map_or(key.len(), |i| name_start + i);
    format!("{}-{index:05}{}", &key[..ext_start], &key[ext_start..])
}

/// Writes JSON lines into part objects, compressing when the key ends in `.gz`.
struct Parts {
    lake: Lake,
    key: String,
    gzip: bool,
    limit: u64,
    index: u32,
    current: Option<Part>,
    done: Vec<(Written, u64)>,
    progress: crate::progress::Progress,
}

struct Part {
    writer: ObjectWriter,
    encoder: Option<GzEncoder<Vec<u8>>>,
    plain: Vec<u8>,
    rows: u64,
}

impl Part {
    /// Bytes the object will have if it ended now (compressed bytes still buffered included).
    fn size(&self) -> u64 {
        self.writer.bytes()
            + self.plain.len() as u64
            + self
                .encoder
                .as_ref()
                .map_or(0, |e| e.get_ref().len() as u64)
    }
}

impl Parts {
    fn new(lake: Lake, key: String, limit: u64, progress: crate::progress::Progress) -> Parts {
        Parts {
            gzip: key.ends_with(".gz"),
            lake,
            key,
            limit: limit.max(1),
            index: 0,
            current: None,
            done: Vec::new(),
            progress,
        }
    }

    fn open(&mut self) -> Result<()> {
        let key = part_key(&self.key, self.index);
        let options = WriteOptions {
            part_size: 8 * 1024 * 1024,
            concurrency: 2,
            content_type: Some(if self.gzip {
                "application/gzip".into()
            } else {
                "application/x-ndjson".into()
            }),
            progress: None,
            ..Default::default()
        };
        self.current = Some(Part {
            writer: self.lake.writer(&key, options)?,
            encoder: self
                .gzip
                .then(|| GzEncoder::new(Vec::with_capacity(FLUSH_AT), Compression::fast())),
            plain: Vec::new(),
            rows: 0,
        });
        Ok(())
    }

    async fn write_line(&mut self, line: &[u8]) -> Result<()> {
        if self.current.is_none() {
            self.open()?;
        }
        let part = self.current.as_mut().expect("opened above");
        part.rows += 1;
        match &mut part.encoder {
            Some(encoder) => {
                encoder.write_all(line)?;
                if encoder.get_ref().len() >= FLUSH_AT {
                    let chunk = std::mem::take(encoder.get_mut());
                    self.progress.add_bytes(chunk.len() as u64);
                    part.writer.write(&chunk).await?;
                }
            }
            None => {
                part.plain.extend_from_slice(line);
                if part.plain.len() >= FLUSH_AT {
                    let chunk = std::mem::take(&mut part.plain);
                    self.progress.add_bytes(chunk.len() as u64);
                    part.writer.write(&chunk).await?;
                }
            }
        }
        if part.size() >= self.limit {
            self.close_part().await?;
            self.index += 1;
        }
        Ok(())
    }

    async fn close_part(&mut self) -> Result<()> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        let tail = match part.encoder.take() {
            Some(encoder) => encoder.finish()?,
            None => std::mem::take(&mut part.plain),
        };
        self.progress.add_bytes(tail.len() as u64);
        part.writer.write(&tail).await?;
        let written = part.writer.finish().await?;
        tracing::info!(key = %written.key, rows = part.rows, bytes = written.bytes, "part written");
        self.done.push((written, part.rows));
        Ok(())
    }

    async fn finish(mut self) -> Result<Vec<(Written, u64)>> {
        // An export that matched nothing still writes one (empty) part, so downstream loads
        // find a well-formed, empty input instead of a missing key.
        if self.current.is_none() && self.done.is_empty() {
            self.open()?;
        }
        self.close_part().await?;
        Ok(self.done)
    }

    async fn abort(mut self) {
        if let Some(part) = self.current.take() {
            part.writer.abort().await;
        }
        // Parts already completed are removed so a failed export leaves no partial output.
        for (written, _) in &self.done {
            let _ = self.lake.delete(&written.key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_parts_are_numbered_before_the_extension() {
        assert_eq!(
            part_key("t/2026-07-01/g3.jsonl.gz", 0),
            "t/2026-07-01/g3.jsonl.gz"
        );
        assert_eq!(
            part_key("t/2026-07-01/g3.jsonl.gz", 2),
            "t/2026-07-01/g3-00002.jsonl.gz"
        );
        assert_eq!(part_key("t/v1.2/export", 1), "t/v1.2/export-00001");
    }
}

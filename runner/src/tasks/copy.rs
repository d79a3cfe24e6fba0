//! `copy`: files from FTP/FTPS, SFTP, HTTP(S) or S3 into S3, streamed (never through local
//! disk or whole into memory), selected by glob, skipped when unchanged, sha256 recorded.

use std::collections::BTreeMap;

use globset::GlobBuilder;
use tributary_core::api::{CopyTask, OnNoMatch, SkipUnchanged};
use tributary_core::lineage::{Outcome, TaskResult};

use crate::connectors::files::{self, FileSource, HashSink, RemoteFile};
use crate::connectors::s3::{
    Lake, META_SHA256, META_SOURCE_MTIME, META_SOURCE_SIZE, WriteOptions, Written,
};
use crate::context::TaskContext;
use crate::error::{Error, Result};

/// The path of `file` relative to the listed directory, without a leading slash.
pub fn relative<'a>(dir: &str, path: &'a str) -> &'a str {
    let dir = dir.trim_matches('/');
    let path_trimmed = path.trim_start_matches('/');
    if dir.is_empty() {
        return path_trimmed;
    }
    path_trimmed
        .strip_prefix(dir)
        .map(|rest| rest.trim_start_matches('/'))
        .unwrap_or(path_trimmed)
}

/// The target key of a file: the exact `key`, or `prefix` + its relative path.
pub fn target_key(prefix: Option<&str>, key: Option<&str>, rel: &str) -> String {
    match key {
        Some(key) => key.to_string(),
        None => format!("{}{}", prefix.unwrap_or(""), rel),
    }
}

/// Whether the object's recorded source size and mtime equal the file's.
pub fn unchanged_by_metadata(file: &RemoteFile, metadata: &BTreeMap<String, String>) -> bool {
    let (Some(size), Some(mtime)) = (file.size, file.mtime) else {
        // Without both facts the file cannot be proven unchanged: copy it.
        return false;
    };
    metadata.get(META_SOURCE_SIZE) == Some(&size.to_string())
        && metadata.get(META_SOURCE_MTIME) == Some(&mtime.to_rfc3339())
}

pub async fn run(ctx: &TaskContext, task: &CopyTask) -> Result<TaskResult> {
    let from_name = &task.from.data_source;
    let from = ctx.data_source(from_name)?;
    let to = ctx.data_source(&task.to.data_source)?;
    let s3 = to.s3.as_ref().ok_or_else(|| {
        Error::permanent(format!("{} is not an s3 DataSource", task.to.data_source))
    })?;
    let glob = GlobBuilder::new(&task.from.glob)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::permanent(format!("glob {:?}: {e}", task.from.glob)))?
        .compile_matcher();
    let dir = ctx.render(&task.from.path)?;
    let prefix = task
        .to
        .prefix
        .as_deref()
        .map(|p| ctx.render(p))
        .transpose()?;
    let exact_key = task.to.key.as_deref().map(|k| ctx.render(k)).transpose()?;
    let lake = Lake::connect(&task.to.data_source, s3, &ctx.secrets)?;

    let mut source = files::open(from_name, from, &ctx.secrets).await?;
    let result = copy_all(
        ctx,
        task,
        source.as_mut(),
        &lake,
        &dir,
        &glob,
        prefix.as_deref(),
        exact_key.as_deref(),
    )
    .await;
    source.close().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn copy_all(
    ctx: &TaskContext,
    task: &CopyTask,
    source: &mut dyn FileSource,
    lake: &Lake,
    dir: &str,
    glob: &globset::GlobMatcher,
    prefix: Option<&str>,
    exact_key: Option<&str>,
) -> Result<TaskResult> {
    let from_name = &task.from.data_source;
    let listed = source.list(dir, task.from.recursive).await?;
    let selected: Vec<RemoteFile> = listed
        .into_iter()
        .filter(|f| glob.is_match(relative(dir, &f.path)))
        .collect();
    let source_ns = ctx.dataset(from_name, dir)?;
    if selected.is_empty() {
        let message = format!(
            "no file in {}{} matches {:?}{}",
            source_ns.namespace,
            source_ns.name,
            task.from.glob,
            if task.from.recursive {
                " (recursive)"
            } else {
                ""
            }
        );
        return match task.on_no_match {
            OnNoMatch::Fail => Err(Error::permanent(message)),
            OnNoMatch::Succeed => Ok(TaskResult {
                outcome: Outcome::Succeeded,
                message,
                inputs: vec![],
                outputs: vec![],
                rows: None,
                bytes: Some(0),
                files: Some(0),
                checks: vec![],
                schema: Default::default(),
                watermark: None,
                manifest: None,
            }),
        };
    }
    if exact_key.is_some() && selected.len() > 1 {
        return Err(Error::permanent(format!(
            "to.key names one object but {} files match {:?}; use to.prefix",
            selected.len(),
            task.from.glob
        )));
    }

    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut copied = 0u64;
    let mut skipped = 0u64;
    let mut bytes = 0u64;
    for file in &selected {
        let rel = relative(dir, &file.path);
        let key = target_key(prefix, exact_key, rel);
        let existing = match task.skip_unchanged {
            SkipUnchanged::Never => None,
            _ => lake.head(&key).await?,
        };
        let mut known_sha = None;
        let skip = match (&existing, task.skip_unchanged) {
            (Some(object), SkipUnchanged::SizeAndMtime) => {
                unchanged_by_metadata(file, &object.metadata)
            }
            (Some(object), SkipUnchanged::Sha256) => {
                // Reading the source once to hash it is the price of this mode.
                let mut hasher = HashSink::default();
                source.read(file, &mut hasher).await?;
                let sha = hasher.hex();
                let same = object.metadata.get(META_SHA256) == Some(&sha);
                known_sha = Some(sha);
                same
            }
            _ => false,
        };
        let mut input = ctx.dataset(from_name, &file.path)?;
        input.bytes = file.size;
        if skip {
            skipped += 1;
            tracing::info!(file = %file.path, key = %key, "unchanged, skipped");
            let mut output = ctx.dataset(&task.to.data_source, &key)?;
            output.bytes = existing.as_ref().map(|o| o.size);
            output.sha256 = existing
                .as_ref()
                .and_then(|o| o.metadata.get(META_SHA256).cloned());
            input.sha256 = output.sha256.clone();
            inputs.push(input);
            outputs.push(output);
            continue;
        }
        let written = copy_one(ctx, task, source, lake, file, &key, known_sha).await?;
        copied += 1;
        bytes += written.bytes;
        ctx.progress.add_files(1);
        tracing::info!(file = %file.path, key = %key, bytes = written.bytes, sha256 = %written.sha256, "copied");
        input.sha256 = Some(written.sha256.clone());
        input.bytes = Some(written.bytes);
        let mut output = ctx.dataset(&task.to.data_source, &key)?;
        output.bytes = Some(written.bytes);
        output.sha256 = Some(written.sha256);
        inputs.push(input);
        outputs.push(output);
    }
    Ok(TaskResult {
        outcome: Outcome::Succeeded,
        message: format!(
            "copied {copied} file(s) ({bytes} bytes) to s3://{}/{}, {skipped} unchanged skipped",
            lake.bucket,
            prefix.or(exact_key).unwrap_or("")
        ),
        inputs,
        outputs,
        rows: None,
        bytes: Some(bytes),
        files: Some(copied),
        checks: vec![],
        schema: Default::default(),
        watermark: None,
        manifest: None,
    })
}

async fn copy_one(
    ctx: &TaskContext,
    task: &CopyTask,
    source: &mut dyn FileSource,
    lake: &Lake,
    file: &RemoteFile,
    key: &str,
    known_sha: Option<String>,
) -> Result<Written> {
    let mut metadata = BTreeMap::new();
    if let Some(size) = file.size {
        metadata.insert(META_SOURCE_SIZE.to_string(), size.to_string());
    }
    if let Some(mtime) = file.mtime {
        metadata.insert(META_SOURCE_MTIME.to_string(), mtime.to_rfc3339());
    }
    if let Some(sha) = known_sha {
        // Known before a multipart upload starts only when it was computed for the skip check.
        metadata.insert(META_SHA256.to_string(), sha);
    }
    let options = WriteOptions {
        part_size: task.part_size_mib as usize * 1024 * 1024,
        concurrency: task.upload_concurrency as usize,
        metadata,
        content_type: None,
        progress: Some(ctx.progress.clone()),
    };
    let mut writer = lake.writer(key, options)?;
    if let Err(e) = source.read(file, &mut writer).await {
        writer.abort().await;
        return Err(e);
    }
    if let Some(size) = file.size
        && writer.bytes() != size
    {
        // The listing promised more (or fewer) bytes: the file changed under us or the
        // connection was cut without an error. Never publish such a copy.
        let got = writer.bytes();
        writer.abort().await;
        return Err(Error::retryable(format!(
            "{}: read {got} bytes but the listing said {size}; the file changed or the transfer was cut",
            file.path
        )));
    }
    writer.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn paths_are_made_relative_to_the_listed_directory() {
        assert_eq!(relative("/procedures", "/procedures/a.pdf"), "a.pdf");
        assert_eq!(
            relative("/procedures/", "/procedures/sub/a.pdf"),
            "sub/a.pdf"
        );
        assert_eq!(relative("/", "/a.pdf"), "a.pdf");
        assert_eq!(relative("raw/in", "raw/in/x.csv"), "x.csv");
    }

    #[test]
    fn a_glob_does_not_cross_directories_unless_it_says_so() {
        let glob = GlobBuilder::new("*.pdf")
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        assert!(glob.is_match("a.pdf"));
        assert!(!glob.is_match("sub/a.pdf"));
        let deep = GlobBuilder::new("**/*.pdf")
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        assert!(deep.is_match("sub/a.pdf"));
    }

    #[test]
    fn keys_are_the_prefix_plus_the_relative_path_or_the_exact_key() {
        assert_eq!(
            target_key(Some("knowledge/ftp/"), None, "a.pdf"),
            "knowledge/ftp/a.pdf"
        );
        assert_eq!(
            target_key(Some("x/"), Some("exact.pdf"), "a.pdf"),
            "exact.pdf"
        );
    }

    #[test]
    fn a_file_is_unchanged_only_when_size_and_mtime_both_match() {
        let mtime = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let file = RemoteFile {
            path: "/a".into(),
            size: Some(10),
            mtime: Some(mtime),
        };
        let meta = BTreeMap::from([
            (META_SOURCE_SIZE.to_string(), "10".to_string()),
            (META_SOURCE_MTIME.to_string(), mtime.to_rfc3339()),
        ]);
        assert!(unchanged_by_metadata(&file, &meta));
        let grown = RemoteFile {
            size: Some(11),
            ..file.clone()
        };
        assert!(!unchanged_by_metadata(&grown, &meta));
        let unknown = RemoteFile {
            mtime: None,
            ..file
        };
        assert!(!unchanged_by_metadata(&unknown, &meta));
    }
}

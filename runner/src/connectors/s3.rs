//! The lake: an S3-compatible bucket (object_store's S3 client), with streaming reads and
//! multipart uploads of bounded memory that leave no partial object behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, MultipartUpload, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tributary_core::api::S3Source;
use tributary_core::contract::SecretField;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::secrets::Secrets;

/// Metadata key recording the sha256 of an object's bytes.
pub const META_SHA256: &str = "tributary-sha256";
/// Metadata key recording the source file's size at copy time.
pub const META_SOURCE_SIZE: &str = "tributary-source-size";
/// Metadata key recording the source file's modification time at copy time.
pub const META_SOURCE_MTIME: &str = "tributary-source-mtime";

/// An object's size and user metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub metadata: BTreeMap<String, String>,
}

/// A bucket of an `s3` DataSource.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<AmazonS3>,
    pub bucket: String,
    /// Endpoint without credentials, for messages.
    pub endpoint: String,
}

impl Lake {
    /// Builds a client for the DataSource `name`. No request is made yet.
    pub fn connect(name: &str, spec: &S3Source, secrets: &Secrets) -> Result<Lake> {
        let mut client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10))
            // Whole-request timeouts would cut long streaming GETs; the task timeout bounds them.
            .with_timeout_disabled()
            .with_pool_idle_timeout(Duration::from_secs(30));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&spec.bucket)
            .with_region(&spec.region)
            .with_virtual_hosted_style_request(!spec.path_style)
            // object_store retries for minutes by default; the operator retries the whole
            // task with backoff, so give up quickly and say why.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            });
        if let Some(endpoint) = &spec.endpoint {
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_allow_http(endpoint.starts_with("http://"));
        }
        match (
            secrets.get(name, &SecretField::AccessKeyId),
            secrets.get(name, &SecretField::SecretAccessKey),
        ) {
            (Some(id), Some(key)) => {
                builder = builder.with_access_key_id(id).with_secret_access_key(key);
            }
            _ => {
                // Ambient credentials (web identity, instance profile) from the environment.
                builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&spec.bucket)
                    .with_region(&spec.region)
                    .with_virtual_hosted_style_request(!spec.path_style);
                if let Some(endpoint) = &spec.endpoint {
                    builder = builder
                        .with_endpoint(endpoint.trim_end_matches('/'))
                        .with_allow_http(endpoint.starts_with("http://"));
                }
            }
        }
        if let Some(tls) = &spec.tls {
            if tls.insecure_skip_verify {
                client = client.with_allow_invalid_certificates(true);
            }
            if let Some(pem) = secrets.get(name, &SecretField::CaBundle) {
                for cert in object_store::Certificate::from_pem_bundle(pem.as_bytes())
                    .map_err(|e| Error::permanent(format!("CA bundle of {name}: {e}")))?
                {
                    client = client.with_root_certificate(cert);
                }
            }
        }
        // Client options carry `allow_http` too: set it last so it is not overwritten.
        let allow_http = spec
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let store = builder
            .with_client_options(client.with_allow_http(allow_http))
            .build()
            .map_err(|e| Error::permanent(format!("S3 client for {name}: {e}")))?;
        Ok(Lake {
            store: Arc::new(store),
            bucket: spec.bucket.clone(),
            endpoint: spec
                .endpoint
                .clone()
                .unwrap_or_else(|| "https://s3.amazonaws.com".into()),
        })
    }

    fn path(&self, key: &str) -> Result<Path> {
        Path::parse(key.trim_start_matches('/'))
            .map_err(|e| Error::permanent(format!("invalid object key {key:?}: {e}")))
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key.trim_start_matches('/'))
    }

    /// Size and metadata of an object, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.store.get_opts(&self.path(key)?, options).await {
            Ok(result) => {
                let metadata = result
                    .attributes
                    .iter()
                    .filter_map(|(k, v)| match k {
                        Attribute::Metadata(name) => Some((name.to_string(), v.to_string())),
                        _ => None,
                    })
                    .collect();
                Ok(Some(ObjectInfo {
                    key: key.to_string(),
                    size: result.meta.size,
                    metadata,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::from(e).context(format!("head {}", self.describe(key)))),
        }
    }

    /// Streams an object's bytes.
    pub async fn get(&self, key: &str) -> Result<impl AsyncRead + Send + Unpin + use<>> {
        let result = self
            .store
            .get(&self.path(key)?)
            .await
            .map_err(|e| Error::from(e).context(format!("read {}", self.describe(key))))?;
        let stream = result
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()));
        Ok(tokio_util::io::StreamReader::new(stream))
    }

    /// Every object whose key starts with `prefix` (plain string prefix), in key order.
    pub async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = prefix.trim_start_matches('/');
        // object_store lists by path segments; list the enclosing "directory" and filter.
        let dir = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let dir_path = if dir.is_empty() {
            None
        } else {
            Some(self.path(dir)?)
        };
        let mut out: Vec<ObjectInfo> = self
            .store
            .list(dir_path.as_ref())
            .map_err(|e| Error::from(e).context(format!("list {}", self.describe(prefix))))
            .try_filter_map(|meta| async move {
                let key = meta.location.to_string();
                Ok(key.starts_with(prefix).then(|| ObjectInfo {
                    key,
                    size: meta.size,
                    metadata: BTreeMap::new(),
                }))
            })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Keys and sizes directly under `dir` (not descending), for non-recursive copies.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let dir = dir.trim_matches('/');
        let path = if dir.is_empty() {
            None
        } else {
            Some(self.path(dir)?)
        };
        let listing = self
            .store
            .list_with_delimiter(path.as_ref())
            .await
            .map_err(|e| Error::from(e).context(format!("list {}", self.describe(dir))))?;
        Ok(listing
            .objects
            .into_iter()
            .map(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
                metadata: BTreeMap::new(),
            })
            .collect())
    }

    /// Checks that the bucket answers and the credentials work: lists at most one key.
    pub async fn ping(&self) -> Result<Option<String>> {
        let mut stream = self.store.list(None);
        match stream.next().await {
            None => Ok(None),
            Some(Ok(meta)) => Ok(Some(meta.location.to_string())),
            Some(Err(e)) => Err(Error::from(e).context(format!("list s3://{}", self.bucket))),
        }
    }

    /// Writes a small object in one request.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        let options = PutOptions {
            attributes,
            ..Default::default()
        };
        self.store
            .put_opts(&self.path(key)?, PutPayload::from(body), options)
            .await
            .map_err(|e| Error::from(e).context(format!("write {}", self.describe(key))))?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        self.store
            .delete(&self.path(key)?)
            .await
            .map_err(|e| Error::from(e).context(format!("delete {}", self.describe(key))))
    }

    /// A streaming writer for `key`.
    pub fn writer(&self, key: &str, options: WriteOptions) -> Result<ObjectWriter> {
        Ok(ObjectWriter {
            lake: self.clone(),
            key: key.to_string(),
            path: self.path(key)?,
            part_size: options.part_size.max(5 * 1024 * 1024),
            concurrency: options.concurrency.max(1),
            metadata: options.metadata,
            content_type: options.content_type,
            buf: BytesMut::new(),
            upload: None,
            inflight: FuturesUnordered::new(),
            bytes: 0,
            hasher: Sha256::new(),
            progress: options.progress,
        })
    }

    /// Streams `reader` into `key`: one request for small bodies, a multipart upload otherwise.
    pub async fn upload(
        &self,
        key: &str,
        reader: impl AsyncRead + Unpin,
        options: WriteOptions,
    ) -> Result<Written> {
        let mut writer = self.writer(key, options)?;
        match writer.copy_from(reader).await {
            Ok(()) => writer.finish().await,
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }
}

/// How an object is written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Bytes per part of a multipart upload (at least 5 MiB, S3's minimum).
    pub part_size: usize,
    /// Parts in flight at once; memory is about `part_size × (concurrency + 1)`.
    pub concurrency: usize,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// Counts uploaded bytes, when set.
    pub progress: Option<Progress>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            part_size: 16 * 1024 * 1024,
            concurrency: 4,
            metadata: BTreeMap::new(),
            content_type: None,
            progress: None,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Writes one object from a stream of bytes with bounded memory. Either `finish` makes the
/// whole object visible at once, or `abort` leaves nothing (the multipart upload is aborted).
pub struct ObjectWriter {
    lake: Lake,
    key: String,
    path: Path,
    part_size: usize,
    concurrency: usize,
    metadata: BTreeMap<String, String>,
    content_type: Option<String>,
    buf: BytesMut,
    upload: Option<Box<dyn MultipartUpload>>,
    /// Parts being uploaded, each on its own tokio task so uploads overlap with reading.
    inflight: FuturesUnordered<tokio::task::JoinHandle<object_store::Result<()>>>,
    bytes: u64,
    hasher: Sha256,
    progress: Option<Progress>,
}

impl ObjectWriter {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn attributes(&self, sha256: Option<&str>) -> Attributes {
        let mut attributes = Attributes::new();
        for (k, v) in &self.metadata {
            attributes.insert(Attribute::Metadata(k.clone().into()), v.clone().into());
        }
        if let Some(sha) = sha256 {
            attributes.insert(
                Attribute::Metadata(META_SHA256.into()),
                sha.to_string().into(),
            );
        }
        if let Some(ct) = &self.content_type {
            attributes.insert(Attribute::ContentType, ct.clone().into());
        }
        attributes
    }

    /// Appends bytes; full parts are uploaded as they fill.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        self.flush_full_parts().await
    }

    /// Reads `reader` to its end into the object, without an intermediate copy. Each part gets
    /// a buffer of exactly `part_size`, so memory is `part_size × (concurrency + 1)` at most.
    pub async fn copy_from(&mut self, mut reader: impl AsyncRead + Unpin) -> Result<()> {
        loop {
            if self.buf.capacity() == self.buf.len() {
                // The previous buffer now belongs to a part in flight; start a fresh one.
                let mut fresh = BytesMut::with_capacity(self.part_size);
                fresh.extend_from_slice(&self.buf);
                self.buf = fresh;
            }
            let spare = (self.buf.capacity() - self.buf.len()) as u64;
            let before = self.buf.len();
            let n = (&mut reader).take(spare).read_buf(&mut self.buf).await?;
            if n == 0 {
                return Ok(());
            }
            self.hasher.update(&self.buf[before..]);
            self.bytes += n as u64;
            if let Some(p) = &self.progress {
                p.add_bytes(n as u64);
            }
            self.flush_full_parts().await?;
        }
    }

    async fn flush_full_parts(&mut self) -> Result<()> {
        while self.buf.len() >= self.part_size {
            let part = self.buf.split_to(self.part_size).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<()> {
        if self.upload.is_none() {
            let options = PutMultipartOptions {
                attributes: self.attributes(None),
                ..Default::default()
            };
            let upload = self
                .lake
                .store
                .put_multipart_opts(&self.path, options)
                .await
                .map_err(|e| self.error(e))?;
            self.upload = Some(upload);
        }
        // Bounded concurrency: wait for a slot before starting another part.
        while self.inflight.len() >= self.concurrency {
            if let Some(done) = self.inflight.next().await {
                self.joined(done)?;
            }
        }
        let upload = self.upload.as_mut().expect("started above");
        // Spawned, not just queued: an upload future only makes progress while polled, and
        // the caller is busy reading the next part.
        self.inflight
            .push(tokio::spawn(upload.put_part(PutPayload::from(part))));
        Ok(())
    }

    fn joined(
        &self,
        done: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
    ) -> Result<()> {
        match done {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(e) => Err(Error::retryable(format!("part upload task: {e}"))),
        }
    }

    fn error(&self, e: object_store::Error) -> Error {
        Error::from(e).context(format!("write s3://{}/{}", self.lake.bucket, self.key))
    }

    /// Completes the object. On failure the partial upload is aborted.
    pub async fn finish(mut self) -> Result<Written> {
        match self.try_finish().await {
            Ok(written) => Ok(written),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn try_finish(&mut self) -> Result<Written> {
        let sha256 = hex::encode(self.hasher.clone().finalize());
        if self.upload.is_none() {
            // Small object: one PUT carrying its sha256 as metadata.
            let body = std::mem::take(&mut self.buf).freeze();
            let options = PutOptions {
                attributes: self.attributes(Some(&sha256)),
                ..Default::default()
            };
            self.lake
                .store
                .put_opts(&self.path, PutPayload::from(body), options)
                .await
                .map_err(|e| self.error(e))?;
        } else {
            if !self.buf.is_empty() {
                let last = std::mem::take(&mut self.buf).freeze();
                self.send_part(last).await?;
            }
            while let Some(done) = self.inflight.next().await {
                self.joined(done)?;
            }
            let upload = self.upload.as_mut().expect("multipart");
            upload.complete().await.map_err(|e| {
                Error::from(e).context(format!("complete s3://{}/{}", self.lake.bucket, self.key))
            })?;
            self.upload = None;
        }
        Ok(Written {
            key: self.key.clone(),
            bytes: self.bytes,
            sha256,
        })
    }

    /// Drops buffered data and aborts a started multipart upload, so no part remains.
    pub async fn abort(mut self) {
        for part in self.inflight.iter() {
            part.abort();
        }
        self.inflight.clear();
        if let Some(mut upload) = self.upload.take() {
            match upload.abort().await {
                Ok(()) => tracing::info!(key = %self.key, "aborted multipart upload"),
                Err(e) => {
                    tracing::warn!(key = %self.key, error = %e, "could not abort multipart upload")
                }
            }
        }
    }
}

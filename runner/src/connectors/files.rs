//! The file-server side of `copy`: list a directory and stream one file into a sink.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;
use tributary_core::api::DataSourceSpec;

use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// A file found on a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Absolute path on the server (for S3: the key).
    pub path: String,
    pub size: Option<u64>,
    pub mtime: Option<DateTime<Utc>>,
}

/// Where streamed bytes go: an object writer, or a hasher when only the digest is wanted.
#[async_trait]
pub trait ByteSink: Send {
    async fn copy_from(&mut self, reader: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()>;
}

#[async_trait]
impl ByteSink for crate::connectors::s3::ObjectWriter {
    async fn copy_from(&mut self, reader: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        crate::connectors::s3::ObjectWriter::copy_from(self, reader).await
    }
}

/// Computes the sha256 of a stream without keeping it.
#[derive(Default)]
pub struct HashSink {
    hasher: sha2::Sha256,
    pub bytes: u64,
}

impl HashSink {
    pub fn hex(self) -> String {
        use sha2::Digest;
        hex::encode(self.hasher.finalize())
    }
}

#[async_trait]
impl ByteSink for HashSink {
    async fn copy_from(&mut self, reader: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        use sha2::Digest;
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            self.hasher.update(&buf[..n]);
            self.bytes += n as u64;
        }
    }
}

/// A file server that `copy` reads from: FTP/FTPS, SFTP, HTTP(S) or an S3 bucket.
#[async_trait]
pub trait FileSource: Send {
    /// Files in `dir`, and in its subdirectories when `recursive`.
    async fn list(&mut self, dir: &str, recursive: bool) -> Result<Vec<RemoteFile>>;
    /// Streams one file into `sink`; the whole file or an error.
    async fn read(&mut self, file: &RemoteFile, sink: &mut dyn ByteSink) -> Result<()>;
    /// Closes the session politely (errors ignored: the data is already safe).
    async fn close(&mut self) {}
}

/// Opens the file source of DataSource `name`.
pub async fn open(
    name: &str,
    spec: &DataSourceSpec,
    secrets: &Secrets,
) -> Result<Box<dyn FileSource>> {
    if let Some(ftp) = &spec.ftp {
        return Ok(Box::new(
            super::ftp::Ftp::connect(name, ftp, secrets).await?,
        ));
    }
    if let Some(sftp) = &spec.sftp {
        return Ok(Box::new(
            super::sftp::Sftp::connect(name, sftp, secrets).await?,
        ));
    }
    if let Some(http) = &spec.http {
        return Ok(Box::new(super::http::Http::new(name, http, secrets)?));
    }
    if let Some(s3) = &spec.s3 {
        return Ok(Box::new(super::s3::Lake::connect(name, s3, secrets)?));
    }
    Err(Error::permanent(format!(
        "DataSource {name:?} is not a file source (ftp, sftp, http or s3)"
    )))
}

/// Joins a directory and a name with exactly one `/`.
pub fn join(dir: &str, name: &str) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        name.trim_start_matches('/')
    )
}

#[async_trait]
impl FileSource for crate::connectors::s3::Lake {
    async fn list(&mut self, dir: &str, recursive: bool) -> Result<Vec<RemoteFile>> {
        let dir = dir.trim_start_matches('/');
        let objects = if recursive {
            let prefix = if dir.is_empty() || dir.ends_with('/') {
                dir.to_string()
            } else {
                format!("{dir}/")
            };
            self.list_prefix(&prefix).await?
        } else {
            self.list_dir(dir).await?
        };
        Ok(objects
            .into_iter()
            .map(|o| RemoteFile {
                path: o.key,
                size: Some(o.size),
                mtime: None,
            })
            .collect())
    }

    async fn read(&mut self, file: &RemoteFile, sink: &mut dyn ByteSink) -> Result<()> {
        let mut reader = self.get(&file.path).await?;
        sink.copy_from(&mut reader).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_paths_never_doubles_or_drops_the_slash() {
        assert_eq!(join("/procedures/", "/a.pdf"), "/procedures/a.pdf");
        assert_eq!(join("/procedures", "a.pdf"), "/procedures/a.pdf");
        assert_eq!(join("/", "a.pdf"), "/a.pdf");
    }
}

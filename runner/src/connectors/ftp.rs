//! FTP and FTPS (explicit or implicit TLS) file source, via suppaftp on tokio with rustls.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use suppaftp::Mode;
use suppaftp::list::File as ListEntry;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use tributary_core::api::{FtpSource, FtpTlsMode};
use tributary_core::contract::SecretField;

use super::CONNECT_TIMEOUT;
use super::files::{ByteSink, FileSource, RemoteFile, join};
use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// A logged-in FTP session.
pub struct Ftp {
    stream: AsyncRustlsFtpStream,
    endpoint: String,
}

impl Ftp {
    /// Connects, secures the session as configured and logs in (anonymously without credentials).
    pub async fn connect(name: &str, spec: &FtpSource, secrets: &Secrets) -> Result<Ftp> {
        let endpoint = format!("ftp://{}:{}", spec.host, spec.port);
        let connect = async {
            let address = (spec.host.as_str(), spec.port);
            let tls = || -> Result<AsyncRustlsConnector> {
                let options = spec.tls_options.clone().unwrap_or_default();
                let config = super::tls::client_config(
                    secrets.get(name, &SecretField::CaBundle),
                    options.insecure_skip_verify,
                )?;
                Ok(AsyncRustlsConnector::from(
                    tokio_rustls::TlsConnector::from(config),
                ))
            };
            let mut stream = match spec.tls {
                FtpTlsMode::None => AsyncRustlsFtpStream::connect(address).await?,
                FtpTlsMode::Explicit => {
                    AsyncRustlsFtpStream::connect(address)
                        .await?
                        .into_secure(tls()?, &spec.host)
                        .await?
                }
                FtpTlsMode::Implicit => {
                    AsyncRustlsFtpStream::connect_secure_implicit(address, tls()?, &spec.host)
                        .await?
                }
            };
            let user = secrets
                .get(name, &SecretField::Username)
                .unwrap_or("anonymous");
            let password = secrets.get(name, &SecretField::Password).unwrap_or("");
            stream.login(user, password).await.map_err(|e| {
                let e = Error::from(e);
                Error {
                    class: e.class,
                    message: format!("login as {user:?} failed: {}", e.message),
                }
            })?;
            stream.set_mode(if spec.passive {
                Mode::ExtendedPassive
            } else {
                Mode::Active
            });
            stream.transfer_type(FileType::Binary).await?;
            Ok::<_, Error>(stream)
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| Error::retryable("timed out"))
            .and_then(|r| r)
            .map_err(|e| e.context(format!("connect {endpoint}")))?;
        Ok(Ftp { stream, endpoint })
    }

    /// The server's working directory: proves the session works.
    pub async fn pwd(&mut self) -> Result<String> {
        Ok(self.stream.pwd().await?)
    }

    async fn list_dir(&mut self, dir: &str) -> Result<Vec<(ListEntry, String)>> {
        let lines = self
            .stream
            .list(Some(dir))
            .await
            .map_err(|e| Error::from(e).context(format!("list {}{dir}", self.endpoint)))?;
        let mut entries = Vec::new();
        for line in lines {
            // Lines that are not entries ("total 12") are skipped; names are never "." or "..".
            if let Ok(entry) = ListEntry::from_str(&line)
                && entry.name() != "."
                && entry.name() != ".."
            {
                let path = join(dir, entry.name());
                entries.push((entry, path));
            }
        }
        Ok(entries)
    }
}

#[async_trait]
impl FileSource for Ftp {
    async fn list(&mut self, dir: &str, recursive: bool) -> Result<Vec<RemoteFile>> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_string()];
        while let Some(dir) = pending.pop() {
            for (entry, path) in self.list_dir(&dir).await? {
                if entry.is_directory() {
                    if recursive {
                        pending.push(path);
                    }
                } else if entry.is_file() {
                    out.push(RemoteFile {
                        path,
                        size: Some(entry.size() as u64),
                        // LIST times lack seconds (and the year for recent files): MDTM below.
                        mtime: None,
                    });
                }
            }
        }
        // MDTM gives the exact modification time, needed to skip unchanged files reliably.
        for file in &mut out {
            if let Ok(t) = self.stream.mdtm(&file.path).await {
                file.mtime = Some(DateTime::<Utc>::from_naive_utc_and_offset(t, Utc));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn read(&mut self, file: &RemoteFile, sink: &mut dyn ByteSink) -> Result<()> {
        let what = || format!("read {}{}", self.endpoint, file.path);
        let mut transfer = self
            .stream
            .retr_as_stream(&file.path)
            .await
            .map_err(|e| Error::from(e).context(what()))?;
        sink.copy_from(&mut transfer)
            .await
            .map_err(|e| e.context(what()))?;
        // The 226 reply confirms the server sent the whole file.
        transfer
            .finish()
            .await
            .map_err(|e| Error::from(e).context(what()))?;
        Ok(())
    }

    async fn close(&mut self) {
        let _ = self.stream.quit().await;
    }
}

//! SFTP file source: russh (pure-Rust SSH) with russh-sftp, host key pinned from the DataSource.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use russh::client::{self, AuthResult};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use tributary_core::api::SftpSource;
use tributary_core::contract::SecretField;

use super::CONNECT_TIMEOUT;
use super::files::{ByteSink, FileSource, RemoteFile, join};
use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// Accepts exactly the configured host key (or any key when verification is skipped).
struct HostKeyCheck {
    expected: Option<PublicKey>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(self.expected.is_none());
        };
        Ok(match &self.expected {
            None => true,
            Some(expected) => expected.key_data() == key.key_data(),
        })
    }
}

/// An authenticated SFTP session.
pub struct Sftp {
    session: SftpSession,
    _ssh: client::Handle<HostKeyCheck>,
    endpoint: String,
}

impl Sftp {
    pub async fn connect(name: &str, spec: &SftpSource, secrets: &Secrets) -> Result<Sftp> {
        let endpoint = format!("sftp://{}:{}", spec.host, spec.port);
        let expected = match (&spec.host_key, spec.insecure_skip_host_key_verification) {
            (Some(line), _) => Some(parse_host_key(line)?),
            (None, true) => None,
            (None, false) => {
                return Err(Error::permanent(
                    "sftp: hostKey is required unless insecureSkipHostKeyVerification is true",
                ));
            }
        };
        let user = secrets
            .get(name, &SecretField::Username)
            .ok_or_else(|| Error::permanent("sftp: no user name"))?
            .to_string();
        let password = secrets
            .get(name, &SecretField::Password)
            .map(str::to_string);
        let private_key = secrets
            .get(name, &SecretField::PrivateKey)
            .map(str::to_string);
        let connect = async {
            let config = Arc::new(client::Config::default());
            let mut ssh = client::connect(
                config,
                (spec.host.as_str(), spec.port),
                HostKeyCheck { expected },
            )
            .await?;
            let mut authenticated = false;
            if let Some(pem) = &private_key {
                let key = russh::keys::decode_secret_key(pem, None)
                    .map_err(|e| Error::permanent(format!("sftp: private key: {e}")))?;
                let hash = ssh.best_supported_rsa_hash().await?.flatten();
                let result = ssh
                    .authenticate_publickey(
                        user.clone(),
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await?;
                authenticated = matches!(result, AuthResult::Success);
            }
            if !authenticated && let Some(password) = &password {
                let result = ssh.authenticate_password(user.clone(), password).await?;
                authenticated = matches!(result, AuthResult::Success);
            }
            if !authenticated {
                return Err(Error::permanent(format!(
                    "authentication as {user:?} failed"
                )));
            }
            let channel = ssh.channel_open_session().await?;
            channel.request_subsystem(true, "sftp").await?;
            let session = SftpSession::new(channel.into_stream()).await?;
            Ok::<_, Error>((ssh, session))
        };
        let (ssh, session) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| Error::retryable("timed out"))
            .and_then(|r| r)
            .map_err(|e| e.context(format!("connect {endpoint}")))?;
        Ok(Sftp {
            session,
            _ssh: ssh,
            endpoint,
        })
    }

    /// The absolute path of the login directory: proves the session works.
    pub async fn home(&mut self) -> Result<String> {
        Ok(self.session.canonicalize(".").await?)
    }
}

/// Parses `ssh-ed25519 AAAA…` (an optional leading host field, as in known_hosts, is skipped).
pub fn parse_host_key(line: &str) -> Result<PublicKey> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let start = fields
        .iter()
        .position(|f| f.starts_with("ssh-") || f.starts_with("ecdsa-"))
        .ok_or_else(|| Error::permanent("sftp: hostKey is not an OpenSSH public key"))?;
    let text = fields[start..fields.len().min(start + 2)].join(" ");
    PublicKey::from_openssh(&text).map_err(|e| Error::permanent(format!("sftp: hostKey: {e}")))
}

#[async_trait]
impl FileSource for Sftp {
    async fn list(&mut self, dir: &str, recursive: bool) -> Result<Vec<RemoteFile>> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_string()];
        while let Some(dir) = pending.pop() {
            let entries = self
                .session
                .read_dir(dir.clone())
                .await
                .map_err(|e| Error::from(e).context(format!("list {}{dir}", self.endpoint)))?;
            for entry in entries {
                let name = entry.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                let path = join(&dir, &name);
                let meta = entry.metadata();
                if meta.is_dir() {
                    if recursive {
                        pending.push(path);
                    }
                } else {
                    out.push(RemoteFile {
                        path,
                        size: meta.size,
                        mtime: meta
                            .mtime
                            .and_then(|t| DateTime::<Utc>::from_timestamp(i64::from(t), 0)),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn read(&mut self, file: &RemoteFile, sink: &mut dyn ByteSink) -> Result<()> {
        let what = || format!("read {}{}", self.endpoint, file.path);
        let mut handle = self
            .session
            .open(file.path.clone())
            .await
            .map_err(|e| Error::from(e).context(what()))?;
        sink.copy_from(&mut handle)
            .await
            .map_err(|e| e.context(what()))
    }

    async fn close(&mut self) {
        let _ = self.session.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_hosts_line_yields_its_key() {
        let line = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        assert!(parse_host_key(line).is_ok());
        assert!(parse_host_key("not a key").is_err());
    }
}

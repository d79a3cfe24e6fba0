//! Connectors: one small trait or client per kind of endpoint.

pub mod files;
pub mod ftp;
pub mod http;
pub mod mongo;
pub mod postgres;
pub mod s3;
pub mod sftp;
pub mod tls;

use std::time::Duration;

/// Time allowed to open a connection (TCP + TLS/SSH handshake + login) before giving up
/// with a retryable error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

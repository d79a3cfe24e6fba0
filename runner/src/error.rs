//! Runner errors, each classified as retryable (another attempt may succeed) or permanent.

use tributary_core::lineage::Outcome;

/// Whether another attempt of the same task can succeed without a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Network trouble, timeouts, a busy or restarting server.
    Retryable,
    /// Bad input, failed authentication, a missing bucket/table/collection/path.
    Permanent,
}

/// An error that ends a task attempt. The message never contains a secret: connectors build
/// it from redacted endpoints and server answers only.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub class: Class,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn permanent(message: impl Into<String>) -> Error {
        Error {
            class: Class::Permanent,
            message: message.into(),
        }
    }

    pub fn retryable(message: impl Into<String>) -> Error {
        Error {
            class: Class::Retryable,
            message: message.into(),
        }
    }

    /// Prefixes the message with what was being done, keeping the class.
    pub fn context(self, what: impl std::fmt::Display) -> Error {
        Error {
            class: self.class,
            message: format!("{what}: {}", self.message),
        }
    }

    /// The task outcome this error leads to.
    pub fn outcome(&self) -> Outcome {
        match self.class {
            Class::Retryable => Outcome::RetryableFailure,
            Class::Permanent => Outcome::PermanentFailure,
        }
    }
}

/// Adds context to any result whose error converts into [`Error`].
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        use std::io::ErrorKind::*;
        match e.kind() {
            // Malformed input (e.g. a broken gzip stream) cannot get better on retry.
            InvalidData | InvalidInput | NotFound | PermissionDenied | Unsupported => {
                Error::permanent(e.to_string())
            }
            _ => Error::retryable(e.to_string()),
        }
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Error {
        use object_store::Error as E;
        let text = crate::redact::redact_text(&e.to_string());
        match &e {
            E::NotFound { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::InvalidPath { .. }
            | E::NotSupported { .. }
            | E::NotImplemented => Error::permanent(text),
            _ if is_permanent_s3_text(&text) => Error::permanent(text),
            _ => Error::retryable(text),
        }
    }
}

/// S3 error codes that no retry fixes (object_store reports some of them as generic errors).
fn is_permanent_s3_text(text: &str) -> bool {
    [
        "NoSuchBucket",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidBucketName",
        "NoSuchKey",
        "403 Forbidden",
        "404 Not Found",
    ]
    .iter()
    .any(|code| text.contains(code))
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        let Some(db) = e.as_db_error() else {
            // No server answer: connection refused, reset or timed out.
            return Error::retryable(format!("postgres: {e}"));
        };
        let code = db.code().code();
        let mut message = format!("postgres {code}: {}", db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(place) = db.where_() {
            message.push_str(&format!(" [{place}]"));
        }
        // Class 08 connection, 40 serialization/deadlock, 53 resources, 57 operator
        // intervention (shutdown), 58 system errors: worth another attempt.
        let retryable = ["08", "40", "53", "57", "58"]
            .iter()
            .any(|class| code.starts_with(class));
        if retryable {
            Error::retryable(message)
        } else {
            Error::permanent(message)
        }
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(e: mongodb::error::Error) -> Error {
        use mongodb::error::ErrorKind as K;
        let text = crate::redact::redact_text(&format!("mongodb: {e}"));
        match e.kind.as_ref() {
            K::Authentication { .. } | K::InvalidArgument { .. } | K::InvalidResponse { .. } => {
                Error::permanent(text)
            }
            // 13 Unauthorized, 18 AuthenticationFailed, 2 BadValue, 9 FailedToParse,
            // 26 NamespaceNotFound.
            K::Command(c) if [2, 9, 13, 18, 26].contains(&c.code) => Error::permanent(text),
            _ if e.contains_label("RetryableWriteError") => Error::retryable(text),
            _ => Error::retryable(text),
        }
    }
}

impl From<tributary_core::template::TemplateError> for Error {
    fn from(e: tributary_core::template::TemplateError) -> Error {
        Error::permanent(format!("template: {e}"))
    }
}

impl From<tributary_core::identifier::IdentifierError> for Error {
    fn from(e: tributary_core::identifier::IdentifierError) -> Error {
        Error::permanent(format!("identifier {e}"))
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Error {
        // reqwest's Display stops at "error sending request for url (…)"; the cause
        // (connection refused, DNS, TLS) is in the source chain.
        let mut full = format!("http: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !full.contains(&cause_text) {
                full.push_str(": ");
                full.push_str(&cause_text);
            }
            source = cause.source();
        }
        let text = crate::redact::redact_text(&full);
        match e.status() {
            Some(s) if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 => {
                Error::permanent(text)
            }
            _ if e.is_builder() || e.is_decode() => Error::permanent(text),
            _ => Error::retryable(text),
        }
    }
}

impl From<suppaftp::FtpError> for Error {
    fn from(e: suppaftp::FtpError) -> Error {
        use suppaftp::FtpError as F;
        let text = format!("ftp: {e}");
        match &e {
            // 4xx replies are transient by definition of the FTP protocol; 5xx are permanent
            // (530 not logged in, 550 no such file).
            F::UnexpectedResponse(r) if (500..600).contains(&(r.status as u32)) => {
                Error::permanent(text)
            }
            F::SecureError(_) | F::BadResponse | F::InvalidAddress(_) => Error::permanent(text),
            _ => Error::retryable(text),
        }
    }
}

impl From<russh_sftp::client::error::Error> for Error {
    fn from(e: russh_sftp::client::error::Error) -> Error {
        use russh_sftp::client::error::Error as S;
        use russh_sftp::protocol::StatusCode;
        let text = format!("sftp: {e}");
        match &e {
            S::Status(s)
                if matches!(
                    s.status_code,
                    StatusCode::NoSuchFile
                        | StatusCode::PermissionDenied
                        | StatusCode::OpUnsupported
                ) =>
            {
                Error::permanent(text)
            }
            _ => Error::retryable(text),
        }
    }
}

impl From<russh::Error> for Error {
    fn from(e: russh::Error) -> Error {
        use russh::Error as R;
        let text = format!("ssh: {e}");
        match &e {
            R::UnknownKey | R::WrongServerSig | R::NoCommonAlgo { .. } | R::NotAuthenticated => {
                Error::permanent(text)
            }
            _ => Error::retryable(text),
        }
    }
}

impl From<tokio::time::error::Elapsed> for Error {
    fn from(_: tokio::time::error::Elapsed) -> Error {
        Error::retryable("timed out")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_http_failure_names_its_cause_from_the_source_chain() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let e: Error = reqwest::get("http://127.0.0.1:1/")
            .await
            .unwrap_err()
            .into();
        assert_eq!(e.class, Class::Retryable);
        assert!(
            e.message.to_lowercase().contains("refused"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_missing_bucket_is_permanent_even_when_reported_as_a_generic_s3_error() {
        let e: Error = object_store::Error::Generic {
            store: "S3",
            source: "Error performing list: NoSuchBucket: The specified bucket does not exist"
                .into(),
        }
        .into();
        assert_eq!(e.class, Class::Permanent);
    }

    #[test]
    fn a_connection_reset_is_retryable_and_malformed_data_is_not() {
        let reset: Error = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        assert_eq!(reset.class, Class::Retryable);
        let bad: Error = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad gzip").into();
        assert_eq!(bad.class, Class::Permanent);
    }

    #[test]
    fn context_keeps_the_class() {
        let e = Error::permanent("no such table").context("load staging.t");
        assert_eq!(e.class, Class::Permanent);
        assert_eq!(e.message, "load staging.t: no such table");
    }
}

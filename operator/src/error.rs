//! Errors of the I/O shells; each variant is a stable metric label (`error="…"`).

/// What went wrong while reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call {action} failed: {source}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("object has no {0}")]
    MissingField(&'static str),
    #[error("could not serialise {what}: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("lost leadership; refusing to act")]
    NotLeader,
}

impl Error {
    /// The metric label of this error: the variant name in snake case.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::MissingField(_) => "missing_field",
            Error::Serialize { .. } => "serialize",
            Error::NotLeader => "not_leader",
        }
    }

    /// Wraps a kube error with the call that failed.
    pub fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { action, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

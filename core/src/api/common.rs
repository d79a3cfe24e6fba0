//! Small shapes shared by both resources: Secret references and TLS options.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to one key of a Secret in the resource's namespace.
///
/// The operator never reads Secrets: it only wires this reference into the runner pod
/// as an environment variable (`secretKeyRef`), where the kubelet resolves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret holding a user name and a password (or another secret) under well-known keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret, in the same namespace as this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the user name (for S3: the access key id). Defaults per source kind:
    /// `username`, or `accessKeyId` for S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key holding the password (for S3: the secret access key). Defaults per source kind:
    /// `password`, or `secretAccessKey` for S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

impl CredentialsSecretRef {
    /// The Secret key that holds the user name, falling back to the kind's default.
    pub fn username_key_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.username_key.as_deref().unwrap_or(default)
    }

    /// The Secret key that holds the password, falling back to the kind's default.
    pub fn password_key_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.password_key.as_deref().unwrap_or(default)
    }
}

/// TLS settings for a client connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptions {
    /// PEM bundle of certificate authorities to trust instead of the system roots,
    /// taken from a Secret key and mounted into the runner pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Accept any server certificate. For test beds only: it disables protection
    /// against a man in the middle.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

//! `DataSource`: where data lives. Exactly one connector block per resource.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CredentialsSecretRef, DataSourceStatus, SecretKeyRef, TlsOptions};

/// Where data lives: one FTP/FTPS, SFTP, HTTP, MongoDB, S3 or PostgreSQL endpoint.
/// Credentials are only ever given as Secret references.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "DataSource",
    doc = "Where data lives: an FTP/FTPS, SFTP, HTTP, MongoDB, S3 or PostgreSQL endpoint, with credentials by Secret reference.",
    plural = "datasources",
    namespaced,
    status = "DataSourceStatus",
    shortname = "tds",
    category = "tributary",
    printcolumn = r#"{"name": "Kind", "type": "string", "description": "Connector kind", "jsonPath": ".status.kind"}"#,
    printcolumn = r#"{"name": "Endpoint", "type": "string", "description": "Host, URL or bucket, without credentials", "jsonPath": ".status.endpoint", "priority": 1}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "description": "Whether the last connection check succeeded", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "[has(self.ftp), has(self.sftp), has(self.http), has(self.mongodb), has(self.s3), has(self.postgres)].filter(x, x).size() == 1"
).message("exactly one of ftp, sftp, http, mongodb, s3, postgres must be set"))]
#[serde(rename_all = "camelCase")]
pub struct DataSourceSpec {
    /// An FTP or FTPS server (files: source of `copy` tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftp: Option<FtpSource>,
    /// An SFTP server (files: source of `copy` tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sftp: Option<SftpSource>,
    /// An HTTP(S) file server (files: source of `copy` tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSource>,
    /// A MongoDB database (documents: source of `export` tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongodb: Option<MongoSource>,
    /// An S3-compatible bucket (the lake: target of `copy`/`export`, source of `load`, subject of `check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Source>,
    /// A PostgreSQL database (the warehouse: target of `load`, runs `sql` and `check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSource>,
    /// How often, in seconds, the operator re-checks that the source is reachable and the
    /// credentials work. 0 disables periodic checks (a check still runs on every spec change).
    #[serde(default = "default_check_interval")]
    #[schemars(range(min = 0, max = 86400))]
    pub check_interval_seconds: u32,
}

fn default_check_interval() -> u32 {
    300
}

/// The connector kind of a DataSource, named as in the spec.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Ftp,
    Sftp,
    Http,
    Mongodb,
    S3,
    Postgres,
}

impl SourceKind {
    /// The field name that selects this kind in a DataSource spec.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Ftp => "ftp",
            SourceKind::Sftp => "sftp",
            SourceKind::Http => "http",
            SourceKind::Mongodb => "mongodb",
            SourceKind::S3 => "s3",
            SourceKind::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DataSourceSpec {
    /// The connector kinds set in this spec; a valid spec has exactly one.
    pub fn kinds(&self) -> Vec<SourceKind> {
        let mut kinds = Vec::new();
        if self.ftp.is_some() {
            kinds.push(SourceKind::Ftp);
        }
        if self.sftp.is_some() {
            kinds.push(SourceKind::Sftp);
        }
        if self.http.is_some() {
            kinds.push(SourceKind::Http);
        }
        if self.mongodb.is_some() {
            kinds.push(SourceKind::Mongodb);
        }
        if self.s3.is_some() {
            kinds.push(SourceKind::S3);
        }
        if self.postgres.is_some() {
            kinds.push(SourceKind::Postgres);
        }
        kinds
    }

    /// The single connector kind, or `None` when zero or several are set.
    pub fn kind(&self) -> Option<SourceKind> {
        match self.kinds().as_slice() {
            [kind] => Some(*kind),
            _ => None,
        }
    }
}

/// TLS mode of an FTP connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FtpTlsMode {
    /// Plain FTP: credentials and data travel unencrypted.
    #[default]
    None,
    /// FTPS with `AUTH TLS` on the control port (usually 21).
    Explicit,
    /// FTPS with TLS from the first byte (usually port 990).
    Implicit,
}

/// An FTP or FTPS server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FtpSource {
    /// Host name or IP address of the server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Control port. Defaults to 21 (990 is usual for implicit TLS).
    #[serde(default = "default_ftp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// TLS mode: `none`, `explicit` (AUTH TLS) or `implicit`.
    #[serde(default)]
    pub tls: FtpTlsMode,
    /// Certificate trust for FTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_options: Option<TlsOptions>,
    /// Use passive mode (the client opens data connections); needed behind NAT and most firewalls.
    #[serde(default = "default_true")]
    pub passive: bool,
    /// Secret with keys `username` and `password`. Without it the runner logs in anonymously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

fn default_ftp_port() -> u16 {
    21
}

fn default_true() -> bool {
    true
}

/// An SFTP server (SSH file transfer).
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.hostKey) || (has(self.insecureSkipHostKeyVerification) && self.insecureSkipHostKeyVerification)")
    .message("hostKey is required unless insecureSkipHostKeyVerification is true"))]
#[serde(rename_all = "camelCase")]
pub struct SftpSource {
    /// Host name or IP address of the server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// SSH port. Defaults to 22.
    #[serde(default = "default_sftp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// The server's public host key in OpenSSH `known_hosts` form, e.g. `ssh-ed25519 AAAAC3…`.
    /// The runner refuses to talk to a server presenting any other key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Accept any host key. For test beds only: it disables protection against a man in the middle.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_host_key_verification: bool,
    /// Secret with key `username` and `password` and/or `privateKey` (an OpenSSH private key).
    pub credentials_secret_ref: SftpCredentialsRef,
}

fn default_sftp_port() -> u16 {
    22
}

/// Secret holding SFTP credentials: a user name plus a password, a private key, or both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SftpCredentialsRef {
    /// Name of the Secret, in the same namespace as this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the user name. Defaults to `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key holding the password, if password authentication is used. Defaults to `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
    /// Key holding an OpenSSH private key, if key authentication is used. Defaults to `privateKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_key: Option<String>,
}

/// An HTTP(S) file server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpSource {
    /// Base URL that task paths are resolved against, e.g. `https://files.example.com/docs/`.
    /// Must not contain credentials.
    #[schemars(regex(pattern = r"^https?://[^/@\s]+(/\S*)?$"))]
    pub base_url: String,
    /// Extra request headers, with values given inline (non-secret) or from a Secret key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub headers: Vec<HttpHeader>,
    /// Secret with keys `username` and `password` for HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// How files are discovered when a `copy` task uses a glob: `html` parses links of a
    /// directory index page, `json` reads a JSON array of names (or objects with a `name`).
    #[serde(default)]
    pub listing: HttpListing,
    /// Certificate trust for HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// How the runner lists files on an HTTP server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HttpListing {
    /// Links (`href`) of the directory index page at the task's path.
    #[default]
    Html,
    /// A JSON array of file names or of objects with `name` (and optional `size`, `mtime`).
    Json,
}

/// One HTTP request header.
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.value) != has(self.secretKeyRef)")
    .message("set exactly one of value or secretKeyRef"))]
#[serde(rename_all = "camelCase")]
pub struct HttpHeader {
    /// Header name, e.g. `Authorization`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"))]
    pub name: String,
    /// A non-secret value given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A secret value taken from a Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// A MongoDB database.
#[derive(Clone, Debug, PartialEq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("!self.uri.contains('@')")
    .message("uri must not contain credentials; use credentialsSecretRef"))]
#[serde(rename_all = "camelCase")]
pub struct MongoSource {
    /// Connection string without credentials, e.g. `mongodb://mongo-0.mongo:27017/?replicaSet=rs0`.
    #[schemars(regex(pattern = r"^mongodb(\+srv)?://"))]
    pub uri: String,
    /// Database holding the collections that tasks name.
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
    /// Secret with keys `username` and `password`. Without it the runner connects unauthenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// Database to authenticate against. Defaults to `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_source: Option<String>,
    /// Connect over TLS, with optional certificate trust settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Source {
    /// Endpoint URL for S3-compatible stores, e.g. `http://minio.retail:9000`. Empty means AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^/@\s]+/?$"))]
    pub endpoint: Option<String>,
    /// Region used to sign requests.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Use path-style addressing (`endpoint/bucket/key`), needed by MinIO and most S3-compatible stores.
    #[serde(default)]
    pub path_style: bool,
    /// Secret with keys `accessKeyId` and `secretAccessKey`. Without it the runner uses the
    /// ambient credential chain (e.g. a workload identity on the runner's ServiceAccount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// Certificate trust for an HTTPS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PostgresSslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A PostgreSQL database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSource {
    /// Host name or IP address of the server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port. Defaults to 5432.
    #[serde(default = "default_pg_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Database name.
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
    /// TLS mode, as libpq's `sslmode`: `disable` (plain TCP), `prefer` (TLS when the server
    /// offers it), `require` (always TLS, certificate not checked unless `caSecretRef` is set),
    /// `verify-ca` (chain checked), `verify-full` (chain and `host` checked).
    #[serde(default)]
    pub ssl_mode: PostgresSslMode,
    /// PEM CA bundle the server's certificate chain is checked against (every mode but
    /// `disable`); without it `verify-ca` / `verify-full` trust the web PKI roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Secret with keys `username` and `password`.
    pub credentials_secret_ref: CredentialsSecretRef,
}

fn default_pg_port() -> u16 {
    5432
}

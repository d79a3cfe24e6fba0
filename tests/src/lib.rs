//! Endpoints of the local stack (`hack/stack`) for integration tests.
//!
//! Tests call [`stack`] to get the endpoints. When the stack's environment is missing the
//! test is skipped with a loud message on a developer machine, and fails under `CI=true`:
//! in CI a missing server is a failure, never a silent skip.

use std::env;

/// PostgreSQL connection settings (libpq variables).
#[derive(Clone, Debug)]
pub struct Postgres {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
}

/// S3 (MinIO) settings.
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// The bucket the stack creates.
    pub bucket: String,
}

/// Every endpoint of the local stack.
#[derive(Clone, Debug)]
pub struct Stack {
    pub kubeconfig: String,
    pub postgres: Postgres,
    pub s3: S3,
    pub mongodb_uri: String,
    /// `ftp://user:password@host:port`
    pub ftp_url: String,
    /// `sftp://user:password@host:port`
    pub sftp_url: String,
    /// Path of the private key authorised for the SFTP user.
    pub sftp_key: String,
    /// `http://host:port`
    pub http_url: String,
    /// State directory of the stack (logs, certificates, host keys).
    pub dir: String,
}

fn var(name: &str, missing: &mut Vec<String>) -> String {
    env::var(name).unwrap_or_else(|_| {
        missing.push(name.to_string());
        String::new()
    })
}

/// Whether this process runs in CI (`CI=true`), where missing servers fail tests.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The stack's endpoints, from the environment printed by `hack/stack env`.
///
/// Returns `None` (and prints why) when the environment is missing outside CI, so the
/// calling test can return early; panics under `CI=true`.
pub fn stack() -> Option<Stack> {
    let mut missing = Vec::new();
    let stack = Stack {
        kubeconfig: var("KUBECONFIG", &mut missing),
        postgres: Postgres {
            host: var("PGHOST", &mut missing),
            port: var("PGPORT", &mut missing).parse().unwrap_or(5432),
            user: var("PGUSER", &mut missing),
            password: var("PGPASSWORD", &mut missing),
            database: var("PGDATABASE", &mut missing),
        },
        s3: S3 {
            endpoint: var("AWS_ENDPOINT_URL", &mut missing),
            access_key_id: var("AWS_ACCESS_KEY_ID", &mut missing),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY", &mut missing),
            region: var("AWS_REGION", &mut missing),
            bucket: env::var("TRIBUTARY_S3_BUCKET").unwrap_or_else(|_| "raw".to_string()),
        },
        mongodb_uri: var("MONGODB_URI", &mut missing),
        ftp_url: var("TRIBUTARY_FTP_URL", &mut missing),
        sftp_url: var("TRIBUTARY_SFTP_URL", &mut missing),
        sftp_key: var("TRIBUTARY_SFTP_KEY", &mut missing),
        http_url: var("TRIBUTARY_HTTP_URL", &mut missing),
        dir: var("TRIBUTARY_STACK_DIR", &mut missing),
    };
    if missing.is_empty() {
        return Some(stack);
    }
    let message = format!(
        "the local stack's environment is missing ({}); run `make stack-up` and `eval \"$(make -s stack-env)\"`, or `make test`",
        missing.join(", ")
    );
    if in_ci() {
        panic!("CI=true: {message}");
    }
    eprintln!("SKIPPED (not in CI): {message}");
    None
}

/// Splits `scheme://user:password@host:port` into its parts.
pub fn url_parts(url: &str) -> (String, String, String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (credentials, address) = rest.rsplit_once('@').unwrap_or(("", rest));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let address = address.trim_end_matches('/');
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "0"));
    (
        user.to_string(),
        password.to_string(),
        host.to_string(),
        port.parse().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials_are_split_into_their_parts() {
        assert_eq!(
            url_parts("ftp://tributary:tributary-ftp@127.0.0.1:2121"),
            (
                "tributary".into(),
                "tributary-ftp".into(),
                "127.0.0.1".into(),
                2121
            )
        );
    }
}

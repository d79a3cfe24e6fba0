//! PostgreSQL warehouse connection (tokio-postgres, TLS through rustls as libpq's `sslmode`
//! decides), with credentials and the CA bundle from the bindings.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;
use tributary_core::api::{PostgresSource, PostgresSslMode};
use tributary_core::contract::SecretField;

use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// Whether TLS is negotiated at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiate {
    /// Plain TCP; TLS is never asked for.
    Never,
    /// TLS when the server offers it, plain TCP when it answers that it does not.
    IfOffered,
    /// TLS or no connection.
    Required,
}

/// What is checked of the server's certificate once TLS is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Nothing: the link is encrypted but the server is not authenticated.
    Nothing,
    /// The chain up to a trusted root; any host name.
    Chain,
    /// The chain, and that the certificate names `spec.postgres.host`.
    ChainAndHostName,
}

/// The TLS behaviour of one DataSource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsPolicy {
    pub negotiate: Negotiate,
    pub verify: Verify,
}

/// libpq's rules: `prefer` and `require` verify nothing unless a root certificate is given
/// (then the chain, as `verify-ca`); `verify-ca` and `verify-full` trust the given CA or else
/// the web PKI roots.
pub fn tls_policy(mode: PostgresSslMode, ca_given: bool) -> TlsPolicy {
    use PostgresSslMode as M;
    let optional_check = if ca_given {
        Verify::Chain
    } else {
        Verify::Nothing
    };
    let (negotiate, verify) = match mode {
        M::Disable => (Negotiate::Never, Verify::Nothing),
        M::Prefer => (Negotiate::IfOffered, optional_check),
        M::Require => (Negotiate::Required, optional_check),
        M::VerifyCa => (Negotiate::Required, Verify::Chain),
        M::VerifyFull => (Negotiate::Required, Verify::ChainAndHostName),
    };
    TlsPolicy { negotiate, verify }
}

/// The spelling users write in `spec.postgres.sslMode`.
pub fn ssl_mode_name(mode: PostgresSslMode) -> &'static str {
    match mode {
        PostgresSslMode::Disable => "disable",
        PostgresSslMode::Prefer => "prefer",
        PostgresSslMode::Require => "require",
        PostgresSslMode::VerifyCa => "verify-ca",
        PostgresSslMode::VerifyFull => "verify-full",
    }
}

/// Connects to the DataSource's database. The connection task runs until the client drops.
pub async fn connect(name: &str, spec: &PostgresSource, secrets: &Secrets) -> Result<Client> {
    let endpoint = format!("postgres://{}:{}/{}", spec.host, spec.port, spec.database);
    let ca = secrets.get(name, &SecretField::CaBundle);
    let policy = tls_policy(spec.ssl_mode, ca.is_some());
    let user = secrets
        .get(name, &SecretField::Username)
        .ok_or_else(|| Error::permanent("postgres: no user name"))?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&spec.host)
        .port(spec.port)
        .dbname(&spec.database)
        .user(user)
        .application_name("tributary-runner")
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .ssl_mode(match policy.negotiate {
            Negotiate::Never => SslMode::Disable,
            Negotiate::IfOffered => SslMode::Prefer,
            Negotiate::Required => SslMode::Require,
        });
    if let Some(password) = secrets.get(name, &SecretField::Password) {
        config.password(password);
    }
    let what = format!(
        "connect {endpoint} as {user:?} (sslMode {})",
        ssl_mode_name(spec.ssl_mode)
    );
    let connected = match policy.negotiate {
        Negotiate::Never => config
            .connect(NoTls)
            .await
            .map(|(client, connection)| spawn_connection(client, connection)),
        Negotiate::IfOffered | Negotiate::Required => {
            let tls = rustls_config(policy.verify, ca)
                .map_err(|e| e.context(format!("{what}: spec.postgres.caSecretRef")))?;
            config
                .connect(MakeRustlsConnect::new(Arc::unwrap_or_clone(tls)))
                .await
                .map(|(client, connection)| spawn_connection(client, connection))
        }
    };
    connected.map_err(|e| connect_error(e, spec, ca.is_some()).context(what))
}

fn rustls_config(verify: Verify, ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    match verify {
        Verify::Nothing => super::tls::client_config(None, true),
        Verify::Chain => super::tls::client_config_without_host_check(ca_pem),
        Verify::ChainAndHostName => super::tls::client_config(ca_pem, false),
    }
}

fn spawn_connection<C>(client: Client, connection: C) -> Client
where
    C: Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection closed");
        }
    });
    client
}

/// Classifies a failed connect. TLS failures are permanent: a certificate the client does not
/// trust, or a server without TLS, stays so on the next attempt. Everything else keeps the
/// general PostgreSQL classification (refused or reset connections are retryable).
fn connect_error(e: tokio_postgres::Error, spec: &PostgresSource, ca_given: bool) -> Error {
    if let Some(tls) = rustls_error(&e) {
        return Error::permanent(format!(
            "TLS handshake failed: {} (rustls: {tls})",
            explain_tls_error(tls, spec, ca_given)
        ));
    }
    let causes = causes(&e);
    // tokio-postgres reports a server that answered "no" to the SSL request only through
    // the message of the cause (its error kinds are private).
    if causes.contains("server does not support TLS") {
        return Error::permanent(format!(
            "TLS: the server does not offer TLS, and spec.postgres.sslMode {} demands it \
             (turn ssl on in the server, or use sslMode prefer or disable)",
            ssl_mode_name(spec.ssl_mode)
        ));
    }
    if e.as_db_error().is_some() {
        return Error::from(e);
    }
    let mut error = Error::from(e);
    error.message.push_str(&causes);
    error
}

/// The messages of the source chain (": a: b"), which tokio-postgres's Display leaves out:
/// "error connecting to server" alone does not say "connection refused".
fn causes(e: &tokio_postgres::Error) -> String {
    let mut text = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The rustls error somewhere in the source chain (tokio-rustls wraps it in an io::Error,
/// whose `source()` skips the wrapped error itself, hence `get_ref`).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = cause.source();
    }
    None
}

/// What the user should look at, naming the DataSource fields involved.
pub fn explain_tls_error(e: &rustls::Error, spec: &PostgresSource, ca_given: bool) -> String {
    use rustls::CertificateError as C;
    let trusted = if ca_given {
        "the CA in spec.postgres.caSecretRef".to_string()
    } else {
        "a web PKI root (set spec.postgres.caSecretRef to the CA that signed it)".to_string()
    };
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            format!("the server's certificate is not signed by {trusted}")
        }
        rustls::Error::InvalidCertificate(C::NotValidForNameContext { presented, .. }) => {
            format!(
                "the server's certificate is not valid for spec.postgres.host {:?} (it names {}); \
                 connect with one of those names, or use sslMode verify-ca to skip the host-name check",
                spec.host,
                presented.join(", ")
            )
        }
        rustls::Error::InvalidCertificate(C::NotValidForName) => format!(
            "the server's certificate is not valid for spec.postgres.host {:?}; connect with a \
             name it holds, or use sslMode verify-ca to skip the host-name check",
            spec.host
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet (is the clock right?)".into()
        }
        rustls::Error::InvalidCertificate(_) => "the server's certificate was rejected".into(),
        rustls::Error::AlertReceived(alert) => {
            format!("the server refused the handshake (alert {alert:?})")
        }
        _ => "no TLS session could be agreed with the server".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str) -> PostgresSource {
        serde_json::from_value(serde_json::json!({"host": host, "database": "d",
            "sslMode": "verify-full", "credentialsSecretRef": {"name": "pg"}}))
        .unwrap()
    }

    #[test]
    fn disable_never_negotiates_tls_even_with_a_ca() {
        for ca in [false, true] {
            assert_eq!(
                tls_policy(PostgresSslMode::Disable, ca),
                TlsPolicy {
                    negotiate: Negotiate::Never,
                    verify: Verify::Nothing
                }
            );
        }
    }

    #[test]
    fn prefer_and_require_verify_nothing_without_a_ca_and_the_chain_with_one() {
        for (mode, negotiate) in [
            (PostgresSslMode::Prefer, Negotiate::IfOffered),
            (PostgresSslMode::Require, Negotiate::Required),
        ] {
            assert_eq!(
                tls_policy(mode, false),
                TlsPolicy {
                    negotiate,
                    verify: Verify::Nothing
                }
            );
            assert_eq!(
                tls_policy(mode, true),
                TlsPolicy {
                    negotiate,
                    verify: Verify::Chain
                }
            );
        }
    }

    #[test]
    fn verify_ca_checks_the_chain_and_verify_full_also_the_host_name_with_or_without_a_ca() {
        for ca in [false, true] {
            assert_eq!(
                tls_policy(PostgresSslMode::VerifyCa, ca),
                TlsPolicy {
                    negotiate: Negotiate::Required,
                    verify: Verify::Chain
                }
            );
            assert_eq!(
                tls_policy(PostgresSslMode::VerifyFull, ca),
                TlsPolicy {
                    negotiate: Negotiate::Required,
                    verify: Verify::ChainAndHostName
                }
            );
        }
    }

    #[test]
    fn ssl_mode_names_are_spelled_as_in_the_spec() {
        for mode in [
            PostgresSslMode::Disable,
            PostgresSslMode::Prefer,
            PostgresSslMode::Require,
            PostgresSslMode::VerifyCa,
            PostgresSslMode::VerifyFull,
        ] {
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::json!(ssl_mode_name(mode))
            );
        }
    }

    #[test]
    fn an_unknown_issuer_points_at_the_ca_field() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let given = explain_tls_error(&e, &spec("db"), true);
        assert!(given.contains("spec.postgres.caSecretRef"), "{given}");
        let absent = explain_tls_error(&e, &spec("db"), false);
        assert!(absent.contains("web PKI"), "{absent}");
    }

    #[test]
    fn a_host_name_mismatch_names_the_host_and_the_names_in_the_certificate() {
        let e =
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("db.example.com")
                    .unwrap()
                    .to_owned(),
                presented: vec!["DnsName(\"localhost\")".into()],
            });
        let text = explain_tls_error(&e, &spec("db.example.com"), true);
        assert!(
            text.contains("spec.postgres.host \"db.example.com\""),
            "{text}"
        );
        assert!(text.contains("localhost"), "{text}");
        assert!(text.contains("verify-ca"), "{text}");
    }

    #[test]
    fn a_bad_ca_bundle_is_a_permanent_error_before_any_connection() {
        let e = rustls_config(Verify::Chain, Some("not a certificate")).unwrap_err();
        assert_eq!(e.class, crate::error::Class::Permanent);
        assert!(e.message.contains("CA bundle"), "{}", e.message);
    }
}

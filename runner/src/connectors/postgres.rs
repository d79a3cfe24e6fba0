//! PostgreSQL warehouse connection (tokio-postgres), with credentials from the bindings.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tributary_core::api::{PostgresSource, PostgresSslMode};
use tributary_core::contract::SecretField;

use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// Connects to the DataSource's database. The connection task runs until the client drops.
pub async fn connect(name: &str, spec: &PostgresSource, secrets: &Secrets) -> Result<Client> {
    let endpoint = format!("postgres://{}:{}/{}", spec.host, spec.port, spec.database);
    if matches!(
        spec.ssl_mode,
        PostgresSslMode::Require | PostgresSslMode::VerifyCa | PostgresSslMode::VerifyFull
    ) {
        return Err(Error::permanent(format!(
            "{endpoint}: sslMode {:?} is not supported by this runner version yet; use disable or prefer",
            spec.ssl_mode
        )));
    }
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
        .keepalives(true);
    if let Some(password) = secrets.get(name, &SecretField::Password) {
        config.password(password);
    }
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::from(e).context(format!("connect {endpoint} as {user:?}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

//! MongoDB document source (the official driver; FerretDB speaks the same wire protocol).

use std::time::Duration;

use mongodb::options::{ClientOptions, Credential, Tls, TlsOptions};
use mongodb::{Client, Database};
use tributary_core::api::MongoSource;
use tributary_core::contract::SecretField;

use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// A connected database.
pub struct Mongo {
    pub client: Client,
    pub database: Database,
    /// Hosts without credentials, for messages.
    pub endpoint: String,
}

impl Mongo {
    pub async fn connect(name: &str, spec: &MongoSource, secrets: &Secrets) -> Result<Mongo> {
        let endpoint = crate::redact::redact_text(&spec.uri);
        let mut options = ClientOptions::parse(&spec.uri)
            .await
            .map_err(|e| Error::from(e).context(format!("parse {endpoint}")))?;
        options.app_name = Some("tributary-runner".into());
        // Fail fast on an unreachable server: the operator retries the task with backoff.
        options.server_selection_timeout = Some(Duration::from_secs(10));
        options.connect_timeout = Some(Duration::from_secs(10));
        if let (Some(user), Some(password)) = (
            secrets.get(name, &SecretField::Username),
            secrets.get(name, &SecretField::Password),
        ) {
            options.credential = Some(
                Credential::builder()
                    .username(user.to_string())
                    .password(password.to_string())
                    .source(spec.auth_source.clone().or_else(|| Some("admin".into())))
                    .build(),
            );
        }
        if let Some(tls) = &spec.tls {
            options.tls = Some(Tls::Enabled(
                TlsOptions::builder()
                    .allow_invalid_certificates(tls.insecure_skip_verify)
                    .build(),
            ));
        }
        let client = Client::with_options(options)
            .map_err(|e| Error::from(e).context(format!("connect {endpoint}")))?;
        let database = client.database(&spec.database);
        Ok(Mongo {
            client,
            database,
            endpoint,
        })
    }

    /// Round trip to the server (authenticates): `ping`.
    pub async fn ping(&self) -> Result<()> {
        self.database
            .run_command(bson::doc! {"ping": 1})
            .await
            .map_err(|e| Error::from(e).context(format!("ping {}", self.endpoint)))?;
        Ok(())
    }

    /// Collection names of the database.
    pub async fn collections(&self) -> Result<Vec<String>> {
        self.database
            .list_collection_names()
            .await
            .map_err(|e| Error::from(e).context(format!("list collections on {}", self.endpoint)))
    }

    /// Fails permanently when `collection` does not exist (a find on it would silently return
    /// nothing, hiding a typo or a dropped collection).
    pub async fn require_collection(&self, collection: &str) -> Result<()> {
        let names = self.collections().await?;
        if names.iter().any(|n| n == collection) {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "collection {}.{collection} does not exist on {}",
                self.database.name(),
                self.endpoint
            )))
        }
    }
}

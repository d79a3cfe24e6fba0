//! The contract between operator and runner: the task input handed to a runner pod, and
//! which environment variable carries which Secret value.
//!
//! Both sides compute the secret bindings with the same pure function from the same input,
//! so the operator can wire `secretKeyRef`s without reading a Secret and the runner can find
//! each value without a naming convention to drift.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{CredentialsSecretRef, DataSourceSpec, SecretKeyRef, Task, TlsOptions};

/// Environment variable holding the runner input as JSON.
pub const INPUT_ENV: &str = "TRIBUTARY_INPUT";
/// Where the runner writes its result (the container's `terminationMessagePath`).
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// What a runner pod is asked to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
// One value per runner process or rendered Job: its size does not add up anywhere.
#[allow(clippy::large_enum_variant)]
pub enum RunnerInput {
    /// Run one task of one run.
    Task(TaskInput),
    /// Connect to a DataSource, authenticate and list or ping.
    CheckConnection(CheckConnectionInput),
}

/// One attempt of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    pub pipeline: String,
    pub namespace: String,
    pub run_id: String,
    pub attempt: u32,
    /// Scheduled time of the run (or its start), for `{{ run.date }}` and friends.
    pub logical_time: DateTime<Utc>,
    /// IANA time zone of the Pipeline (UTC when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub task: Task,
    /// The DataSources the task names, by name, as specified (no secret values).
    pub data_sources: BTreeMap<String, DataSourceSpec>,
    /// High-water mark from the previous successful run, for incremental exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

/// A connection check of one DataSource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckConnectionInput {
    pub name: String,
    pub namespace: String,
    pub spec: DataSourceSpec,
}

impl RunnerInput {
    /// The DataSources this input needs credentials for, by name.
    pub fn data_sources(&self) -> BTreeMap<&str, &DataSourceSpec> {
        match self {
            RunnerInput::Task(task) => task
                .data_sources
                .iter()
                .map(|(n, s)| (n.as_str(), s))
                .collect(),
            RunnerInput::CheckConnection(check) => {
                BTreeMap::from([(check.name.as_str(), &check.spec)])
            }
        }
    }
}

/// Which secret value a binding carries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretField {
    Username,
    Password,
    PrivateKey,
    AccessKeyId,
    SecretAccessKey,
    /// The value of the HTTP header with this name.
    Header(String),
    /// A PEM bundle of certificate authorities.
    CaBundle,
}

impl SecretField {
    fn env_suffix(&self) -> String {
        match self {
            SecretField::Username => "USERNAME".into(),
            SecretField::Password => "PASSWORD".into(),
            SecretField::PrivateKey => "PRIVATE_KEY".into(),
            SecretField::AccessKeyId => "ACCESS_KEY_ID".into(),
            SecretField::SecretAccessKey => "SECRET_ACCESS_KEY".into(),
            SecretField::Header(name) => format!("HEADER_{}", sanitize(name)),
            SecretField::CaBundle => "CA_BUNDLE".into(),
        }
    }
}

/// One Secret key delivered to the runner as one environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretBinding {
    pub data_source: String,
    pub field: SecretField,
    pub env: String,
    pub secret: SecretKeyRef,
    /// An optional key (e.g. an SFTP password when a private key is also given) may be absent.
    pub optional: bool,
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The Secret keys one DataSource needs: `(field, key, optional)`.
fn needed_secrets(spec: &DataSourceSpec) -> Vec<(SecretField, SecretKeyRef, bool)> {
    let key = |secret: &str, key: &str| SecretKeyRef {
        name: secret.to_string(),
        key: key.to_string(),
    };
    let login = |creds: &CredentialsSecretRef| {
        [
            (
                SecretField::Username,
                key(&creds.name, creds.username_key_or("username")),
                false,
            ),
            (
                SecretField::Password,
                key(&creds.name, creds.password_key_or("password")),
                false,
            ),
        ]
    };
    let ca = |tls: Option<&TlsOptions>| {
        tls.and_then(|t| t.ca_secret_ref.clone())
            .map(|ca| (SecretField::CaBundle, ca, false))
    };
    let mut needed = Vec::new();
    if let Some(ftp) = &spec.ftp {
        needed.extend(ftp.credentials_secret_ref.iter().flat_map(login));
        needed.extend(ca(ftp.tls_options.as_ref()));
    }
    if let Some(sftp) = &spec.sftp {
        let creds = &sftp.credentials_secret_ref;
        let or = |field: &Option<String>, default: &str| {
            key(&creds.name, field.as_deref().unwrap_or(default))
        };
        // Password and private key are each optional: either one authenticates.
        needed.push((
            SecretField::Username,
            or(&creds.username_key, "username"),
            false,
        ));
        needed.push((
            SecretField::Password,
            or(&creds.password_key, "password"),
            true,
        ));
        needed.push((
            SecretField::PrivateKey,
            or(&creds.private_key_key, "privateKey"),
            true,
        ));
    }
    if let Some(http) = &spec.http {
        needed.extend(http.credentials_secret_ref.iter().flat_map(login));
        for header in &http.headers {
            if let Some(secret) = &header.secret_key_ref {
                needed.push((
                    SecretField::Header(header.name.clone()),
                    secret.clone(),
                    false,
                ));
            }
        }
        needed.extend(ca(http.tls.as_ref()));
    }
    if let Some(mongo) = &spec.mongodb {
        needed.extend(mongo.credentials_secret_ref.iter().flat_map(login));
        needed.extend(ca(mongo.tls.as_ref()));
    }
    if let Some(s3) = &spec.s3 {
        if let Some(creds) = &s3.credentials_secret_ref {
            needed.push((
                SecretField::AccessKeyId,
                key(&creds.name, creds.username_key_or("accessKeyId")),
                false,
            ));
            needed.push((
                SecretField::SecretAccessKey,
                key(&creds.name, creds.password_key_or("secretAccessKey")),
                false,
            ));
        }
        needed.extend(ca(s3.tls.as_ref()));
    }
    if let Some(pg) = &spec.postgres {
        needed.extend(login(&pg.credentials_secret_ref));
        needed.extend(
            pg.ca_secret_ref
                .clone()
                .map(|ca| (SecretField::CaBundle, ca, false)),
        );
    }
    needed
}

/// Every Secret key the given DataSources need, with the environment variable carrying it.
/// Deterministic: sorted by DataSource name, then field; clashing names get a numeric suffix.
pub fn secret_bindings(data_sources: &BTreeMap<&str, &DataSourceSpec>) -> Vec<SecretBinding> {
    let mut taken = std::collections::BTreeSet::new();
    let mut bindings = Vec::new();
    for (&name, spec) in data_sources {
        for (field, secret, optional) in needed_secrets(spec) {
            let base = format!("TRIBUTARY_DS_{}_{}", sanitize(name), field.env_suffix());
            let mut env = base.clone();
            let mut n = 2;
            while !taken.insert(env.clone()) {
                env = format!("{base}_{n}");
                n += 1;
            }
            bindings.push(SecretBinding {
                data_source: name.to_string(),
                field,
                env,
                secret,
                optional,
            });
        }
    }
    bindings
}

/// The environment variable carrying `field` of `data_source`, if the input needs one.
pub fn secret_env<'a>(
    bindings: &'a [SecretBinding],
    data_source: &str,
    field: &SecretField,
) -> Option<&'a str> {
    bindings
        .iter()
        .find(|b| b.data_source == data_source && &b.field == field)
        .map(|b| b.env.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> DataSourceSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_secret_key_gets_its_own_variable_and_clashing_names_are_suffixed() {
        let a = spec(
            serde_json::json!({"postgres": {"host": "h", "database": "d", "credentialsSecretRef": {"name": "pg"}}}),
        );
        let b = spec(
            serde_json::json!({"s3": {"bucket": "raw", "credentialsSecretRef": {"name": "minio"}}}),
        );
        let sources = BTreeMap::from([("ware-house", &a), ("ware.house", &a), ("lake", &b)]);
        let bindings = secret_bindings(&sources);
        let envs: Vec<&str> = bindings.iter().map(|b| b.env.as_str()).collect();
        assert_eq!(
            envs,
            vec![
                "TRIBUTARY_DS_LAKE_ACCESS_KEY_ID",
                "TRIBUTARY_DS_LAKE_SECRET_ACCESS_KEY",
                "TRIBUTARY_DS_WARE_HOUSE_USERNAME",
                "TRIBUTARY_DS_WARE_HOUSE_PASSWORD",
                "TRIBUTARY_DS_WARE_HOUSE_USERNAME_2",
                "TRIBUTARY_DS_WARE_HOUSE_PASSWORD_2",
            ]
        );
        assert_eq!(
            bindings[0].secret,
            SecretKeyRef {
                name: "minio".into(),
                key: "accessKeyId".into()
            }
        );
        assert_eq!(
            secret_env(&bindings, "ware.house", &SecretField::Password),
            Some("TRIBUTARY_DS_WARE_HOUSE_PASSWORD_2")
        );
    }

    #[test]
    fn the_runner_input_round_trips_through_json() {
        let input = RunnerInput::CheckConnection(CheckConnectionInput {
            name: "lake".into(),
            namespace: "retail".into(),
            spec: spec(serde_json::json!({"s3": {"bucket": "raw", "pathStyle": true}})),
        });
        let json = serde_json::to_string(&input).unwrap();
        assert!(json.contains("\"action\":\"checkConnection\""));
        assert_eq!(serde_json::from_str::<RunnerInput>(&json).unwrap(), input);
    }
}

//! Lineage: OpenLineage dataset naming per connector, and the runner's result contract
//! (what a task read and wrote), compacted for status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{DataSourceSpec, DatasetId, TaskLineage};

/// The OpenLineage namespace of a DataSource, never with credentials:
/// `s3://{bucket}`, `postgres://{host}:{port}`, `mongodb://{host}:{port}`,
/// `ftp://{host}:{port}`, `sftp://{host}:{port}`, `http(s)://{host}`.
pub fn namespace(spec: &DataSourceSpec) -> Option<String> {
    if let Some(s3) = &spec.s3 {
        return Some(format!("s3://{}", s3.bucket));
    }
    if let Some(pg) = &spec.postgres {
        return Some(format!("postgres://{}:{}", pg.host, pg.port));
    }
    if let Some(mongo) = &spec.mongodb {
        return Some(format!("mongodb://{}", mongo_hosts(&mongo.uri)));
    }
    if let Some(ftp) = &spec.ftp {
        return Some(format!("ftp://{}:{}", ftp.host, ftp.port));
    }
    if let Some(sftp) = &spec.sftp {
        return Some(format!("sftp://{}:{}", sftp.host, sftp.port));
    }
    if let Some(http) = &spec.http {
        let (scheme, rest) = http
            .base_url
            .split_once("://")
            .unwrap_or(("http", &http.base_url));
        let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        return Some(format!("{scheme}://{host}"));
    }
    None
}

/// Host list of a MongoDB URI, credentials and options stripped; default port 27017 added.
fn mongo_hosts(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hosts
        .split(',')
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:27017")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The OpenLineage dataset name of `name` inside a DataSource:
/// a key for S3, `{db}.{schema}.{table}` for PostgreSQL, `{db}.{collection}` for MongoDB,
/// an absolute path for file servers.
pub fn dataset(spec: &DataSourceSpec, name: &str) -> Option<DatasetId> {
    let namespace = namespace(spec)?;
    let name = if let Some(pg) = &spec.postgres {
        match name.split_once('.') {
            Some((schema, table)) => format!("{}.{schema}.{table}", pg.database),
            None => format!("{}.public.{name}", pg.database),
        }
    } else if let Some(mongo) = &spec.mongodb {
        format!("{}.{name}", mongo.database)
    } else if spec.s3.is_some() {
        name.trim_start_matches('/').to_string()
    } else if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    Some(DatasetId { namespace, name })
}

/// How a task attempt ended, as the runner reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Succeeded,
    /// Failed; another attempt may succeed (network, timeout, server busy).
    RetryableFailure,
    /// Failed; another attempt cannot succeed without a change (bad input, auth, missing table).
    PermanentFailure,
}

/// Process exit code of the runner for an outcome; the operator reads the termination message
/// first and falls back to the exit code when the message is missing.
pub fn exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Succeeded => 0,
        Outcome::RetryableFailure => 75, // EX_TEMPFAIL
        Outcome::PermanentFailure => 65, // EX_DATAERR
    }
}

/// Outcome of a runner exit code that came without a readable result.
pub fn outcome_of_exit_code(code: i32) -> Outcome {
    match code {
        0 => Outcome::Succeeded,
        65 => Outcome::PermanentFailure,
        _ => Outcome::RetryableFailure,
    }
}

/// One dataset read or written, with what is known of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetReport {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Result of one data-quality assertion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// e.g. `notNull(customer_id)`.
    pub name: String,
    pub passed: bool,
    /// `error` or `warn`.
    pub severity: String,
    /// What was observed, e.g. `0 nulls` or `3 duplicate keys, e.g. (536365, 85123A)`.
    pub observed: String,
}

/// The runner's compact result, written to the termination message (at most 4 KiB; detail
/// beyond it goes to the manifest object in the lake).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub outcome: Outcome,
    /// One line for humans: what happened or what went wrong.
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<DatasetReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<DatasetReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckReport>,
    /// Column name → PostgreSQL type of a loaded table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schema: BTreeMap<String, String>,
    /// High-water mark of an incremental export (Extended JSON), to start the next run from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// Key of the manifest object holding every dataset and check when they do not fit here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// Kubernetes caps a termination message at 4096 bytes.
pub const MAX_TERMINATION_MESSAGE: usize = 4096;

/// Most datasets listed per direction in status; the manifest holds all of them.
pub const MAX_STATUS_DATASETS: usize = 10;

impl TaskResult {
    /// A result with only an outcome and a message: no datasets, counts, checks or schema.
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        TaskResult {
            outcome,
            message: message.into(),
            inputs: vec![],
            outputs: vec![],
            rows: None,
            bytes: None,
            files: None,
            checks: vec![],
            schema: BTreeMap::new(),
            watermark: None,
            manifest: None,
        }
    }

    /// Serialises to at most 4 KiB: datasets, checks and schema are dropped (the manifest keeps
    /// them) and the message shortened, in that order, until it fits.
    pub fn to_termination_message(&self) -> String {
        let mut result = self.clone();
        loop {
            let json = serde_json::to_string(&result).expect("a TaskResult always serialises");
            if json.len() <= MAX_TERMINATION_MESSAGE {
                return json;
            }
            if result.inputs.len() > 1 || result.outputs.len() > 1 {
                result.inputs.truncate(result.inputs.len() / 2);
                result.outputs.truncate(result.outputs.len() / 2);
            } else if !result.checks.is_empty() {
                // Failed checks matter most: passed ones go first, then halves of the rest.
                if result.checks.iter().any(|c| c.passed) {
                    result.checks.retain(|c| !c.passed);
                } else {
                    result.checks.truncate(result.checks.len() / 2);
                }
            } else if !result.schema.is_empty() {
                result.schema.clear();
            } else if !result.inputs.is_empty() || !result.outputs.is_empty() {
                result.inputs.clear();
                result.outputs.clear();
            } else {
                let keep = result
                    .message
                    .len()
                    .saturating_sub(json.len() - MAX_TERMINATION_MESSAGE + 3);
                let mut cut = keep.min(result.message.len());
                while !result.message.is_char_boundary(cut) {
                    cut -= 1;
                }
                result.message.truncate(cut);
                result.message.push_str("...");
            }
        }
    }

    /// The compact lineage kept in the Pipeline's status.
    pub fn to_lineage(&self) -> TaskLineage {
        let ids = |reports: &[DatasetReport]| {
            reports
                .iter()
                .take(MAX_STATUS_DATASETS)
                .map(|r| DatasetId {
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                })
                .collect()
        };
        let checks = (!self.checks.is_empty()).then(|| {
            let passed = self.checks.iter().filter(|c| c.passed).count();
            format!("{passed}/{} passed", self.checks.len())
        });
        TaskLineage {
            inputs: ids(&self.inputs),
            outputs: ids(&self.outputs),
            rows: self.rows,
            bytes: self.bytes,
            files: self.files,
            checks,
            manifest: self.manifest.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(yaml: &str) -> DataSourceSpec {
        serde_json::from_value(serde_json::from_str::<serde_json::Value>(yaml).unwrap()).unwrap()
    }

    #[test]
    fn datasets_are_named_as_openlineage_says() {
        let pg = source(
            r#"{"postgres": {"host": "db", "database": "warehouse", "credentialsSecretRef": {"name": "pg"}}}"#,
        );
        assert_eq!(
            dataset(&pg, "fact_transactions").unwrap(),
            DatasetId {
                namespace: "postgres://db:5432".into(),
                name: "warehouse.public.fact_transactions".into()
            }
        );
        let s3 = source(r#"{"s3": {"bucket": "raw"}}"#);
        assert_eq!(
            dataset(&s3, "/knowledge/a.pdf").unwrap().name,
            "knowledge/a.pdf"
        );
        let mongo = source(
            r#"{"mongodb": {"uri": "mongodb://m1,m2:27018/?tls=true", "database": "retail"}}"#,
        );
        assert_eq!(namespace(&mongo).unwrap(), "mongodb://m1:27017,m2:27018");
        let http = source(r#"{"http": {"baseUrl": "https://files.example.com/docs/"}}"#);
        assert_eq!(
            dataset(&http, "hr/a.pdf").unwrap(),
            DatasetId {
                namespace: "https://files.example.com".into(),
                name: "/hr/a.pdf".into()
            }
        );
    }

    #[test]
    fn a_large_result_is_cut_to_fit_a_termination_message() {
        let report = DatasetReport {
            namespace: "s3://raw".into(),
            name: "x".repeat(200),
            rows: Some(1),
            bytes: Some(2),
            sha256: Some("0".repeat(64)),
        };
        let result = TaskResult {
            outcome: Outcome::Succeeded,
            message: "m".repeat(10_000),
            inputs: vec![report.clone(); 100],
            outputs: vec![report; 100],
            rows: Some(5),
            bytes: None,
            files: Some(200),
            checks: vec![],
            schema: BTreeMap::new(),
            watermark: Some("{\"$oid\":\"65\"}".into()),
            manifest: Some("_tributary/manifests/r1/copy.json".into()),
        };
        let message = result.to_termination_message();
        assert!(message.len() <= MAX_TERMINATION_MESSAGE);
        let back: TaskResult = serde_json::from_str(&message).unwrap();
        assert_eq!(back.watermark, result.watermark);
        assert_eq!(back.manifest, result.manifest);
        assert_eq!(back.files, Some(200));
    }

    #[test]
    fn status_lineage_lists_at_most_ten_datasets_per_direction() {
        let report = DatasetReport {
            namespace: "s3://raw".into(),
            name: "k".into(),
            ..Default::default()
        };
        let result = TaskResult {
            outcome: Outcome::Succeeded,
            message: String::new(),
            inputs: vec![],
            outputs: vec![report; 30],
            rows: None,
            bytes: None,
            files: Some(30),
            checks: vec![
                CheckReport {
                    name: "a".into(),
                    passed: true,
                    severity: "error".into(),
                    observed: String::new(),
                },
                CheckReport {
                    name: "b".into(),
                    passed: false,
                    severity: "warn".into(),
                    observed: String::new(),
                },
            ],
            schema: BTreeMap::new(),
            watermark: None,
            manifest: None,
        };
        let lineage = result.to_lineage();
        assert_eq!(lineage.outputs.len(), 10);
        assert_eq!(lineage.checks.as_deref(), Some("1/2 passed"));
    }
}

//! `checkConnection`: connect to a DataSource, authenticate, list or ping, and say what was seen.

use tributary_core::contract::CheckConnectionInput;
use tributary_core::lineage::{DatasetReport, Outcome, TaskResult, namespace};

use crate::connectors::files::FileSource;
use crate::error::{Error, Result};
use crate::secrets::Secrets;

pub async fn run(input: &CheckConnectionInput, secrets: &Secrets) -> Result<TaskResult> {
    let name = input.name.as_str();
    let spec = &input.spec;
    let ns = namespace(spec).unwrap_or_default();
    let message = if let Some(s3) = &spec.s3 {
        let lake = crate::connectors::s3::Lake::connect(name, s3, secrets)?;
        match lake.ping().await? {
            Some(key) => format!("bucket {} is readable; first key {key:?}", s3.bucket),
            None => format!("bucket {} is readable and empty", s3.bucket),
        }
    } else if let Some(pg) = &spec.postgres {
        let client = crate::connectors::postgres::connect(name, pg, secrets).await?;
        // pg_stat_ssl tells whether this very session is encrypted (sslMode prefer may
        // have fallen back to plain TCP), which is what an operator wants to see.
        let row = client
            .query_one(
                "SELECT version(), current_user::text, \
                 (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl)",
                &[],
            )
            .await?;
        let version: String = row.get(0);
        let user: String = row.get(1);
        let tls: Option<String> = row.get(2);
        format!(
            "connected to database {} as {user} {}: {}",
            pg.database,
            tls.map_or("over plain TCP".to_string(), |v| format!("over TLS ({v})")),
            version.split(" on ").next().unwrap_or(&version)
        )
    } else if let Some(mongo) = &spec.mongodb {
        let m = crate::connectors::mongo::Mongo::connect(name, mongo, secrets).await?;
        m.ping().await?;
        let collections = m.collections().await?;
        format!(
            "database {} answers ping; {} collection(s){}",
            mongo.database,
            collections.len(),
            preview(&collections)
        )
    } else if let Some(ftp) = &spec.ftp {
        let mut session = crate::connectors::ftp::Ftp::connect(name, ftp, secrets).await?;
        let pwd = session.pwd().await?;
        let files = session.list(&pwd, false).await?;
        session.close().await;
        format!(
            "logged in ({:?} TLS); {} file(s) in {pwd}",
            ftp.tls,
            files.len()
        )
    } else if let Some(sftp) = &spec.sftp {
        let mut session = crate::connectors::sftp::Sftp::connect(name, sftp, secrets).await?;
        let home = session.home().await?;
        let files = session.list(&home, false).await?;
        session.close().await;
        format!("authenticated; {} file(s) in {home}", files.len())
    } else if let Some(http) = &spec.http {
        let client = crate::connectors::http::Http::new(name, http, secrets)?;
        let status = client.ping().await?;
        format!(
            "GET {} answered {status}",
            crate::redact::redact_text(&http.base_url)
        )
    } else {
        return Err(Error::permanent(format!(
            "DataSource {name:?} sets no connector"
        )));
    };
    Ok(TaskResult {
        inputs: vec![DatasetReport {
            namespace: ns,
            name: String::new(),
            ..Default::default()
        }],
        ..TaskResult::new(Outcome::Succeeded, message)
    })
}

fn preview(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    format!(
        ": {}{}",
        shown.join(", "),
        if names.len() > 5 { ", …" } else { "" }
    )
}

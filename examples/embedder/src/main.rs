//! `tributary-embedder`: an example of a user's own image in a Pipeline's `container` task.
//! It lists the PDFs under a lake prefix, extracts their text, embeds each document and
//! writes one JSON line per document to the lake. It reaches S3 through the runner library's
//! connector with the standard AWS environment variables (set from `secretKeyRef`s in the
//! task's `container.env`) and reports a runner-style result as its termination message, so
//! the operator records real rows, bytes and datasets as the task's lineage.

use std::time::Instant;

use clap::Parser;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tributary_core::api::DataSourceSpec;
use tributary_core::contract::TERMINATION_MESSAGE_PATH;
use tributary_core::lineage::{DatasetReport, Outcome, TaskResult, exit_code};
use tributary_example_embedder::{DEFAULT_DIMS, parse_s3_url, record};
use tributary_runner::connectors::s3::Lake;
use tributary_runner::{Error, Secrets, failure};

#[derive(Debug, Parser)]
#[command(
    name = "tributary-embedder",
    version,
    about = "Embeds the PDFs under an S3 prefix into a JSON Lines object (example container task)."
)]
struct Args {
    /// Prefix of the documents, e.g. s3://raw/knowledge/ (objects ending in .pdf are read).
    #[arg(long)]
    input: String,
    /// Object to write, e.g. s3://raw/embeddings/2026-11-25/embeddings.jsonl.
    #[arg(long)]
    output: String,
    /// S3 endpoint of an S3-compatible store (path-style addressing); AWS S3 when absent.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Dimensions of each vector.
    #[arg(long, default_value_t = DEFAULT_DIMS)]
    dims: usize,
    /// Largest document read, in bytes (a PDF is parsed in memory).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_bytes: u64,
    /// Where the result goes (the kubelet reads it as the termination message).
    #[arg(long, env = "TRIBUTARY_TERMINATION_LOG", default_value = TERMINATION_MESSAGE_PATH)]
    termination_log: String,
}

fn main() {
    tributary_runner::init_json_logs();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let result = runtime.block_on(run(&args)).unwrap_or_else(|e| failure(&e));
    let message = result.to_termination_message();
    if let Err(e) = std::fs::write(&args.termination_log, &message) {
        eprintln!("could not write {}: {e}", args.termination_log);
    }
    println!("{message}");
    std::process::exit(exit_code(result.outcome));
}

async fn run(args: &Args) -> Result<TaskResult, Error> {
    let started = Instant::now();
    if args.dims == 0 {
        return Err(Error::permanent("--dims must be at least 1"));
    }
    let (bucket, prefix) = parse_s3_url(&args.input).map_err(Error::permanent)?;
    let (out_bucket, out_key) = parse_s3_url(&args.output).map_err(Error::permanent)?;
    if out_bucket != bucket || out_key.is_empty() || out_key.ends_with('/') {
        return Err(Error::permanent(format!(
            "--output must name an object in the input's bucket {bucket}, got {}",
            args.output
        )));
    }
    // No credentialsSecretRef: the connector then takes the ambient AWS chain, i.e.
    // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment.
    let spec: DataSourceSpec = serde_json::from_value(serde_json::json!({"s3": {
        "endpoint": args.endpoint, "region": args.region, "bucket": bucket,
        "pathStyle": args.endpoint.is_some()}}))
    .map_err(|e| Error::permanent(format!("S3 settings: {e}")))?;
    let namespace = tributary_core::lineage::namespace(&spec).unwrap_or_default();
    let lake = Lake::connect(
        "lake",
        spec.s3.as_ref().expect("built above"),
        &Secrets::default(),
    )?;

    let objects: Vec<_> = lake
        .list_prefix(&prefix)
        .await?
        .into_iter()
        .filter(|o| o.key.to_ascii_lowercase().ends_with(".pdf"))
        .collect();
    if objects.is_empty() {
        // An empty knowledge base means the copies upstream broke: say so instead of
        // publishing an empty file.
        return Err(Error::permanent(format!(
            "no .pdf object under {}",
            args.input
        )));
    }

    let mut lines = Vec::new();
    let mut inputs = Vec::new();
    let mut read_bytes = 0;
    for object in &objects {
        if object.size > args.max_bytes {
            return Err(Error::permanent(format!(
                "s3://{bucket}/{} is {} bytes, over --max-bytes {}",
                object.key, object.size, args.max_bytes
            )));
        }
        let mut pdf = Vec::with_capacity(object.size as usize);
        lake.get(&object.key)
            .await?
            .read_to_end(&mut pdf)
            .await
            .map_err(|e| Error::retryable(format!("read s3://{bucket}/{}: {e}", object.key)))?;
        let rec = record(&object.key, &bucket, &pdf, args.dims)
            .map_err(|e| Error::permanent(format!("s3://{bucket}/{}: {e}", object.key)))?;
        tracing::info!(key = %rec.key, pages = rec.pages, words = rec.words, title = %rec.title, "embedded");
        read_bytes += rec.bytes;
        inputs.push(DatasetReport {
            namespace: namespace.clone(),
            name: rec.key.clone(),
            rows: None,
            bytes: Some(rec.bytes),
            sha256: Some(rec.sha256.clone()),
        });
        let mut line = serde_json::to_vec(&rec).expect("a record serialises");
        line.push(b'\n');
        lines.extend_from_slice(&line);
    }

    let sha256 = hex::encode(Sha256::digest(&lines));
    let written = lines.len() as u64;
    lake.put(&out_key, bytes::Bytes::from(lines), "application/x-ndjson")
        .await?;
    let docs = objects.len() as u64;
    Ok(TaskResult {
        outcome: Outcome::Succeeded,
        message: format!(
            "embedded {docs} document(s) ({read_bytes} bytes of PDF) into s3://{bucket}/{out_key} \
             with {} ({} dims) in {:.1} s",
            tributary_example_embedder::MODEL,
            args.dims,
            started.elapsed().as_secs_f64()
        ),
        inputs,
        outputs: vec![DatasetReport {
            namespace,
            name: out_key,
            rows: Some(docs),
            bytes: Some(written),
            sha256: Some(sha256),
        }],
        rows: Some(docs),
        bytes: Some(written),
        files: Some(1),
        checks: vec![],
        schema: Default::default(),
        watermark: None,
        manifest: None,
    })
}

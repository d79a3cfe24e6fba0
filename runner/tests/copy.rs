//! `copy` against the real FTP/FTPS, SFTP, HTTP and S3 servers of the local stack.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

const PDFS: usize = 3;

fn copy_task(name: &str, from: &str, path: &str, glob: &str, prefix: &str) -> serde_json::Value {
    json!({"name": name, "copy": {
        "from": {"dataSource": from, "path": path, "glob": glob},
        "to": {"dataSource": "lake", "prefix": prefix}}})
}

async fn assert_pdfs_landed(
    s: &Sources,
    prefix: &str,
    result: &tributary_core::lineage::TaskResult,
) {
    assert_succeeded(result);
    assert_eq!(result.files, Some(PDFS as u64), "{}", result.message);
    let lake = s.lake();
    for output in &result.outputs {
        let body = read_object(&lake, &output.name).await;
        assert!(output.name.starts_with(prefix), "{}", output.name);
        assert!(body.starts_with(b"%PDF-1.4"), "{} is a PDF", output.name);
        assert_eq!(
            output.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(&body)).as_str())
        );
        assert_eq!(output.namespace, "s3://raw");
    }
}

#[tokio::test]
async fn copy_from_ftp_lands_every_pdf_with_its_sha256() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let prefix = format!("{}/", unique("tests/copy/ftp"));
    let result = s
        .run_task(copy_task("docs", "hr-ftp", "/procedures", "*.pdf", &prefix))
        .await;
    assert_pdfs_landed(&s, &prefix, &result).await;
    assert!(result.inputs[0].namespace.starts_with("ftp://127.0.0.1:"));
}

#[tokio::test]
async fn copy_over_explicit_ftps_works_like_plain_ftp() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let prefix = format!("{}/", unique("tests/copy/ftps"));
    let result = s
        .run_task(copy_task(
            "docs",
            "hr-ftps",
            "/procedures",
            "*.pdf",
            &prefix,
        ))
        .await;
    assert_pdfs_landed(&s, &prefix, &result).await;
}

#[tokio::test]
async fn copy_from_sftp_by_password_and_by_private_key() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    for ds in ["hr-sftp", "hr-sftp-key"] {
        let prefix = format!("{}/", unique(&format!("tests/copy/{ds}")));
        let result = s
            .run_task(copy_task("docs", ds, "/procedures", "*.pdf", &prefix))
            .await;
        assert_pdfs_landed(&s, &prefix, &result).await;
    }
}

#[tokio::test]
async fn copy_from_http_uses_the_json_listing() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let prefix = format!("{}/", unique("tests/copy/http"));
    let result = s
        .run_task(copy_task(
            "docs",
            "hr-http",
            "/procedures/",
            "*.pdf",
            &prefix,
        ))
        .await;
    assert_pdfs_landed(&s, &prefix, &result).await;
}

#[tokio::test]
async fn a_recursive_copy_keeps_relative_paths_and_templated_prefixes_render() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let base = unique("tests/copy/rec");
    let task = json!({"name": "all-files", "copy": {
        "from": {"dataSource": "hr-sftp", "path": "/", "glob": "{procedures,customers}/*", "recursive": true},
        "to": {"dataSource": "lake", "prefix": format!("{base}/{{{{ task.name }}}}/")}}});
    let result = s.run_task(task).await;
    assert_succeeded(&result);
    let keys: Vec<&str> = result.outputs.iter().map(|o| o.name.as_str()).collect();
    assert!(
        keys.contains(&format!("{base}/all-files/customers/customers.csv").as_str()),
        "{keys:?}"
    );
    assert_eq!(keys.len(), PDFS + 1);
}

#[tokio::test]
async fn a_second_copy_skips_unchanged_files_by_size_and_mtime() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let prefix = format!("{}/", unique("tests/copy/skip"));
    let task = copy_task("docs", "hr-sftp", "/procedures", "*.pdf", &prefix);
    let first = s.run_task(task.clone()).await;
    assert_succeeded(&first);
    assert_eq!(first.files, Some(PDFS as u64));
    let second = s.run_task(task).await;
    assert_succeeded(&second);
    assert_eq!(second.files, Some(0), "{}", second.message);
    assert!(
        second
            .message
            .contains(&format!("{PDFS} unchanged skipped")),
        "{}",
        second.message
    );
}

#[tokio::test]
async fn skip_by_sha256_compares_the_recorded_digest() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let prefix = format!("{}/", unique("tests/copy/sha"));
    let mut task = copy_task("docs", "hr-http", "/procedures/", "*.pdf", &prefix);
    task["copy"]["skipUnchanged"] = json!("Sha256");
    assert_eq!(s.run_task(task.clone()).await.files, Some(PDFS as u64));
    let second = s.run_task(task).await;
    assert_succeeded(&second);
    assert_eq!(second.files, Some(0), "{}", second.message);
}

#[tokio::test]
async fn a_glob_that_matches_nothing_fails_by_default() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let task = copy_task("docs", "hr-ftp", "/procedures", "*.docx", "tests/none/");
    let result = s.run_task(task.clone()).await;
    assert_permanent(&result);
    assert!(
        result.message.contains("no file in ftp://"),
        "{}",
        result.message
    );
    let mut lenient = task;
    lenient["copy"]["onNoMatch"] = json!("Succeed");
    let result = s.run_task(lenient).await;
    assert_succeeded(&result);
    assert_eq!(result.files, Some(0));
}

#[tokio::test]
async fn a_large_s3_object_is_copied_by_multipart_upload_with_its_sha256() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let lake = s.lake();
    let dir = unique("tests/copy/big-src");
    // 13 MiB of non-repeating bytes: three 5 MiB parts, the last one short.
    let mut data = Vec::with_capacity(13 << 20);
    let mut x: u32 = 1;
    while data.len() < 13 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let sha = hex::encode(Sha256::digest(&data));
    lake.upload(&format!("{dir}/big.bin"), &data[..], Default::default())
        .await
        .unwrap();
    let prefix = format!("{}/", unique("tests/copy/big-dst"));
    let mut task = copy_task("big", "lake", &dir, "*.bin", &prefix);
    task["copy"]["partSizeMib"] = json!(5);
    task["copy"]["uploadConcurrency"] = json!(2);
    let result = s.run_task(task).await;
    assert_succeeded(&result);
    assert_eq!(result.outputs[0].sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(result.bytes, Some(13 << 20));
    let copied = read_object(&lake, &format!("{prefix}big.bin")).await;
    assert_eq!(hex::encode(Sha256::digest(&copied)), sha);
}

/// A TCP proxy in front of a real server that cuts every connection after `limit` bytes
/// from the server: a server dropping the connection mid-transfer.
fn cutting_proxy(target: (String, u16), limit: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().take(20) {
            let Ok(mut client) = client else { return };
            let target = target.clone();
            std::thread::spawn(move || {
                let Ok(mut server) = TcpStream::connect((target.0.as_str(), target.1)) else {
                    return;
                };
                let mut client_reader = client.try_clone().unwrap();
                let mut server_writer = server.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_reader, &mut server_writer);
                });
                let mut sent = 0;
                let mut buf = [0u8; 8192];
                while sent < limit {
                    let Ok(n) = server.read(&mut buf) else { break };
                    if n == 0 {
                        break;
                    }
                    let n = n.min(limit - sent);
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[tokio::test]
async fn a_server_dropping_the_connection_mid_transfer_leaves_no_object() {
    let Some(stack) = stack() else { return };
    // A 12 MiB file in the HTTP server's inbox, served through a proxy that cuts after 7 MiB:
    // the first 5 MiB part is already uploaded when the cut comes.
    let name = format!("{}.bin", unique("cut"));
    let path = format!("{}/files/http/inbox/{name}", stack.dir);
    std::fs::write(&path, vec![7u8; 12 << 20]).unwrap();
    let (host, port) = host_port(&stack.http_url);
    let proxy = cutting_proxy((host, port), 7 << 20);
    let s = sources(&stack).with(
        "hr-http",
        json!({"http": {"baseUrl": format!("http://127.0.0.1:{proxy}/"), "listing": "json"}}),
    );
    let prefix = format!("{}/", unique("tests/copy/cut"));
    let mut task = copy_task("cut", "hr-http", "/inbox/", &name, &prefix);
    task["copy"]["partSizeMib"] = json!(5);
    let result = s.run_task(task).await;
    let _ = std::fs::remove_file(&path);
    assert_retryable(&result);
    assert!(
        s.lake()
            .head(&format!("{prefix}{name}"))
            .await
            .unwrap()
            .is_none(),
        "no partial object"
    );
}

#[tokio::test]
async fn an_unreachable_host_is_a_retryable_failure() {
    let Some(stack) = stack() else { return };
    let port = closed_port();
    let s = sources(&stack).with(
        "hr-ftp",
        json!({"ftp": {"host": "127.0.0.1", "port": port, "credentialsSecretRef": {"name": "ftp"}}}),
    );
    let result = s
        .run_task(copy_task(
            "docs",
            "hr-ftp",
            "/procedures",
            "*.pdf",
            "tests/x/",
        ))
        .await;
    assert_retryable(&result);
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_never_reported() {
    let Some(stack) = stack() else { return };
    for (ds, var) in [
        ("hr-ftp", "TRIBUTARY_DS_HR_FTP_PASSWORD"),
        ("hr-sftp", "TRIBUTARY_DS_HR_SFTP_PASSWORD"),
    ] {
        let s = sources(&stack).set_env(var, "not-the-password");
        let result = s
            .run_task(copy_task("docs", ds, "/procedures", "*.pdf", "tests/x/"))
            .await;
        assert_permanent(&result);
        assert!(
            !result.message.contains("not-the-password"),
            "{}",
            result.message
        );
    }
}

#[tokio::test]
async fn a_missing_path_or_bucket_is_permanent() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    for ds in ["hr-ftp", "hr-sftp", "hr-http"] {
        let result = s
            .run_task(copy_task("docs", ds, "/no-such-dir", "*", "tests/x/"))
            .await;
        assert_permanent(&result);
    }
    let mut lake = s.specs["lake"].clone();
    lake.s3.as_mut().unwrap().bucket = "no-such-bucket".into();
    let s = s.with("lake", serde_json::to_value(lake).unwrap());
    let result = s
        .run_task(copy_task(
            "docs",
            "hr-sftp",
            "/procedures",
            "*.pdf",
            "tests/x/",
        ))
        .await;
    assert_permanent(&result);
}

#[tokio::test]
async fn a_result_with_many_files_spills_its_detail_to_a_manifest_object() {
    let Some(stack) = stack() else { return };
    let s = sources(&stack);
    let lake = s.lake();
    let dir = unique("tests/copy/many-src");
    for i in 0..12 {
        lake.put(
            &format!("{dir}/f{i:02}.txt"),
            bytes::Bytes::from(format!("file {i}")),
            "text/plain",
        )
        .await
        .unwrap();
    }
    let prefix = format!("{}/", unique("tests/copy/many-dst"));
    let input = s.task_input(copy_task("many", "lake", &dir, "*.txt", &prefix));
    let result = s.run(&input).await;
    assert_succeeded(&result);
    let tributary_core::contract::RunnerInput::Task(task) = &input else {
        unreachable!()
    };
    let key = format!("_tributary/manifests/tests/{}/many.json", task.run_id);
    assert_eq!(result.manifest.as_deref(), Some(key.as_str()));
    let manifest: tributary_core::lineage::TaskResult =
        serde_json::from_slice(&read_object(&lake, &key).await).unwrap();
    assert_eq!(manifest.outputs.len(), 12);
    assert!(result.to_termination_message().len() <= 4096);
}

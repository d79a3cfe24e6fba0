//! HTTP(S) file source: reqwest with rustls; listings from a JSON index or an HTML index page.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
use tributary_core::api::{HttpListing, HttpSource};
use tributary_core::contract::SecretField;

use super::CONNECT_TIMEOUT;
use super::files::{ByteSink, FileSource, RemoteFile, join};
use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// A client bound to one base URL.
pub struct Http {
    client: reqwest::Client,
    base: url::Url,
    listing: HttpListing,
    basic: Option<(String, String)>,
}

impl Http {
    pub fn new(name: &str, spec: &HttpSource, secrets: &Secrets) -> Result<Http> {
        let mut base = url::Url::parse(&spec.base_url)
            .map_err(|e| Error::permanent(format!("baseUrl: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut headers = HeaderMap::new();
        for header in &spec.headers {
            let value = match (&header.value, &header.secret_key_ref) {
                (Some(v), _) => v.clone(),
                (None, Some(_)) => secrets
                    .get(name, &SecretField::Header(header.name.clone()))
                    .ok_or_else(|| {
                        Error::permanent(format!("header {} has no value", header.name))
                    })?
                    .to_string(),
                (None, None) => continue,
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                Error::permanent(format!("header {} has an invalid value", header.name))
            })?;
            value.set_sensitive(header.secret_key_ref.is_some());
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| Error::permanent(format!("invalid header name {:?}", header.name)))?;
            headers.insert(name, value);
        }
        let tls = spec.tls.clone().unwrap_or_default();
        let config = super::tls::client_config(
            secrets.get(name, &SecretField::CaBundle),
            tls.insecure_skip_verify,
        )?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*config).clone())
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            // A stalled body (server gone silent) fails after this long without data.
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Error::permanent(format!("http client: {e}")))?;
        let basic = match (
            secrets.get(name, &SecretField::Username),
            secrets.get(name, &SecretField::Password),
        ) {
            (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
            _ => None,
        };
        Ok(Http {
            client,
            base,
            listing: spec.listing,
            basic,
        })
    }

    fn url(&self, path: &str) -> Result<url::Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::permanent(format!("path {path:?}: {e}")))
    }

    async fn get(&self, url: url::Url, accept: Option<&str>) -> Result<reqwest::Response> {
        let shown = url.to_string();
        let mut request = self.client.get(url);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::from(e).context(format!("GET {shown}")))?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("GET {shown}: HTTP {status}");
            return Err(
                if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                    Error::permanent(message)
                } else {
                    Error::retryable(message)
                },
            );
        }
        Ok(response)
    }

    /// Fetches the base URL: proves the server answers (and accepts the credentials).
    pub async fn ping(&self) -> Result<u16> {
        let response = self.get(self.base.clone(), None).await?;
        Ok(response.status().as_u16())
    }

    async fn list_dir(&self, dir: &str) -> Result<Vec<(RemoteFile, bool)>> {
        let dir_path = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        let url = self.url(&dir_path)?;
        match self.listing {
            HttpListing::Json => {
                let body: serde_json::Value = self
                    .get(url.clone(), Some("application/json"))
                    .await?
                    .json()
                    .await
                    .map_err(|e| Error::permanent(format!("listing {url}: {e}")))?;
                parse_json_listing(&dir_path, &body)
            }
            HttpListing::Html => {
                let body = self
                    .get(url.clone(), Some("text/html"))
                    .await?
                    .text()
                    .await
                    .map_err(|e| Error::from(e).context(format!("listing {url}")))?;
                Ok(parse_html_listing(&dir_path, &body))
            }
        }
    }
}

/// Entries of a JSON listing: an array of names or of objects with `name` (and optional
/// `type`, `size`, `mtime` in Unix seconds), possibly wrapped as `{"entries": [...]}`.
pub fn parse_json_listing(dir: &str, body: &serde_json::Value) -> Result<Vec<(RemoteFile, bool)>> {
    let entries = body
        .as_array()
        .or_else(|| body.get("entries").and_then(|e| e.as_array()))
        .ok_or_else(|| {
            Error::permanent("JSON listing is neither an array nor {\"entries\": [...]}")
        })?;
    let mut out = Vec::new();
    for entry in entries {
        let (name, is_dir, size, mtime) = match entry {
            serde_json::Value::String(name) => (name.clone(), name.ends_with('/'), None, None),
            serde_json::Value::Object(o) => {
                let Some(name) = o.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                let is_dir = o.get("type").and_then(|t| t.as_str()) == Some("directory")
                    || name.ends_with('/');
                (
                    name.to_string(),
                    is_dir,
                    o.get("size").and_then(|s| s.as_u64()),
                    o.get("mtime")
                        .and_then(|m| m.as_i64())
                        .and_then(|m| DateTime::<Utc>::from_timestamp(m, 0)),
                )
            }
            _ => continue,
        };
        let name = name.trim_end_matches('/');
        if name.is_empty() || name == "." || name == ".." {
            continue;
        }
        out.push((
            RemoteFile {
                path: join(dir, name),
                size: if is_dir { None } else { size },
                mtime,
            },
            is_dir,
        ));
    }
    Ok(out)
}

/// Links of an HTML directory index that stay inside `dir` (one level).
pub fn parse_html_listing(dir: &str, body: &str) -> Vec<(RemoteFile, bool)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(pos) = rest.find("href=") {
        rest = &rest[pos + 5..];
        let quote = rest.chars().next().unwrap_or(' ');
        let link = if quote == '"' || quote == '\'' {
            let inner = &rest[1..];
            &inner[..inner.find(quote).unwrap_or(inner.len())]
        } else {
            &rest[..rest.find([' ', '>']).unwrap_or(rest.len())]
        };
        let link = link.split(['?', '#']).next().unwrap_or("");
        let decoded = percent_decode(link);
        // Skip parent links, absolute URLs and paths outside this directory.
        if decoded.is_empty()
            || decoded.starts_with("..")
            || decoded.contains("://")
            || (decoded.starts_with('/') && !decoded.starts_with(dir))
        {
            continue;
        }
        let name = decoded.strip_prefix(dir).unwrap_or(&decoded);
        let is_dir = name.ends_with('/');
        let name = name.trim_matches('/');
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let file = RemoteFile {
            path: join(dir, name),
            size: None,
            mtime: None,
        };
        if !out
            .iter()
            .any(|(f, _): &(RemoteFile, bool)| f.path == file.path)
        {
            out.push((file, is_dir));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait]
impl FileSource for Http {
    async fn list(&mut self, dir: &str, recursive: bool) -> Result<Vec<RemoteFile>> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_string()];
        while let Some(dir) = pending.pop() {
            for (file, is_dir) in self.list_dir(&dir).await? {
                if is_dir {
                    if recursive {
                        pending.push(file.path);
                    }
                } else {
                    out.push(file);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn read(&mut self, file: &RemoteFile, sink: &mut dyn ByteSink) -> Result<()> {
        let url = self.url(&file.path)?;
        let shown = url.to_string();
        let response = self.get(url, None).await?;
        // A body shorter than its Content-Length is an error from hyper, so a cut transfer
        // never looks complete.
        let stream = response
            .bytes_stream()
            .map_err(|e| std::io::Error::other(e.to_string()));
        let mut reader = tokio_util::io::StreamReader::new(stream);
        sink.copy_from(&mut reader)
            .await
            .map_err(|e| e.context(format!("GET {shown}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_listing_with_entries_yields_files_and_directories() {
        let body = serde_json::json!({"path": "/procedures", "entries": [
            {"name": "a.pdf", "type": "file", "size": 10, "mtime": 1700000000},
            {"name": "old", "type": "directory", "size": 0, "mtime": 1700000000},
        ]});
        let entries = parse_json_listing("/procedures/", &body).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.path, "/procedures/a.pdf");
        assert_eq!(entries[0].0.size, Some(10));
        assert!(entries[1].1);
    }

    #[test]
    fn a_plain_array_of_names_is_a_listing_too() {
        let body = serde_json::json!(["a.pdf", "sub/"]);
        let entries = parse_json_listing("/", &body).unwrap();
        assert_eq!(entries[0].0.path, "/a.pdf");
        assert!(entries[1].1);
    }

    #[test]
    fn html_index_links_outside_the_directory_are_ignored() {
        let html = r#"<a href="../">up</a><a href="a%20b.pdf">a</a><a href="https://x/y">x</a>
            <a href="/docs/c.pdf">c</a><a href="/other/d.pdf">d</a><a href='sub/'>sub</a>"#;
        let entries = parse_html_listing("/docs/", html);
        let paths: Vec<_> = entries.iter().map(|(f, d)| (f.path.as_str(), *d)).collect();
        assert_eq!(
            paths,
            vec![
                ("/docs/a b.pdf", false),
                ("/docs/c.pdf", false),
                ("/docs/sub", true)
            ]
        );
    }
}

//! The example embedder's pure parts: PDF text extraction and a deterministic embedding.
//!
//! The embedding is a feature-hashed bag of words (the "hashing trick"): every lower-cased
//! word adds ±1 to one of `dims` buckets chosen by a fixed hash, and the vector is scaled to
//! unit length. It needs no model weights, gives the same vector for the same text on every
//! machine, and documents sharing vocabulary get a high cosine similarity — enough to show
//! a custom container hanging off a Pipeline, not a substitute for a language model.

use serde::Serialize;

/// Name and version of the embedding, recorded with every vector so consumers can tell
/// vectors of different schemes apart.
pub const MODEL: &str = "hashed-bag-of-words-v1";

/// Default number of dimensions.
pub const DEFAULT_DIMS: usize = 256;

/// Text of a PDF and how many pages it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    pub pages: usize,
}

/// Extracts the text of every page of a PDF, in page order.
pub fn extract_text(pdf: &[u8]) -> Result<Extracted, String> {
    let doc = lopdf::Document::load_mem(pdf).map_err(|e| format!("not a readable PDF: {e}"))?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    if pages.is_empty() {
        return Ok(Extracted {
            text: String::new(),
            pages: 0,
        });
    }
    let text = doc
        .extract_text(&pages)
        .map_err(|e| format!("text extraction failed: {e}"))?;
    Ok(Extracted {
        text,
        pages: pages.len(),
    })
}

/// The words of a text: maximal runs of letters and digits, lower-cased. Single characters
/// (page numbers, list markers) carry no meaning and are dropped.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(str::to_lowercase)
}

/// 64-bit FNV-1a: tiny, fixed and platform independent, unlike std's randomly keyed hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The L2-normalised feature-hashed bag of words of `text` in `dims` dimensions. The top
/// bit of the hash picks the sign so that collisions cancel out on average instead of
/// piling up. A text without words gives the zero vector.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    assert!(dims > 0, "an embedding needs at least one dimension");
    let mut v = vec![0f64; dims];
    for word in words(text) {
        let h = fnv1a(word.as_bytes());
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % dims as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One line of the output JSONL.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The PDF's object key in the lake.
    pub key: String,
    /// Its OpenLineage-style name, `s3://bucket/key`.
    pub source: String,
    pub sha256: String,
    pub bytes: u64,
    pub pages: usize,
    /// The document's first non-empty line (the seeded PDFs start with their title).
    pub title: String,
    pub words: usize,
    pub model: &'static str,
    pub dims: usize,
    pub embedding: Vec<f32>,
}

/// Builds the record of one document.
pub fn record(key: &str, bucket: &str, pdf: &[u8], dims: usize) -> Result<Record, String> {
    use sha2::{Digest, Sha256};
    let extracted = extract_text(pdf)?;
    let title = extracted
        .text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    Ok(Record {
        key: key.to_string(),
        source: format!("s3://{bucket}/{key}"),
        sha256: hex::encode(Sha256::digest(pdf)),
        bytes: pdf.len() as u64,
        pages: extracted.pages,
        title,
        words: words(&extracted.text).count(),
        model: MODEL,
        dims,
        embedding: embed(&extracted.text, dims),
    })
}

/// Splits `s3://bucket/rest` into the bucket and the rest (a key or a prefix).
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3:// URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url:?} names no bucket"));
    }
    Ok((bucket.to_string(), key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/returns-and-cancellations.pdf");

    #[test]
    fn text_of_the_seeded_pdf_is_extracted_with_its_escapes_resolved() {
        let extracted = extract_text(FIXTURE).unwrap();
        assert_eq!(extracted.pages, 1);
        assert!(
            extracted
                .text
                .contains("Procedure: Returns and Cancelled Invoices")
        );
        // Parentheses are escaped in the PDF's text operators and must come out plain.
        assert!(extracted.text.contains("C536379"), "{}", extracted.text);
        assert!(extracted.text.contains("Page 1 of 1"));
    }

    #[test]
    fn a_record_carries_title_size_digest_and_a_unit_vector() {
        let r = record("knowledge/ftp/r.pdf", "raw", FIXTURE, DEFAULT_DIMS).unwrap();
        assert_eq!(r.title, "Procedure: Returns and Cancelled Invoices");
        assert_eq!(r.source, "s3://raw/knowledge/ftp/r.pdf");
        assert_eq!(r.bytes, FIXTURE.len() as u64);
        assert_eq!(r.sha256.len(), 64);
        assert!(r.words > 100);
        let norm: f32 = r.embedding.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn bytes_that_are_not_a_pdf_are_refused_with_a_reason() {
        let err = extract_text(b"hello").unwrap_err();
        assert!(err.starts_with("not a readable PDF"), "{err}");
    }

    #[test]
    fn the_same_text_always_gives_the_same_vector() {
        let a = embed("Refunds are issued within 14 days", 256);
        assert_eq!(a, embed("refunds ARE issued, within 14 days!", 256));
        assert_eq!(a.len(), 256);
        // Pinned: a change of hash or tokenisation changes every stored vector.
        assert_eq!(fnv1a(b"refunds"), 0x94cc_897a_5d00_5a24);
    }

    #[test]
    fn related_texts_are_closer_than_unrelated_ones() {
        let returns = embed("cancelled invoice refund returned goods quantity", 256);
        let refunds = embed("refund for a cancelled invoice and returned goods", 256);
        let onboarding = embed("new starter induction buddy handbook probation", 256);
        assert!(similarity(&returns, &refunds) > 0.6);
        assert!(similarity(&returns, &onboarding) < similarity(&returns, &refunds));
    }

    #[test]
    fn an_empty_text_is_the_zero_vector() {
        assert!(embed("- 1 2 .", 8).iter().all(|x| *x == 0.0));
    }

    #[test]
    fn s3_urls_split_into_bucket_and_key() {
        assert_eq!(
            parse_s3_url("s3://raw/embeddings/2026-11-25/e.jsonl").unwrap(),
            ("raw".into(), "embeddings/2026-11-25/e.jsonl".into())
        );
        assert_eq!(parse_s3_url("s3://raw").unwrap(), ("raw".into(), "".into()));
        assert!(parse_s3_url("http://raw/x").is_err());
        assert!(parse_s3_url("s3:///x").is_err());
    }
}

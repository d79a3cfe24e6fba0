//! MongoDB Extended JSON v2 (canonical), written straight from raw BSON: every type survives a
//! round trip, field order is kept, and no intermediate document tree is built per row.

use std::io::Write;

use base64::Engine;
use bson::RawDocument;
use bson::raw::{RawArray, RawBsonRef};

/// Appends `doc` as one line of canonical Extended JSON (without the newline).
pub fn write_document(out: &mut Vec<u8>, doc: &RawDocument) -> bson::raw::Result<()> {
    out.push(b'{');
    for (i, element) in doc.iter().enumerate() {
        let (key, value) = element?;
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_array(out: &mut Vec<u8>, array: &RawArray) -> bson::raw::Result<()> {
    out.push(b'[');
    for (i, value) in array.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, value?)?;
    }
    out.push(b']');
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// `{"<tag>":"<text>"}`
fn tagged(out: &mut Vec<u8>, tag: &str, text: &str) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":");
    write_str(out, text);
    out.push(b'}');
}

/// The canonical text of a double: shortest round-trip digits, or NaN / ±Infinity.
pub fn double_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Debug formatting is Rust's shortest representation that parses back to the same bits.
        format!("{v:?}")
    }
}

fn write_value(out: &mut Vec<u8>, value: RawBsonRef<'_>) -> bson::raw::Result<()> {
    match value {
        RawBsonRef::Double(v) => tagged(out, "$numberDouble", &double_text(v)),
        RawBsonRef::String(s) => write_str(out, s),
        RawBsonRef::Document(d) => write_document(out, d)?,
        RawBsonRef::Array(a) => write_array(out, a)?,
        RawBsonRef::Binary(b) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(b.bytes);
            let subtype: u8 = b.subtype.into();
            let _ = write!(
                out,
                "{{\"$binary\":{{\"base64\":\"{encoded}\",\"subType\":\"{subtype:02x}\"}}}}"
            );
        }
        RawBsonRef::Undefined => out.extend_from_slice(b"{\"$undefined\":true}"),
        RawBsonRef::ObjectId(id) => tagged(out, "$oid", &id.to_hex()),
        RawBsonRef::Boolean(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        RawBsonRef::DateTime(d) => {
            let _ = write!(
                out,
                "{{\"$date\":{{\"$numberLong\":\"{}\"}}}}",
                d.timestamp_millis()
            );
        }
        RawBsonRef::Null => out.extend_from_slice(b"null"),
        RawBsonRef::RegularExpression(r) => {
            out.extend_from_slice(b"{\"$regularExpression\":{\"pattern\":");
            write_str(out, r.pattern);
            out.extend_from_slice(b",\"options\":");
            write_str(out, r.options);
            out.extend_from_slice(b"}}");
        }
        RawBsonRef::JavaScriptCode(code) => tagged(out, "$code", code),
        RawBsonRef::JavaScriptCodeWithScope(c) => {
            out.extend_from_slice(b"{\"$code\":");
            write_str(out, c.code);
            out.extend_from_slice(b",\"$scope\":");
            write_document(out, c.scope)?;
            out.push(b'}');
        }
        RawBsonRef::Symbol(s) => tagged(out, "$symbol", s),
        RawBsonRef::Int32(v) => tagged(out, "$numberInt", &v.to_string()),
        RawBsonRef::Int64(v) => tagged(out, "$numberLong", &v.to_string()),
        RawBsonRef::Timestamp(t) => {
            let _ = write!(
                out,
                "{{\"$timestamp\":{{\"t\":{},\"i\":{}}}}}",
                t.time, t.increment
            );
        }
        RawBsonRef::Decimal128(d) => tagged(out, "$numberDecimal", &d.to_string()),
        RawBsonRef::MaxKey => out.extend_from_slice(b"{\"$maxKey\":1}"),
        RawBsonRef::MinKey => out.extend_from_slice(b"{\"$minKey\":1}"),
        RawBsonRef::DbPointer(p) => {
            // The raw DbPointer hides its parts; the owned form exposes them through serde.
            let owned: bson::Bson = RawBsonRef::DbPointer(p)
                .to_raw_bson()
                .try_into()
                .unwrap_or(bson::Bson::Null);
            let json = owned.into_canonical_extjson();
            serde_json::to_writer(&mut *out, &json).expect("writing to a Vec cannot fail");
        }
    }
    Ok(())
}

/// Canonical Extended JSON text of one value (for watermarks).
pub fn value_text(value: RawBsonRef<'_>) -> String {
    let mut out = Vec::new();
    let _ = write_value(&mut out, value);
    String::from_utf8(out).expect("Extended JSON is UTF-8")
}

/// Parses an Extended JSON value (canonical or relaxed) into BSON, e.g. a watermark.
pub fn parse_value(text: &str) -> Result<bson::Bson, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    bson::Bson::try_from(json).map_err(|e| format!("not Extended JSON: {e}"))
}

/// Converts an Extended JSON object (a filter or projection from the spec) into a document.
pub fn parse_document(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<bson::Document, String> {
    match bson::Bson::try_from(serde_json::Value::Object(object.clone())) {
        Ok(bson::Bson::Document(doc)) => Ok(doc),
        Ok(other) => Err(format!("expected a document, got {other}")),
        Err(e) => Err(format!("not Extended JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{Binary, Bson, DateTime, Decimal128, RawDocumentBuf, Timestamp, doc, oid::ObjectId};

    fn every_type() -> bson::Document {
        doc! {
            "_id": ObjectId::parse_str("4d88e15b60f486e428412dc9").unwrap(),
            "InvoiceNo": "C536379",
            "Quantity": -6_i32,
            "big": 9_007_199_254_740_993_i64,
            "UnitPrice": 2.55,
            "whole": 3.0,
            "nan": f64::NAN,
            "inf": f64::NEG_INFINITY,
            "price": Decimal128::from_bytes([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3c, 0x30]),
            "when": DateTime::from_millis(1_291_192_000_000),
            "blob": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 1, 255] },
            "nested": {"a": [1_i32, "x", null, true]},
            "ts": Timestamp { time: 5, increment: 7 },
            "re": bson::Regex { pattern: "^a".into(), options: "i".into() },
            "quote\"key": "line\nbreak",
        }
    }

    #[test]
    fn raw_documents_are_written_as_the_canonical_form_of_the_bson_crate() {
        let doc = every_type();
        let raw = RawDocumentBuf::from_document(&doc).unwrap();
        let mut out = Vec::new();
        write_document(&mut out, &raw).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let theirs = Bson::Document(doc).into_canonical_extjson();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn field_order_is_kept() {
        let raw = RawDocumentBuf::from_document(&doc! {"z": 1_i32, "a": 2_i32}).unwrap();
        let mut out = Vec::new();
        write_document(&mut out, &raw).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"z":{"$numberInt":"1"},"a":{"$numberInt":"2"}}"#
        );
    }

    #[test]
    fn the_output_parses_back_to_the_same_bson() {
        let doc = every_type();
        let raw = RawDocumentBuf::from_document(&doc).unwrap();
        let mut out = Vec::new();
        write_document(&mut out, &raw).unwrap();
        let back = parse_value(std::str::from_utf8(&out).unwrap()).unwrap();
        let Bson::Document(back) = back else { panic!() };
        // NaN != NaN, so compare everything else and NaN by its bits.
        assert!(back.get_f64("nan").unwrap().is_nan());
        let mut a = back.clone();
        let mut b = doc.clone();
        a.remove("nan");
        b.remove("nan");
        assert_eq!(a, b);
    }

    #[test]
    fn a_watermark_round_trips_through_its_text() {
        let id = ObjectId::parse_str("4d88e15b60f486e428412dc9").unwrap();
        let raw = RawDocumentBuf::from_document(&doc! {"_id": id}).unwrap();
        let text = value_text(raw.get("_id").unwrap().unwrap());
        assert_eq!(text, r#"{"$oid":"4d88e15b60f486e428412dc9"}"#);
        assert_eq!(parse_value(&text).unwrap(), Bson::ObjectId(id));
    }
}

//! Rows for `load`: typed column targets, Extended JSON → PostgreSQL COPY text conversion,
//! column inference from a sample, and the COPY text encoding.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use tributary_core::api::ColumnSpec;

/// What the runner checks of a value before sending it, by the column's PostgreSQL type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeClass {
    Int,
    Float,
    Numeric,
    Bool,
    Json,
    Timestamp,
    Bytea,
    Text,
}

impl TypeClass {
    pub fn of(pg_type: &str) -> TypeClass {
        let t = pg_type.trim().to_ascii_lowercase();
        let base = t.split('(').next().unwrap_or(&t).trim();
        if t.ends_with("[]") {
            return TypeClass::Text;
        }
        match base {
            "smallint" | "integer" | "int" | "int2" | "int4" | "int8" | "bigint" | "serial"
            | "bigserial" | "smallserial" => TypeClass::Int,
            "real" | "float4" | "float8" | "double precision" | "float" => TypeClass::Float,
            "numeric" | "decimal" => TypeClass::Numeric,
            "boolean" | "bool" => TypeClass::Bool,
            "json" | "jsonb" => TypeClass::Json,
            "bytea" => TypeClass::Bytea,
            b if b.starts_with("timestamp") || b == "date" || b.starts_with("time") => {
                TypeClass::Timestamp
            }
            _ => TypeClass::Text,
        }
    }
}

/// One target column and where its values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub pg_type: String,
    pub class: TypeClass,
    /// Path into a JSON row (`customer.id` → ["customer", "id"]); for CSV, the header name.
    pub source: Vec<String>,
}

impl Column {
    pub fn from_spec(spec: &ColumnSpec) -> Column {
        let source = spec.source.as_deref().unwrap_or(&spec.name);
        Column {
            name: spec.name.clone(),
            pg_type: spec.type_.clone(),
            class: TypeClass::of(&spec.type_),
            source: source.split('.').map(str::to_string).collect(),
        }
    }

    fn plain(name: &str, pg_type: &str) -> Column {
        Column {
            name: name.to_string(),
            pg_type: pg_type.to_string(),
            class: TypeClass::of(pg_type),
            source: vec![name.to_string()],
        }
    }
}

/// Looks up a dotted path in a JSON object; `None` when any step is missing.
pub fn lookup<'a>(row: &'a serde_json::Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = row.get(first)?;
    for step in rest {
        value = value.as_object()?.get(step)?;
    }
    Some(value)
}

/// The single `$`-key and its value of an Extended JSON wrapper such as `{"$oid": "…"}`.
fn ext_wrapper(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object()?;
    let (key, inner) = object.iter().next()?;
    if !key.starts_with('$') {
        return None;
    }
    // `$code` may come with `$scope`; all other wrappers have exactly one key.
    if object.len() == 1 || key == "$code" {
        Some((key.as_str(), inner))
    } else {
        None
    }
}

/// The text PostgreSQL should receive for `value` in a column of class `class`, or `None` for
/// NULL. Extended JSON scalars are unwrapped ({"$oid"} → hex, {"$numberDouble": "NaN"} → NaN,
/// {"$date"} → RFC 3339); objects and arrays become JSON text. Errors say why the value cannot
/// go into the column.
pub fn to_text<'a>(value: &'a Value, class: TypeClass) -> Result<Option<Cow<'a, str>>, String> {
    let text: Cow<'a, str> = match value {
        Value::Null => return Ok(None),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if class == TypeClass::Int
                && let Some(f) = n.as_f64().filter(|_| !n.is_i64() && !n.is_u64())
            {
                return integral(f).map(|s| Some(Cow::Owned(s)));
            }
            Cow::Owned(n.to_string())
        }
        Value::String(s) => {
            if class == TypeClass::Json {
                Cow::Owned(value.to_string())
            } else {
                Cow::Borrowed(s.as_str())
            }
        }
        Value::Object(_) | Value::Array(_) => match (class, ext_wrapper(value)) {
            (TypeClass::Json, _) => Cow::Owned(value.to_string()),
            (_, Some(("$oid", Value::String(hex)))) => Cow::Borrowed(hex.as_str()),
            (_, Some(("$numberInt" | "$numberLong" | "$numberDecimal", Value::String(s)))) => {
                Cow::Borrowed(s.as_str())
            }
            (_, Some(("$numberDouble", Value::String(s)))) => {
                if class == TypeClass::Int {
                    let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
                    return integral(f).map(|s| Some(Cow::Owned(s)));
                }
                Cow::Borrowed(s.as_str())
            }
            (_, Some(("$date", inner))) => Cow::Owned(date_text(inner)?),
            (TypeClass::Bytea, Some(("$binary", inner))) => {
                use base64::Engine;
                let b64 = inner
                    .get("base64")
                    .and_then(Value::as_str)
                    .ok_or("malformed $binary")?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("malformed $binary: {e}"))?;
                Cow::Owned(format!("\\x{}", hex::encode(bytes)))
            }
            (_, Some(("$numberInt" | "$numberLong" | "$numberDouble", _))) => {
                return Err(format!("malformed Extended JSON {value}"));
            }
            _ => Cow::Owned(value.to_string()),
        },
    };
    validate(&text, class)?;
    Ok(Some(text))
}

fn integral(f: f64) -> Result<String, String> {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
        Ok(format!("{}", f as i64))
    } else {
        Err(format!("{f} is not an integer"))
    }
}

fn date_text(inner: &Value) -> Result<String, String> {
    let millis = match inner {
        Value::String(s) => return Ok(s.clone()),
        Value::Number(n) => n.as_i64(),
        Value::Object(o) => o
            .get("$numberLong")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        _ => None,
    }
    .ok_or_else(|| format!("malformed $date {inner}"))?;
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .ok_or_else(|| format!("$date {millis} is out of range"))
}

/// Client-side checks that catch a bad row before it aborts the whole COPY.
pub fn validate(text: &str, class: TypeClass) -> Result<(), String> {
    let ok = match class {
        TypeClass::Int => text.trim().parse::<i64>().is_ok(),
        TypeClass::Float | TypeClass::Numeric => {
            let t = text.trim();
            t.parse::<f64>().is_ok()
                || matches!(
                    t.to_ascii_lowercase().as_str(),
                    "nan" | "infinity" | "-infinity" | "inf" | "-inf"
                )
        }
        TypeClass::Bool => matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "t" | "f" | "true" | "false" | "yes" | "no" | "y" | "n" | "1" | "0" | "on" | "off"
        ),
        TypeClass::Json => serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
        _ => true,
    };
    if text.contains('\0') {
        return Err("contains a NUL character, which PostgreSQL text cannot hold".into());
    }
    if ok {
        Ok(())
    } else {
        let shown: String = text.chars().take(40).collect();
        Err(format!(
            "{shown:?} is not a valid {}",
            match class {
                TypeClass::Int => "integer",
                TypeClass::Float | TypeClass::Numeric => "number",
                TypeClass::Bool => "boolean",
                TypeClass::Json => "JSON value",
                _ => "value",
            }
        ))
    }
}

/// Appends one field in COPY text format (tab-separated, `\N` for NULL).
pub fn push_copy_field(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.extend_from_slice(b"\\N"),
        Some(text) => {
            // Most values need no escape: runs between special bytes are copied at once.
            let mut rest = text.as_bytes();
            while let Some(i) = rest
                .iter()
                .position(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
            {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(match rest[i] {
                    b'\\' => b"\\\\",
                    b'\n' => b"\\n",
                    b'\r' => b"\\r",
                    _ => b"\\t",
                });
                rest = &rest[i + 1..];
            }
            out.extend_from_slice(rest);
        }
    }
}

/// Encodes one JSON row as a COPY line, or says which column is wrong.
pub fn encode_json_row(
    out: &mut Vec<u8>,
    row: &serde_json::Map<String, Value>,
    columns: &[Column],
) -> Result<(), String> {
    let start = out.len();
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        let value = lookup(row, &column.source).unwrap_or(&Value::Null);
        match to_text(value, column.class) {
            Ok(text) => push_copy_field(out, text.as_deref()),
            Err(e) => {
                out.truncate(start);
                return Err(format!("column {}: {e}", column.name));
            }
        }
    }
    out.push(b'\n');
    Ok(())
}

/// Where the declared columns find their values in a JSON line: the distinct first steps of
/// their source paths. Built once per load, so a line is scanned once whatever the columns.
#[derive(Clone, Debug)]
pub struct JsonPlan {
    keys: Vec<String>,
    /// Per column: the index into `keys` of its first step.
    slot_of: Vec<usize>,
}

impl JsonPlan {
    pub fn new(columns: &[Column]) -> JsonPlan {
        let mut keys: Vec<String> = Vec::new();
        let slot_of = columns
            .iter()
            .map(|c| {
                let first = c.source.first().map_or("", String::as_str);
                match keys.iter().position(|k| k == first) {
                    Some(i) => i,
                    None => {
                        keys.push(first.to_string());
                        keys.len() - 1
                    }
                }
            })
            .collect();
        JsonPlan { keys, slot_of }
    }
}

/// Encodes one JSON Lines row as a COPY line without building a document tree: the line is
/// scanned once, keeping borrowed raw values of only the keys the columns use (the rest is
/// validated and skipped). Gives exactly the text `encode_json_row` gives for the parsed row,
/// with the same errors.
pub fn encode_json_line(
    out: &mut Vec<u8>,
    line: &[u8],
    plan: &JsonPlan,
    columns: &[Column],
) -> Result<(), String> {
    // Skipped values are checked for syntax only: a `\u` escape (a lone surrogate is an
    // error in a parsed string) or invalid UTF-8 takes the full parse, so such lines are
    // judged and worded exactly as before. Exports escape only control characters this way.
    let text = match std::str::from_utf8(line) {
        Ok(text) if memchr::memmem::find(line, b"\\u").is_none() => text,
        _ => {
            return match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(row)) => encode_json_row(out, &row, columns),
                Ok(_) => Err("not a JSON object".to_string()),
                Err(e) => Err(format!("malformed JSON: {e}")),
            };
        }
    };
    let mut slots: Vec<Option<&RawValue>> = vec![None; plan.keys.len()];
    let mut de = serde_json::Deserializer::from_str(text);
    let is_object = RowSeed {
        keys: &plan.keys,
        slots: &mut slots,
    }
    .deserialize(&mut de)
    .and_then(|is_object| de.end().map(|()| is_object))
    .map_err(|e| format!("malformed JSON: {e}"))?;
    if !is_object {
        return Err("not a JSON object".to_string());
    }
    let start = out.len();
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        let raw = slots[plan.slot_of[i]].and_then(|raw| descend(raw, &column.source[1..]));
        match raw_to_text(raw, column.class) {
            Ok(text) => push_copy_field(out, text.as_deref()),
            Err(e) => {
                out.truncate(start);
                return Err(format!("column {}: {e}", column.name));
            }
        }
    }
    out.push(b'\n');
    Ok(())
}

/// Follows the rest of a dotted path through nested objects; `None` when a step is missing or
/// not an object (as `lookup` does).
fn descend<'a>(mut raw: &'a RawValue, rest: &[String]) -> Option<&'a RawValue> {
    for step in rest {
        if !raw.get().starts_with('{') {
            return None;
        }
        let mut found = [None];
        let keys = std::slice::from_ref(step);
        let mut de = serde_json::Deserializer::from_str(raw.get());
        RowSeed {
            keys,
            slots: &mut found,
        }
        .deserialize(&mut de)
        .ok()?;
        raw = found[0]?;
    }
    Some(raw)
}

/// `to_text` for a raw JSON value. The values Extended JSON exports are made of (strings
/// without escapes, plain integers, single-key numeric and `$oid` wrappers around a string)
/// are read from the raw text; anything else is parsed into a `Value` and given to `to_text`,
/// so both paths agree on every input.
fn raw_to_text(raw: Option<&RawValue>, class: TypeClass) -> Result<Option<Cow<'_, str>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let s = raw.get();
    let fast: Option<Cow<'_, str>> = match s.as_bytes()[0] {
        b'n' => return Ok(None),
        b't' => Some(Cow::Borrowed("true")),
        b'f' => Some(Cow::Borrowed("false")),
        b'"' if !s.contains('\\') => Some(Cow::Borrowed(if class == TypeClass::Json {
            // Without escapes the raw text is exactly how serde_json writes the string.
            s
        } else {
            &s[1..s.len() - 1]
        })),
        b'{' if class != TypeClass::Json => wrapper_text(s, class)?,
        b'-' | b'0'..=b'9' if is_plain_integer(s) => Some(Cow::Borrowed(s)),
        _ => None,
    };
    match fast {
        Some(text) => {
            validate(&text, class)?;
            Ok(Some(text))
        }
        None => {
            let value: Value =
                serde_json::from_str(s).map_err(|e| format!("malformed JSON: {e}"))?;
            Ok(to_text(&value, class)?.map(|t| Cow::Owned(t.into_owned())))
        }
    }
}

/// An integer literal that serde_json reads as an `i64` and writes back unchanged.
fn is_plain_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (!digits.starts_with('0') || (digits.len() == 1 && !s.starts_with('-')))
}

/// The text of `{"$oid"|"$numberInt"|"$numberLong"|"$numberDecimal"|"$numberDouble": "…"}`
/// with an unescaped string, as `to_text` gives it; `None` for any other object.
fn wrapper_text(s: &str, class: TypeClass) -> Result<Option<Cow<'_, str>>, String> {
    let mut de = serde_json::Deserializer::from_str(s);
    let Ok(Some((tag, inner))) = WrapperSeed.deserialize(&mut de) else {
        return Ok(None);
    };
    let inner = inner.get();
    if !inner.starts_with('"') || inner.contains('\\') {
        return Ok(None);
    }
    let text = &inner[1..inner.len() - 1];
    Ok(Some(match tag {
        "$numberDouble" if class == TypeClass::Int => {
            let f: f64 = text
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?;
            Cow::Owned(integral(f)?)
        }
        _ => Cow::Borrowed(text),
    }))
}

/// Scans a JSON object, keeping the raw value of each wanted key (the last one, as a parsed
/// map would) and validating the rest; says whether the value was an object at all.
struct RowSeed<'p, 'de> {
    keys: &'p [String],
    slots: &'p mut [Option<&'de RawValue>],
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, 'de> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(slot) = map.next_key_seed(KeySeed(self.keys))? {
            match slot {
                Some(i) => self.slots[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// An object key, as its index among the wanted keys (compared without allocating).
struct KeySeed<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| k == key))
    }
}

/// The tag and raw value of a single-key numeric or `$oid` wrapper; `None` for other objects.
struct WrapperSeed;

const FAST_TAGS: [&str; 5] = [
    "$oid",
    "$numberInt",
    "$numberLong",
    "$numberDecimal",
    "$numberDouble",
];

impl<'de> DeserializeSeed<'de> for WrapperSeed {
    type Value = Option<(&'static str, &'de RawValue)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WrapperSeed {
    type Value = Option<(&'static str, &'de RawValue)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an Extended JSON wrapper")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(Some(i)) = map.next_key_seed(TagSeed)? else {
            // Not a fast tag (or empty): drain so the caller's parse stays well-formed.
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let inner: &'de RawValue = map.next_value()?;
        if map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        }
        Ok(Some((FAST_TAGS[i], inner)))
    }
}

/// A key, as its index among `FAST_TAGS`.
struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TagSeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(FAST_TAGS.iter().position(|t| *t == key))
    }
}

/// Encodes one CSV record (fields by header position) as a COPY line. Empty fields are NULL,
/// as in PostgreSQL's own CSV import.
pub fn encode_csv_row(
    out: &mut Vec<u8>,
    record: &csv_async::StringRecord,
    positions: &[Option<usize>],
    columns: &[Column],
) -> Result<(), String> {
    let start = out.len();
    for (i, (column, position)) in columns.iter().zip(positions).enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        let value = position
            .and_then(|p| record.get(p))
            .filter(|v| !v.is_empty());
        if let Some(v) = value
            && let Err(e) = validate(v, column.class)
        {
            out.truncate(start);
            return Err(format!("column {}: {e}", column.name));
        }
        push_copy_field(out, value);
    }
    out.push(b'\n');
    Ok(())
}

/// Infers columns from sampled rows, keeping the order in which keys first appear.
#[derive(Default)]
pub struct Inference {
    columns: Vec<(String, Option<Kind>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Numeric,
    Bool,
    Timestamp,
    Text,
    Json,
}

impl Kind {
    fn of_json(value: &Value) -> Option<Kind> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
            Value::Number(_) => Kind::Float,
            Value::String(_) => Kind::Text,
            Value::Array(_) => Kind::Json,
            Value::Object(_) => match ext_wrapper(value) {
                Some(("$oid" | "$symbol", _)) => Kind::Text,
                Some(("$numberInt" | "$numberLong", _)) => Kind::Int,
                Some(("$numberDouble", _)) => Kind::Float,
                Some(("$numberDecimal", _)) => Kind::Numeric,
                Some(("$date", _)) => Kind::Timestamp,
                _ => Kind::Json,
            },
        })
    }

    fn of_text(text: &str) -> Option<Kind> {
        if text.is_empty() {
            None
        } else if text.parse::<i64>().is_ok() {
            Some(Kind::Int)
        } else if text.parse::<f64>().is_ok() {
            Some(Kind::Float)
        } else if matches!(text.to_ascii_lowercase().as_str(), "true" | "false") {
            Some(Kind::Bool)
        } else {
            Some(Kind::Text)
        }
    }

    fn merge(a: Kind, b: Kind) -> Kind {
        use Kind::*;
        match (a, b) {
            (x, y) if x == y => x,
            (Int, Float) | (Float, Int) => Float,
            (Int | Float | Numeric, Int | Float | Numeric) => Numeric,
            (Json, _) | (_, Json) => Json,
            _ => Text,
        }
    }

    fn pg_type(self) -> &'static str {
        match self {
            Kind::Int => "bigint",
            Kind::Float => "double precision",
            Kind::Numeric => "numeric",
            Kind::Bool => "boolean",
            Kind::Timestamp => "timestamptz",
            Kind::Text => "text",
            Kind::Json => "jsonb",
        }
    }
}

impl Inference {
    fn observe(&mut self, name: &str, kind: Option<Kind>) {
        match self.columns.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => {
                *existing = match (*existing, kind) {
                    (Some(a), Some(b)) => Some(Kind::merge(a, b)),
                    (a, b) => a.or(b),
                }
            }
            None => self.columns.push((name.to_string(), kind)),
        }
    }

    pub fn observe_json(&mut self, row: &serde_json::Map<String, Value>) {
        for (name, value) in row {
            self.observe(name, Kind::of_json(value));
        }
    }

    pub fn observe_csv(&mut self, headers: &[String], record: &csv_async::StringRecord) {
        for (i, name) in headers.iter().enumerate() {
            self.observe(name, record.get(i).and_then(Kind::of_text));
        }
    }

    pub fn observe_headers(&mut self, headers: &[String]) {
        for name in headers {
            self.observe(name, None);
        }
    }

    /// The inferred columns; a column only ever NULL in the sample becomes `text`.
    pub fn columns(&self) -> Vec<Column> {
        self.columns
            .iter()
            .map(|(name, kind)| Column::plain(name, kind.map_or("text", Kind::pg_type)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: Value, class: TypeClass) -> Option<String> {
        to_text(&value, class).unwrap().map(|c| c.into_owned())
    }

    #[test]
    fn extended_json_scalars_are_unwrapped_for_typed_columns() {
        assert_eq!(
            text(json!({"$oid": "4d88e15b60f486e428412dc9"}), TypeClass::Text).as_deref(),
            Some("4d88e15b60f486e428412dc9")
        );
        assert_eq!(
            text(json!({"$numberDouble": "NaN"}), TypeClass::Float).as_deref(),
            Some("NaN")
        );
        assert_eq!(
            text(json!({"$numberInt": "-6"}), TypeClass::Int).as_deref(),
            Some("-6")
        );
        assert_eq!(
            text(
                json!({"$date": {"$numberLong": "1291192000000"}}),
                TypeClass::Timestamp
            )
            .as_deref(),
            Some("2010-12-01T08:26:40.000Z")
        );
        assert_eq!(text(json!(null), TypeClass::Int), None);
    }

    #[test]
    fn nested_values_go_into_jsonb_as_json_text() {
        assert_eq!(
            text(json!({"a": [1, {"$numberInt": "2"}]}), TypeClass::Json).as_deref(),
            Some(r#"{"a":[1,{"$numberInt":"2"}]}"#)
        );
        assert_eq!(text(json!("x"), TypeClass::Json).as_deref(), Some("\"x\""));
    }

    #[test]
    fn a_float_with_a_fraction_is_refused_by_an_integer_column() {
        assert!(to_text(&json!(17850.0), TypeClass::Int).is_ok());
        assert!(to_text(&json!(1.5), TypeClass::Int).is_err());
        assert!(to_text(&json!("abc"), TypeClass::Int).is_err());
    }

    #[test]
    fn copy_text_escapes_separators_and_marks_null() {
        let mut out = Vec::new();
        push_copy_field(&mut out, Some("a\tb\\c\nd"));
        out.push(b'\t');
        push_copy_field(&mut out, None);
        assert_eq!(out, b"a\\tb\\\\c\\nd\t\\N");
    }

    #[test]
    fn a_missing_field_is_null_and_a_dotted_source_reaches_into_objects() {
        let row = json!({"customer": {"id": 7}, "x": 1});
        let columns = vec![
            Column::from_spec(&ColumnSpec {
                name: "cid".into(),
                type_: "bigint".into(),
                source: Some("customer.id".into()),
            }),
            Column::from_spec(&ColumnSpec {
                name: "missing".into(),
                type_: "text".into(),
                source: None,
            }),
        ];
        let mut out = Vec::new();
        encode_json_row(&mut out, row.as_object().unwrap(), &columns).unwrap();
        assert_eq!(out, b"7\t\\N\n");
    }

    /// The row as the tree-building path encodes it: the reference for `encode_json_line`.
    fn encoded_via_tree(line: &str, columns: &[Column]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(row)) => encode_json_row(&mut out, &row, columns).map(|()| out),
            Ok(_) => Err("not a JSON object".to_string()),
            Err(e) => Err(format!("malformed JSON: {e}")),
        }
    }

    /// A syntax error's position can differ by a character between skipping and parsing a
    /// string (a raw control character); the message and the verdict may not.
    fn without_position(error: &str) -> String {
        error.split(" at line ").next().unwrap_or(error).to_string()
    }

    #[test]
    fn borrowed_line_encoding_agrees_with_the_parsed_tree_on_every_kind_of_value() {
        let lines = [
            r#"{"_id":{"$oid":"4d88e15b60f486e428412dc9"},"InvoiceNo":"536365","StockCode":"85123A","Description":"WHITE HANGING HEART","Quantity":{"$numberInt":"6"},"InvoiceDate":"12/1/2010 8:26","UnitPrice":{"$numberDouble":"2.55"},"CustomerID":{"$numberDouble":"17850.0"},"Country":"United Kingdom"}"#,
            r#"{"v":{"$numberDouble":"NaN"},"w":{"$numberDouble":"-Infinity"},"x":{"$numberLong":"-9007199254740993"}}"#,
            r#"{"v":{"$numberDouble":"1.5"},"w":{"$numberDecimal":"1.10"},"x":{"$numberInt":"abc"}}"#,
            r#"{"v":{"$numberInt":6},"w":{"$oid":"a","$oid":"b"},"x":{"$oid":"a","y":1}}"#,
            r#"{"v":{"$date":{"$numberLong":"1291192000000"}},"w":{"$date":"2010-12-01T08:26:40Z"},"x":{"$binary":{"base64":"AQI=","subType":"00"}}}"#,
            r#"{"v":1,"w":-0,"x":0,"y":-17,"z":123456789012345678901234}"#,
            r#"{"v":1.0,"w":2.550,"x":1e5,"y":-0.0,"z":17850.0}"#,
            r#"{"v":true,"w":false,"x":null,"y":"true","z":"1"}"#,
            r#"{"v":"tab\there","w":"quote \" and \\ slash","x":"caf\u00e9 é","y":"line\nbreak","z":"\ud83d\ude00"}"#,
            r#"{"v":{"a":[1,{"$numberInt":"2"}]},"w":[1,"two",null],"x":{},"y":[],"z":"{\"k\":1}"}"#,
            r#"{"v":{"w":{"x":7}},"w":{"x":[1]},"x":{"$code":"f()","$scope":{}}}"#,
            "{ \"v\" : 1 , \"w\" :\t\"spaced\" , \"x\" : { \"$oid\" : \"ab\" } }",
            r#"{"v":1,"v":2,"w":"a","w":{"$numberInt":"3"}}"#,
            r#"{"v":"nul\u0000here","w":"x"}"#,
            r#"{"other":{"deep":[[[{"a":"\ud800"}]]]},"v":1}"#,
            r#"{"v":1,"#,
            r#"{"v":tru}"#,
            r#"{"v":1} trailing"#,
            r#"[1,2,3]"#,
            r#""just a string""#,
            "42",
            "null",
            r#"{"v":"\x"}"#,
            "{\"v\":\"a\nb\"}",
            "{}",
            "",
        ];
        let classes = [
            "text",
            "bigint",
            "double precision",
            "numeric",
            "boolean",
            "jsonb",
            "timestamptz",
            "bytea",
        ];
        for pg_type in classes {
            let mut columns: Vec<Column> = ["v", "w", "x", "y", "z", "_id", "UnitPrice"]
                .iter()
                .map(|name| Column::plain(name, pg_type))
                .collect();
            columns.push(Column::from_spec(&ColumnSpec {
                name: "nested".into(),
                type_: pg_type.into(),
                source: Some("v.w.x".into()),
            }));
            columns.push(Column::from_spec(&ColumnSpec {
                name: "again".into(),
                type_: "text".into(),
                source: Some("w".into()),
            }));
            let plan = JsonPlan::new(&columns);
            for line in lines {
                let mut out = b"previous\n".to_vec();
                let got = encode_json_line(&mut out, line.as_bytes(), &plan, &columns)
                    .map(|()| String::from_utf8_lossy(&out[9..]).into_owned())
                    .map_err(|e| without_position(&e));
                let want = encoded_via_tree(line, &columns)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| without_position(&e));
                assert_eq!(got, want, "{pg_type} columns of {line}");
            }
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_rejected_as_malformed_json() {
        let columns = vec![Column::plain("v", "text")];
        let plan = JsonPlan::new(&columns);
        let error =
            encode_json_line(&mut Vec::new(), b"{\"v\":\"\xff\"}", &plan, &columns).unwrap_err();
        assert!(error.starts_with("malformed JSON"), "{error}");
    }

    #[test]
    fn inference_widens_numbers_and_keeps_first_seen_order() {
        let mut inference = Inference::default();
        inference.observe_json(json!({"b": 1, "a": "x", "n": null}).as_object().unwrap());
        inference.observe_json(
            json!({"b": {"$numberDouble": "2.5"}, "a": "y", "c": {"k": 1}})
                .as_object()
                .unwrap(),
        );
        let columns: Vec<(String, String)> = inference
            .columns()
            .into_iter()
            .map(|c| (c.name, c.pg_type))
            .collect();
        let expected: Vec<(String, String)> = [
            ("b", "double precision"),
            ("a", "text"),
            ("n", "text"),
            ("c", "jsonb"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(columns, expected);
    }

    #[test]
    fn type_classes_follow_postgres_aliases() {
        assert_eq!(TypeClass::of("double precision"), TypeClass::Float);
        assert_eq!(TypeClass::of("numeric(10,2)"), TypeClass::Numeric);
        assert_eq!(TypeClass::of("timestamptz"), TypeClass::Timestamp);
        assert_eq!(TypeClass::of("BIGINT"), TypeClass::Int);
        assert_eq!(TypeClass::of("text[]"), TypeClass::Text);
    }
}

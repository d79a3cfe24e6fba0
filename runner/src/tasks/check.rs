//! `check`: data-quality assertions on a PostgreSQL table or an S3 object, each reported;
//! a failed `Error` expectation fails the task, a failed `Warn` one is only reported.

use async_compression::tokio::bufread::GzipDecoder;
use tokio::io::{AsyncBufRead, AsyncReadExt, BufReader};
use tokio_postgres::Client;
use tributary_core::api::{CheckTask, Expectation, Severity};
use tributary_core::identifier::{TableName, quote_identifier};
use tributary_core::lineage::{CheckReport, Outcome, TaskResult};

use crate::connectors::s3::Lake;
use crate::context::TaskContext;
use crate::error::{Error, Result};

pub async fn run(ctx: &TaskContext, task: &CheckTask) -> Result<TaskResult> {
    let spec = ctx.data_source(&task.data_source)?;
    let (checks, dataset) = match (&task.table, &task.key, &spec.postgres, &spec.s3) {
        (Some(table), None, Some(pg), _) => {
            let table = TableName::parse(table)?;
            let client =
                crate::connectors::postgres::connect(&task.data_source, pg, &ctx.secrets).await?;
            let mut checks = Vec::new();
            for expectation in &task.expect {
                checks.push(check_table(&client, &table, expectation).await?);
            }
            (checks, ctx.dataset(&task.data_source, &table.to_string())?)
        }
        (None, Some(key), _, Some(s3)) => {
            let key = ctx.render(key)?;
            let lake = Lake::connect(&task.data_source, s3, &ctx.secrets)?;
            let mut checks = Vec::new();
            for expectation in &task.expect {
                checks.push(check_object(&lake, &key, expectation).await?);
            }
            (checks, ctx.dataset(&task.data_source, &key)?)
        }
        _ => {
            return Err(Error::permanent(
                "check needs `table` with a postgres DataSource or `key` with an s3 DataSource",
            ));
        }
    };
    let failed_errors: Vec<&CheckReport> = checks
        .iter()
        .filter(|c| !c.passed && c.severity == "error")
        .collect();
    let warnings = checks
        .iter()
        .filter(|c| !c.passed && c.severity == "warn")
        .count();
    let passed = checks.iter().filter(|c| c.passed).count();
    let (outcome, message) = if failed_errors.is_empty() {
        (
            Outcome::Succeeded,
            format!(
                "{passed}/{} checks passed{}",
                checks.len(),
                if warnings > 0 {
                    format!(", {warnings} warning(s)")
                } else {
                    String::new()
                }
            ),
        )
    } else {
        let names: Vec<String> = failed_errors
            .iter()
            .map(|c| format!("{} ({})", c.name, c.observed))
            .collect();
        (
            // Bad data does not fix itself by running the check again.
            Outcome::PermanentFailure,
            format!(
                "{} check(s) failed: {}",
                failed_errors.len(),
                names.join("; ")
            ),
        )
    };
    Ok(TaskResult {
        outcome,
        message,
        inputs: vec![dataset],
        outputs: vec![],
        rows: None,
        bytes: None,
        files: None,
        checks,
        schema: Default::default(),
        watermark: None,
        manifest: None,
    })
}

fn report(name: String, expectation: &Expectation, passed: bool, observed: String) -> CheckReport {
    CheckReport {
        name,
        passed,
        severity: match expectation.severity {
            Severity::Error => "error".into(),
            Severity::Warn => "warn".into(),
        },
        observed,
    }
}

fn within(count: u64, range: &tributary_core::api::CountRange) -> bool {
    range.min.is_none_or(|min| count >= min) && range.max.is_none_or(|max| count <= max)
}

fn range_text(range: &tributary_core::api::CountRange) -> String {
    match (range.min, range.max) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        (Some(a), None) => format!(">={a}"),
        (None, Some(b)) => format!("<={b}"),
        (None, None) => "any".into(),
    }
}

fn columns(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quote_identifier(n))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn count(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<i64> {
    Ok(client.query_one(sql, params).await?.get(0))
}

/// PostgreSQL's canonical spelling of a type, so `int8` and `bigint` compare equal.
pub fn normalize_type(t: &str) -> String {
    let t = t.trim().to_ascii_lowercase();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    match t.as_str() {
        "int8" | "bigserial" => "bigint".into(),
        "int" | "int4" | "serial" => "integer".into(),
        "int2" => "smallint".into(),
        "float8" | "float" => "double precision".into(),
        "float4" => "real".into(),
        "bool" => "boolean".into(),
        "timestamptz" => "timestamp with time zone".into(),
        "timestamp" => "timestamp without time zone".into(),
        "varchar" => "character varying".into(),
        "decimal" => "numeric".into(),
        _ => t.replace("decimal(", "numeric(").replace(", ", ","),
    }
}

async fn check_table(client: &Client, table: &TableName, e: &Expectation) -> Result<CheckReport> {
    let t = table.quoted();
    if let Some(range) = &e.row_count {
        let n = count(client, &format!("SELECT count(*) FROM {t}"), &[]).await? as u64;
        return Ok(report(
            format!("rowCount({})", range_text(range)),
            e,
            within(n, range),
            format!("{n} rows"),
        ));
    }
    if let Some(cols) = &e.not_null {
        let filters: Vec<String> = cols
            .iter()
            .map(|c| format!("count(*) FILTER (WHERE {} IS NULL)", quote_identifier(c)))
            .collect();
        let row = client
            .query_one(&format!("SELECT {} FROM {t}", filters.join(", ")), &[])
            .await?;
        let nulls: Vec<(String, i64)> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), row.get::<_, i64>(i)))
            .collect();
        let bad: Vec<String> = nulls
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c}: {n} nulls"))
            .collect();
        return Ok(report(
            format!("notNull({})", cols.join(", ")),
            e,
            bad.is_empty(),
            if bad.is_empty() {
                "0 nulls".into()
            } else {
                bad.join(", ")
            },
        ));
    }
    if let Some(cols) = &e.unique {
        let list = columns(cols);
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), (array_agg(k::text))[1] FROM \
                     (SELECT ROW({list}) AS k FROM {t} GROUP BY {list} HAVING count(*) > 1) d"
                ),
                &[],
            )
            .await?;
        let dups: i64 = row.get(0);
        let example: Option<String> = row.get(1);
        return Ok(report(
            format!("unique({})", cols.join(", ")),
            e,
            dups == 0,
            match example {
                Some(ex) if dups > 0 => format!("{dups} duplicate keys, e.g. {ex}"),
                _ => "0 duplicate keys".into(),
            },
        ));
    }
    if let Some(accepted) = &e.accepted_values {
        let c = quote_identifier(&accepted.column);
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), (array_agg(DISTINCT {c}::text))[1:5] FROM {t} \
                     WHERE {c} IS NOT NULL AND NOT ({c}::text = ANY($1))"
                ),
                &[&accepted.values],
            )
            .await?;
        let bad: i64 = row.get(0);
        let examples: Option<Vec<String>> = row.get(1);
        return Ok(report(
            format!("acceptedValues({})", accepted.column),
            e,
            bad == 0,
            if bad == 0 {
                "all values accepted".into()
            } else {
                format!(
                    "{bad} rows with other values, e.g. {:?}",
                    examples.unwrap_or_default()
                )
            },
        ));
    }
    if let Some(fresh) = &e.freshness {
        let c = quote_identifier(&fresh.column);
        let age: Option<f64> = client
            .query_one(
                &format!(
                    "SELECT extract(epoch FROM (now() - max({c})::timestamptz))::float8 FROM {t}"
                ),
                &[],
            )
            .await?
            .get(0);
        let passed = age.is_some_and(|a| a <= fresh.max_age_seconds as f64);
        return Ok(report(
            format!("freshness({}, {}s)", fresh.column, fresh.max_age_seconds),
            e,
            passed,
            match age {
                Some(a) => format!("newest value is {}s old", a.round() as i64),
                None => "no value".into(),
            },
        ));
    }
    if let Some(expected) = &e.columns {
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&table.schema_or_public(), &table.table],
            )
            .await?;
        if rows.is_empty() {
            return Err(Error::permanent(format!("table {table} does not exist")));
        }
        let actual: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut problems = Vec::new();
        for column in expected {
            match actual.iter().find(|(n, _)| n == &column.name) {
                None => problems.push(format!("{} missing", column.name)),
                Some((_, t)) if normalize_type(t) != normalize_type(&column.type_) => {
                    problems.push(format!("{} is {t}, expected {}", column.name, column.type_))
                }
                _ => {}
            }
        }
        return Ok(report(
            format!(
                "columns({})",
                expected
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            e,
            problems.is_empty(),
            if problems.is_empty() {
                "all columns present with their types".into()
            } else {
                problems.join("; ")
            },
        ));
    }
    Err(Error::permanent(format!(
        "expectation {:?} does not apply to a table",
        e.kinds()
    )))
}

async fn check_object(lake: &Lake, key: &str, e: &Expectation) -> Result<CheckReport> {
    let info = lake.head(key).await?;
    if let Some(should_exist) = e.exists {
        return Ok(report(
            format!("exists({should_exist})"),
            e,
            info.is_some() == should_exist,
            match &info {
                Some(i) => format!("object exists ({} bytes)", i.size),
                None => "object does not exist".into(),
            },
        ));
    }
    let Some(info) = info else {
        return Ok(report(
            format!("{:?}", e.kinds()),
            e,
            false,
            "object does not exist".into(),
        ));
    };
    if let Some(min) = e.min_bytes {
        return Ok(report(
            format!("minBytes({min})"),
            e,
            info.size >= min,
            format!("{} bytes", info.size),
        ));
    }
    if let Some(range) = &e.row_count {
        let raw = BufReader::with_capacity(256 * 1024, lake.get(key).await?);
        let mut reader: Box<dyn AsyncBufRead + Send + Unpin> = if key.ends_with(".gz") {
            let mut d = GzipDecoder::new(raw);
            d.multiple_members(true);
            Box::new(BufReader::new(d))
        } else {
            Box::new(raw)
        };
        let n = count_lines(&mut reader).await?;
        return Ok(report(
            format!("rowCount({})", range_text(range)),
            e,
            within(n, range),
            format!("{n} lines"),
        ));
    }
    Err(Error::permanent(format!(
        "expectation {:?} does not apply to an object",
        e.kinds()
    )))
}

/// Non-empty lines of a stream, counted without keeping them.
async fn count_lines(reader: &mut (dyn AsyncBufRead + Send + Unpin)) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        last = buf[n - 1];
    }
    // A last line without a trailing newline still counts.
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_aliases_compare_equal() {
        assert_eq!(normalize_type("int8"), normalize_type("bigint"));
        assert_eq!(normalize_type("float8"), normalize_type("double precision"));
        assert_eq!(
            normalize_type("numeric(10, 2)"),
            normalize_type("numeric(10,2)")
        );
        assert_ne!(normalize_type("text"), normalize_type("bigint"));
    }

    #[test]
    fn count_ranges_are_inclusive() {
        let r = tributary_core::api::CountRange {
            min: Some(1),
            max: Some(3),
        };
        assert!(within(1, &r) && within(3, &r));
        assert!(!within(0, &r) && !within(4, &r));
    }

    #[tokio::test]
    async fn a_last_line_without_newline_is_counted() {
        let mut r: &[u8] = b"{}\n{}\n{}";
        assert_eq!(count_lines(&mut r).await.unwrap(), 3);
        let mut r: &[u8] = b"{}\n";
        assert_eq!(count_lines(&mut r).await.unwrap(), 1);
    }
}

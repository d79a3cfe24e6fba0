//! Templated keys, prefixes and SQL: `{{ run.date }}`, `{{ run.id }}`, `{{ task.name }}`, …
//!
//! The variable set is closed and small, so a template is checked offline (unknown
//! variables are reported by `tributary validate` and the operator before anything runs)
//! and rendering cannot execute anything.

use std::collections::BTreeMap;

/// Every variable a template may use, with what it expands to.
pub const VARIABLES: &[(&str, &str)] = &[
    ("run.id", "the run id, e.g. g3 or s202611250200"),
    (
        "run.date",
        "the run's logical date in the Pipeline's time zone, YYYY-MM-DD",
    ),
    (
        "run.time",
        "the run's logical time in the Pipeline's time zone, HHMMSS",
    ),
    ("run.timestamp", "the run's logical time, RFC 3339 in UTC"),
    ("task.name", "the task name"),
    ("pipeline.name", "the Pipeline name"),
    ("pipeline.namespace", "the Pipeline namespace"),
];

/// Why a template cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template variable {name:?} (known: {known})")]
    UnknownVariable { name: String, known: String },
    #[error("unclosed `{{{{` at byte {0}")]
    Unclosed(usize),
}

/// Values of the template variables for one task of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateContext {
    values: BTreeMap<&'static str, String>,
}

impl TemplateContext {
    /// Builds the context; `logical_time` is the run's scheduled (or start) time, already in
    /// the Pipeline's time zone for `run.date`/`run.time`.
    pub fn new<Tz: chrono::TimeZone>(
        run_id: &str,
        logical_time: &chrono::DateTime<Tz>,
        task: &str,
        pipeline: &str,
        namespace: &str,
    ) -> TemplateContext
    where
        Tz::Offset: std::fmt::Display,
    {
        let values = BTreeMap::from([
            ("run.id", run_id.to_string()),
            ("run.date", logical_time.format("%Y-%m-%d").to_string()),
            ("run.time", logical_time.format("%H%M%S").to_string()),
            (
                "run.timestamp",
                logical_time
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("task.name", task.to_string()),
            ("pipeline.name", pipeline.to_string()),
            ("pipeline.namespace", namespace.to_string()),
        ]);
        TemplateContext { values }
    }
}

/// Renders a template, failing on any unknown variable.
pub fn render(template: &str, context: &TemplateContext) -> Result<String, TemplateError> {
    expand(template, |name| context.values.get(name).cloned())
}

/// Checks a template without values: every variable is known and every `{{` is closed.
pub fn check(template: &str) -> Result<(), TemplateError> {
    expand(template, |name| {
        VARIABLES
            .iter()
            .any(|(known, _)| *known == name)
            .then(String::new)
    })
    .map(|_| ())
}

fn expand(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find("}}") else {
            return Err(TemplateError::Unclosed(offset + start));
        };
        let name = after_open[..end].trim();
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(TemplateError::UnknownVariable {
                    name: name.to_string(),
                    known: VARIABLES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn context() -> TemplateContext {
        let time = chrono_tz::Europe::London
            .with_ymd_and_hms(2026, 7, 1, 2, 0, 0)
            .unwrap();
        TemplateContext::new(
            "s202607010100",
            &time,
            "transactions-to-lake",
            "retail-elt",
            "retail",
        )
    }

    #[test]
    fn variables_are_replaced_with_or_without_spaces() {
        let key = render(
            "transactions/{{ run.date }}/{{run.id}}.jsonl.gz",
            &context(),
        )
        .unwrap();
        assert_eq!(key, "transactions/2026-07-01/s202607010100.jsonl.gz");
    }

    #[test]
    fn run_date_is_local_to_the_pipeline_time_zone_and_timestamp_is_utc() {
        assert_eq!(
            render("{{ run.time }} {{ run.timestamp }}", &context()).unwrap(),
            "020000 2026-07-01T01:00:00Z"
        );
    }

    #[test]
    fn an_unknown_variable_is_an_error_naming_it() {
        let err = render("x/{{ run.data }}", &context()).unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownVariable { ref name, .. } if name == "run.data")
        );
        assert!(check("x/{{ run.data }}").is_err());
    }

    #[test]
    fn an_unclosed_brace_is_an_error_with_its_position() {
        assert_eq!(check("abc/{{ run.id"), Err(TemplateError::Unclosed(4)));
    }

    #[test]
    fn text_without_variables_is_unchanged() {
        assert_eq!(
            render("plain/key.csv", &context()).unwrap(),
            "plain/key.csv"
        );
    }
}

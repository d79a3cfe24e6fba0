//! Validation of Pipelines and DataSources: every problem at once, each with its field path.
//!
//! The CRD schema and its CEL rules already reject much at admission; this covers what the
//! schema cannot see (the graph, other resources, cron and time zones, templates) and repeats
//! the rest so `tributary validate` gives the same answers offline.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::{
    CheckTask, DataSourceSpec, LoadMode, MAX_HISTORY, MAX_TASKS, ObjectTarget, PipelineSpec,
    SourceKind, Task,
};
use crate::dag::{Dag, DagProblem};
use crate::identifier::{TableName, check_identifier};
use crate::schedule::{Schedule, parse_time_zone};
use crate::template;

/// What kind of problem: a broken spec, or a reference to a DataSource that does not exist (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The spec itself is wrong; only an edit fixes it.
    Spec,
    /// A named DataSource is missing; creating it fixes the problem.
    MissingDataSource,
}

/// One problem, located by a field path such as `spec.tasks[2].dependsOn[0]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub kind: ProblemKind,
}

impl Problem {
    fn spec(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
            kind: ProblemKind::Spec,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The DataSources visible to a Pipeline (same namespace), by name.
pub type DataSources<'a> = BTreeMap<&'a str, &'a DataSourceSpec>;

/// Validates a Pipeline spec against the DataSources of its namespace; empty means valid.
pub fn validate_pipeline(spec: &PipelineSpec, data_sources: &DataSources<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if spec.tasks.is_empty() {
        problems.push(Problem::spec(
            "spec.tasks",
            "a Pipeline needs at least one task",
        ));
    }
    if spec.tasks.len() > MAX_TASKS {
        problems.push(Problem::spec(
            "spec.tasks",
            format!(
                "{} tasks is more than the limit of {MAX_TASKS}; split the Pipeline",
                spec.tasks.len()
            ),
        ));
    }
    if !(1..=100).contains(&spec.parallelism) {
        problems.push(Problem::spec(
            "spec.parallelism",
            format!("must be between 1 and 100, got {}", spec.parallelism),
        ));
    }
    if spec.history_limit > MAX_HISTORY {
        problems.push(Problem::spec(
            "spec.historyLimit",
            format!("must be at most {MAX_HISTORY}, got {}", spec.history_limit),
        ));
    }
    check_schedule(spec, &mut problems);
    check_graph(&spec.tasks, &mut problems);
    for (i, task) in spec.tasks.iter().enumerate() {
        check_task(
            &format!("spec.tasks[{i}]"),
            task,
            data_sources,
            &mut problems,
        );
    }
    problems.sort();
    problems.dedup();
    problems
}

fn check_schedule(spec: &PipelineSpec, problems: &mut Vec<Problem>) {
    if let Err(err) = parse_time_zone(spec.time_zone.as_deref()) {
        problems.push(Problem::spec("spec.timeZone", err.to_string()));
    }
    if let Some(expression) = &spec.schedule {
        // Parse in UTC so a bad time zone is reported once, above, not twice.
        if let Err(err) = Schedule::parse(expression, None) {
            problems.push(Problem::spec("spec.schedule", err.to_string()));
        }
    }
    if spec.starting_deadline_seconds.is_some() && spec.schedule.is_none() {
        problems.push(Problem::spec(
            "spec.startingDeadlineSeconds",
            "only applies to a Pipeline with a schedule",
        ));
    }
}

fn check_graph(tasks: &[Task], problems: &mut Vec<Problem>) {
    let graph: Vec<(&str, Vec<&str>)> = tasks
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let Err(dag_problems) = Dag::new(&graph) else {
        return;
    };
    for problem in dag_problems {
        problems.push(match problem {
            DagProblem::DuplicateName { task, name, first } => Problem::spec(
                format!("spec.tasks[{task}].name"),
                format!("duplicate task name {name:?} (first used by spec.tasks[{first}])"),
            ),
            DagProblem::UnknownDependency {
                task,
                dependency,
                name,
            } => Problem::spec(
                format!("spec.tasks[{task}].dependsOn[{dependency}]"),
                format!(
                    "task {:?} depends on {name:?}, which is not a task of this Pipeline",
                    tasks[task].name
                ),
            ),
            DagProblem::SelfDependency { task, dependency } => Problem::spec(
                format!("spec.tasks[{task}].dependsOn[{dependency}]"),
                format!("task {:?} depends on itself", tasks[task].name),
            ),
            DagProblem::Cycle { path } => Problem::spec(
                "spec.tasks",
                format!("dependency cycle: {}", path.join(" → ")),
            ),
        });
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 50
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn check_task(
    path: &str,
    task: &Task,
    data_sources: &DataSources<'_>,
    problems: &mut Vec<Problem>,
) {
    if !is_dns_label(&task.name) {
        problems.push(Problem::spec(
            format!("{path}.name"),
            format!("{:?} must be a DNS label of at most 50 characters: lowercase letters, digits and '-'", task.name),
        ));
    }
    let kinds = task.kinds();
    if kinds.len() != 1 {
        let set: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        problems.push(Problem::spec(
            path,
            format!(
                "exactly one of copy, export, load, sql, check, container must be set (found {})",
                if set.is_empty() {
                    "none".to_string()
                } else {
                    set.join(", ")
                }
            ),
        ));
    }
    for usage in task.data_source_refs() {
        let field = format!("{path}.{}", usage.field);
        match data_sources.get(usage.name) {
            None => problems.push(Problem {
                path: field,
                message: format!("DataSource {:?} not found in this namespace", usage.name),
                kind: ProblemKind::MissingDataSource,
            }),
            Some(source) => match source.kind() {
                Some(kind) if usage.accepts.contains(&kind) => {}
                Some(kind) => problems.push(Problem::spec(
                    field,
                    format!(
                        "DataSource {:?} is {kind}, but this field needs {}",
                        usage.name,
                        describe_kinds(usage.accepts)
                    ),
                )),
                // The DataSource's own validation reports it; here it is simply unusable.
                None => problems.push(Problem::spec(
                    field,
                    format!("DataSource {:?} is invalid", usage.name),
                )),
            },
        }
    }
    if let Some(copy) = &task.copy {
        check_object_target(&format!("{path}.copy.to"), &copy.to, false, problems);
        if copy.from.glob.is_empty() {
            problems.push(Problem::spec(
                format!("{path}.copy.from.glob"),
                "must not be empty; use \"*\" for every file",
            ));
        } else if let Err(err) = glob_check(&copy.from.glob) {
            problems.push(Problem::spec(format!("{path}.copy.from.glob"), err));
        }
    }
    if let Some(export) = &task.export {
        check_object_target(&format!("{path}.export.to"), &export.to, true, problems);
        if export.from.collection.is_empty() {
            problems.push(Problem::spec(
                format!("{path}.export.from.collection"),
                "must not be empty",
            ));
        }
        if let Some(incremental) = &export.incremental
            && incremental.field.is_empty()
        {
            problems.push(Problem::spec(
                format!("{path}.export.incremental.field"),
                "must not be empty",
            ));
        }
    }
    if let Some(load) = &task.load {
        let from = format!("{path}.load.from");
        match (&load.from.key, &load.from.prefix) {
            (Some(key), None) => check_template(&format!("{from}.key"), key, problems),
            (None, Some(prefix)) => check_template(&format!("{from}.prefix"), prefix, problems),
            _ => problems.push(Problem::spec(from, "set exactly one of key or prefix")),
        }
        check_table(&format!("{path}.load.to.table"), &load.to.table, problems);
        if load.mode == LoadMode::Upsert && load.key.is_empty() {
            problems.push(Problem::spec(
                format!("{path}.load.key"),
                "mode Upsert needs at least one key column",
            ));
        }
        for (j, column) in load.key.iter().enumerate() {
            check_column(&format!("{path}.load.key[{j}]"), column, problems);
        }
        for (j, column) in load.columns.iter().enumerate() {
            check_column(
                &format!("{path}.load.columns[{j}].name"),
                &column.name,
                problems,
            );
        }
        if !load.columns.is_empty() {
            for (j, key) in load.key.iter().enumerate() {
                if !load.columns.iter().any(|c| &c.name == key) {
                    problems.push(Problem::spec(
                        format!("{path}.load.key[{j}]"),
                        format!("key column {key:?} is not among the declared columns"),
                    ));
                }
            }
        }
        if let Some(rejects) = &load.rejects {
            check_template(
                &format!("{path}.load.rejects.prefix"),
                &rejects.prefix,
                problems,
            );
        }
    }
    if let Some(sql) = &task.sql {
        if sql.statements.is_empty() {
            problems.push(Problem::spec(
                format!("{path}.sql.statements"),
                "needs at least one statement",
            ));
        }
        for (j, statement) in sql.statements.iter().enumerate() {
            if statement.trim().is_empty() {
                problems.push(Problem::spec(
                    format!("{path}.sql.statements[{j}]"),
                    "is empty",
                ));
            }
            check_template(&format!("{path}.sql.statements[{j}]"), statement, problems);
        }
    }
    if let Some(check) = &task.check {
        check_check(&format!("{path}.check"), check, data_sources, problems);
    }
    if let Some(container) = &task.container {
        if container.image.trim().is_empty() {
            problems.push(Problem::spec(
                format!("{path}.container.image"),
                "must not be empty",
            ));
        }
        for (j, arg) in container.args.iter().enumerate() {
            check_template(&format!("{path}.container.args[{j}]"), arg, problems);
        }
        for (j, dataset) in container.inputs.iter().enumerate() {
            check_template(
                &format!("{path}.container.inputs[{j}].name"),
                &dataset.name,
                problems,
            );
        }
        for (j, dataset) in container.outputs.iter().enumerate() {
            check_template(
                &format!("{path}.container.outputs[{j}].name"),
                &dataset.name,
                problems,
            );
        }
    }
}

fn describe_kinds(kinds: &[SourceKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    match names.as_slice() {
        [one] => format!("a {one} DataSource"),
        _ => format!("one of {}", names.join(", ")),
    }
}

fn check_object_target(
    path: &str,
    target: &ObjectTarget,
    key_required: bool,
    problems: &mut Vec<Problem>,
) {
    match (&target.prefix, &target.key) {
        (Some(_), Some(_)) => {
            problems.push(Problem::spec(path, "set either prefix or key, not both"))
        }
        (Some(_), None) if key_required => {
            problems.push(Problem::spec(
                format!("{path}.prefix"),
                "an export writes one key (and its parts); use key",
            ));
        }
        (None, None) if key_required => {
            problems.push(Problem::spec(format!("{path}.key"), "is required"))
        }
        _ => {}
    }
    if let Some(prefix) = &target.prefix {
        check_template(&format!("{path}.prefix"), prefix, problems);
    }
    if let Some(key) = &target.key {
        if key.is_empty() || key.ends_with('/') {
            problems.push(Problem::spec(
                format!("{path}.key"),
                format!("{key:?} is not an object key"),
            ));
        }
        check_template(&format!("{path}.key"), key, problems);
    }
}

fn check_check(
    path: &str,
    check: &CheckTask,
    data_sources: &DataSources<'_>,
    problems: &mut Vec<Problem>,
) {
    let source_kind = data_sources
        .get(check.data_source.as_str())
        .and_then(|s| s.kind());
    match (&check.table, &check.key) {
        (Some(table), None) => {
            check_table(&format!("{path}.table"), table, problems);
            if source_kind == Some(SourceKind::S3) {
                problems.push(Problem::spec(
                    format!("{path}.table"),
                    "an s3 DataSource is checked by key, not table",
                ));
            }
        }
        (None, Some(key)) => {
            check_template(&format!("{path}.key"), key, problems);
            if source_kind == Some(SourceKind::Postgres) {
                problems.push(Problem::spec(
                    format!("{path}.key"),
                    "a postgres DataSource is checked by table, not key",
                ));
            }
        }
        _ => problems.push(Problem::spec(
            path,
            "set exactly one of table (postgres) or key (s3)",
        )),
    }
    let on_table = check.table.is_some();
    for (j, expectation) in check.expect.iter().enumerate() {
        let at = format!("{path}.expect[{j}]");
        let kinds = expectation.kinds();
        if kinds.len() != 1 {
            problems.push(Problem::spec(
                &at,
                format!(
                    "exactly one assertion must be set (found {})",
                    if kinds.is_empty() {
                        "none".into()
                    } else {
                        kinds.join(", ")
                    }
                ),
            ));
        }
        let table_only = [
            "notNull",
            "unique",
            "acceptedValues",
            "freshness",
            "columns",
        ];
        let object_only = ["exists", "minBytes"];
        for kind in &kinds {
            if on_table && object_only.contains(kind) {
                problems.push(Problem::spec(
                    format!("{at}.{kind}"),
                    "applies to S3 objects, not tables",
                ));
            }
            if !on_table && check.key.is_some() && table_only.contains(kind) {
                problems.push(Problem::spec(
                    format!("{at}.{kind}"),
                    "applies to tables, not S3 objects",
                ));
            }
        }
        if let Some(range) = &expectation.row_count
            && let (Some(min), Some(max)) = (range.min, range.max)
            && min > max
        {
            problems.push(Problem::spec(
                format!("{at}.rowCount"),
                format!("min {min} is greater than max {max}"),
            ));
        }
        let columns = expectation
            .not_null
            .iter()
            .flatten()
            .map(|c| ("notNull", c))
            .chain(expectation.unique.iter().flatten().map(|c| ("unique", c)));
        for (field, column) in columns {
            check_column(&format!("{at}.{field}"), column, problems);
        }
        for (field, list) in [
            ("notNull", &expectation.not_null),
            ("unique", &expectation.unique),
        ] {
            if list.as_ref().is_some_and(|l| l.is_empty()) {
                problems.push(Problem::spec(
                    format!("{at}.{field}"),
                    "needs at least one column",
                ));
            }
        }
    }
}

fn check_table(path: &str, table: &str, problems: &mut Vec<Problem>) {
    if let Err(err) = TableName::parse(table) {
        problems.push(Problem::spec(path, format!("invalid table name: {err}")));
    }
}

fn check_column(path: &str, column: &str, problems: &mut Vec<Problem>) {
    if let Err(err) = check_identifier(column) {
        problems.push(Problem::spec(path, format!("invalid column name: {err}")));
    }
}

fn check_template(path: &str, text: &str, problems: &mut Vec<Problem>) {
    if let Err(err) = template::check(text) {
        problems.push(Problem::spec(path, err.to_string()));
    }
}

/// Checks a shell-style glob the way the runner will compile it.
fn glob_check(glob: &str) -> Result<(), String> {
    let mut depth = 0i32;
    for c in glob.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!("{glob:?} has an unmatched ']'"));
        }
    }
    if depth != 0 {
        return Err(format!("{glob:?} has an unclosed '['"));
    }
    Ok(())
}

/// Validates a DataSource spec on its own; empty means valid.
pub fn validate_data_source(spec: &DataSourceSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let kinds = spec.kinds();
    if kinds.len() != 1 {
        let set: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        problems.push(Problem::spec(
            "spec",
            format!(
                "exactly one of ftp, sftp, http, mongodb, s3, postgres must be set (found {})",
                if set.is_empty() {
                    "none".to_string()
                } else {
                    set.join(", ")
                }
            ),
        ));
    }
    if let Some(ftp) = &spec.ftp
        && ftp.host.trim().is_empty()
    {
        problems.push(Problem::spec("spec.ftp.host", "must not be empty"));
    }
    if let Some(sftp) = &spec.sftp {
        if sftp.host.trim().is_empty() {
            problems.push(Problem::spec("spec.sftp.host", "must not be empty"));
        }
        if sftp.host_key.is_none() && !sftp.insecure_skip_host_key_verification {
            problems.push(Problem::spec(
                "spec.sftp.hostKey",
                "is required unless insecureSkipHostKeyVerification is true (the server could not be authenticated)",
            ));
        }
    }
    if let Some(http) = &spec.http {
        if !(http.base_url.starts_with("http://") || http.base_url.starts_with("https://")) {
            problems.push(Problem::spec(
                "spec.http.baseUrl",
                "must start with http:// or https://",
            ));
        }
        if url_has_credentials(&http.base_url) {
            problems.push(Problem::spec(
                "spec.http.baseUrl",
                "must not contain credentials; use credentialsSecretRef",
            ));
        }
        for (i, header) in http.headers.iter().enumerate() {
            if header.value.is_some() == header.secret_key_ref.is_some() {
                problems.push(Problem::spec(
                    format!("spec.http.headers[{i}]"),
                    "set exactly one of value or secretKeyRef",
                ));
            }
        }
    }
    if let Some(mongo) = &spec.mongodb {
        if !(mongo.uri.starts_with("mongodb://") || mongo.uri.starts_with("mongodb+srv://")) {
            problems.push(Problem::spec(
                "spec.mongodb.uri",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        if url_has_credentials(&mongo.uri) {
            problems.push(Problem::spec(
                "spec.mongodb.uri",
                "must not contain credentials; use credentialsSecretRef",
            ));
        }
    }
    if let Some(s3) = &spec.s3 {
        let valid_bucket = (3..=63).contains(&s3.bucket.len())
            && s3
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            problems.push(Problem::spec(
                "spec.s3.bucket",
                format!("{:?} is not a valid bucket name", s3.bucket),
            ));
        }
        if let Some(endpoint) = &s3.endpoint
            && url_has_credentials(endpoint)
        {
            problems.push(Problem::spec(
                "spec.s3.endpoint",
                "must not contain credentials; use credentialsSecretRef",
            ));
        }
    }
    if let Some(pg) = &spec.postgres {
        if pg.host.trim().is_empty() {
            problems.push(Problem::spec("spec.postgres.host", "must not be empty"));
        }
        if pg.database.trim().is_empty() {
            problems.push(Problem::spec("spec.postgres.database", "must not be empty"));
        }
    }
    problems
}

/// Whether a URL carries `user[:password]@` in its authority.
pub fn url_has_credentials(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

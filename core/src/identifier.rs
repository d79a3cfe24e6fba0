//! SQL identifiers: which table names are accepted, and how they are quoted.
//!
//! Names are restricted to plain identifiers (no quotes, spaces or semicolons) so that a
//! table name can never smuggle SQL; the runner still quotes every identifier it emits.

use std::fmt;

/// Longest identifier PostgreSQL keeps without truncating (NAMEDATALEN - 1).
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// A table name, optionally schema-qualified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName {
    /// Schema, when given (`public` is PostgreSQL's default).
    pub schema: Option<String>,
    /// Table.
    pub table: String,
}

/// Why a name is not an accepted SQL identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("is empty")]
    Empty,
    #[error("{0:?} is longer than {MAX_IDENTIFIER_LEN} characters")]
    TooLong(String),
    #[error(
        "{0:?} must start with a letter or underscore and contain only letters, digits, `_` and `$`"
    )]
    InvalidCharacters(String),
    #[error("{0:?} has more than two dot-separated parts; use `table` or `schema.table`")]
    TooManyParts(String),
}

/// Checks one identifier: a letter or `_`, then letters, digits, `_` or `$`, at most 63 bytes.
pub fn check_identifier(name: &str) -> Result<(), IdentifierError> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(IdentifierError::Empty);
    };
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(IdentifierError::TooLong(name.to_string()));
    }
    let first_ok = first.is_ascii_alphabetic() || first == '_';
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(IdentifierError::InvalidCharacters(name.to_string()))
    }
}

impl TableName {
    /// Parses `table` or `schema.table`.
    pub fn parse(name: &str) -> Result<TableName, IdentifierError> {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            [table] => {
                check_identifier(table)?;
                Ok(TableName {
                    schema: None,
                    table: table.to_string(),
                })
            }
            [schema, table] => {
                check_identifier(schema)?;
                check_identifier(table)?;
                Ok(TableName {
                    schema: Some(schema.to_string()),
                    table: table.to_string(),
                })
            }
            _ => Err(IdentifierError::TooManyParts(name.to_string())),
        }
    }

    /// The schema, defaulting to PostgreSQL's `public`.
    pub fn schema_or_public(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// Always-quoted, schema-qualified form for SQL text, e.g. `"staging"."transactions"`.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_identifier(self.schema_or_public()),
            quote_identifier(&self.table)
        )
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// Quotes any identifier for PostgreSQL, doubling embedded quotes.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_qualified_names_are_split_and_quoted() {
        let name = TableName::parse("staging.transactions").unwrap();
        assert_eq!(name.schema.as_deref(), Some("staging"));
        assert_eq!(name.quoted(), r#""staging"."transactions""#);
    }

    #[test]
    fn unqualified_names_are_quoted_in_the_public_schema() {
        assert_eq!(
            TableName::parse("fact_transactions").unwrap().quoted(),
            r#""public"."fact_transactions""#
        );
    }

    #[test]
    fn names_with_quotes_or_semicolons_are_rejected() {
        for bad in [
            r#"t"; drop table x; --"#,
            "t;drop",
            "my table",
            "1abc",
            "a.b.c",
            "",
            "a..b",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_longer_than_postgres_keeps_are_rejected() {
        let long = "a".repeat(64);
        assert_eq!(
            check_identifier(&long),
            Err(IdentifierError::TooLong(long.clone()))
        );
        assert!(check_identifier(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote_identifier(r#"we"ird"#), r#""we""ird""#);
    }
}

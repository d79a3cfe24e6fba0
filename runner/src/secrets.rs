//! Credentials of the task's DataSources, found only through the contract's secret bindings.

use std::collections::BTreeMap;

use tributary_core::contract::{RunnerInput, SecretField, secret_bindings};

use crate::error::{Error, Result};

/// Secret values by (DataSource, field). Debug output never shows a value.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<(String, SecretField), String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.values
                    .keys()
                    .map(|(ds, field)| format!("{ds}.{field:?}")),
            )
            .finish()
    }
}

impl Secrets {
    /// Reads every binding's environment variable through `lookup` (the process environment in
    /// a pod; environment or a local file in `tributary run`). A missing required value is a
    /// permanent error naming the variable, never its value.
    pub fn resolve(
        input: &RunnerInput,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secrets> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for binding in secret_bindings(&input.data_sources()) {
            match lookup(&binding.env) {
                Some(value) => {
                    values.insert((binding.data_source.clone(), binding.field.clone()), value);
                }
                None if binding.optional => {}
                None => missing.push(format!(
                    "{} (Secret {}, key {})",
                    binding.env, binding.secret.name, binding.secret.key
                )),
            }
        }
        if !missing.is_empty() {
            return Err(Error::permanent(format!(
                "missing credentials in environment: {}",
                missing.join(", ")
            )));
        }
        Ok(Secrets { values })
    }

    /// From the process environment.
    pub fn from_env(input: &RunnerInput) -> Result<Secrets> {
        Secrets::resolve(input, |name| std::env::var(name).ok())
    }

    pub fn get(&self, data_source: &str, field: &SecretField) -> Option<&str> {
        self.values
            .get(&(data_source.to_string(), field.clone()))
            .map(String::as_str)
    }

    /// Every value, to mask them in messages as a last line of defence.
    pub fn values(&self) -> Vec<String> {
        self.values.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::contract::CheckConnectionInput;

    fn input() -> RunnerInput {
        RunnerInput::CheckConnection(CheckConnectionInput {
            name: "warehouse".into(),
            namespace: "retail".into(),
            spec: serde_json::from_value(serde_json::json!({"postgres": {
                "host": "h", "database": "d", "credentialsSecretRef": {"name": "pg"}}}))
            .unwrap(),
        })
    }

    #[test]
    fn values_are_found_through_the_contract_bindings() {
        let secrets = Secrets::resolve(&input(), |name| match name {
            "TRIBUTARY_DS_WAREHOUSE_USERNAME" => Some("u".into()),
            "TRIBUTARY_DS_WAREHOUSE_PASSWORD" => Some("p4ss".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            secrets.get("warehouse", &SecretField::Password),
            Some("p4ss")
        );
        assert!(!format!("{secrets:?}").contains("p4ss"));
    }

    #[test]
    fn a_missing_required_secret_names_the_variable_and_is_permanent() {
        let err = Secrets::resolve(&input(), |_| None).unwrap_err();
        assert_eq!(err.class, crate::error::Class::Permanent);
        assert!(err.message.contains("TRIBUTARY_DS_WAREHOUSE_PASSWORD"));
    }
}

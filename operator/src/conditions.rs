//! Standard conditions (`Valid`, `Ready`, `Succeeded`) with Kubernetes transition semantics:
//! `lastTransitionTime` only moves when `status` changes, so Argo CD and `kubectl wait` see
//! stable objects and a repeated reconcile writes nothing new.

use chrono::{DateTime, Utc};
use tributary_core::api::Condition;

/// Condition type: the spec passed validation.
pub const VALID: &str = "Valid";
/// Condition type: usable now (Pipeline: valid, not running, last run not failed; DataSource: last check passed).
pub const READY: &str = "Ready";
/// Condition type: the last run succeeded.
pub const SUCCEEDED: &str = "Succeeded";

/// A desired condition, before its transition time is settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: Status,
    pub reason: String,
    pub message: String,
}

/// Condition status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// `True` when `value` holds, else `False`.
    pub fn from_bool(value: bool) -> Status {
        if value { Status::True } else { Status::False }
    }
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: Status,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Desired {
        Desired {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The conditions to write: `desired` in order, each keeping its previous transition time
/// when its status did not change.
pub fn settle(
    previous: &[Condition],
    desired: Vec<Desired>,
    generation: i64,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|d| {
            let status = d.status.as_str().to_string();
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map_or(now, |c| c.last_transition_time);
            Condition {
                type_: d.type_.to_string(),
                status,
                reason: d.reason,
                message: d.message,
                last_transition_time,
                observed_generation: Some(generation),
            }
        })
        .collect()
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let first = settle(
            &[],
            vec![Desired::new(READY, Status::True, "Idle", "")],
            1,
            at("2026-01-01T00:00:00Z"),
        );
        let same = settle(
            &first,
            vec![Desired::new(READY, Status::True, "Idle", "other text")],
            2,
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(same[0].last_transition_time, at("2026-01-01T00:00:00Z"));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = settle(
            &same,
            vec![Desired::new(READY, Status::False, "Failed", "")],
            2,
            at("2026-01-03T00:00:00Z"),
        );
        assert_eq!(flipped[0].last_transition_time, at("2026-01-03T00:00:00Z"));
    }
}

//! Retry and backoff policy: when a failed attempt is tried again, and when a task gives up.

use chrono::{DateTime, Duration, Utc};

use crate::api::{Task, TaskDefaults};

/// The resolved retry settings of one task (task overrides over Pipeline defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// Delay before the first retry, in seconds.
    pub backoff_seconds: u32,
    /// Upper bound on the delay, in seconds.
    pub max_backoff_seconds: u32,
    /// Limit of one attempt, in seconds.
    pub timeout_seconds: u32,
}

impl RetryPolicy {
    /// Resolves a task's policy against the Pipeline defaults.
    pub fn for_task(task: &Task, defaults: &TaskDefaults) -> RetryPolicy {
        RetryPolicy {
            retries: task.retries.unwrap_or(defaults.retries),
            backoff_seconds: task.backoff_seconds.unwrap_or(defaults.backoff_seconds),
            max_backoff_seconds: defaults.max_backoff_seconds,
            timeout_seconds: task.timeout_seconds.unwrap_or(defaults.timeout_seconds),
        }
    }

    /// Delay after the `attempts`-th failed attempt: `backoff × 2^(attempts-1)`, capped.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let seconds = u64::from(self.backoff_seconds).saturating_mul(1u64 << exponent);
        let capped = seconds.min(u64::from(
            self.max_backoff_seconds.max(self.backoff_seconds),
        ));
        Duration::seconds(capped as i64)
    }

    /// What follows a failed attempt.
    pub fn after_failure(
        &self,
        attempts: u32,
        retryable: bool,
        failed_at: DateTime<Utc>,
    ) -> RetryDecision {
        if !retryable {
            RetryDecision::GiveUp {
                reason: GiveUpReason::Permanent,
            }
        } else if attempts > self.retries {
            RetryDecision::GiveUp {
                reason: GiveUpReason::Exhausted,
            }
        } else {
            RetryDecision::RetryAt(failed_at + self.delay_after(attempts))
        }
    }
}

/// Outcome of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Start the next attempt at this time.
    RetryAt(DateTime<Utc>),
    /// The task fails.
    GiveUp { reason: GiveUpReason },
}

/// Why a task is not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The runner reported a permanent error (bad input, missing table, wrong password…).
    Permanent,
    /// Every allowed attempt failed.
    Exhausted,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            backoff_seconds: 10,
            max_backoff_seconds: 25,
            timeout_seconds: 60,
        }
    }

    #[test]
    fn backoff_doubles_with_every_attempt_up_to_the_cap() {
        let delays: Vec<i64> = (1..=4)
            .map(|n| policy().delay_after(n).num_seconds())
            .collect();
        assert_eq!(delays, vec![10, 20, 25, 25]);
    }

    #[test]
    fn a_retryable_failure_is_retried_until_the_retries_are_used_up() {
        let at = Utc::now();
        assert_eq!(
            policy().after_failure(1, true, at),
            RetryDecision::RetryAt(at + Duration::seconds(10))
        );
        assert_eq!(
            policy().after_failure(3, true, at),
            RetryDecision::RetryAt(at + Duration::seconds(25))
        );
        assert_eq!(
            policy().after_failure(4, true, at),
            RetryDecision::GiveUp {
                reason: GiveUpReason::Exhausted
            }
        );
    }

    #[test]
    fn a_permanent_failure_is_never_retried() {
        assert_eq!(
            policy().after_failure(1, false, Utc::now()),
            RetryDecision::GiveUp {
                reason: GiveUpReason::Permanent
            }
        );
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        assert_eq!(policy().delay_after(u32::MAX).num_seconds(), 25);
    }
}

//! Schedule timing: when a cron Pipeline is due, and what its concurrency policy makes of it.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::api::ConcurrencyPolicy;

/// A parsed cron expression read in a time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    time_zone: Tz,
}

/// Why a schedule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidCron { expression: String, reason: String },
    #[error("unknown time zone {0:?}; use an IANA name such as Europe/London or UTC")]
    UnknownTimeZone(String),
}

impl Schedule {
    /// Parses a 5-field cron expression (or `@daily`-style macro) and an IANA time zone (default UTC).
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let time_zone = parse_time_zone(time_zone)?;
        // Kubernetes CronJob semantics: minute granularity, no seconds field.
        let parser = CronParser::builder().seconds(Seconds::Disallowed).build();
        let cron = parser
            .parse(expression)
            .map_err(|err| ScheduleError::InvalidCron {
                expression: expression.to_string(),
                reason: err.to_string(),
            })?;
        Ok(Schedule { cron, time_zone })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.time_zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest fire time at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.time_zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The time zone the schedule is read in.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }
}

/// Parses an IANA time zone name; `None` is UTC.
pub fn parse_time_zone(name: Option<&str>) -> Result<Tz, ScheduleError> {
    match name {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string())),
    }
}

/// What the schedule observes.
#[derive(Clone, Copy, Debug)]
pub struct ScheduleState {
    /// Scheduled time of the last run the schedule started or deliberately skipped.
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// When the Pipeline was created: fire times before it never count.
    pub created_at: DateTime<Utc>,
    /// Whether a run of this Pipeline is still running.
    pub run_active: bool,
    /// Whether the Pipeline is suspended.
    pub suspended: bool,
}

/// What to do about the schedule now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleDecision {
    /// Nothing is due; look again at `next` (None: the expression never fires again).
    Wait { next: Option<DateTime<Utc>> },
    /// Start the run scheduled at `scheduled_at`; with `replace`, first stop the running run.
    Start {
        scheduled_at: DateTime<Utc>,
        replace: bool,
        next: Option<DateTime<Utc>>,
    },
    /// The run due at `scheduled_at` is skipped; record it as handled.
    Skip {
        scheduled_at: DateTime<Utc>,
        reason: SkipReason,
        next: Option<DateTime<Utc>>,
    },
}

/// Why a due run is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// `concurrencyPolicy: Forbid` and a run is active.
    ConcurrencyForbid,
    /// Later than `startingDeadlineSeconds` after its scheduled time.
    MissedDeadline,
    /// The Pipeline is suspended.
    Suspended,
}

/// Decides, from the schedule, the observed state and the clock, whether a scheduled run starts.
/// Only the latest missed fire time counts: after downtime one run catches up, not a burst.
pub fn decide(
    schedule: &Schedule,
    state: ScheduleState,
    policy: ConcurrencyPolicy,
    starting_deadline: Option<Duration>,
    now: DateTime<Utc>,
) -> ScheduleDecision {
    let next = schedule.next_after(now);
    let handled_until = state
        .last_schedule_time
        .unwrap_or(state.created_at)
        .max(state.created_at);
    let due = match schedule.latest_at_or_before(now) {
        Some(due) if due > handled_until => due,
        _ => return ScheduleDecision::Wait { next },
    };
    let skip = |reason| ScheduleDecision::Skip {
        scheduled_at: due,
        reason,
        next,
    };
    if state.suspended {
        return skip(SkipReason::Suspended);
    }
    if starting_deadline.is_some_and(|deadline| now - due > deadline) {
        return skip(SkipReason::MissedDeadline);
    }
    match (state.run_active, policy) {
        (true, ConcurrencyPolicy::Forbid) => skip(SkipReason::ConcurrencyForbid),
        (true, ConcurrencyPolicy::Replace) => ScheduleDecision::Start {
            scheduled_at: due,
            replace: true,
            next,
        },
        _ => ScheduleDecision::Start {
            scheduled_at: due,
            replace: false,
            next,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn state(last: Option<&str>, run_active: bool) -> ScheduleState {
        ScheduleState {
            last_schedule_time: last.map(at),
            created_at: at("2026-01-01T00:00:00Z"),
            run_active,
            suspended: false,
        }
    }

    #[test]
    fn a_schedule_is_read_in_its_time_zone() {
        let schedule = Schedule::parse("0 2 * * *", Some("Europe/London")).unwrap();
        // British Summer Time: 02:00 in London is 01:00 UTC.
        assert_eq!(
            schedule.next_after(at("2026-07-01T00:00:00Z")),
            Some(at("2026-07-01T01:00:00Z"))
        );
        assert_eq!(
            schedule.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-01T02:00:00Z"))
        );
    }

    #[test]
    fn an_invalid_cron_or_time_zone_is_rejected_with_the_culprit() {
        assert!(matches!(
            Schedule::parse("61 * * * *", None),
            Err(ScheduleError::InvalidCron { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 0 * * *", None),
            Err(ScheduleError::InvalidCron { .. })
        ));
        assert_eq!(
            Schedule::parse("@daily", Some("Mars/Olympus")).unwrap_err(),
            ScheduleError::UnknownTimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn nothing_is_due_before_the_first_fire_time() {
        let schedule = Schedule::parse("0 2 * * *", None).unwrap();
        let decision = decide(
            &schedule,
            state(Some("2026-11-24T02:00:00Z"), false),
            ConcurrencyPolicy::Forbid,
            None,
            at("2026-11-25T01:59:00Z"),
        );
        assert_eq!(
            decision,
            ScheduleDecision::Wait {
                next: Some(at("2026-11-25T02:00:00Z"))
            }
        );
    }

    #[test]
    fn a_due_run_starts_and_reports_the_next_fire_time() {
        let schedule = Schedule::parse("0 2 * * *", None).unwrap();
        let decision = decide(
            &schedule,
            state(Some("2026-11-24T02:00:00Z"), false),
            ConcurrencyPolicy::Forbid,
            None,
            at("2026-11-25T02:00:30Z"),
        );
        assert_eq!(
            decision,
            ScheduleDecision::Start {
                scheduled_at: at("2026-11-25T02:00:00Z"),
                replace: false,
                next: Some(at("2026-11-26T02:00:00Z"))
            }
        );
    }

    #[test]
    fn after_downtime_only_the_latest_missed_run_starts() {
        let schedule = Schedule::parse("0 * * * *", None).unwrap();
        let decision = decide(
            &schedule,
            state(Some("2026-11-20T00:00:00Z"), false),
            ConcurrencyPolicy::Allow,
            None,
            at("2026-11-25T05:10:00Z"),
        );
        assert!(
            matches!(decision, ScheduleDecision::Start { scheduled_at, .. } if scheduled_at == at("2026-11-25T05:00:00Z"))
        );
    }

    #[test]
    fn a_run_missed_by_more_than_the_starting_deadline_is_skipped() {
        let schedule = Schedule::parse("0 * * * *", None).unwrap();
        let decision = decide(
            &schedule,
            state(None, false),
            ConcurrencyPolicy::Allow,
            Some(Duration::seconds(60)),
            at("2026-11-25T05:10:00Z"),
        );
        assert!(matches!(
            decision,
            ScheduleDecision::Skip {
                reason: SkipReason::MissedDeadline,
                ..
            }
        ));
    }

    #[test]
    fn forbid_skips_a_due_run_while_one_is_active_and_replace_replaces_it() {
        let schedule = Schedule::parse("*/5 * * * *", None).unwrap();
        let now = at("2026-11-25T05:10:00Z");
        let forbid = decide(
            &schedule,
            state(Some("2026-11-25T05:05:00Z"), true),
            ConcurrencyPolicy::Forbid,
            None,
            now,
        );
        assert!(matches!(
            forbid,
            ScheduleDecision::Skip {
                reason: SkipReason::ConcurrencyForbid,
                ..
            }
        ));
        let replace = decide(
            &schedule,
            state(Some("2026-11-25T05:05:00Z"), true),
            ConcurrencyPolicy::Replace,
            None,
            now,
        );
        assert!(matches!(
            replace,
            ScheduleDecision::Start { replace: true, .. }
        ));
        let allow = decide(
            &schedule,
            state(Some("2026-11-25T05:05:00Z"), true),
            ConcurrencyPolicy::Allow,
            None,
            now,
        );
        assert!(matches!(
            allow,
            ScheduleDecision::Start { replace: false, .. }
        ));
    }

    #[test]
    fn a_suspended_pipeline_skips_due_runs() {
        let schedule = Schedule::parse("@hourly", None).unwrap();
        let mut suspended = state(None, false);
        suspended.suspended = true;
        let decision = decide(
            &schedule,
            suspended,
            ConcurrencyPolicy::Forbid,
            None,
            at("2026-11-25T05:10:00Z"),
        );
        assert!(matches!(
            decision,
            ScheduleDecision::Skip {
                reason: SkipReason::Suspended,
                ..
            }
        ));
    }

    #[test]
    fn fire_times_before_creation_never_count() {
        let schedule = Schedule::parse("0 * * * *", None).unwrap();
        let mut fresh = state(None, false);
        fresh.created_at = at("2026-11-25T05:30:00Z");
        let decision = decide(
            &schedule,
            fresh,
            ConcurrencyPolicy::Forbid,
            None,
            at("2026-11-25T05:40:00Z"),
        );
        assert_eq!(
            decision,
            ScheduleDecision::Wait {
                next: Some(at("2026-11-25T06:00:00Z"))
            }
        );
    }
}

//! Deterministic names and labels for the Jobs of a run, so a restarted operator finds
//! (and never duplicates) the Jobs it created before.

use sha2::{Digest, Sha256};

/// Label: the Pipeline a Job belongs to.
pub const LABEL_PIPELINE: &str = "tributary.dev/pipeline";
/// Label: the run id.
pub const LABEL_RUN: &str = "tributary.dev/run";
/// Label: the task name.
pub const LABEL_TASK: &str = "tributary.dev/task";
/// Label: the attempt number (1-based).
pub const LABEL_ATTEMPT: &str = "tributary.dev/attempt";
/// Label: the DataSource a connection-check Job belongs to.
pub const LABEL_DATASOURCE: &str = "tributary.dev/datasource";
/// Label on every object the operator creates.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Annotation: start a run now; its value is a token, each new value starts one run.
pub const ANNOTATION_RUN: &str = "tributary.dev/run";
/// Annotation: re-run only the failed and skipped tasks of the last run; each new value retries once.
pub const ANNOTATION_RETRY: &str = "tributary.dev/retry";

/// Longest Job name whose pods can still carry it as a label value (`job-name`).
pub const MAX_JOB_NAME: usize = 63;

/// First `len` hex digits of the sha256 of `parts` joined by NUL.
pub fn short_hash(parts: &[&str], len: usize) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len.min(hex.len())].to_string()
}

/// Name of the Job for one attempt of one task of one run:
/// `{pipeline}-{run}-{task}-{attempt}` when it fits in 63 characters, otherwise a truncated
/// form ending in a hash of the full tuple, so names stay unique and stable.
pub fn job_name(pipeline: &str, run_id: &str, task: &str, attempt: u32) -> String {
    let full = format!("{pipeline}-{run_id}-{task}-{attempt}");
    fit(&full, &[pipeline, run_id, task, &attempt.to_string()])
}

/// Name of the connection-check Job of a DataSource at one generation and check round.
pub fn check_job_name(data_source: &str, generation: i64, round: u64) -> String {
    let full = format!("{data_source}-check-{generation}-{round}");
    fit(
        &full,
        &[
            data_source,
            "check",
            &generation.to_string(),
            &round.to_string(),
        ],
    )
}

/// A label value for `name`: itself when it fits (63 characters), else a truncated form with a hash.
pub fn label_value(name: &str) -> String {
    fit(name, &[name])
}

fn fit(full: &str, identity: &[&str]) -> String {
    if full.len() <= MAX_JOB_NAME {
        return full.to_string();
    }
    let hash = short_hash(identity, 10);
    let keep = MAX_JOB_NAME - hash.len() - 1;
    let prefix = full[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}")
}

/// Run id of the run started by a new spec generation of an unscheduled Pipeline.
pub fn generation_run_id(generation: i64) -> String {
    format!("g{generation}")
}

/// Run id of a scheduled run, from its scheduled time (minute precision, UTC).
pub fn scheduled_run_id(scheduled_at: chrono::DateTime<chrono::Utc>) -> String {
    format!("s{}", scheduled_at.format("%Y%m%d%H%M"))
}

/// Run id of a manual run, from its request token.
pub fn manual_run_id(token: &str) -> String {
    format!("m{}", short_hash(&[token], 8))
}

/// Run id of a retry of `previous_run`, from its request token.
pub fn retry_run_id(previous_run: &str, token: &str) -> String {
    format!("r{}", short_hash(&[previous_run, token], 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_readable_and_deterministic() {
        assert_eq!(
            job_name("retail-elt", "g3", "load-transactions", 1),
            "retail-elt-g3-load-transactions-1"
        );
        assert_eq!(
            job_name("retail-elt", "g3", "load-transactions", 1),
            job_name("retail-elt", "g3", "load-transactions", 1)
        );
    }

    #[test]
    fn long_names_are_truncated_with_a_hash_and_stay_unique() {
        let pipeline = "a-very-long-pipeline-name-that-goes-on-and-on-and-on";
        let a = job_name(
            pipeline,
            "s202611250200",
            "load-the-transactions-into-staging",
            1,
        );
        let b = job_name(
            pipeline,
            "s202611250200",
            "load-the-transactions-into-staging",
            2,
        );
        assert!(a.len() <= MAX_JOB_NAME && b.len() <= MAX_JOB_NAME);
        assert_ne!(a, b);
        assert!(!a.contains("--"));
    }

    #[test]
    fn run_ids_depend_only_on_their_trigger() {
        assert_eq!(manual_run_id("now-1"), manual_run_id("now-1"));
        assert_ne!(manual_run_id("now-1"), manual_run_id("now-2"));
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T02:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(scheduled_run_id(at), "s202611250200");
    }
}

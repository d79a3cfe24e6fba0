//! Keeps a Pipeline's status within a size budget, shedding the least useful detail first.
//!
//! A status holds one entry per task (up to 200) with messages of up to 1 KiB each; at the
//! worst that is far more than anyone reads in `kubectl get -o yaml`. Messages are shortened,
//! then dataset lists dropped (their counts and the run manifest stay), then history.

use tributary_core::api::{PipelineStatus, TaskPhase, TaskStatus};

/// Serialised size of a status in bytes.
pub fn size(status: &PipelineStatus) -> usize {
    serde_json::to_vec(status).map_or(0, |v| v.len())
}

/// Shrinks `status` until it serialises to at most `budget` bytes (or nothing is left to shed).
pub fn fit(status: &mut PipelineStatus, budget: usize) {
    // Least useful first: extra datasets (the manifest lists them all), long messages, the
    // remaining datasets (counts stay), messages of tasks that succeeded, manifest keys.
    type Shed = fn(&mut TaskStatus);
    let stages: [Shed; 7] = [
        |t| {
            if let Some(l) = t.lineage.as_mut() {
                l.inputs.truncate(1);
                l.outputs.truncate(1);
            }
        },
        |t| shorten_message(t, 512),
        |t| shorten_message(t, 160),
        |t| {
            if let Some(l) = t.lineage.as_mut() {
                l.inputs.clear();
                l.outputs.clear();
            }
        },
        |t| shorten_message(t, 48),
        |t| {
            if t.phase == TaskPhase::Succeeded {
                t.message = None;
            }
        },
        |t| {
            if let Some(l) = t.lineage.as_mut() {
                l.manifest = None;
            }
        },
    ];
    for shed in stages {
        if size(status) <= budget {
            return;
        }
        if let Some(run) = status.last_run.as_mut() {
            run.tasks.iter_mut().for_each(shed);
        }
    }
    while size(status) > budget && !status.history.is_empty() {
        status.history.pop();
    }
}

fn shorten_message(task: &mut TaskStatus, limit: usize) {
    if let Some(message) = task.message.as_mut() {
        shorten(message, limit);
    }
}

fn shorten(message: &mut String, limit: usize) {
    if message.len() > limit {
        let mut cut = limit.saturating_sub(3);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::a_big_status;

    #[test]
    fn a_status_of_two_hundred_tasks_with_long_messages_fits_the_budget() {
        let mut status = a_big_status(200, 1024);
        assert!(size(&status) > 64 * 1024);
        fit(&mut status, 60 * 1024);
        assert!(size(&status) <= 60 * 1024, "{} bytes", size(&status));
        let run = status.last_run.unwrap();
        assert_eq!(run.tasks.len(), 200, "no task entry is ever dropped");
        assert!(run.tasks.iter().all(|t| t.lineage.is_some()));
    }

    #[test]
    fn fifty_tasks_keep_their_messages_and_a_dataset_each_way() {
        let mut status = a_big_status(50, 80);
        fit(&mut status, 60 * 1024);
        assert!(size(&status) <= 60 * 1024, "{} bytes", size(&status));
        let run = status.last_run.unwrap();
        assert!(
            run.tasks
                .iter()
                .all(|t| t.message.as_deref().is_some_and(|m| m.len() == 80))
        );
        assert!(run.tasks.iter().all(|t| {
            t.lineage
                .as_ref()
                .is_some_and(|l| l.outputs.len() == 1 && l.rows == Some(1000))
        }));
    }

    #[test]
    fn a_small_status_is_left_alone() {
        let mut status = a_big_status(5, 100);
        let before = status.clone();
        fit(&mut status, 60 * 1024);
        assert_eq!(status, before);
    }
}
